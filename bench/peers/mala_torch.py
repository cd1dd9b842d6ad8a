#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkMALACUDA.

Times, on the GPU and in the dtype of the Go benchmark, S = 20 steps of MALA (docs/math.md §2)
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


def go_benchmark(method, dtype, n, d):
    return "Benchmark%sCUDA/%s/chains=%s/d=%d" % (method.upper(), dtype, common.pow10_label(n), d)


def add_sweep_args(p, quick_help):
    """The flags of the chain sweeps (this script's and chains_*.py's): --json, --reps, --warmup,
    --quick, --chains, --dims, --dtypes."""
    common.add_output_args(p, reps=20, warmup=3, timed="runs", untimed="runs")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--chains", type=common.count_list, default=None,
                   help="comma-separated chain counts (default %s)" % ",".join(map(common.pow10_label, CHAINS)))
    p.add_argument("--dims", type=common.int_list, default=None,
                   help="comma-separated dimensions (default %s)" % ",".join(map(str, DIMS)))
    p.add_argument("--dtypes", type=common.name_list, default=None, help="f32,f64 (default both)")


def finish_sweep_args(p, a, variants, more=None):
    """Checks the flags of add_sweep_args and --variants and fills in the default sweep (QUICK with
    --quick); more(), when given, runs after the dtype check."""
    common.check_reps(p, a, compiles=True)
    a.chains = a.chains or (QUICK["chains"] if a.quick else CHAINS)
    a.dims = a.dims or (QUICK["dims"] if a.quick else DIMS)
    a.dtypes = a.dtypes or (QUICK["dtypes"] if a.quick else DTYPES)
    common.check_dtypes(p, a.dtypes)
    if more:
        more()
    common.check_known(p, "variant", a.variants, variants)
    if any(n <= 0 for n in a.chains) or any(d <= 0 for d in a.dims):
        p.error("chain counts and dimensions must be positive")
    return a


def parse_args(library, variants, extra=None):
    p = argparse.ArgumentParser(
        description="Time %s's MALA on the problems of scorekit's BenchmarkMALACUDA "
        "(K = 4 isotropic Gaussian mixture, %d steps, h = %g)." % (library, STEPS, STEP_SIZE))
    add_sweep_args(p, "chains 1e4,1e5, d 2,16, f32 only: the design's target (10^5 chains, d = 2..16) "
                   "and one step below")
    common.add_variants_arg(p, variants)
    common.add_max_call_arg(p, "first timed run")
    if extra:
        extra(p)
    return finish_sweep_args(p, p.parse_args(), variants)


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


def chain_result(library, variant, method, dtype, n, d, steps, times_ms, accept):
    """A result row of a chain peer (this script's and chains_*.py's): the median time per run of
    steps steps and chain-steps/s = n x steps / median seconds."""
    med = statistics.median(times_ms)
    return {
        "library": library, "variant": variant, "method": method, "dtype": dtype,
        "chains": n, "chains_label": common.pow10_label(n), "dim": d, "k": K, "steps": steps, "step_size": STEP_SIZE,
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "chain_steps_per_s": n * steps / (med * 1e-3), "accept": accept,
    }


def chain_skipped(library, variant, method, dtype, n, d, steps, why):
    """A skipped row of a chain peer, with the first line of why."""
    return {
        "library": library, "variant": variant, "method": method, "dtype": dtype,
        "chains": n, "chains_label": common.pow10_label(n), "dim": d, "k": K, "steps": steps, "step_size": STEP_SIZE,
        "skipped": common.reason_text(why),
    }


def print_chain_table(rows, header, with_method=True):
    """The markdown table of chain rows (the method column only with_method)."""
    cols = ["library", "variant"] + (["method"] if with_method else []) + [
        "dtype", "chains", "d", "ms per run (median)", "chain-steps/s", "accept"]
    print(header)
    print()
    print("| %s |" % " | ".join(cols))
    print("|%s|" % "|".join(["---"] * (len(cols) - 4) + ["---:"] * 4))
    for r in rows:
        head = [r["library"], r["variant"]] + ([r["method"]] if with_method else []) + [
            r["dtype"], r["chains_label"], "%d" % r["dim"]]
        if "skipped" in r:
            print("| %s | skipped: %s | | |" % (" | ".join(head), r["skipped"]))
            continue
        acc = "%.3f" % r["accept"] if r["accept"] is not None else ""
        print("| %s | %.4g | %.3g | %s |" % (" | ".join(head), r["ms"], r["chain_steps_per_s"], acc))
    sys.stdout.flush()


def result(library, variant, dtype, n, d, times_ms, accept):
    return dict(chain_result(library, variant, "mala", dtype, n, d, STEPS, times_ms, accept),
                go_benchmark=go_benchmark("mala", dtype, n, d))


def skipped(library, variant, dtype, n, d, why):
    return dict(chain_skipped(library, variant, "mala", dtype, n, d, STEPS, why),
                go_benchmark=go_benchmark("mala", dtype, n, d))


def print_table(rows, header):
    print_chain_table(rows, header, with_method=False)


def add_args(p):
    common.add_device_arg(p, "cuda")
    common.add_compile_mode_arg(p)


def build(torch, logw, mu, var):
    """The log-density and gradient of the mixture (closed form and autograd), and a MALA run."""
    import torch_common
    gmm = torch_common.gmm(logw, mu, var)

    def make_step(evaluate):
        return torch_common.mala_step(evaluate, STEP_SIZE)

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

    return {"closed": gmm["closed"], "autograd": gmm["autograd"], "make_step": make_step, "make_run": make_run}


def self_check(torch, dev):
    """Closed-form log p and gradient against autograd and a central difference (float64)."""
    import torch_common
    torch_common.check_gmm(dev, *mixture(5, 99))


def main():
    args = parse_args(LIBRARY, TORCH_VARIANTS, add_args)
    torch = common.import_torch(LIBRARY, cuda=args.device == "cuda")
    import torch_common
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

    rows = []
    for dt, n, d in problems(args):
        dtype = dtypes[dt]
        short = torch_common.lacks_memory(dev, state_bytes(dt, n, d)) if cuda else None
        if short:
            rows.extend(skipped(LIBRARY, v, dt, n, d, short) for v in args.variants)
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
                run = fns["make_run"](evaluate, step)
                times, (x, accepted) = torch_common.timed_runs(dev, lambda: run(x0, gen), args.warmup, args.reps,
                                                               args.max_call_s)
                del x
                rows.append(result(LIBRARY, v, dt, n, d, times, float(accepted.double().mean()) / STEPS))
            except Exception as e:  # noqa: BLE001
                why = common.skip_reason(e, v, {"compile": "torch.compile"})
                if why is None:
                    raise
                rows.append(skipped(LIBRARY, v, dt, n, d, why))
            finally:
                if cuda:
                    torch.cuda.empty_cache()
        del x0, fns

    print_table(rows, "PyTorch %s on %s, MALA, K = %d isotropic mixture, %d steps, h = %g; median of %d runs "
                "after %d warm-up runs" % (torch.__version__, device_name, K, STEPS, STEP_SIZE, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
