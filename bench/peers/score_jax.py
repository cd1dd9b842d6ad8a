#!/usr/bin/env python3
"""JAX peer of scorekit's BenchmarkGMMScoreCUDA / BenchmarkEmpiricalScoreCUDA.

The problems, sweep, FLOP counts and table are those of score_torch.py (imported from it; torch
itself is not needed). What is timed, each under jax.jit with static shapes and dtype:

GMM score and log-density (VE noise sigma = 0.5), isotropic mixtures (c_k = a^2 v_k + s) and
diagonal ones (c_kj = a^2 v_kj + s, a variance per component and coordinate):
  jit      diff = x[:,None,:] - a*mu[None]; r = log-weights + log-normal (isotropic: quadratic
           form sum_j diff^2 / c_k; diagonal: sum_j diff_j g_j with g = diff / c); log p =
           jax.nn.logsumexp(r); responsibilities = jax.nn.softmax(r); score = -sum_k gamma_k
           diff_k / c_k. When the N x K x d tensors would not fit in --budget-gib the rows are
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

Before timing, every variant (chunked paths included) is checked on small float64 problems: the GMM
ones of both kinds against the NumPy definition (score_numpy.gmm_definition, checked against
scorekit's reference by bench/numpy_test.go), the denoisers against the definition; a
disagreement stops the script.

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
        """a mu_k, c = a^2 v + s ((K) isotropic, (K, d) diagonal) and the log-normalisers."""
        a, s = 1.0, score.SIGMA * score.SIGMA
        c = a * a * var + s
        logdet = d * jnp.log(c) if c.ndim == 1 else jnp.sum(jnp.log(c), -1)
        return a * mu, c, logw - 0.5 * (d * LOG_2PI + logdet)

    def log_terms(x, mu_a, c, lognorm):
        """Isotropic, c (K): the (n, K, d) difference and r (n, K)."""
        diff = x[:, None, :] - mu_a[None]                    # (n, K, d)
        return diff, lognorm - 0.5 * jnp.sum(diff * diff, -1) / c

    def log_terms_diag(x, mu_a, c, lognorm):
        """Diagonal, c (K, d): g = C_k^-1 (x - a mu_k) (n, K, d) and r (n, K)."""
        diff = x[:, None, :] - mu_a[None]                    # (n, K, d)
        g = diff / c                                         # per-coordinate precisions
        return g, lognorm - 0.5 * jnp.sum(diff * g, -1)

    def gmm_block(x, mu_a, c, lognorm):
        diff, r = log_terms(x, mu_a, c, lognorm)
        logp = jax.nn.logsumexp(r, axis=1)
        gamma = jax.nn.softmax(r, axis=1)
        return -jnp.einsum("nk,nkd->nd", gamma / c, diff), logp

    def gmm_block_diag(x, mu_a, c, lognorm):
        g, r = log_terms_diag(x, mu_a, c, lognorm)
        logp = jax.nn.logsumexp(r, axis=1)
        gamma = jax.nn.softmax(r, axis=1)
        return -jnp.einsum("nk,nkd->nd", gamma, g), logp

    def gmm_block_grad(terms):
        def block(x, mu_a, c, lognorm):
            def total(x):
                lp = jax.nn.logsumexp(terms(x, mu_a, c, lognorm)[1], axis=1)
                return jnp.sum(lp), lp
            (_, logp), grad = jax.value_and_grad(total, has_aux=True)(x)
            return grad, logp
        return block

    # The block of each (covariance, variant).
    blocks = {
        ("isotropic", "jit"): gmm_block, ("isotropic", "grad"): gmm_block_grad(log_terms),
        ("diagonal", "jit"): gmm_block_diag, ("diagonal", "grad"): gmm_block_grad(log_terms_diag),
    }

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
        "gmm": lambda kind, variant, chunks: gmm(blocks[kind, variant], chunks),
        "empirical_full": jax.jit(empirical_full),
        "empirical_chunked": empirical_chunked,
    }


def self_check(jax, jnp, fns, dev):
    """Both GMM variants of both covariances (in 3 row blocks) against the NumPy definition, both
    denoisers against the definition, on small float64 problems."""
    import numpy as np  # score.gmm_check_problems has skipped the peer when NumPy is missing

    with jax.default_device(dev):
        for kind, inputs, ref_logp, ref_score in score.gmm_check_problems(LIBRARY):
            x, mu, var, logw = (jnp.asarray(inputs[v], jnp.float64) for v in ("x", "mu", "var", "logw"))
            for variant in VARIANTS["gmm"]:
                sc, lp = fns["gmm"](kind, variant, 3)(x, mu, var, logw)
                score.check_close(LIBRARY, "gmm %s %s log p" % (kind, variant), np.asarray(lp), ref_logp)
                score.check_close(LIBRARY, "gmm %s %s score" % (kind, variant), np.asarray(sc), ref_score)
        k1, k5 = jax.random.split(jax.random.PRNGKey(7))
        n, d, m = score.GMM_CHECK_N, score.GMM_CHECK_D, 40
        x = 3 * jax.random.normal(k1, (n, d), jnp.float64)
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
        "flops": "scorekit's counts: GMM (6d+6) per (row, component), isotropic and diagonal; empirical (5d+6) "
                 "per (query, point)",
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

    def run(variant, op, dt, n, km, d, flops, chunks, f, *inputs, kind=None):
        try:
            rows.append(score.result(LIBRARY, variant, op, dt, n, km, d, chunks, timed(f, *inputs), flops, kind))
        except Exception as e:  # noqa: BLE001
            why = common.skip_reason(e, direct=(common.TooSlow, MemoryError))
            if why is None:
                raise
            rows.append(score.skipped(LIBRARY, variant, op, dt, n, km, d, why, kind))
        finally:
            if hasattr(jax, "clear_caches"):
                jax.clear_caches()  # drop the executable (and the buffers it pins) of this shape

    with jax.default_device(dev):
        if "gmm" in args.ops:
            names = [v for v in VARIANTS["gmm"] if v in args.variants]
            for dt, kind, n, k, d in score.gmm_problems(args) if names else ():
                dtype, size = dtypes[dt], score.BYTES[dt]
                flops = score.gmm_flops(n, k, d)
                need = size * (2 * n * d + n + 2 * k * d + 2 * k)
                if need > common.jax_free_bytes(dev):
                    for v in names:
                        rows.append(score.skipped(LIBRARY, v, "gmm", dt, n, k, d,
                                                  "out of memory: inputs and outputs need %.1f GiB" % (need / 2**30),
                                                  kind))
                    continue
                k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(n * 1000003 + k * 1009 + d), 4)
                x = 3 * jax.random.normal(k1, (n, d), dtype)
                mu = 3 * jax.random.normal(k2, (k, d), dtype)
                # the variances: one per component (isotropic) or per component and coordinate (diagonal)
                var_shape = (k,) if kind == "isotropic" else (k, d)
                var = 0.5 + 1.5 * jax.random.uniform(k3, var_shape, dtype)
                logw = jax.nn.log_softmax(jnp.log(0.5 + jax.random.uniform(k4, (k,), dtype)))
                # the difference tensor and its square (diagonal: and the scaled difference; the
                # grad variant keeps one more for the backward pass)
                per_row = ((4 if kind == "diagonal" else 3) * k * d + 4 * k) * size
                chunks = score.equal_chunks(n, per_row, budget)
                for variant in names:
                    run(variant, "gmm", dt, n, k, d, flops, chunks, fns["gmm"](kind, variant, chunks), x, mu, var, logw,
                        kind=kind)
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
