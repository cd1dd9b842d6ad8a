#!/usr/bin/env python3
"""JAX peer of scorekit's BenchmarkMALACUDA, written the way BlackJAX's MALA kernel is.

The problem, sweep, argument parsing and table are those of mala_torch.py (imported from it; torch
itself is not needed): S = 20 steps of MALA with h = 0.3 for N chains on a K = 4 isotropic Gaussian
mixture in dimension d, chains started from N(0, 3^2) rows.

What is timed is one jax.jit-compiled run with static shapes and dtype:

  logdensity(x)   log sum_k exp(log w_k + log N(x; mu_k, var_k I)) for one chain (jax.nn.logsumexp)
  kernel          one chain's MALA step as in blackjax.mcmc.mala: split the key; proposal
                  y = x + h grad + sqrt(2h) xi (jax.random.normal); log p(y) and grad by
                  jax.value_and_grad(logdensity); log alpha = log p(y) - log p(x) + log q(x|y) -
                  log q(y|x), log q(b|a) = -|b - a - h grad(a)|^2 / (4h); accept where
                  log u < log alpha (jax.random.uniform); jax.lax.cond-free select (jnp.where)
  run             jax.vmap(kernel) over the chains inside jax.lax.fori_loop over the S steps;
                  per step the key is jax.random.fold_in(key, step), split into one key per chain
                  (BlackJAX's multi-chain idiom); the initial log p and gradient are one vmapped
                  value_and_grad before the loop

Each repetition is the host clock around the jitted run and block_until_ready (one dispatch, tens
of microseconds, included); the table reports the median of --reps (>= 20) after --warmup runs
(the first compiles) as chain-steps/s = N x S / median seconds, the metric of the Go benchmark.
The Go benchmark's time also includes what solvers.Langevin does around the steps (the copy of the
initial state, scratch allocation, a NaN scan of the final state on the host); this one times the
steps only.

    python3 mala_jax.py [--quick] [--json jax-mala.json] [--chains 1e5,1e6] [--dims 2,16]

Before timing, the gradient of the log-density is checked against the closed form on a small
float64 problem, and the jitted run against a step-by-step Python loop of the same kernel;
a disagreement stops the script.

Exits 0 with a message when jax or a GPU backend is missing (--device cpu runs the sweep on JAX's
CPU backend, only to check the script: those timings compare with nothing). Needs no network
access. XLA preallocates 75 % of the GPU (XLA_PYTHON_CLIENT_MEM_FRACTION changes it).
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import mala_torch as mala  # noqa: E402  (standard-library parts only; torch is imported in its main)

LIBRARY = "jax"
VARIANTS = ["jit"]


def add_args(p):
    common.add_device_arg(p, "gpu")


def gmm_logdensity(jax, jnp, logw, mu, var):
    """log sum_k exp(log w_k + log N(x; mu_k, var_k I)) of one chain's x (d), for the mixture with
    log-weights logw (K), means mu (K x d) and variances var (K)."""
    d = mu.shape[1]
    lognorm = logw - 0.5 * d * jnp.log(2 * math.pi * var)

    def logdensity(x):
        diff = x[None, :] - mu                                        # (K, d)
        return jax.nn.logsumexp(lognorm - 0.5 * jnp.sum(diff * diff, -1) / var)

    return logdensity


def mala_kernel(jax, jnp, value_and_grad, h):
    """One chain's MALA step as in blackjax.mcmc.mala, kernel(key, x, logp, grad) -> (x', logp',
    grad', accepted), with value_and_grad(y) -> (log p(y), grad log p(y)) and step size h."""

    def kernel(key, x, logp, grad):
        k_noise, k_accept = jax.random.split(key)
        xi = jax.random.normal(k_noise, x.shape, x.dtype)
        y = x + h * grad + jnp.sqrt(2 * h).astype(x.dtype) * xi
        logp_y, grad_y = value_and_grad(y)
        fwd = jnp.sum((y - x - h * grad) ** 2)
        bwd = jnp.sum((x - y - h * grad_y) ** 2)
        log_alpha = logp_y - logp + (fwd - bwd) / (4 * h)
        u = jax.random.uniform(k_accept, (), x.dtype)
        acc = jnp.log(u) < log_alpha
        return jnp.where(acc, y, x), jnp.where(acc, logp_y, logp), jnp.where(acc, grad_y, grad), acc

    return kernel


def check_gradient(jax, jnp, logdensity, logw, mu, var, x):
    """The autodiff gradient of logdensity at the rows of x against the closed-form mixture score
    -sum_k softmax(r)_k (x - mu_k) / var_k; AssertionError on a disagreement."""
    grad = jax.vmap(jax.grad(logdensity))(x)
    diff = x[:, None, :] - mu[None]
    r = logw - 0.5 * x.shape[1] * jnp.log(2 * math.pi * var) - 0.5 * jnp.sum(diff ** 2, -1) / var
    gamma = jax.nn.softmax(r, axis=1) / var
    want = -jnp.sum(gamma[:, :, None] * diff, 1)
    if not float(jnp.max(jnp.abs(grad - want))) <= 1e-10 * (1 + float(jnp.max(jnp.abs(want)))):
        raise AssertionError("self-check: the gradient of the GMM log-density differs from its closed form")


def build(jax, jnp, logw, mu, var):
    """logdensity, the per-chain kernel and the jitted multi-chain run for one mixture."""
    logdensity = gmm_logdensity(jax, jnp, logw, mu, var)
    value_and_grad = jax.value_and_grad(logdensity)
    chains_kernel = jax.vmap(mala_kernel(jax, jnp, value_and_grad, mala.STEP_SIZE))

    def one_step(s, key, state):
        x, logp, grad, accepted = state
        keys = jax.random.split(jax.random.fold_in(key, s), x.shape[0])
        x, logp, grad, acc = chains_kernel(keys, x, logp, grad)
        return x, logp, grad, accepted + acc.astype(jnp.int32)

    def run(x0, key):
        logp, grad = jax.vmap(value_and_grad)(x0)
        init = (x0, logp, grad, jnp.zeros(x0.shape[0], jnp.int32))
        x, _, _, accepted = jax.lax.fori_loop(0, mala.STEPS, lambda s, st: one_step(s, key, st), init)
        return x, accepted

    return logdensity, jax.jit(one_step), jax.jit(run)


def self_check(jax, jnp, dev):
    """The autodiff gradient against the closed-form mixture score, and the jitted run against the
    same kernel stepped from Python (float64)."""
    with jax.default_device(dev):
        logw, mu, var = (jnp.asarray(v, jnp.float64) for v in mala.mixture(5, 99))
        logdensity, one_step, run = build(jax, jnp, logw, mu, var)
        x = 3 * jax.random.normal(jax.random.PRNGKey(3), (7, 5), jnp.float64)
        check_gradient(jax, jnp, logdensity, logw, mu, var, x)
        key = jax.random.PRNGKey(11)
        xs, accepted = run(x, key)
        lp, g = jax.vmap(jax.value_and_grad(logdensity))(x)
        state = (x, lp, g, jnp.zeros(7, jnp.int32))
        for s in range(mala.STEPS):
            state = one_step(s, key, state)
        if not (jnp.allclose(xs, state[0], rtol=1e-12, atol=1e-12) and bool(jnp.all(accepted == state[3]))):
            raise AssertionError("self-check: the jitted MALA run differs from the same kernel stepped from Python")
        if not 0 < int(jnp.sum(accepted)) < 7 * mala.STEPS:
            raise AssertionError("self-check: MALA accepted %d of %d proposals" % (int(jnp.sum(accepted)), 7 * mala.STEPS))


def main():
    args = mala.parse_args(LIBRARY, VARIANTS, add_args)
    jax, jnp, dev = common.import_jax(LIBRARY, args.device)
    self_check(jax, jnp, dev)
    meta = {
        "library": LIBRARY, "version": jax.__version__, "device": dev.device_kind,
        "reps": args.reps, "warmup": args.warmup, "k": mala.K, "steps": mala.STEPS, "step_size": mala.STEP_SIZE,
        "prng": str(getattr(jax.config, "jax_default_prng_impl", "threefry2x32")),
        "timing": "host clock around the jitted run (initial evaluation + %d steps) + block_until_ready, median"
                  % mala.STEPS,
    }
    dtypes = {"f32": jnp.float32, "f64": jnp.float64}

    def timed(run, x0):
        times, accepted = [], None
        for i in range(args.warmup):
            t0 = time.perf_counter()
            jax.block_until_ready(run(x0, jax.random.PRNGKey(i)))  # the first compiles
            if i == args.warmup - 1 and time.perf_counter() - t0 > args.max_call_s:
                raise common.TooSlow("one run takes %.1f s (--max-call-s %g)" % (time.perf_counter() - t0,
                                                                                args.max_call_s))
        for i in range(args.reps):
            key = jax.random.PRNGKey(1000 + i)
            t0 = time.perf_counter()
            out = run(x0, key)
            jax.block_until_ready(out)
            times.append((time.perf_counter() - t0) * 1e3)
            accepted = out[1]
            del out
        return times, float(jnp.mean(accepted.astype(jnp.float64))) / mala.STEPS

    rows = []
    with jax.default_device(dev):
        for dt, n, d in mala.problems(args):
            need = mala.state_bytes(dt, n, d)
            if need > common.jax_free_bytes(dev):
                rows.append(mala.skipped(LIBRARY, "jit", dt, n, d, "out of memory: needs %.1f GiB" % (need / 2**30)))
                continue
            dtype = dtypes[dt]
            logw, mu, var = (jnp.asarray(v, dtype) for v in mala.mixture(d, n * 1009 + d))
            _, _, run = build(jax, jnp, logw, mu, var)
            x0 = 3 * jax.random.normal(jax.random.PRNGKey(n * 1009 + d), (n, d), dtype)
            try:
                times, accept = timed(run, x0)
                rows.append(mala.result(LIBRARY, "jit", dt, n, d, times, accept))
            except Exception as e:  # noqa: BLE001
                why = common.skip_reason(e, direct=(common.TooSlow, MemoryError))
                if why is None:
                    raise
                rows.append(mala.skipped(LIBRARY, "jit", dt, n, d, why))
            finally:
                del x0
                if hasattr(jax, "clear_caches"):
                    jax.clear_caches()  # drop the executable (and the buffers it pins) of this shape

    mala.print_table(rows, "JAX %s on %s, MALA (BlackJAX-style vmap kernel in lax.fori_loop), K = %d isotropic "
                     "mixture, %d steps, h = %g; median of %d runs after %d warm-up runs"
                     % (jax.__version__, dev.device_kind, mala.K, mala.STEPS, mala.STEP_SIZE, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
