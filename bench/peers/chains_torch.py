#!/usr/bin/env python3
"""PyTorch peer of scorekit's fused-chain benchmarks BenchmarkChainsMALACUDA and BenchmarkChainsULDCUDA.

Times S = 100 steps of MALA or underdamped Langevin (ULD, docs/math.md §2) for N chains at once
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
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import mala_torch as mala  # noqa: E402  (standard-library parts: labels, counts, the mixture)

LIBRARY = "torch"

# bench/chains_test.go and chains_cuda_test.go: cudaChainsGrid (the chains and dimensions of
# BenchmarkMALACUDA), chainsSteps, chainsFriction; the mixture (langevinK) and the step size
# (langevinStepSize) are those of mala_torch.py.
CHAINS, DIMS, QUICK, DTYPES, BYTES = mala.CHAINS, mala.DIMS, mala.QUICK, mala.DTYPES, mala.BYTES
K, STEP_SIZE = mala.K, mala.STEP_SIZE
STEPS = 100
FRICTION = 1.5
INV_MASS = 1.0
METHODS = ["mala", "uld"]
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
    return "BenchmarkChains%sCUDA/%s/chains=%s/d=%d" % (method.upper(), dtype, common.pow10_label(n), d)


def parse_args(library, variants, extra=None):
    p = argparse.ArgumentParser(
        description="Time %s's MALA and ULD runs of %d steps on the problems of scorekit's "
        "BenchmarkChains{MALA,ULD}CUDA (K = %d isotropic Gaussian mixture, h = %g)." % (library, STEPS, K, STEP_SIZE))
    mala.add_sweep_args(p, "chains 1e4,1e5, d 2,16, f32 only: the design's target sizes and one step below")
    p.add_argument("--methods", type=common.name_list, default=list(METHODS), help="mala,uld (default both)")
    common.add_variants_arg(p, variants)
    common.add_max_call_arg(p, "last warm-up run")
    if extra:
        extra(p)
    a = p.parse_args()
    return mala.finish_sweep_args(p, a, variants,
                                  more=lambda: common.check_known(p, "method", a.methods, METHODS, "mala or uld"))


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
    return dict(mala.chain_result(library, variant, method, dtype, n, d, STEPS, times_ms, accept),
                go_benchmark=go_benchmark(method, dtype, n, d))


def skipped(library, variant, method, dtype, n, d, why):
    return dict(mala.chain_skipped(library, variant, method, dtype, n, d, STEPS, why),
                go_benchmark=go_benchmark(method, dtype, n, d))


def print_table(rows, header):
    mala.print_chain_table(rows, header)


def add_args(p):
    common.add_device_arg(p, "cuda")
    common.add_compile_mode_arg(p)


def build(torch, logw, mu, var):
    """The closed-form score of the mixture and the in-place MALA and ULD steps."""
    import torch_common
    gmm = torch_common.gmm(logw, mu, var)
    score = gmm["score"]
    e, cv, cx, cxg, l11, l21, l22 = uld_coefficients()

    def uld_step(x, v, xi1, xi2):
        g = score(x)
        return x + cx * v + cxg * g + l11 * xi1, e * v + cv * g + l21 * xi1 + l22 * xi2

    return {"evaluate": gmm["closed"], "score": score,
            "mala_step": torch_common.mala_step(gmm["closed"], STEP_SIZE), "uld_step": uld_step}


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
    """The closed-form log p and gradient against autograd (float64); the ULD coefficients."""
    import torch_common
    torch_common.check_gmm(dev, *mala.mixture(5, 99))
    e, cv, cx, cxg, l11, l21, l22 = uld_coefficients()
    if not (0 < e < 1 and l11 > 0 and l22 > 0):
        raise AssertionError("self-check: ULD coefficients out of range")


def main():
    args = parse_args(LIBRARY, TORCH_VARIANTS, add_args)
    torch = common.import_torch(LIBRARY, cuda=args.device == "cuda")
    import torch_common
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

    rows = []
    for method, dt, n, d in problems(args):
        dtype = dtypes[dt]
        short = torch_common.lacks_memory(dev, state_bytes(dt, n, d)) if cuda else None
        if short:
            rows.extend(skipped(LIBRARY, v, method, dt, n, d, short) for v in args.variants)
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
                times, _ = torch_common.timed_runs(dev, call, args.warmup, args.reps, args.max_call_s)
                accept = None
                if method == "mala":
                    accept = float(state["accepted"].double().mean()) / ((args.warmup + args.reps) * STEPS)
                rows.append(result(LIBRARY, v, method, dt, n, d, times, accept))
            except Exception as e:  # noqa: BLE001
                why = common.skip_reason(e, v, {"compile": "compile", "graph": "graph"})
                if why is None:
                    raise
                rows.append(skipped(LIBRARY, v, method, dt, n, d, why))
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
