"""Shared pieces of the SDE-gradient peers (sde_numpy.py, sde_torchsde.py, sde_diffrax.py): the
problems of bench/sdegrad_test.go, the Go benchmark names, the command line, the rows and the
table. Standard library only, so that every script starts (and can say what is missing) without
its framework.

One gradient: a reversible Heun solve of `paths` chains over [0, T] (T = 1), the loss L = mean of
y_T over the paths and coordinates, and dL/dtheta (and dL/dx0) by the library's backward pass.

    ou:  dX = theta (mu - X) dt + sigma dW, (theta, mu, sigma) = (1.2, 0.5, 0.8),
         16 paths x d = 4, x0 = 1
    gbm: dX = mu X dt + sigma X dW (Ito); integrated in Stratonovich form
         f = (mu - sigma^2/2) x, g = sigma x; (mu, sigma) = (0.3, 0.6), 16 paths x d = 4, x0 = 1
    gmm: dX = grad log p(X) dt + sqrt(2) dW, p an isotropic mixture of K = 4 components in d = 2
         (means (1.5, 1.5), (-1.5, 1.5), (-1.5, -1.5), (1.5, -1.5), logits 0, variances 0.5),
         32 paths, x0 = (0.5, -0.25); theta = the K x d means then the K logits

steps in {1e2, 1e3, 1e4}, float64 (--dtypes f32 adds float32 rows; the Go benchmark is float64).
"""

import argparse
import statistics
import sys

import common

HORIZON = 1.0
STEPS = [100, 1000, 10000]
FAMILIES = ["ou", "gbm", "gmm"]

# The problems of bench/sdegrad_test.go (sdeGradProblems).
PROBLEMS = {
    "ou": {"paths": 16, "d": 4, "x0": [1.0], "params": [1.2, 0.5, 0.8], "names": ["theta", "mu", "sigma"]},
    "gbm": {"paths": 16, "d": 4, "x0": [1.0], "params": [0.3, 0.6], "names": ["mu", "sigma"]},
    "gmm": {"paths": 32, "d": 2, "x0": [0.5, -0.25],
            "means": [[1.5, 1.5], [-1.5, 1.5], [-1.5, -1.5], [1.5, -1.5]],
            "logits": [0.0, 0.0, 0.0, 0.0], "vars": [0.5, 0.5, 0.5, 0.5]},
}


def gmm_params(prob):
    """theta of the gmm problem as a flat list: the K x d means (row-major), then the K logits."""
    return [v for row in prob["means"] for v in row] + list(prob["logits"])


def params_of(family):
    prob = PROBLEMS[family]
    return gmm_params(prob) if family == "gmm" else list(prob["params"])


def start_row(family):
    """x0 of one path (d values)."""
    prob = PROBLEMS[family]
    row = prob["x0"]
    return row * prob["d"] if len(row) == 1 else list(row)


def go_benchmark(family, steps, device="cpu"):
    """The Go benchmark row of a problem: the CPU one (BenchmarkSDEGradient/<family>/generic/...)
    for a CPU run; on a GPU the affine families map to BenchmarkSDEGradientCUDA (forward solve on
    the GPU, adjoint on the host); gmm has no GPU row."""
    prob = PROBLEMS[family]
    tail = "paths=%d/d=%d/steps=%s" % (prob["paths"], prob["d"], common.pow10_label(steps))
    if device == "cpu":
        return "BenchmarkSDEGradient/%s/generic/%s" % (family, tail)
    if family == "gmm":
        return None
    return "BenchmarkSDEGradientCUDA/%s/fused/%s" % (family, tail)


def parse_args(library, variants, default_device, extra=None):
    p = argparse.ArgumentParser(
        description="Time %s's gradient through a reversible Heun SDE solve (terminal-mean loss) on "
        "the problems of scorekit's BenchmarkSDEGradient (ou, gbm, gmm; steps 1e2, 1e3, 1e4)." % library)
    common.add_output_args(p, reps=20, warmup=2, timed="gradients", untimed="gradients")
    p.add_argument("--families", type=common.name_list, default=FAMILIES, help="ou,gbm,gmm (default all)")
    p.add_argument("--steps", type=common.count_list, default=STEPS, help="comma-separated (default 1e2,1e3,1e4)")
    p.add_argument("--dtypes", type=common.name_list, default=["f64"], help="f32,f64 (default f64)")
    common.add_variants_arg(p, variants)
    common.add_max_call_arg(p, "first gradient")
    if default_device:
        common.add_device_arg(p, default_device)
    if extra:
        extra(p)
    a = p.parse_args()
    common.check_reps(p, a, compiles=True)
    common.check_known(p, "family", a.families, FAMILIES)
    common.check_known(p, "variant", a.variants, variants)
    common.check_dtypes(p, a.dtypes)
    if any(s < 1 for s in a.steps):
        p.error("steps must be positive")
    return a


def result(library, variant, family, dtype, steps, times_ms, peak_bytes, device="cpu", memory=""):
    """A row: the median time of one gradient, steps/s = paths x d x steps / median seconds (the Go
    metric), the peak memory and how it was measured."""
    prob = PROBLEMS[family]
    med = statistics.median(times_ms)
    return {
        "library": library, "variant": variant, "family": family, "dtype": dtype,
        "paths": prob["paths"], "d": prob["d"], "steps": steps, "steps_label": common.pow10_label(steps),
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "steps_per_s": prob["paths"] * prob["d"] * steps / (med * 1e-3),
        "peak_bytes": peak_bytes, "memory": memory,
        "go_benchmark": go_benchmark(family, steps, device),
    }


def skipped(library, variant, family, dtype, steps, why, device="cpu"):
    prob = PROBLEMS[family]
    return {
        "library": library, "variant": variant, "family": family, "dtype": dtype,
        "paths": prob["paths"], "d": prob["d"], "steps": steps, "steps_label": common.pow10_label(steps),
        "skipped": common.reason_text(why), "go_benchmark": go_benchmark(family, steps, device),
    }


def print_table(rows, header):
    print(header)
    print()
    print("| library | variant | family | dtype | paths x d | steps | ms per gradient (median) | steps/s | peak memory |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        head = "| %s | %s | %s | %s | %dx%d | %s |" % (
            r["library"], r["variant"], r["family"], r["dtype"], r["paths"], r["d"], r["steps_label"])
        if "skipped" in r:
            print("%s skipped: %s | | |" % (head, r["skipped"]))
            continue
        mem = "" if r["peak_bytes"] is None else "%.3g MiB" % (r["peak_bytes"] / 2**20)
        print("%s %.4g | %.3g | %s |" % (head, r["ms"], r["steps_per_s"], mem))
    sys.stdout.flush()


def check_close(library, what, got, want, rtol):
    """Stops the script when |got - want| > rtol (1 + |want|) for any element: a peer whose gradient
    is wrong would time the wrong thing."""
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        err = abs(g - w) / (1 + abs(w))
        worst = max(worst, err)
        if not err <= rtol:
            sys.exit("%s: self-check failed: %s[%d] = %.12g, finite differences give %.12g" % (library, what, i, g, w))
    return worst
