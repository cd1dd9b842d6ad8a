"""Diffrax peer of BenchmarkSDEGradient: the gradient of L = mean(y_T) through a reversible Heun
solve (diffrax.ReversibleHeun, fixed step T/steps, diffrax.VirtualBrownianTree with tolerance
h/16), on the problems of bench/sdegrad_test.go (sde_common.PROBLEMS: ou, gbm, gmm; T = 1;
steps 1e2, 1e3, 1e4). The drift is a diffrax.ODETerm, the diagonal diffusion a ControlTerm whose
vector field is a lineax.DiagonalLinearOperator (WeaklyDiagonalControlTerm on diffrax versions
without lineax).

Variants, the `adjoint` argument of diffrax.diffeqsolve (the gradient by jax.grad with respect to
the parameters and y0, the whole gradient under one jax.jit):
  checkpoint  RecursiveCheckpointAdjoint() (diffrax's default: binomial checkpointing,
              O(log steps) stored states, recomputation)
  stored      RecursiveCheckpointAdjoint(checkpoints=steps + 1): every state stored, no
              recomputation (plain backprop through the solve)
  backsolve   BacksolveAdjoint(): the continuous adjoint SDE solved backwards -- approximate
              (agrees with the discrete gradient up to the discretisation error)
  reversible  ReversibleAdjoint(), where this diffrax has it: states rebuilt by the algebraic
              inverse (scorekit's algorithm); a skipped row otherwise

Each row: the median time of one gradient (host clock around the jitted call and
block_until_ready, one dispatch included) over --reps after --warmup (the first compiles),
steps/s = paths x d x steps / median seconds, and memory: XLA's temp_size_in_bytes of the compiled
gradient (memory_analysis(), the scratch one call needs, arguments and outputs excluded); on a GPU
the JSON rows also carry the device's peak_bytes_in_use (a process-wide high-water mark).

Before timing, every variant's gradient is checked against central finite differences of the
diffrax solve on a small float64 problem of each family (3 paths, 40 steps; tolerance 1e-5, and
5e-2 for backsolve); a disagreement stops the script.

    python3 sde_diffrax.py [--device cpu] [--families ou] [--steps 1e2,1e3] [--json out.json]

Exits 0 with a message when JAX or diffrax is missing (pip install diffrax) or, for --device gpu
(the default), when JAX has no GPU backend.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sde_common  # noqa: E402

LIBRARY = "diffrax"
VARIANTS = ["checkpoint", "stored", "backsolve", "reversible"]
SEED = 3
CHECK_TOL = {"backsolve": 5e-2}


def import_diffrax(device):
    jax, jnp, dev = common.import_jax(LIBRARY, platform=device)
    try:
        import diffrax
    except ImportError as e:
        common.skip(LIBRARY, "diffrax is not installed (%s); pip install diffrax" % e)
    try:
        import lineax
    except ImportError:
        lineax = None
    return jax, jnp, dev, diffrax, lineax


def drift_diffusion(jnp, family):
    """f(t, y, theta), g(t, y, theta) of the family; theta is the flat parameter vector of
    sde_common.params_of."""
    prob = sde_common.PROBLEMS[family]
    d = prob["d"]
    if family == "ou":
        return (lambda t, y, p: p[0] * (p[1] - y)), (lambda t, y, p: jnp.broadcast_to(p[2], y.shape))
    if family == "gbm":
        return (lambda t, y, p: (p[0] - 0.5 * p[1] * p[1]) * y), (lambda t, y, p: p[1] * y)
    var = jnp.asarray(prob["vars"])
    k = var.shape[0]

    def f(t, y, p):
        means, logits = p[:k * d].reshape(k, d), p[k * d:]
        diff = means[None, :, :] - y[:, None, :]
        ell = logits[None, :] - jnp.sum(diff * diff, axis=-1) / (2 * var) - 0.5 * d * jnp.log(var)
        r = jnp.exp(ell - jnp.max(ell, axis=1, keepdims=True))
        r = r / jnp.sum(r, axis=1, keepdims=True)
        return jnp.sum(r[:, :, None] * diff / var[None, :, None], axis=1)
    return f, (lambda t, y, p: jnp.full_like(y, 2.0 ** 0.5))


def make_adjoint(diffrax, variant, steps):
    if variant == "checkpoint":
        return diffrax.RecursiveCheckpointAdjoint()
    if variant == "stored":
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=steps + 1)
    if variant == "backsolve":
        return diffrax.BacksolveAdjoint()
    if not hasattr(diffrax, "ReversibleAdjoint"):
        raise NotImplementedError("diffrax %s has no ReversibleAdjoint" % getattr(diffrax, "__version__", "?"))
    return diffrax.ReversibleAdjoint()


def loss_fn(jax, jnp, diffrax, lineax, family, steps, paths, dtype, variant):
    """L(theta, y0) of one solve (a fixed VirtualBrownianTree: key SEED)."""
    d = sde_common.PROBLEMS[family]["d"]
    h = sde_common.HORIZON / steps
    f, g = drift_diffusion(jnp, family)
    bm = diffrax.VirtualBrownianTree(0.0, sde_common.HORIZON, tol=h / 16,
                                     shape=jax.ShapeDtypeStruct((paths, d), dtype),
                                     key=jax.random.PRNGKey(SEED))
    if lineax is not None:
        noise = diffrax.ControlTerm(lambda t, y, p: lineax.DiagonalLinearOperator(g(t, y, p)), bm)
    else:
        noise = diffrax.WeaklyDiagonalControlTerm(g, bm)
    terms = diffrax.MultiTerm(diffrax.ODETerm(f), noise)
    adjoint = make_adjoint(diffrax, variant, steps)

    def loss(theta, y0):
        sol = diffrax.diffeqsolve(terms, diffrax.ReversibleHeun(), 0.0, sde_common.HORIZON, h, y0, args=theta,
                                  saveat=diffrax.SaveAt(t1=True), adjoint=adjoint, max_steps=steps + 8)
        return jnp.mean(sol.ys[-1])
    return loss


def problem(jnp, family, paths, dtype):
    d = sde_common.PROBLEMS[family]["d"]
    theta = jnp.asarray(sde_common.params_of(family), dtype=dtype)
    y0 = jnp.broadcast_to(jnp.asarray(sde_common.start_row(family), dtype=dtype), (paths, d))
    return theta, y0


def self_check(jax, jnp, diffrax, lineax, variants):
    """Each variant's jax.grad against central differences of the solve (float64, 3 paths, 40
    steps); variants this diffrax lacks are left out here and skipped rows later."""
    for family in sde_common.FAMILIES:
        theta, y0 = problem(jnp, family, 3, jnp.float64)
        y0 = y0 + 0.1 * jnp.arange(y0.size, dtype=jnp.float64).reshape(y0.shape) / y0.size
        plain = jax.jit(loss_fn(jax, jnp, diffrax, lineax, family, 40, 3, jnp.float64, "checkpoint"))
        fd_p, fd_x = [], []
        for i in range(theta.size):
            e = 1e-6 * max(1.0, abs(float(theta[i])))
            fd_p.append((float(plain(theta.at[i].add(e), y0)) - float(plain(theta.at[i].add(-e), y0))) / (2 * e))
        flat = y0.reshape(-1)
        for i in range(flat.size):
            fd_x.append((float(plain(theta, flat.at[i].add(1e-6).reshape(y0.shape))) -
                         float(plain(theta, flat.at[i].add(-1e-6).reshape(y0.shape)))) / 2e-6)
        for v in variants:
            try:
                grad = jax.jit(jax.grad(loss_fn(jax, jnp, diffrax, lineax, family, 40, 3, jnp.float64, v), argnums=(0, 1)))
            except NotImplementedError:
                continue
            gp, gx = grad(theta, y0)
            tol = CHECK_TOL.get(v, 1e-5)
            sde_common.check_close(LIBRARY, "%s/%s dL/dtheta" % (family, v), [float(x) for x in gp], fd_p, tol)
            sde_common.check_close(LIBRARY, "%s/%s dL/dx0" % (family, v), [float(x) for x in gx.reshape(-1)], fd_x, tol)


def main():
    args = sde_common.parse_args(LIBRARY, VARIANTS, "gpu")
    jax, jnp, dev, diffrax, lineax = import_diffrax(args.device)
    self_check(jax, jnp, diffrax, lineax, args.variants)
    dtypes = {"f32": jnp.float32, "f64": jnp.float64}
    gpu = args.device == "gpu"
    rows = []
    for family in args.families:
        paths = sde_common.PROBLEMS[family]["paths"]
        for dt in args.dtypes:
            theta, y0 = problem(jnp, family, paths, dtypes[dt])
            theta, y0 = jax.device_put(theta, dev), jax.device_put(y0, dev)
            for steps in sorted(args.steps):
                for v in args.variants:
                    try:
                        loss = loss_fn(jax, jnp, diffrax, lineax, family, steps, paths, dtypes[dt], v)
                        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
                        compiled = grad.lower(theta, y0).compile()
                        analysis = compiled.memory_analysis()
                        temp = getattr(analysis, "temp_size_in_bytes", None) if analysis is not None else None
                        for i in range(args.warmup):
                            t0 = time.perf_counter()
                            jax.block_until_ready(compiled(theta, y0))
                            if i == 0 and time.perf_counter() - t0 > args.max_call_s:
                                raise common.TooSlow("one gradient takes %.1f s (--max-call-s %g)"
                                                     % (time.perf_counter() - t0, args.max_call_s))
                        times = []
                        for _ in range(args.reps):
                            t0 = time.perf_counter()
                            jax.block_until_ready(compiled(theta, y0))
                            times.append((time.perf_counter() - t0) * 1e3)
                        row = sde_common.result(LIBRARY, v, family, dt, steps, times, temp,
                                                "gpu" if gpu else "cpu", "XLA temp_size_in_bytes of the compiled gradient")
                        stats = dev.memory_stats() if gpu and hasattr(dev, "memory_stats") else None
                        if stats and "peak_bytes_in_use" in stats:
                            row["device_peak_bytes_in_use"] = stats["peak_bytes_in_use"]
                        rows.append(row)
                    except NotImplementedError as e:
                        rows.append(sde_common.skipped(LIBRARY, v, family, dt, steps, e, "gpu" if gpu else "cpu"))
                    except Exception as e:  # noqa: BLE001
                        why = common.skip_reason(e)
                        if why is None:
                            raise
                        rows.append(sde_common.skipped(LIBRARY, v, family, dt, steps, why, "gpu" if gpu else "cpu"))
    version = getattr(diffrax, "__version__", "unknown")
    sde_common.print_table(rows, "diffrax %s (jax %s) on %s, ReversibleHeun + VirtualBrownianTree, terminal-mean loss; "
                           "median of %d gradients after %d warm-up gradients" % (
                               version, jax.__version__, dev.device_kind, args.reps, args.warmup))
    meta = {"library": LIBRARY, "version": version, "jax": jax.__version__, "device": dev.device_kind,
            "reps": args.reps, "warmup": args.warmup, "seed": SEED, "vbt_tol": "h/16",
            "timing": "host clock around the jitted gradient and block_until_ready, median"}
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
