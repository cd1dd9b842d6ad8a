"""The gradient through a reversible Heun solve in NumPy: scorekit's algorithm (docs/math.md §4.7,
§4.8) written out with vectorised NumPy, for the problems of bench/sdegrad_test.go
(sde_common.PROBLEMS). It is the CPU reference the other SDE peers' problems are defined by, and
TestNumPyPeerSDEGradientMatchesGo (go test ./bench/ -run SDEGradient) checks it against
solvers.ReversibleHeun.Adjoint on the Go side's own Brownian increments.

Step k, (y, z) -> (y', z'), diagonal noise, f0 = f(t_k, z), f1 = f(t_{k+1}, z'):

    z' = 2y - z + f0 h + g0 dW
    y' = y + (f0 + f1) h/2 + (g0 + g1) dW/2

The gradient of L = mean(y_N): the adjoint walks back k = N-1 .. 0, rebuilding (y_k, z_k) with the
algebraic inverse, pulling the cotangents (a_y, a_z) back through both halves of the step (the
vector-Jacobian products of f and g of each family below). Memory: O(paths x d), whatever the steps.

Modes:

    python3 sde_numpy.py [--families ou,gbm,gmm] [--steps 1e2,1e3] [--json numpy-sde.json]
        times one gradient (increments drawn with NumPy's generator, outside the timed region) on
        the CPU, with tracemalloc's peak of the gradient; first checks the adjoint against central
        finite differences of the solve on a small float64 problem.
    python3 sde_numpy.py --check-dir DIR --family ou
        reads the Brownian increments dw.npy (steps, paths, d) from DIR, computes the gradient of
        the family's problem as sde_common.PROBLEMS defines it (parameters, paths, d, x0, T) and
        writes loss.npy, grad_params.npy, grad_x0.npy and y.npy (the final y) there; times nothing.

Exits 0 with a message when NumPy is missing.
"""

import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sde_common  # noqa: E402

LIBRARY = "numpy"
VARIANTS = ["adjoint"]


def family(name, d, params, np):
    """(f, g, vjp) of the family at theta = params. f(x), g(x) take (n, d) states; vjp(x, vf, vg)
    returns (dx, dp): dx = vf df/dx + vg dg/dx (n, d) and dp = sum over rows of vf df/dtheta +
    vg dg/dtheta (P)."""
    if name == "ou":
        theta, mu, sigma = params

        def f(x):
            return theta * (mu - x)

        def g(x):
            return np.full_like(x, sigma)

        def vjp(x, vf, vg):
            return -theta * vf, np.array([np.sum(vf * (mu - x)), theta * np.sum(vf), np.sum(vg)])
        return f, g, vjp
    if name == "gbm":
        mu, sigma = params
        slope = mu - 0.5 * sigma * sigma

        def f(x):
            return slope * x

        def g(x):
            return sigma * x

        def vjp(x, vf, vg):
            return slope * vf + sigma * vg, np.array([np.sum(vf * x), np.sum((vg - sigma * vf) * x)])
        return f, g, vjp
    if name == "gmm":
        prob = sde_common.PROBLEMS["gmm"]
        var = np.asarray(prob["vars"], dtype=np.float64)
        k = len(var)
        p = np.asarray(params, dtype=np.float64)
        means, logits = p[:k * d].reshape(k, d), p[k * d:]
        lognorm = -0.5 * d * np.log(var)

        def resp(x):
            diff = means[None, :, :] - x[:, None, :]  # (n, K, d)
            ell = logits[None, :] - np.sum(diff * diff, axis=2) / (2 * var[None, :]) + lognorm[None, :]
            ell -= ell.max(axis=1, keepdims=True)
            r = np.exp(ell)
            r /= r.sum(axis=1, keepdims=True)
            return r, diff / var[None, :, None]  # r (n, K), e_k = (mu_k - x)/v_k (n, K, d)

        def f(x):
            r, e = resp(x)
            return np.einsum("nk,nkd->nd", r, e)

        def g(x):
            return np.full_like(x, np.sqrt(2.0))

        def vjp(x, vf, vg):
            r, e = resp(x)
            c = np.einsum("nd,nkd->nk", vf, e)
            beta = r * (c - np.sum(r * c, axis=1, keepdims=True))
            rv = r / var[None, :]
            dx = np.einsum("nk,nkd->nd", beta, e) - np.sum(rv, axis=1, keepdims=True) * vf
            dmu = -np.einsum("nk,nkd->kd", beta, e) + np.einsum("nk,nd->kd", rv, vf)
            return dx, np.concatenate([dmu.ravel(), beta.sum(axis=0)])
        return f, g, vjp
    raise ValueError("unknown family %r" % name)


def solve(fgv, x0, dw, h):
    """The forward solve: (y_N, z_N) from x0 (n, d) with the increments dw (steps, n, d)."""
    f, g, _ = fgv
    y, z = x0.copy(), x0.copy()
    for k in range(dw.shape[0]):
        f0, g0 = f(z), g(z)
        z = 2 * y - z + f0 * h + g0 * dw[k]
        y = y + 0.5 * (f0 + f(z)) * h + 0.5 * (g0 + g(z)) * dw[k]
    return y, z


def gradient(fgv, x0, dw, h):
    """L = mean(y_N), dL/dtheta, dL/dx0 and y_N: the forward solve, then the adjoint with the
    states rebuilt by the inverse steps (nothing stored per step)."""
    f, g, vjp = fgv
    y, z = solve(fgv, x0, dw, h)
    y_final = y.copy()
    ay = np.full_like(y, 1.0 / y.size)
    az = np.zeros_like(y)
    dp = None
    for k in range(dw.shape[0] - 1, -1, -1):
        w = dw[k]
        # First half at z_{k+1}: the cotangent of z_{k+1} through f1, g1.
        dx, p1 = vjp(z, 0.5 * h * ay, 0.5 * ay * w)
        azt = az + dx
        # The inverse step.
        f1, g1 = f(z), g(z)
        z = 2 * y - z - f1 * h - g1 * w
        f0, g0 = f(z), g(z)
        y = y - 0.5 * (f0 + f1) * h - 0.5 * (g0 + g1) * w
        # Second half at z_k: through f0, g0.
        dx, p0 = vjp(z, 0.5 * h * ay + h * azt, (0.5 * ay + azt) * w)
        ay = ay + 2 * azt
        az = dx - azt
        dp = p1 + p0 if dp is None else dp + p1 + p0
    return float(y_final.mean()), dp, ay + az, y_final


def self_check(np):
    """The adjoint against central differences of the solve (fixed increments) for every family on
    a small float64 problem: 3 paths, 40 steps."""
    rng = np.random.default_rng(11)
    for name in sde_common.FAMILIES:
        d = sde_common.PROBLEMS[name]["d"]
        n, steps = 3, 40
        h = sde_common.HORIZON / steps
        p0 = np.asarray(sde_common.params_of(name), dtype=np.float64)
        x0 = np.tile(np.asarray(sde_common.start_row(name)), (n, 1)) + 0.1 * rng.standard_normal((n, d))
        dw = np.sqrt(h) * rng.standard_normal((steps, n, d))
        _, dp, dx0, _ = gradient(family(name, d, p0, np), x0, dw, h)

        def loss(p, x):
            return float(solve(family(name, d, p, np), x, dw, h)[0].mean())
        fd_p, fd_x = [], []
        for i in range(len(p0)):
            e = 1e-6 * max(1.0, abs(p0[i]))
            pp, pm = p0.copy(), p0.copy()
            pp[i] += e
            pm[i] -= e
            fd_p.append((loss(pp, x0) - loss(pm, x0)) / (2 * e))
        for i in range(x0.size):
            e = 1e-6 * max(1.0, abs(x0.flat[i]))
            xp, xm = x0.copy(), x0.copy()
            xp.flat[i] += e
            xm.flat[i] -= e
            fd_x.append((loss(p0, xp) - loss(p0, xm)) / (2 * e))
        sde_common.check_close(LIBRARY, name + " dL/dtheta", list(dp), fd_p, 1e-6)
        sde_common.check_close(LIBRARY, name + " dL/dx0", list(dx0.ravel()), fd_x, 1e-6)


def check_dir(args):
    """--check-dir: the gradient of the problem args.family of sde_common.PROBLEMS (its parameters,
    paths, d and x0; T = sde_common.HORIZON) on the increments stored in args.check_dir."""
    join = lambda name: os.path.join(args.check_dir, name)  # noqa: E731
    prob = sde_common.PROBLEMS[args.family]
    n, d = prob["paths"], prob["d"]
    dw = np.load(join("dw.npy"))
    if dw.shape[1:] != (n, d):
        sys.exit("%s: dw.npy has shape %s, want (steps, %d, %d)" % (LIBRARY, dw.shape, n, d))
    x0 = np.tile(np.asarray(sde_common.start_row(args.family), dtype=np.float64), (n, 1))
    params = np.asarray(sde_common.params_of(args.family), dtype=np.float64)
    h = sde_common.HORIZON / dw.shape[0]
    loss, dp, dx0, y = gradient(family(args.family, d, params, np), x0, dw, h)
    np.save(join("loss.npy"), np.array([loss]))
    np.save(join("grad_params.npy"), dp)
    np.save(join("grad_x0.npy"), dx0)
    np.save(join("y.npy"), y)


def time_gradients(args):
    self_check(np)
    rows = []
    for name in args.families:
        prob = sde_common.PROBLEMS[name]
        n, d = prob["paths"], prob["d"]
        for dt in args.dtypes:
            dtype = {"f32": np.float32, "f64": np.float64}[dt]
            p = np.asarray(sde_common.params_of(name), dtype=dtype)
            x0 = np.tile(np.asarray(sde_common.start_row(name), dtype=dtype), (n, 1))
            for steps in args.steps:
                h = sde_common.HORIZON / steps
                dw = (np.sqrt(h) * np.random.default_rng(steps).standard_normal((steps, n, d))).astype(dtype)
                fgv = family(name, d, p, np)
                try:
                    for i in range(args.warmup):
                        t0 = time.perf_counter()
                        gradient(fgv, x0, dw, h)
                        if i == 0 and time.perf_counter() - t0 > args.max_call_s:
                            raise common.TooSlow("one gradient takes %.1f s (--max-call-s %g)"
                                                 % (time.perf_counter() - t0, args.max_call_s))
                    times = []
                    for _ in range(args.reps):
                        t0 = time.perf_counter()
                        gradient(fgv, x0, dw, h)
                        times.append((time.perf_counter() - t0) * 1e3)
                except common.TooSlow as e:
                    rows.append(sde_common.skipped(LIBRARY, "adjoint", name, dt, steps, e))
                    continue
                tracemalloc.start()
                gradient(fgv, x0, dw, h)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                rows.append(sde_common.result(LIBRARY, "adjoint", name, dt, steps, times, peak,
                                              memory="tracemalloc peak of one gradient (increments excluded)"))
    sde_common.print_table(rows, "NumPy %s on the CPU, reversible Heun + adjoint, terminal-mean loss; median of %d "
                           "gradients after %d warm-up gradients" % (np.__version__, args.reps, args.warmup))
    meta = {"library": LIBRARY, "version": np.__version__, "device": "cpu", "reps": args.reps,
            "warmup": args.warmup, "timing": "host clock around one gradient (forward solve + adjoint), median"}
    common.write_json(args.json, meta, rows)


def main():
    global np

    def extra(p):
        p.add_argument("--check-dir", metavar="DIR", help="compute the gradient of the problem stored in DIR; time nothing")
        p.add_argument("--family", default="ou", choices=sde_common.FAMILIES, help="the family of --check-dir")
    args = sde_common.parse_args(LIBRARY, VARIANTS, None, extra)
    try:
        import numpy
    except ImportError as e:
        common.skip(LIBRARY, "NumPy is not installed (%s)" % e)
    np = numpy
    if args.check_dir:
        check_dir(args)
        return
    time_gradients(args)


np = None

if __name__ == "__main__":
    main()
