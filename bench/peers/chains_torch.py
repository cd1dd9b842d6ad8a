#!/usr/bin/env python3
"""PyTorch peer of scorekit's fused-chain benchmarks BenchmarkChainsMALACUDA and BenchmarkChainsULDCUDA.

Times S = 100 steps of MALA or underdamped Langevin (ULD, ALGORITHMS section 2) for N chains at once
on the problem of bench/chains_test.go: an isotropic Gaussian mixture with K = 4 components in
dimension d (weights in [0.5, 1.5), means with N(0, 3^2) coordinates, variances in [0.5, 2); the
distribution of the Go benchmark's mixture, not its numbers), chains started from N(0, 3^2) rows,
step size h = 0.3, ULD friction 1.5 and unit inverse mass. The state stays on the GPU from one
timed run to the next (each run continues the chains), and MALA's log p and gradient are evaluated
once before timing, as in the Go benchmark, whose timed call is one GMMChains launch.

One step, batched over the chains:

    MALA  y = x + h g(x) + sqrt(2h) xi;  log p(y), g(y);
          log alpha = log p(y) - log p(x) + (|y - x - h g(x)|^2 - |x - y - h g(y)|^2) / (4h);
          accept where log u < log alpha (torch.where), u ~ U(0, 1)
    ULD   g(x);  x' = x + cx v + cxg g + l11 xi1,  v' = E v + cv g + l21 xi1 + l22 xi2
          (the frozen-gradient integrator; coefficients as ops.ULDCoefficients)

with the closed-form mixture: diff = x[:,None,:] - mu[None] (N x K x d), r = log w + log N(x; mu_k,
var_k I), log p = torch.logsumexp(r), g = -sum_k softmax(r)_k diff_k / var_k.

Variants:
  eager     the S steps as a Python loop of torch operations (about 30 kernel launches per step)
  compile   the step function under torch.compile (--compile-mode; default "default"), the loop over
            the S steps in Python; a compile failure is a skipped row naming the error
  graph     the whole S-step run captured once into a CUDA graph (torch.cuda.graph, the random
            numbers drawn in the graph from the default CUDA generator) and replayed: one launch
            per run from the host, the closest torch gets to a single fused launch

Each repetition is one run of S steps between a pair of CUDA events; the table reports the median
over --reps (>= 20) after --warmup runs (the first compiles or captures) as chain-steps/s = N x S /
median seconds, the metric of the Go benchmarks, with MALA's mean acceptance rate.

    python3 chains_torch.py [--quick] [--json torch-chains.json] [--methods mala,uld]
                            [--variants eager,compile,graph] [--chains 1e5,1e6] [--dims 2,16]
                            [--dtypes f32]

Before timing, the closed-form gradient is checked against autograd on a small float64 problem;
a disagreement stops the script. Exits 0 with a message when torch or a CUDA device is missing
(--device cpu runs eager and compile on the CPU, only to check the script: those timings compare
with nothing). Needs no network access.

The sweep, argument parsing, coefficients and table at module level use the standard library
only; chains_jax.py imports them from here.
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import mala_torch as mala  # noqa: E402  (standard-library parts: labels, counts, the mixture)

LIBRARY = "torch"

# bench/chains_test.go and chains_cuda_test.go: cudaChainsGrid, chainsSteps, langevinK,
# langevinStepSize, chainsFriction.
CHAINS = [10**3, 10**4, 10**5, 10**6]
DIMS = [2, 16, 128]
QUICK = {"chains": [10**4, 10**5], "dims": [2, 16], "dtypes": ["f32"]}
K = 4
STEPS = 100
STEP_SIZE = 0.3
FRICTION = 1.5
INV_MASS = 1.0
METHODS = ["mala", "uld"]
DTYPES = ["f32", "f64"]
BYTES = {"f32": 4, "f64": 8}
TORCH_VARIANTS = ["eager", "compile", "graph"]


def uld_coefficients(h=STEP_SIZE, gamma=FRICTION, u=INV_MASS):
    """ops.ULDCoefficients: (E, cv, cx, cxg, l11, l21, l22) of the frozen-gradient ULD step."""
    om = -math.expm1(-gamma * h)
    e = 1 - om
    om_e2 = -math.expm1(-2 * gamma * h)
    cv = u / gamma * om
    cx = om / gamma
    cxg = u / gamma * (h - om / gamma)
    var_v = u * om_e2
    gh = gamma * h
    if gh < 1e-2:
        inner = h * gh * gh * (1.0 / 3 - gh / 4 + 7 * gh * gh / 60 - gh * gh * gh / 24)
    else:
        inner = h - 2 * om / gamma + om_e2 / (2 * gamma)
    var_x = 2 * u / gamma * inner
    cov = u / gamma * om * om
    l11 = math.sqrt(var_x)
    l21 = cov / l11
    l22 = math.sqrt(max(var_v - l21 * l21, 0.0))
    return e, cv, cx, cxg, l11, l21, l22


def go_benchmark(method, dtype, n, d):
    return "BenchmarkChains%sCUDA/%s/chains=%s/d=%d" % (method.upper(), dtype, mala.pow10_label(n), d)


def parse_args(library, variants, extra=None):
    p = argparse.ArgumentParser(
        description="Time %s's MALA and ULD runs of %d steps on the problems of scorekit's "
        "BenchmarkChains{MALA,ULD}CUDA (K = %d isotropic Gaussian mixture, h = %g)." % (library, STEPS, K, STEP_SIZE))
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--reps", type=int, default=20, help="timed runs per problem (>= 20; default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="chains 1e4,1e5, d 2,16, f32 only: the design's target sizes and one step below")
    p.add_argument("--chains", type=lambda s: [mala.parse_count(x) for x in s.split(",") if x.strip()], default=None,
                   help="comma-separated chain counts (default %s)" % ",".join(map(mala.pow10_label, CHAINS)))
    p.add_argument("--dims", type=lambda s: [int(x) for x in s.split(",") if x.strip()], default=None,
                   help="comma-separated dimensions (default %s)" % ",".join(map(str, DIMS)))
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=None, help="f32,f64 (default both)")
    p.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS), help="mala,uld (default both)")
    p.add_argument("--variants", type=lambda s: s.split(","), default=list(variants),
                   help="comma-separated, of %s (default all)" % ", ".join(variants))
    p.add_argument("--max-call-s", type=float, default=30.0,
                   help="skip a problem whose last warm-up run takes longer than this, seconds (default 30)")
    if extra:
        extra(p)
    a = p.parse_args()
    if a.reps < 20:
        p.error("--reps must be at least 20 (the median of fewer is too noisy to compare)")
    if a.warmup < 1:
        p.error("--warmup must be at least 1 (the first run compiles)")
    a.chains = a.chains or (QUICK["chains"] if a.quick else CHAINS)
    a.dims = a.dims or (QUICK["dims"] if a.quick else DIMS)
    a.dtypes = a.dtypes or (QUICK["dtypes"] if a.quick else DTYPES)
    for dt in a.dtypes:
        if dt not in BYTES:
            p.error("unknown dtype %r (want f32 or f64)" % dt)
    for m in a.methods:
        if m not in METHODS:
            p.error("unknown method %r (want mala or uld)" % m)
    for v in a.variants:
        if v not in variants:
            p.error("unknown variant %r (want one of %s)" % (v, ", ".join(variants)))
    if any(n <= 0 for n in a.chains) or any(d <= 0 for d in a.dims):
        p.error("chain counts and dimensions must be positive")
    return a


def problems(a):
    """(method, dtype, chains, d) in the order of the Go benchmarks."""
    for m in a.methods:
        for dt in a.dtypes:
            for n in a.chains:
                for d in a.dims:
                    yield m, dt, n, d


def state_bytes(dtype, n, d):
    """Device memory of one run: the state (x, v or g, proposal, its gradient, noise: 5 n x d) and
    the K-fold difference tensor of one evaluation (n x K x d, twice)."""
    return BYTES[dtype] * n * d * (5 + 2 * K)


def result(library, variant, method, dtype, n, d, times_ms, accept):
    med = statistics.median(times_ms)
    return {
        "library": library, "variant": variant, "method": method, "dtype": dtype,
        "chains": n, "chains_label": mala.pow10_label(n), "dim": d, "k": K, "steps": STEPS, "step_size": STEP_SIZE,
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "chain_steps_per_s": n * STEPS / (med * 1e-3), "accept": accept,
        "go_benchmark": go_benchmark(method, dtype, n, d),
    }


def skipped(library, variant, method, dtype, n, d, why):
    return {
        "library": library, "variant": variant, "method": method, "dtype": dtype,
        "chains": n, "chains_label": mala.pow10_label(n), "dim": d, "k": K, "steps": STEPS, "step_size": STEP_SIZE,
        "skipped": str(why).splitlines()[0] if str(why) else type(why).__name__,
        "go_benchmark": go_benchmark(method, dtype, n, d),
    }


def print_table(rows, header):
    print(header)
    print()
    print("| library | variant | method | dtype | chains | d | ms per run (median) | chain-steps/s | accept |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "skipped" in r:
            print("| %s | %s | %s | %s | %s | %d | skipped: %s | | |" % (
                r["library"], r["variant"], r["method"], r["dtype"], r["chains_label"], r["dim"], r["skipped"]))
            continue
        acc = "%.3f" % r["accept"] if r["accept"] is not None else ""
        print("| %s | %s | %s | %s | %s | %d | %.4g | %.3g | %s |" % (
            r["library"], r["variant"], r["method"], r["dtype"], r["chains_label"], r["dim"], r["ms"],
            r["chain_steps_per_s"], acc))
    sys.stdout.flush()


def add_args(p):
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cuda (default); cpu only checks that the script runs (timings not comparable)")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode of the compile variant (default \"default\")")


def build(torch, logw, mu, var):
    """The closed-form score of the mixture and the in-place MALA and ULD steps."""
    d = mu.shape[1]
    lognorm = logw - 0.5 * d * torch.log(2 * math.pi * var)  # (K)
    h = STEP_SIZE
    noise_scale = math.sqrt(2 * h)
    e, cv, cx, cxg, l11, l21, l22 = uld_coefficients()

    def evaluate(x):
        diff = x[:, None, :] - mu[None]                                  # (n, K, d)
        r = lognorm - 0.5 * (diff * diff).sum(-1) / var
        logp = torch.logsumexp(r, 1)
        gamma = torch.softmax(r, 1) / var                                # (n, K)
        return logp, -(gamma[:, :, None] * diff).sum(1)

    def score(x):
        diff = x[:, None, :] - mu[None]
        r = lognorm - 0.5 * (diff * diff).sum(-1) / var
        return -((torch.softmax(r, 1) / var)[:, :, None] * diff).sum(1)

    def mala_step(x, logp, grad, xi, u):
        y = x + h * grad + noise_scale * xi
        logp_y, grad_y = evaluate(y)
        fwd = ((y - x - h * grad) ** 2).sum(1)
        bwd = ((x - y - h * grad_y) ** 2).sum(1)
        log_alpha = logp_y - logp + (fwd - bwd) / (4 * h)
        acc = torch.log(u) < log_alpha
        return (torch.where(acc[:, None], y, x), torch.where(acc, logp_y, logp),
                torch.where(acc[:, None], grad_y, grad), acc)

    def uld_step(x, v, xi1, xi2):
        g = score(x)
        return x + cx * v + cxg * g + l11 * xi1, e * v + cv * g + l21 * xi1 + l22 * xi2

    return {"evaluate": evaluate, "score": score, "mala_step": mala_step, "uld_step": uld_step}


def make_run(torch, method, step, state):
    """A run of STEPS steps that updates state (a dict of tensors) in place and, for MALA, adds the
    acceptances to state["accepted"]; the normals and uniforms come from the default generator."""
    if method == "mala":
        def run():
            x, logp, grad, accepted = state["x"], state["logp"], state["grad"], state["accepted"]
            n = x.shape[0]
            for _ in range(STEPS):
                xi = torch.randn_like(x)
                u = torch.rand(n, dtype=x.dtype, device=x.device)
                nx, nl, ng, acc = step(x, logp, grad, xi, u)
                x.copy_(nx)
                logp.copy_(nl)
                grad.copy_(ng)
                accepted.add_(acc)
        return run

    def run():
        x, v = state["x"], state["v"]
        for _ in range(STEPS):
            nx, nv = step(x, v, torch.randn_like(x), torch.randn_like(x))
            x.copy_(nx)
            v.copy_(nv)
    return run


def self_check(torch, dev):
    """The closed-form log p and gradient against autograd (float64)."""
    logw, mu, var = mala.mixture(5, 99)
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=dev)  # noqa: E731
    fns = build(torch, t(logw), t(mu), t(var))
    gen = torch.Generator(device=dev).manual_seed(3)
    x = 3 * torch.randn(7, 5, dtype=torch.float64, device=dev, generator=gen)
    lp, g = fns["evaluate"](x)
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (ga,) = torch.autograd.grad(fns["evaluate"](xr)[0].sum(), xr)
    if not torch.allclose(g, ga, rtol=1e-9, atol=1e-12) or not torch.allclose(fns["score"](x), g, rtol=1e-12, atol=1e-12):
        raise AssertionError("self-check: the closed-form GMM gradient differs from autograd")
    e, cv, cx, cxg, l11, l21, l22 = uld_coefficients()
    if not (0 < e < 1 and l11 > 0 and l22 > 0):
        raise AssertionError("self-check: ULD coefficients out of range")


def main():
    args = parse_args(LIBRARY, TORCH_VARIANTS, add_args)
    try:
        import torch
    except ImportError as e:
        common.skip(LIBRARY, "PyTorch is not installed (%s)" % e)
    if args.device == "cuda" and not torch.cuda.is_available():
        common.skip(LIBRARY, "torch %s sees no CUDA device" % torch.__version__)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    torch.set_grad_enabled(False)
    self_check(torch, dev)
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    device_name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    meta = {
        "library": LIBRARY, "version": torch.__version__, "device": device_name,
        "reps": args.reps, "warmup": args.warmup, "compile_mode": args.compile_mode,
        "k": K, "steps": STEPS, "step_size": STEP_SIZE, "friction": FRICTION,
        "timing": "CUDA events around one run of %d steps (state carried from run to run), median" % STEPS,
    }

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    def timed(call):
        for i in range(args.warmup):
            t0 = time.perf_counter()
            call()
            sync()
            if i == args.warmup - 1 and time.perf_counter() - t0 > args.max_call_s:
                raise mala.TooSlow("one run takes %.1f s (--max-call-s %g)" % (time.perf_counter() - t0, args.max_call_s))
        times = []
        for _ in range(args.reps):
            if cuda:
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                call()
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop))
            else:
                t0 = time.perf_counter()
                call()
                times.append((time.perf_counter() - t0) * 1e3)
        return times, args.warmup + args.reps

    rows = []
    for method, dt, n, d in problems(args):
        dtype = dtypes[dt]
        if cuda:
            free, _ = torch.cuda.mem_get_info(dev)
            need = state_bytes(dt, n, d)
            if need > free:
                for v in args.variants:
                    rows.append(skipped(LIBRARY, v, method, dt, n, d, "out of memory: needs %.1f GiB, %.1f GiB free"
                                        % (need / 2**30, free / 2**30)))
                continue
        logw, mu, var = mala.mixture(d, n * 1009 + d)
        t = lambda v: torch.tensor(v, dtype=dtype, device=dev)  # noqa: E731
        fns = build(torch, t(logw), t(mu), t(var))
        for v in args.variants:
            state = None
            try:
                if v == "graph" and not cuda:
                    raise RuntimeError("CUDA graphs need a CUDA device")
                torch.manual_seed(n * 1009 + d)
                x0 = 3 * torch.randn(n, d, dtype=dtype, device=dev)
                state = {"x": x0}
                if method == "mala":
                    state["logp"], state["grad"] = fns["evaluate"](x0)
                    state["accepted"] = torch.zeros(n, dtype=torch.int64, device=dev)
                    step = fns["mala_step"]
                else:
                    state["v"] = torch.zeros_like(x0)
                    step = fns["uld_step"]
                if v == "compile":
                    if not hasattr(torch, "compile"):
                        raise RuntimeError("this torch has no torch.compile")
                    step = torch.compile(step, mode=args.compile_mode, dynamic=False)
                run = make_run(torch, method, step, state)
                call = run
                if v == "graph":
                    side = torch.cuda.Stream(device=dev)
                    side.wait_stream(torch.cuda.current_stream(dev))
                    with torch.cuda.stream(side):
                        run()  # warm the allocator and the kernels outside the capture
                    torch.cuda.current_stream(dev).wait_stream(side)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        run()
                    call = graph.replay
                    if method == "mala":
                        state["accepted"].zero_()
                times, runs = timed(call)
                accept = None
                if method == "mala":
                    accept = float(state["accepted"].double().mean()) / (runs * STEPS)
                rows.append(result(LIBRARY, v, method, dt, n, d, times, accept))
            except mala.TooSlow as e:
                rows.append(skipped(LIBRARY, v, method, dt, n, d, e))
            except Exception as e:  # noqa: BLE001
                if common.is_out_of_memory(e):
                    rows.append(skipped(LIBRARY, v, method, dt, n, d, "out of memory: %s" % str(e).splitlines()[0]))
                elif v in ("compile", "graph"):
                    rows.append(skipped(LIBRARY, v, method, dt, n, d, "%s failed: %s: %s"
                                        % (v, type(e).__name__, (str(e).splitlines() or [""])[0])))
                else:
                    raise
            finally:
                del state
                if cuda:
                    torch.cuda.empty_cache()
        del fns

    print_table(rows, "PyTorch %s on %s, MALA and ULD, K = %d isotropic mixture, %d steps per run, h = %g; median of "
                "%d runs after %d warm-up runs" % (torch.__version__, device_name, K, STEPS, STEP_SIZE, args.reps,
                                                   args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
