#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkDiffusionCUDA.

Times, on the GPU and in the dtype of the Go benchmark, whole sampling runs of the VE
probability-flow samplers (docs/math.md §5.1) written the way k-diffusion writes them
(k_diffusion.sampling: sample_euler, sample_heun, sample_dpmpp_2m): a Python loop over the steps,
the model called once per evaluation, every update in torch ops. The model is the exact denoiser of
an isotropic Gaussian mixture in closed form (docs/math.md §1.1):

    c_k = s_k^2 + sigma^2
    r_k(x) = log pi_k - (d/2) log(2 pi c_k) - |x - mu_k|^2 / (2 c_k)     (|x - mu|^2 expanded:
                                                                          |x|^2 - 2 x.mu + |mu|^2,
                                                                          one GEMM)
    w = softmax_k(r)
    D(x; sigma) = x sum_k w_k s_k^2 / c_k + sum_k w_k (sigma^2 / c_k) mu_k

Problems (bench/diffusion_test.go, the same numbers, not only the same distribution): K isotropic
components in dimension d with weights proportional to 1 + (k mod 3), means
mu_kj = 4 sin(2.4 k + 1.3 j + 0.5), variances s_k^2 = 0.3 + 0.1 (k mod 4); (d, K) = (2, 8) and
(64, 16); 10^5 samples; methods euler, heun, dpmpp-2m with 18, 50 and 100 steps on the EDM grid
(rho = 7, sigma from 80 down to 0.002, then 0: k-diffusion's get_sigmas_karras); the initial state
sigma_max * randn. Evaluations per sample: euler K, heun 2K - 1 (no corrector on the last step),
dpmpp-2m K.

Variants:
  eager    the denoiser in torch ops
  compile  the denoiser under torch.compile (--compile-mode), sigma passed as a 0-d tensor so that
           one graph serves every step; the loop stays in Python, as k-diffusion's does. A compile
           failure is a skipped row naming the error.

The branch on the last step and the dpmpp-2m coefficients are computed from the grid on the host
(k-diffusion reads them from device tensors, one synchronisation per step; this is slightly in
PyTorch's favour). Float32 matmuls run in full FP32 (TF32 off) unless --tf32.

Each repetition is one whole run (the initial draw and every step) between a pair of CUDA events;
the table reports the median over --reps (>= 20) after --warmup runs, as samples/s = N / median
seconds and score-evals/s = N x evaluations / median seconds, the metrics of the Go benchmark.
Accuracy, from the samples of the last run, in float64 (the Go benchmark prints the same two):

    mode-tv    1/2 sum_k |mean_i r_k(x_i) - pi_k|          (r_k the responsibilities at sigma = 0)
    scale-err  mean_i sum_k r_k(x_i) |x_i - mu_k|^2 / (d s_k^2) - 1

Both have expectation 0 for exact samples, so equal accuracy means equal numbers up to Monte-Carlo
noise (about 1/sqrt(N)).

    python3 diffusion_torch.py [--quick] [--json torch-diffusion.json] [--variants eager,compile]
                               [--methods euler,heun] [--steps 18,50] [--dims 2,64]
                               [--samples 1e5] [--dtypes f32]

Before timing, the closed-form denoiser is checked against Tweedie's formula with autograd
(D = x + sigma^2 grad log p_sigma), and each sampler against its scalar recurrence on a
one-component mixture (where every method is a product of per-step factors, computed in plain
Python); a disagreement stops the script.

Exits 0 with a message when torch or a CUDA device is missing (--device cpu runs the sweep on the
CPU, only to check the script: those timings compare with nothing). Needs no network access.
The sweep, the mixture, the grid, the scalar recurrences, argument parsing and the table at module
level use the standard library only.
"""

import argparse
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"

# bench/diffusion_test.go: diffusionMethods, diffusionSteps, cudaDiffusionProblems.
METHODS = ["euler", "heun", "dpmpp-2m"]
STEPS = [18, 50, 100]
PROBLEMS = [(2, 8), (64, 16)]  # (d, K)
SAMPLES = 10**5
DTYPES = ["f32", "f64"]
QUICK = {"steps": [18, 50], "dtypes": ["f32"]}
BYTES = {"f32": 4, "f64": 8}
VARIANTS = ["eager", "compile"]
# solvers.DefaultSigmaMin, DefaultSigmaMax, DefaultRho.
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0


def go_benchmark(dtype, method, steps, d, k, n):
    return "BenchmarkDiffusionCUDA/%s/%s/steps=%d/d=%d/K=%d/samples=%s" % (dtype, method, steps, d, k,
                                                                        common.pow10_label(n))


def mixture(k, d):
    """The benchmark mixture (bench/diffusion_test.go newDiffusionMixture): normalised weights (K),
    means (K x d), variances (K), as Python lists."""
    w = [1.0 + (c % 3) for c in range(k)]
    total = sum(w)
    w = [x / total for x in w]
    mu = [[4 * math.sin(2.4 * c + 1.3 * j + 0.5) for j in range(d)] for c in range(k)]
    var = [0.3 + 0.1 * (c % 4) for c in range(k)]
    return w, mu, var


def karras_sigmas(n, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, rho=RHO):
    """k-diffusion's get_sigmas_karras(n, ...) with its appended zero: n + 1 levels, n steps (the
    Go grid, solvers.EDMSigmas, sets the two end points exactly; the inner levels agree to
    rounding)."""
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    if n == 1:
        return [sigma_max, 0.0]
    return [(hi + i / (n - 1) * (lo - hi)) ** rho for i in range(n)] + [0.0]


def evals_per_sample(method, steps):
    return 2 * steps - 1 if method == "heun" else steps


def dpmpp_2m_coeffs(sigmas, i):
    """The update x_{i+1} = a x_i + b D_i + c D_{i-1} of k-diffusion's sample_dpmpp_2m at step i,
    as (a, b, c) in float64 on the host (c = 0 on the first step and the last)."""
    s, sn = sigmas[i], sigmas[i + 1]
    if sn == 0:
        return 0.0, 1.0, 0.0
    h = math.log(s) - math.log(sn)  # t_next - t with t = -log sigma
    a, e = sn / s, -math.expm1(-h)
    if i == 0:
        return a, e, 0.0
    r = (math.log(sigmas[i - 1]) - math.log(s)) / h  # h_last / h
    return a, e * (1 + 1 / (2 * r)), -e / (2 * r)


def scalar_factor(method, sigmas, var):
    """For a one-component mixture N(mu, var I), D(x; sigma) - mu = g(sigma) (x - mu) with
    g = var / (var + sigma^2), so every sampler maps x_0 - mu to F (x_0 - mu): F for method on
    the grid, computed in plain Python with the update written as in the samplers below."""
    g = lambda sg: var / (var + sg * sg)  # noqa: E731
    y, d_prev = 1.0, None
    for i in range(len(sigmas) - 1):
        s, sn = sigmas[i], sigmas[i + 1]
        den = g(s) * y
        if method == "euler":
            y = y + (y - den) / s * (sn - s)
        elif method == "heun":
            dd = (y - den) / s
            y2 = y + dd * (sn - s)
            if sn == 0:
                y = y2
            else:
                d2 = (y2 - g(sn) * y2) / sn
                y = y + (dd + d2) / 2 * (sn - s)
        elif method == "dpmpp-2m":
            a, b, c = dpmpp_2m_coeffs(sigmas, i)
            y = a * y + b * den + (c * d_prev if c else 0.0)
            d_prev = den
        else:
            raise ValueError(method)
    return y


def exact_factor(sigmas, var):
    """The probability-flow ODE's own factor from sigma_0 to 0 for N(mu, var I):
    sqrt(var / (var + sigma_0^2))."""
    return math.sqrt(var / (var + sigmas[0] ** 2))


def parse_args():
    p = argparse.ArgumentParser(
        description="Time PyTorch (k-diffusion-style samplers, closed-form GMM denoiser) on the problems "
        "of scorekit's BenchmarkDiffusionCUDA.")
    common.add_output_args(p, reps=20, warmup=3, timed="runs", untimed="runs")
    p.add_argument("--quick", action="store_true", help="steps 18,50 and f32 only")
    p.add_argument("--methods", type=common.name_list, default=METHODS,
                   help="comma-separated, of %s (default all)" % ", ".join(METHODS))
    p.add_argument("--steps", type=common.int_list, default=None,
                   help="comma-separated step counts (default %s)" % ",".join(map(str, STEPS)))
    p.add_argument("--dims", type=common.int_list, default=None,
                   help="comma-separated dimensions, of %s (default all)" % ",".join(str(d) for d, _ in PROBLEMS))
    p.add_argument("--samples", type=common.parse_count, default=SAMPLES, help="samples per run (default 1e5)")
    p.add_argument("--dtypes", type=common.name_list, default=None, help="f32,f64 (default both)")
    common.add_variants_arg(p, VARIANTS)
    common.add_max_call_arg(p, "warm-up run")
    common.add_device_arg(p, "cuda")
    common.add_compile_mode_arg(p)
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls in float32 (default off)")
    a = p.parse_args()
    common.check_reps(p, a, compiles=True)
    a.steps = a.steps or (QUICK["steps"] if a.quick else STEPS)
    a.dtypes = a.dtypes or (QUICK["dtypes"] if a.quick else DTYPES)
    dims = dict(PROBLEMS)
    a.problems = [(d, dims[d]) for d in (a.dims or [d for d, _ in PROBLEMS]) if d in dims]
    if a.dims and len(a.problems) != len(a.dims):
        p.error("--dims: each of %s" % ",".join(str(d) for d, _ in PROBLEMS))
    common.check_dtypes(p, a.dtypes)
    common.check_known(p, "method", a.methods, METHODS)
    common.check_known(p, "variant", a.variants, VARIANTS)
    if a.samples <= 0 or any(s <= 0 for s in a.steps):
        p.error("samples and steps must be positive")
    return a


def problems(a):
    """(dtype, method, steps, d, K) in the order of the Go benchmark."""
    for dt in a.dtypes:
        for method in a.methods:
            for steps in a.steps:
                for d, k in a.problems:
                    yield dt, method, steps, d, k


def state_bytes(dtype, n, d, k):
    """Device memory of one run: x, the denoiser output, heun's second point and output, the
    dpmpp-2m history (n x d each), and the n x K logits and weights."""
    return BYTES[dtype] * n * (6 * d + 3 * k)


def result(variant, dtype, method, steps, d, k, n, times_ms, tv, se):
    med = statistics.median(times_ms)
    ev = evals_per_sample(method, steps)
    return {
        "library": LIBRARY, "variant": variant, "dtype": dtype, "method": method, "steps": steps,
        "dim": d, "k": k, "samples": n, "samples_label": common.pow10_label(n), "evals_per_sample": ev,
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "samples_per_s": n / (med * 1e-3), "score_evals_per_s": n * ev / (med * 1e-3),
        "mode_tv": tv, "scale_err": se,
        "go_benchmark": go_benchmark(dtype, method, steps, d, k, n),
    }


def skipped(variant, dtype, method, steps, d, k, n, why):
    return {
        "library": LIBRARY, "variant": variant, "dtype": dtype, "method": method, "steps": steps,
        "dim": d, "k": k, "samples": n, "samples_label": common.pow10_label(n),
        "skipped": common.reason_text(why),
        "go_benchmark": go_benchmark(dtype, method, steps, d, k, n),
    }


def print_table(rows, header):
    print(header)
    print()
    print("| library | variant | dtype | method | steps | d | K | samples | ms per run (median) | samples/s "
          "| score-evals/s | mode-tv | scale-err |")
    print("|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        head = "| %s | %s | %s | %s | %d | %d | %d | %s |" % (
            r["library"], r["variant"], r["dtype"], r["method"], r["steps"], r["dim"], r["k"], r["samples_label"])
        if "skipped" in r:
            print("%s skipped: %s | | | | |" % (head, r["skipped"]))
            continue
        print("%s %.4g | %.4g | %.4g | %.4f | %+.4f |" % (
            head, r["ms"], r["samples_per_s"], r["score_evals_per_s"], r["mode_tv"], r["scale_err"]))
    sys.stdout.flush()


def build(torch, w, mu, var):
    """The closed-form denoiser of the mixture and the accuracy metrics, on the tensors' device."""
    d = mu.shape[1]
    logw = torch.log(w)
    mumu = (mu * mu).sum(1)  # (K)

    def denoise(x, sigma):
        """D(x; sigma) for x (n, d) and a 0-d tensor sigma."""
        s2 = sigma * sigma
        c = var + s2                                                       # (K)
        quad = (x * x).sum(1, keepdim=True) - 2 * (x @ mu.T) + mumu        # (n, K)
        logits = logw - 0.5 * d * torch.log(2 * math.pi * c) - quad / (2 * c)
        p = torch.softmax(logits, 1)
        return (p @ (var / c))[:, None] * x + (p * (s2 / c)) @ mu

    def log_p(x, sigma):
        c = var + sigma * sigma
        diff = x[:, None, :] - mu[None]
        return torch.logsumexp(logw - 0.5 * d * torch.log(2 * math.pi * c) - (diff * diff).sum(-1) / (2 * c), 1)

    def accuracy(x):
        """(mode-tv, scale-err) of samples x against the mixture, in float64, finite rows only."""
        x = x.double()
        x = x[torch.isfinite(x).all(1)]
        m, v, lw = mu.double(), var.double(), logw.double()
        quad = (x * x).sum(1, keepdim=True) - 2 * (x @ m.T) + (m * m).sum(1)
        quad = quad.clamp_min(0)
        r = torch.softmax(lw - 0.5 * d * torch.log(2 * math.pi * v) - quad / (2 * v), 1)
        tv = 0.5 * (r.mean(0) - lw.exp()).abs().sum()
        se = (r * quad / (d * v)).sum(1).mean() - 1
        return float(tv), float(se)

    return {"denoise": denoise, "log_p": log_p, "accuracy": accuracy}


def make_sampler(torch, method, denoise, sigmas_host, sigmas_dev):
    """The k-diffusion sampler of method over the grid, as run(x) -> samples."""

    def euler(x):
        for i in range(len(sigmas_host) - 1):
            denoised = denoise(x, sigmas_dev[i])
            d = (x - denoised) / sigmas_dev[i]
            x = x + d * (sigmas_dev[i + 1] - sigmas_dev[i])
        return x

    def heun(x):
        for i in range(len(sigmas_host) - 1):
            denoised = denoise(x, sigmas_dev[i])
            d = (x - denoised) / sigmas_dev[i]
            dt = sigmas_dev[i + 1] - sigmas_dev[i]
            if sigmas_host[i + 1] == 0:  # Euler method
                x = x + d * dt
            else:
                x_2 = x + d * dt
                denoised_2 = denoise(x_2, sigmas_dev[i + 1])
                d_2 = (x_2 - denoised_2) / sigmas_dev[i + 1]
                d_prime = (d + d_2) / 2
                x = x + d_prime * dt
        return x

    def dpmpp_2m(x):
        old_denoised = None
        for i in range(len(sigmas_host) - 1):
            denoised = denoise(x, sigmas_dev[i])
            a, b, c = dpmpp_2m_coeffs(sigmas_host, i)
            if c == 0 or old_denoised is None:
                x = a * x + b * denoised
            else:
                x = a * x + (b * denoised + c * old_denoised)
            old_denoised = denoised
        return x

    return {"euler": euler, "heun": heun, "dpmpp-2m": dpmpp_2m}[method]


def self_check(torch, dev):
    """The denoiser against Tweedie with autograd; each sampler against its scalar recurrence."""
    f64 = torch.float64
    t = lambda v: torch.tensor(v, dtype=f64, device=dev)  # noqa: E731
    w, mu, var = mixture(5, 3)
    fns = build(torch, t(w), t(mu), t(var))
    gen = torch.Generator(device=dev).manual_seed(5)
    x = 3 * torch.randn(11, 3, dtype=f64, device=dev, generator=gen)
    for sg in (0.05, 0.7, 12.0):
        sigma = t(sg)
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(fns["log_p"](xr, sigma).sum(), xr)
        want = x + sg * sg * grad
        if not torch.allclose(fns["denoise"](x, sigma), want, rtol=1e-9, atol=1e-9):
            raise AssertionError("self-check: closed-form denoiser differs from Tweedie at sigma = %g" % sg)
    w1, mu1, var1 = [1.0], [[0.5, -1.0, 2.0]], [0.5]
    one = build(torch, t(w1), t(mu1), t(var1))
    m = t(mu1)[0]
    for method in METHODS:
        for steps in (1, 2, 18):
            grid = karras_sigmas(steps)
            run = make_sampler(torch, method, one["denoise"], grid, t(grid))
            x0 = grid[0] * torch.randn(7, 3, dtype=f64, device=dev, generator=gen)
            want = m + scalar_factor(method, grid, var1[0]) * (x0 - m)
            if not torch.allclose(run(x0), want, rtol=1e-9, atol=1e-9):
                raise AssertionError("self-check: %s with %d steps differs from its scalar recurrence" % (method, steps))


def main():
    args = parse_args()
    torch = common.import_torch(LIBRARY, cuda=args.device == "cuda")
    import torch_common
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    self_check(torch, dev)
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    device_name = torch.cuda.get_device_name(dev) if cuda else "cpu (script check only)"
    meta = {
        "library": LIBRARY, "version": torch.__version__, "cuda": torch.version.cuda, "device": device_name,
        "reps": args.reps, "warmup": args.warmup, "compile_mode": args.compile_mode, "tf32": args.tf32,
        "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO,
        "timing": ("CUDA events around one whole run (initial draw + every step), median" if cuda
                   else "host clock (cpu check run)"),
    }

    rows = []
    n = args.samples
    for dt, method, steps, d, k in problems(args):
        dtype = dtypes[dt]
        short = torch_common.lacks_memory(dev, state_bytes(dt, n, d, k)) if cuda else None
        if short:
            rows.extend(skipped(v, dt, method, steps, d, k, n, short) for v in args.variants)
            continue
        w, mu, var = mixture(k, d)
        t = lambda v: torch.tensor(v, dtype=dtype, device=dev)  # noqa: E731
        fns = build(torch, t(w), t(mu), t(var))
        grid = karras_sigmas(steps)
        sigmas_dev = t(grid)
        gen = torch.Generator(device=dev).manual_seed(steps * 1009 + d)
        for v in args.variants:
            try:
                denoise = fns["denoise"]
                if v == "compile":
                    if not hasattr(torch, "compile"):
                        raise RuntimeError("this torch has no torch.compile")
                    denoise = torch.compile(denoise, mode=args.compile_mode, dynamic=False)
                run = make_sampler(torch, method, denoise, grid, sigmas_dev)

                def once(run=run, shape=(n, d), dtype=dtype, sigma0=grid[0]):
                    return run(sigma0 * torch.randn(*shape, dtype=dtype, device=dev, generator=gen))

                times, x = torch_common.timed_runs(dev, once, args.warmup, args.reps, args.max_call_s,
                                                   check_first=True)
                tv, se = fns["accuracy"](x)
                rows.append(result(v, dt, method, steps, d, k, n, times, tv, se))
                del x
            except Exception as e:  # noqa: BLE001
                why = common.skip_reason(e, v, {"compile": "torch.compile"})
                if why is None:
                    raise
                rows.append(skipped(v, dt, method, steps, d, k, n, why))
            finally:
                if cuda:
                    torch.cuda.empty_cache()
        del fns, sigmas_dev

    print_table(rows, "PyTorch %s on %s, k-diffusion-style samplers, closed-form GMM denoiser, EDM grid "
                "(rho = 7, sigma 80 -> 0.002, 0); median of %d runs after %d warm-up runs"
                % (torch.__version__, device_name, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
