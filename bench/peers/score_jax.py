#!/usr/bin/env python3
"""JAX peer of scorekit's BenchmarkGMMScoreCUDA / BenchmarkEmpiricalScoreCUDA.

The problems, sweep, FLOP counts and table are those of score_torch.py (imported from it; torch
itself is not needed). What is timed, each under jax.jit with static shapes and dtype:

GMM score and log-density (isotropic mixture, VE noise sigma = 0.5):
  jit      diff = x[:,None,:] - a*mu[None]; r = log-weights + log-normal; log p =
           jax.nn.logsumexp(r); responsibilities = jax.nn.softmax(r); score = -sum_k gamma_k
           diff_k / c_k. When the N x K x d difference would not fit in --budget-gib the rows are
           processed in equal blocks with jax.lax.map inside the same jit.
  grad     log p as above and the score as jax.value_and_grad of sum(log p) (automatic
           differentiation of logsumexp, the way a user with only log p would get the score)

Empirical optimal denoiser (one mixture term):
  jit      softmax(-|x - y|^2 / (2 sigma^2)) @ y with |x - y|^2 = |x|^2 - 2 x.y^T + |y|^2 (the
           form torch.cdist uses for large inputs; JAX has no cdist) -- the whole N x M matrix
  chunked  the same over equal chunks of M with an online softmax in jax.lax.scan

Float32 matmuls run at precision "highest" (full FP32) unless --tf32 (JAX's GPU default would use
TF32). float64 needs jax_enable_x64, which the script sets. Each repetition is the host clock
around the call and block_until_ready (one dispatch, tens of microseconds, included); the table
reports the median of --reps (>= 20) after --warmup calls, the first of which compiles. Problems
that do not fit (XLA's RESOURCE_EXHAUSTED) or whose single call exceeds --max-call-s are skipped
rows, not crashes.

    python3 score_jax.py [--quick] [--json jax-score.json] [--ops gmm,empirical] [--variants jit,grad]

Before timing, every variant (chunked paths included) is checked against the definition on a small
float64 problem; a disagreement stops the script.

Exits 0 with a message when jax or a GPU backend is missing (--device cpu runs the sweep on JAX's
CPU backend, only to check the script). Needs no network access. XLA preallocates 75 % of the GPU
(XLA_PYTHON_CLIENT_MEM_FRACTION changes it).
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import score_torch as score  # noqa: E402  (standard-library parts only; torch is imported in its main)

LIBRARY = "jax"
VARIANTS = {"gmm": ["jit", "grad"], "empirical": ["jit", "chunked"]}
LOG_2PI = math.log(2 * math.pi)
INV_2S2 = 1.0 / (2 * score.SIGMA * score.SIGMA)


def add_args(p):
    p.add_argument("--device", default="gpu", choices=["gpu", "cpu"],
                   help="gpu (default); cpu only checks that the script runs (timings not comparable)")


def build(jax, jnp):
    """The jitted functions, closed over jax and jnp."""

    def constants(mu, var, logw, d):
        a, s = 1.0, score.SIGMA * score.SIGMA
        c = a * a * var + s
        return a * mu, c, logw - 0.5 * d * (LOG_2PI + jnp.log(c))

    def log_terms(x, mu_a, c, lognorm):
        diff = x[:, None, :] - mu_a[None]                    # (n, K, d)
        return diff, lognorm - 0.5 * jnp.sum(diff * diff, -1) / c

    def gmm_block(x, mu_a, c, lognorm):
        diff, r = log_terms(x, mu_a, c, lognorm)
        logp = jax.nn.logsumexp(r, axis=1)
        gamma = jax.nn.softmax(r, axis=1)
        return -jnp.einsum("nk,nkd->nd", gamma / c, diff), logp

    def gmm_block_grad(x, mu_a, c, lognorm):
        def total(x):
            lp = jax.nn.logsumexp(log_terms(x, mu_a, c, lognorm)[1], axis=1)
            return jnp.sum(lp), lp
        (_, logp), grad = jax.value_and_grad(total, has_aux=True)(x)
        return grad, logp

    def gmm(block, chunks):
        def f(x, mu, var, logw):
            n, d = x.shape
            mu_a, c, lognorm = constants(mu, var, logw, d)
            if chunks == 1:
                return block(x, mu_a, c, lognorm)
            sc, lp = jax.lax.map(lambda xb: block(xb, mu_a, c, lognorm), x.reshape(chunks, n // chunks, d))
            return sc.reshape(n, d), lp.reshape(n)
        return jax.jit(f)

    def sq_dist(x, y):
        return jnp.maximum(jnp.sum(x * x, 1)[:, None] - 2 * (x @ y.T) + jnp.sum(y * y, 1)[None, :], 0)

    def empirical_full(x, y):
        return jax.nn.softmax(-sq_dist(x, y) * INV_2S2, axis=1) @ y

    def empirical_chunked(chunks):
        def f(x, y):
            n, d = x.shape
            ys = y.reshape(chunks, y.shape[0] // chunks, d)

            def step(carry, yc):
                run_max, run_sum, acc = carry
                logits = -sq_dist(x, yc) * INV_2S2
                new_max = jnp.maximum(run_max, jnp.max(logits, 1, keepdims=True))
                scale = jnp.exp(run_max - new_max)
                pc = jnp.exp(logits - new_max)
                return (new_max, run_sum * scale + jnp.sum(pc, 1, keepdims=True), acc * scale + pc @ yc), None

            init = (jnp.full((n, 1), -jnp.inf, x.dtype), jnp.zeros((n, 1), x.dtype), jnp.zeros((n, d), x.dtype))
            (_, run_sum, acc), _ = jax.lax.scan(step, init, ys)
            return acc / run_sum
        return jax.jit(f)

    return {
        "gmm": lambda variant, chunks: gmm(gmm_block_grad if variant == "grad" else gmm_block, chunks),
        "empirical_full": jax.jit(empirical_full),
        "empirical_chunked": empirical_chunked,
    }


def self_check(jax, jnp, fns, dev):
    """Both GMM variants (chunked) against the definition, both denoisers against the definition,
    on a small float64 problem."""
    with jax.default_device(dev):
        k1, k2, k3, k4, k5 = jax.random.split(jax.random.PRNGKey(7), 5)
        n, k, d, m = 12, 5, 7, 40
        x = 3 * jax.random.normal(k1, (n, d), jnp.float64)
        mu = 3 * jax.random.normal(k2, (k, d), jnp.float64)
        var = 0.5 + 1.5 * jax.random.uniform(k3, (k,), jnp.float64)
        logw = jax.nn.log_softmax(jax.random.uniform(k4, (k,), jnp.float64))
        c = var + score.SIGMA ** 2
        comp = logw[None] - 0.5 * d * jnp.log(2 * math.pi * c)[None] \
            - 0.5 * jnp.sum((x[:, None, :] - mu[None]) ** 2, -1) / c[None]
        ref_logp = jax.nn.logsumexp(comp, axis=1)
        gamma = jnp.exp(comp - ref_logp[:, None])
        ref_score = -jnp.sum(gamma[:, :, None] * (x[:, None, :] - mu[None]) / c[None, :, None], 1)
        for variant in VARIANTS["gmm"]:
            sc, lp = fns["gmm"](variant, 3)(x, mu, var, logw)
            for what, got, want in (("log p", lp, ref_logp), ("score", sc, ref_score)):
                err = float(jnp.max(jnp.abs(got - want)))
                if not err <= 1e-9 * (1 + float(jnp.max(jnp.abs(want)))):
                    raise AssertionError("self-check: gmm %s %s differs from the definition by %g" % (variant, what, err))
        y = jax.random.normal(k5, (m, d), jnp.float64)
        w = jax.nn.softmax(-jnp.sum((x[:, None, :] - y[None]) ** 2, -1) * INV_2S2, axis=1)
        ref = w @ y
        for name, got in (("jit", fns["empirical_full"](x, y)), ("chunked", fns["empirical_chunked"](5)(x, y))):
            err = float(jnp.max(jnp.abs(got - ref)))
            if not err <= 1e-9:
                raise AssertionError("self-check: empirical %s differs from the definition by %g" % (name, err))


def main():
    p = score.parse_args(VARIANTS, VARIANTS,
                         "Time JAX on the problems of scorekit's BenchmarkGMMScoreCUDA and "
                         "BenchmarkEmpiricalScoreCUDA.", add_args)
    args = score.finish_args(p, p.parse_args(), VARIANTS, VARIANTS)
    jax, jnp, dev = common.import_jax(LIBRARY, args.device, [
        ("jax_default_matmul_precision", "tensorfloat32" if args.tf32 else "highest")])

    fns = build(jax, jnp)
    self_check(jax, jnp, fns, dev)
    meta = {
        "library": LIBRARY, "version": jax.__version__, "device": dev.device_kind,
        "reps": args.reps, "warmup": args.warmup, "tf32": args.tf32, "budget_gib": args.budget_gib,
        "sigma": score.SIGMA,
        "timing": "host clock around the jitted call + block_until_ready, median",
        "flops": "scorekit's counts: GMM (6d+6) per (row, component), empirical (5d+6) per (query, point)",
    }
    dtypes = {"f32": jnp.float32, "f64": jnp.float64}
    budget = int(args.budget_gib * (1 << 30))

    def timed(f, *inputs):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*inputs))  # compiles
        t1 = time.perf_counter()
        jax.block_until_ready(f(*inputs))
        first = time.perf_counter() - t1
        if first > args.max_call_s:
            raise common.TooSlow("one call takes %.1f s (--max-call-s %g; compiling took %.1f s)"
                                % (first, args.max_call_s, t1 - t0))
        for _ in range(args.warmup - 2):
            jax.block_until_ready(f(*inputs))
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = f(*inputs)
            jax.block_until_ready(out)
            times.append((time.perf_counter() - t0) * 1e3)
            del out
        return times

    rows = []

    def run(variant, op, dt, n, km, d, flops, chunks, f, *inputs):
        try:
            rows.append(score.result(LIBRARY, variant, op, dt, n, km, d, chunks, timed(f, *inputs), flops))
        except Exception as e:  # noqa: BLE001
            why = common.skip_reason(e, direct=(common.TooSlow, MemoryError))
            if why is None:
                raise
            rows.append(score.skipped(LIBRARY, variant, op, dt, n, km, d, why))
        finally:
            if hasattr(jax, "clear_caches"):
                jax.clear_caches()  # drop the executable (and the buffers it pins) of this shape

    with jax.default_device(dev):
        if "gmm" in args.ops:
            names = [v for v in VARIANTS["gmm"] if v in args.variants]
            for dt, n, k, d in score.gmm_problems(args) if names else ():
                dtype, size = dtypes[dt], score.BYTES[dt]
                flops = score.gmm_flops(n, k, d)
                need = size * (2 * n * d + n + 2 * k * d + 2 * k)
                if need > common.jax_free_bytes(dev):
                    for v in names:
                        rows.append(score.skipped(LIBRARY, v, "gmm", dt, n, k, d,
                                                  "out of memory: inputs and outputs need %.1f GiB" % (need / 2**30)))
                    continue
                k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(n * 1000003 + k * 1009 + d), 4)
                x = 3 * jax.random.normal(k1, (n, d), dtype)
                mu = 3 * jax.random.normal(k2, (k, d), dtype)
                var = 0.5 + 1.5 * jax.random.uniform(k3, (k,), dtype)
                logw = jax.nn.log_softmax(jnp.log(0.5 + jax.random.uniform(k4, (k,), dtype)))
                # the difference tensor and its square (the grad variant keeps one more for the
                # backward pass)
                chunks = score.equal_chunks(n, (3 * k * d + 4 * k) * size, budget)
                for variant in names:
                    run(variant, "gmm", dt, n, k, d, flops, chunks, fns["gmm"](variant, chunks), x, mu, var, logw)
                del x, mu, var, logw

        if "empirical" in args.ops:
            names = [v for v in VARIANTS["empirical"] if v in args.variants]
            for dt, n, m, d in score.empirical_problems(args) if names else ():
                dtype, size = dtypes[dt], score.BYTES[dt]
                flops = score.empirical_flops(n, m, d)
                need = size * (2 * n * d + m * d)
                if need > common.jax_free_bytes(dev):
                    for v in names:
                        rows.append(score.skipped(LIBRARY, v, "empirical", dt, n, m, d,
                                                  "out of memory: inputs and outputs need %.1f GiB" % (need / 2**30)))
                    continue
                k1, k2 = jax.random.split(jax.random.PRNGKey(n * 1000003 + m * 1009 + d))
                y = jax.random.normal(k1, (m, d), dtype)
                x = 1.2 * jax.random.normal(k2, (n, d), dtype)
                for variant in names:
                    if variant == "jit":
                        if 3 * n * m * size > common.jax_free_bytes(dev):
                            rows.append(score.skipped(LIBRARY, variant, "empirical", dt, n, m, d,
                                                      "out of memory: the N x M matrices need %.1f GiB"
                                                      % (3 * n * m * size / 2**30)))
                            continue
                        run(variant, "empirical", dt, n, m, d, flops, 1, fns["empirical_full"], x, y)
                    else:
                        chunks = score.equal_chunks(m, 3 * n * size, budget)
                        run(variant, "empirical", dt, n, m, d, flops, chunks, fns["empirical_chunked"](chunks), x, y)
                del x, y

    score.print_table(rows, "JAX %s on %s, matmul precision %s, median of %d reps after %d warm-up calls; "
                      "GFLOP/s by scorekit's FLOP counts" % (jax.__version__, dev.device_kind,
                                                             "tensorfloat32" if args.tf32 else "highest",
                                                             args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
