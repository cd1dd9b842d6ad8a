#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkMALACUDA.

Times, on the GPU and in the dtype of the Go benchmark, S = 20 steps of MALA (ALGORITHMS section 2)
for N chains at once on the problem of bench/langevin_test.go: an isotropic Gaussian mixture with
K = 4 components in dimension d (weights in [0.5, 1.5), means with N(0, 3^2) coordinates,
variances in [0.5, 2)), chains started from N(0, 3^2) rows, step size h = 0.3, no adaptation.

One step, batched over the chains (x, log p(x) and grad log p(x) carried from the previous step):

    y = x + h grad(x) + sqrt(2h) xi,               xi ~ N(0, I)        (torch.randn)
    log p(y), grad(y)                                                   (one evaluation)
    log alpha = log p(y) - log p(x) + log q(x|y) - log q(y|x),
    log q(b|a) = -|b - a - h grad(a)|^2 / (4h)
    accept where log u < log alpha,                 u ~ U(0, 1)        (torch.rand), torch.where

Variants (how log p and its gradient are computed):
  eager     the closed form: diff = y[:,None,:] - mu[None]; r = log w + log N(y; mu_k, var_k I);
            log p = torch.logsumexp(r); grad = -sum_k softmax(r)_k diff_k / var_k
  autograd  log p as above, the gradient by torch.autograd.grad of sum(log p) (what a user with
            only a log-density writes)
  compile   the closed-form step function under torch.compile (--compile-mode), the loop over
            steps in Python; a compile failure is a skipped row naming the error

Each repetition is one whole run (the initial evaluation and S steps) between a pair of CUDA
events; the table reports the median over --reps (>= 20) after --warmup runs, as chain-steps/s =
N x S / median seconds, the metric of the Go benchmark. The Go benchmark's time also includes what
solvers.Langevin does around the steps (the copy of the initial state, scratch allocation, a NaN
scan of the final state on the host); this one times the steps only.

    python3 mala_torch.py [--quick] [--json torch-mala.json] [--variants eager,compile]
                          [--chains 1e5,1e6] [--dims 2,16] [--dtypes f32]

Before timing, the GMM log-density and its gradient are checked against autograd and a
finite difference on a small float64 problem; a disagreement stops the script.

Exits 0 with a message when torch or a CUDA device is missing (--device cpu runs the sweep on the
CPU, only to check the script: those timings compare with nothing). Needs no network access.

The sweep, argument parsing, problem generator and table at module level use the standard library
only; mala_jax.py imports them from here.
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"

# bench/langevin_test.go: cudaLangevinCases, langevinK, langevinSteps, langevinStepSize.
CHAINS = [10**3, 10**4, 10**5, 10**6]
DIMS = [2, 16, 128]
QUICK = {"chains": [10**4, 10**5], "dims": [2, 16], "dtypes": ["f32"]}
K = 4
STEPS = 20
STEP_SIZE = 0.3
DTYPES = ["f32", "f64"]
BYTES = {"f32": 4, "f64": 8}
TORCH_VARIANTS = ["eager", "autograd", "compile"]


class TooSlow(Exception):
    pass


def pow10_label(n):
    """The count label of the Go benchmark names: 100000 -> "1e5", 512 -> "512"."""
    if n >= 10:
        k, m = 0, n
        while m % 10 == 0:
            m //= 10
            k += 1
        if m == 1:
            return "1e%d" % k
    return str(n)


def go_benchmark(method, dtype, n, d):
    return "Benchmark%sCUDA/%s/chains=%s/d=%d" % (method.upper(), dtype, pow10_label(n), d)


def parse_count(s):
    """Parses "1e5", "10^5", "2^20", "1<<20" or "100000"."""
    s = s.strip()
    if "e" in s.lower():
        return int(float(s))
    return int(common.eval_pow(s))


def parse_args(library, variants, extra=None):
    p = argparse.ArgumentParser(
        description="Time %s's MALA on the problems of scorekit's BenchmarkMALACUDA "
        "(K = 4 isotropic Gaussian mixture, %d steps, h = %g)." % (library, STEPS, STEP_SIZE))
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--reps", type=int, default=20, help="timed runs per problem (>= 20; default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="chains 1e4,1e5, d 2,16, f32 only: the design's target (10^5 chains, d = 2..16) "
                   "and one step below")
    p.add_argument("--chains", type=lambda s: [parse_count(x) for x in s.split(",") if x.strip()], default=None,
                   help="comma-separated chain counts (default %s)" % ",".join(map(pow10_label, CHAINS)))
    p.add_argument("--dims", type=lambda s: [int(x) for x in s.split(",") if x.strip()], default=None,
                   help="comma-separated dimensions (default %s)" % ",".join(map(str, DIMS)))
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=None, help="f32,f64 (default both)")
    p.add_argument("--variants", type=lambda s: s.split(","), default=list(variants),
                   help="comma-separated, of %s (default all)" % ", ".join(variants))
    p.add_argument("--max-call-s", type=float, default=30.0,
                   help="skip a problem whose first timed run takes longer than this, seconds (default 30)")
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
    for v in a.variants:
        if v not in variants:
            p.error("unknown variant %r (want one of %s)" % (v, ", ".join(variants)))
    if any(n <= 0 for n in a.chains) or any(d <= 0 for d in a.dims):
        p.error("chain counts and dimensions must be positive")
    return a


def problems(a):
    """(dtype, chains, d) in the order of the Go benchmark."""
    for dt in a.dtypes:
        for n in a.chains:
            for d in a.dims:
                yield dt, n, d


def mixture(d, seed):
    """The K = 4 mixture of the Go benchmark's distribution (not its exact numbers), as Python
    lists: normalised log-weights (K), means (K x d), variances (K)."""
    import random
    r = random.Random(seed)
    w = [0.5 + r.random() for _ in range(K)]
    logw = [math.log(x / sum(w)) for x in w]
    mu = [[3 * r.gauss(0, 1) for _ in range(d)] for _ in range(K)]
    var = [0.5 + 1.5 * r.random() for _ in range(K)]
    return logw, mu, var


def state_bytes(dtype, n, d):
    """Device memory of one run: x, y, grad(x), grad(y), noise (n x d), the K-fold difference
    tensor of one evaluation (n x K x d, twice for its square and the gradient terms)."""
    return BYTES[dtype] * n * d * (5 + 2 * K)


def result(library, variant, dtype, n, d, times_ms, accept):
    med = statistics.median(times_ms)
    return {
        "library": library, "variant": variant, "method": "mala", "dtype": dtype,
        "chains": n, "chains_label": pow10_label(n), "dim": d, "k": K, "steps": STEPS, "step_size": STEP_SIZE,
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "chain_steps_per_s": n * STEPS / (med * 1e-3), "accept": accept,
        "go_benchmark": go_benchmark("mala", dtype, n, d),
    }


def skipped(library, variant, dtype, n, d, why):
    return {
        "library": library, "variant": variant, "method": "mala", "dtype": dtype,
        "chains": n, "chains_label": pow10_label(n), "dim": d, "k": K, "steps": STEPS, "step_size": STEP_SIZE,
        "skipped": str(why).splitlines()[0] if str(why) else type(why).__name__,
        "go_benchmark": go_benchmark("mala", dtype, n, d),
    }


def print_table(rows, header):
    print(header)
    print()
    print("| library | variant | dtype | chains | d | ms per run (median) | chain-steps/s | accept |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "skipped" in r:
            print("| %s | %s | %s | %s | %d | skipped: %s | | |" % (
                r["library"], r["variant"], r["dtype"], r["chains_label"], r["dim"], r["skipped"]))
            continue
        print("| %s | %s | %s | %s | %d | %.4g | %.3g | %.3f |" % (
            r["library"], r["variant"], r["dtype"], r["chains_label"], r["dim"], r["ms"],
            r["chain_steps_per_s"], r["accept"]))
    sys.stdout.flush()


def add_args(p):
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cuda (default); cpu only checks that the script runs (timings not comparable)")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode of the compile variant (default \"default\")")


def build(torch, logw, mu, var):
    """The log-density and gradient of the mixture (closed form and autograd), and a MALA run."""
    d = mu.shape[1]
    lognorm = logw - 0.5 * d * torch.log(2 * math.pi * var)  # (K)

    def log_terms(x):
        diff = x[:, None, :] - mu[None]                       # (n, K, d)
        return diff, lognorm - 0.5 * (diff * diff).sum(-1) / var

    def closed(x):
        diff, r = log_terms(x)
        logp = torch.logsumexp(r, 1)
        gamma = torch.softmax(r, 1) / var                      # (n, K)
        return logp, -(gamma[:, :, None] * diff).sum(1)

    def autograd(x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logp = torch.logsumexp(log_terms(x)[1], 1)
            (g,) = torch.autograd.grad(logp.sum(), x)
        return logp.detach(), g

    def make_step(evaluate):
        h = STEP_SIZE
        noise_scale = math.sqrt(2 * h)

        def step(x, logp, grad, xi, u):
            y = x + h * grad + noise_scale * xi
            logp_y, grad_y = evaluate(y)
            fwd = ((y - x - h * grad) ** 2).sum(1)
            bwd = ((x - y - h * grad_y) ** 2).sum(1)
            log_alpha = logp_y - logp + (fwd - bwd) / (4 * h)
            acc = torch.log(u) < log_alpha
            return (torch.where(acc[:, None], y, x), torch.where(acc, logp_y, logp),
                    torch.where(acc[:, None], grad_y, grad), acc)

        return step

    def make_run(evaluate, step):
        def run(x0, gen):
            n, dd = x0.shape
            logp, grad = evaluate(x0)
            x = x0
            accepted = torch.zeros(n, dtype=torch.int32, device=x0.device)
            for _ in range(STEPS):
                xi = torch.randn(n, dd, dtype=x0.dtype, device=x0.device, generator=gen)
                u = torch.rand(n, dtype=x0.dtype, device=x0.device, generator=gen)
                x, logp, grad, acc = step(x, logp, grad, xi, u)
                accepted += acc
            return x, accepted
        return run

    return {"closed": closed, "autograd": autograd, "make_step": make_step, "make_run": make_run}


def self_check(torch, dev):
    """Closed-form log p and gradient against autograd and a central difference (float64)."""
    logw, mu, var = mixture(5, 99)
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=dev)  # noqa: E731
    fns = build(torch, t(logw), t(mu), t(var))
    gen = torch.Generator(device=dev).manual_seed(3)
    x = 3 * torch.randn(7, 5, dtype=torch.float64, device=dev, generator=gen)
    lp, g = fns["closed"](x)
    lp2, g2 = fns["autograd"](x)
    if not (torch.allclose(lp, lp2, rtol=1e-12, atol=1e-12) and torch.allclose(g, g2, rtol=1e-9, atol=1e-12)):
        raise AssertionError("self-check: closed-form GMM log p / gradient differ from autograd")
    eps = 1e-6
    for j in range(5):
        e = torch.zeros_like(x)
        e[:, j] = eps
        fd = (fns["closed"](x + e)[0] - fns["closed"](x - e)[0]) / (2 * eps)
        if not torch.allclose(fd, g[:, j], rtol=1e-6, atol=1e-6):
            raise AssertionError("self-check: GMM gradient differs from a central difference in coordinate %d" % j)


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
    self_check(torch, dev)
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    device_name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    meta = {
        "library": LIBRARY, "version": torch.__version__, "device": device_name,
        "reps": args.reps, "warmup": args.warmup, "compile_mode": args.compile_mode,
        "k": K, "steps": STEPS, "step_size": STEP_SIZE,
        "timing": "CUDA events around one whole run (initial evaluation + %d steps), median" % STEPS,
    }

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    def timed(run, x0, gen):
        for i in range(args.warmup):
            t0 = time.perf_counter()
            out = run(x0, gen)
            sync()
            if i == args.warmup - 1 and time.perf_counter() - t0 > args.max_call_s:
                raise TooSlow("one run takes %.1f s (--max-call-s %g)" % (time.perf_counter() - t0, args.max_call_s))
            del out
        times, accepted = [], None
        for _ in range(args.reps):
            if cuda:
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                x, accepted = run(x0, gen)
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop))
            else:
                t0 = time.perf_counter()
                x, accepted = run(x0, gen)
                times.append((time.perf_counter() - t0) * 1e3)
            del x
        return times, float(accepted.double().mean()) / STEPS

    rows = []
    for dt, n, d in problems(args):
        dtype = dtypes[dt]
        need = state_bytes(dt, n, d)
        if cuda:
            free, _ = torch.cuda.mem_get_info(dev)
            if need > free:
                for v in args.variants:
                    rows.append(skipped(LIBRARY, v, dt, n, d, "out of memory: needs %.1f GiB, %.1f GiB free"
                                        % (need / 2**30, free / 2**30)))
                continue
        logw, mu, var = mixture(d, n * 1009 + d)
        t = lambda v: torch.tensor(v, dtype=dtype, device=dev)  # noqa: E731
        fns = build(torch, t(logw), t(mu), t(var))
        gen = torch.Generator(device=dev).manual_seed(n * 1009 + d)
        x0 = 3 * torch.randn(n, d, dtype=dtype, device=dev, generator=gen)
        for v in args.variants:
            try:
                evaluate = fns["autograd"] if v == "autograd" else fns["closed"]
                step = fns["make_step"](evaluate)
                if v == "compile":
                    if not hasattr(torch, "compile"):
                        raise RuntimeError("this torch has no torch.compile")
                    step = torch.compile(step, mode=args.compile_mode, dynamic=False)
                times, accept = timed(fns["make_run"](evaluate, step), x0, gen)
                rows.append(result(LIBRARY, v, dt, n, d, times, accept))
            except TooSlow as e:
                rows.append(skipped(LIBRARY, v, dt, n, d, e))
            except Exception as e:  # noqa: BLE001
                if common.is_out_of_memory(e):
                    rows.append(skipped(LIBRARY, v, dt, n, d, "out of memory: %s" % str(e).splitlines()[0]))
                elif v == "compile":
                    rows.append(skipped(LIBRARY, v, dt, n, d, "torch.compile failed: %s: %s"
                                        % (type(e).__name__, (str(e).splitlines() or [""])[0])))
                else:
                    raise
            finally:
                if cuda:
                    torch.cuda.empty_cache()
        del x0, fns

    print_table(rows, "PyTorch %s on %s, MALA, K = %d isotropic mixture, %d steps, h = %g; median of %d runs "
                "after %d warm-up runs" % (torch.__version__, device_name, K, STEPS, STEP_SIZE, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
