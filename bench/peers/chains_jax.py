#!/usr/bin/env python3
"""JAX peer of scorekit's fused-chain benchmarks BenchmarkChainsMALACUDA and BenchmarkChainsULDCUDA,
written the way BlackJAX runs many chains: a per-chain kernel under jax.vmap inside a
jax.lax.fori_loop over the steps, the whole run one jax.jit executable.

The problem, sweep, argument parsing and table are those of chains_torch.py (imported from it;
torch itself is not needed): S = 100 steps of MALA or ULD with h = 0.3 (ULD friction 1.5, unit
inverse mass) for N chains on a K = 4 isotropic Gaussian mixture in dimension d, chains started
from N(0, 3^2) rows. As in the Go benchmark, the state is carried from one timed run to the next
and MALA's log p and gradient are evaluated once before timing.

  logdensity(x)   log sum_k exp(log w_k + log N(x; mu_k, var_k I)) for one chain (jax.nn.logsumexp)
  MALA kernel     as blackjax.mcmc.mala: split the key; y = x + h grad + sqrt(2h) xi
                  (jax.random.normal); log p(y) and grad by jax.value_and_grad(logdensity);
                  log alpha = log p(y) - log p(x) + (|y - x - h grad(x)|^2 - |x - y - h grad(y)|^2)/(4h);
                  accept where log u < log alpha (jax.random.uniform), jnp.where
  ULD kernel      grad by jax.grad(logdensity); x' = x + cx v + cxg grad + l11 xi1,
                  v' = E v + cv grad + l21 xi1 + l22 xi2 (chains_torch.uld_coefficients)
  run             jax.vmap(kernel) over the chains inside jax.lax.fori_loop over the S steps; per
                  step the key is jax.random.fold_in(key, step), split into one key per chain
                  (BlackJAX's multi-chain idiom); jax.jit with the state buffers donated

Each repetition is the host clock around the jitted run and block_until_ready (one dispatch, tens
of microseconds, included); the table reports the median of --reps (>= 20) after --warmup runs
(the first compiles) as chain-steps/s = N x S / median seconds, the metric of the Go benchmarks.

    python3 chains_jax.py [--quick] [--json jax-chains.json] [--methods mala,uld] [--chains 1e5,1e6]

Before timing, the autodiff gradient is checked against the closed form on a small float64
problem, and the jitted run against the same kernel stepped from Python; a disagreement stops the
script. Exits 0 with a message when jax or a GPU backend is missing (--device cpu runs the sweep on
JAX's CPU backend, only to check the script: those timings compare with nothing). Needs no network
access. XLA preallocates 75 % of the GPU (XLA_PYTHON_CLIENT_MEM_FRACTION changes it).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chains_torch as chains  # noqa: E402  (standard-library parts only; torch is imported in its main)
import common  # noqa: E402
import mala_jax  # noqa: E402  (standard-library parts only; jax is imported in main)
import mala_torch as mala  # noqa: E402

LIBRARY = "jax"
VARIANTS = mala_jax.VARIANTS
add_args = mala_jax.add_args


def build(jax, jnp, method, logw, mu, var):
    """logdensity, the per-chain kernel, one multi-chain step and the jitted S-step run."""
    e, cv, cx, cxg, l11, l21, l22 = chains.uld_coefficients()
    logdensity = mala_jax.gmm_logdensity(jax, jnp, logw, mu, var)
    value_and_grad = jax.value_and_grad(logdensity)
    grad = jax.grad(logdensity)
    kernel = mala_jax.mala_kernel(jax, jnp, value_and_grad, chains.STEP_SIZE)

    def mala_kernel(key, state):
        x, logp, g, acc = kernel(key, *state)
        return (x, logp, g), acc

    def uld_kernel(key, state):
        x, v = state
        k1, k2 = jax.random.split(key)
        xi1 = jax.random.normal(k1, x.shape, x.dtype)
        xi2 = jax.random.normal(k2, x.shape, x.dtype)
        g = grad(x)
        return (x + cx * v + cxg * g + l11 * xi1, e * v + cv * g + l21 * xi1 + l22 * xi2), jnp.zeros((), bool)

    chains_kernel = jax.vmap(mala_kernel if method == "mala" else uld_kernel)

    def one_step(s, key, carry):
        state, accepted = carry
        n = state[0].shape[0]
        keys = jax.random.split(jax.random.fold_in(key, s), n)
        state, acc = chains_kernel(keys, state)
        return state, accepted + acc.astype(jnp.int32)

    def run(state, accepted, key):
        return jax.lax.fori_loop(0, chains.STEPS, lambda s, c: one_step(s, key, c), (state, accepted))

    def init(x0):
        if method == "mala":
            logp, g = jax.vmap(value_and_grad)(x0)
            return (x0, logp, g)
        return (x0, jnp.zeros_like(x0))

    return logdensity, jax.jit(one_step), jax.jit(run, donate_argnums=(0, 1)), jax.jit(init)


def self_check(jax, jnp, dev):
    """The autodiff gradient against the closed-form mixture score, and the jitted run against the
    same kernel stepped from Python (float64)."""
    with jax.default_device(dev):
        logw, mu, var = (jnp.asarray(v, jnp.float64) for v in mala.mixture(5, 99))
        for method in chains.METHODS:
            logdensity, one_step, run, init = build(jax, jnp, method, logw, mu, var)
            x = 3 * jax.random.normal(jax.random.PRNGKey(3), (7, 5), jnp.float64)
            mala_jax.check_gradient(jax, jnp, logdensity, logw, mu, var, x)
            key = jax.random.PRNGKey(11)
            carry = (init(x), jnp.zeros(7, jnp.int32))
            for s in range(chains.STEPS):
                carry = one_step(s, key, carry)
            state, accepted = run(init(x), jnp.zeros(7, jnp.int32), key)
            if not (jnp.allclose(state[0], carry[0][0], rtol=1e-12, atol=1e-12) and bool(jnp.all(accepted == carry[1]))):
                raise AssertionError("self-check: the jitted %s run differs from the same kernel stepped from Python" % method)
            if method == "mala" and not 0 < int(jnp.sum(accepted)) < 7 * chains.STEPS:
                raise AssertionError("self-check: MALA accepted %d of %d proposals" % (int(jnp.sum(accepted)),
                                                                                    7 * chains.STEPS))


def main():
    args = chains.parse_args(LIBRARY, VARIANTS, add_args)
    jax, jnp, dev = common.import_jax(LIBRARY, args.device)
    self_check(jax, jnp, dev)
    meta = {
        "library": LIBRARY, "version": jax.__version__, "device": dev.device_kind,
        "reps": args.reps, "warmup": args.warmup, "k": chains.K, "steps": chains.STEPS,
        "step_size": chains.STEP_SIZE, "friction": chains.FRICTION,
        "prng": str(getattr(jax.config, "jax_default_prng_impl", "threefry2x32")),
        "timing": "host clock around the jitted run of %d steps + block_until_ready (state carried from run "
                  "to run), median" % chains.STEPS,
    }
    dtypes = {"f32": jnp.float32, "f64": jnp.float64}

    rows = []
    with jax.default_device(dev):
        for method, dt, n, d in chains.problems(args):
            need = chains.state_bytes(dt, n, d)
            if need > common.jax_free_bytes(dev):
                rows.append(chains.skipped(LIBRARY, "jit", method, dt, n, d, "out of memory: needs %.1f GiB"
                                           % (need / 2**30)))
                continue
            dtype = dtypes[dt]
            logw, mu, var = (jnp.asarray(v, dtype) for v in mala.mixture(d, n * 1009 + d))
            _, _, run, init = build(jax, jnp, method, logw, mu, var)
            try:
                state = init(3 * jax.random.normal(jax.random.PRNGKey(n * 1009 + d), (n, d), dtype))
                accepted = jnp.zeros(n, jnp.int32)
                times, runs = [], 0
                for i in range(args.warmup + args.reps):
                    t0 = time.perf_counter()
                    state, accepted = run(state, accepted, jax.random.PRNGKey(i))  # the first call compiles
                    jax.block_until_ready((state, accepted))
                    elapsed = time.perf_counter() - t0
                    runs += 1
                    if i == args.warmup - 1 and elapsed > args.max_call_s:
                        raise common.TooSlow("one run takes %.1f s (--max-call-s %g)" % (elapsed, args.max_call_s))
                    if i >= args.warmup:
                        times.append(elapsed * 1e3)
                accept = None
                if method == "mala":
                    accept = float(jnp.mean(accepted.astype(jnp.float64))) / (runs * chains.STEPS)
                rows.append(chains.result(LIBRARY, "jit", method, dt, n, d, times, accept))
            except Exception as e:  # noqa: BLE001
                why = common.skip_reason(e, direct=(common.TooSlow, MemoryError))
                if why is None:
                    raise
                rows.append(chains.skipped(LIBRARY, "jit", method, dt, n, d, why))
            finally:
                state = accepted = None
                if hasattr(jax, "clear_caches"):
                    jax.clear_caches()  # drop the executable (and the buffers it pins) of this shape

    chains.print_table(rows, "JAX %s on %s, MALA and ULD (BlackJAX-style vmap kernels in lax.fori_loop), K = %d "
                       "isotropic mixture, %d steps per run, h = %g; median of %d runs after %d warm-up runs"
                       % (jax.__version__, dev.device_kind, chains.K, chains.STEPS, chains.STEP_SIZE, args.reps,
                          args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
