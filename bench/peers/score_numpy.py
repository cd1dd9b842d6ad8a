#!/usr/bin/env python3
"""Scores, denoisers and MALA chains in idiomatic NumPy: the CPU peer of BenchmarkCPUVsNumPy.

--op gmm (default): N rows of dimension d, a K-component mixture (isotropic, diagonal or full
covariance) at one noise level, outputs log p (N) and the score (N, d). NumPy's usual form expands
the quadratic forms into matrix products (BLAS GEMM) and normalises with a log-sum-exp:

    R     = cst − ½ (x² · invᵀ − 2 x · (μ ⊙ inv)ᵀ + Σ_j μ² inv)       (N, K)
    log p = logsumexp(R, axis 1)
    score = γ · (μ ⊙ inv) − x ⊙ (γ · inv),   γ = softmax(R)             (N, d)

(full covariance: the same on z = Uᵀ x and Uᵀ μ per component, then back with U).

--op empirical: the optimal denoiser of M data points for N queries at level σ,
D(x) = softmax_i(−‖x − y_i‖² / 2σ²) · Y, the distances expanded into a GEMM.

--op mala: --steps MALA steps of step size h on N chains targeting an isotropic K-component
mixture (no noise): proposal x + h ∇log p(x) + √(2h) ξ, the GMM evaluation above at the proposal,
Metropolis–Hastings acceptance with NumPy's default generator for ξ and the uniforms.

The setup (data, parameters) is not timed; each rep times the whole evaluation. A self-check
compares the first rows with a direct evaluation before timing (gmm: gmm_definition, the float64
definition that score_torch.py and score_jax.py check themselves against; empirical).

--op gmm --check-dir DIR [--a A --s S] times nothing: it evaluates a mixture stored as .npy files
in DIR with both forms and writes the results there (check_dir), so that bench/numpy_test.go can
compare them with scorekit's reference.

Prints one JSON object: {"seconds": median, "reps": n, "numpy": version, "blas": name, ...}.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np


def mixture(kind, k, d, rng):
    mu = rng.uniform(-4, 4, size=(k, d))
    w = rng.uniform(1, 3, size=k)
    w /= w.sum()
    if kind == "isotropic":
        lam = np.repeat(rng.uniform(0.2, 0.6, size=(k, 1)), d, axis=1)
        u = None
    elif kind == "diagonal":
        lam = rng.uniform(0.1, 0.4, size=(k, d))
        u = None
    else:
        lam = rng.uniform(0.1, 0.4, size=(k, d))
        u = np.stack([np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(k)])
    return w, mu, lam, u


def evaluate(x, w, mu, lam, u, a, s):
    """log p and score at every row of x for the mixture noised to (a, s)."""
    d = x.shape[1]
    c = a * a * lam + s  # (K, d)
    inv = 1.0 / c
    m = a * mu
    cst = np.log(w) - 0.5 * (d * np.log(2 * np.pi) + np.log(c).sum(axis=1))
    if u is None:
        r = cst - 0.5 * ((x * x) @ inv.T - 2.0 * (x @ (m * inv).T) + (m * m * inv).sum(axis=1))
        mx = r.max(axis=1, keepdims=True)
        p = np.exp(r - mx)
        ssum = p.sum(axis=1)
        logp = mx[:, 0] + np.log(ssum)
        g = p / ssum[:, None]
        score = g @ (m * inv) - x * (g @ inv)
        return logp, score
    # Full: per component, z = (x − m) U, q = Σ z² inv; gradient −U (z ⊙ inv).
    k = len(w)
    r = np.empty((x.shape[0], k))
    zs = []
    for j in range(k):
        z = (x - m[j]) @ u[j]
        r[:, j] = cst[j] - 0.5 * (z * z) @ inv[j]
        zs.append(z * inv[j])
    mx = r.max(axis=1, keepdims=True)
    p = np.exp(r - mx)
    ssum = p.sum(axis=1)
    logp = mx[:, 0] + np.log(ssum)
    g = p / ssum[:, None]
    score = np.zeros_like(x)
    for j in range(k):
        score -= g[:, j : j + 1] * (zs[j] @ u[j].T)
    return logp, score


def gmm_definition(x, logw, mu, var, a, s, u=None):
    """log p (N) and score (N, d) by the definition, in float64: the function of scorekit's
    GMMScore (ops.Reference, docs/math.md §1.1), one component at a time, nothing expanded.
    logw (K) are the log-weights (summing to one in exp), mu (K, d) the means, var the variances:
    (K) for an isotropic mixture, (K, d) per component and coordinate for a diagonal one (for a
    full one the eigenvalues, with u (K, d, d) holding the eigenvectors as columns). At noise
    (a, s):

        c_kj  = a² var_kj + s,   z_k = x − a μ_k   (full: U_kᵀ (x − a μ_k))
        r_k   = log w_k − ½ (d log 2π + Σ_j log c_kj + Σ_j z_kj² / c_kj)
        log p = logsumexp_k r_k,   γ_k = exp(r_k − log p)
        score = Σ_k γ_k g_k,   g_k = −z_k / c_k   (full: −U_k (z_k / c_k))

    The GPU peers (score_torch.py, score_jax.py) check every variant against this function before
    timing; bench/numpy_test.go checks it against the Go reference."""
    x = np.asarray(x, dtype=np.float64)
    logw, mu, var = (np.asarray(v, dtype=np.float64) for v in (logw, mu, var))
    n, d = x.shape
    k = len(logw)
    if var.ndim == 1:
        var = np.repeat(var[:, None], d, axis=1)
    r = np.empty((n, k))
    g = np.empty((k, n, d))
    for j in range(k):
        c = a * a * var[j] + s
        z = x - a * mu[j]
        if u is not None:
            z = z @ np.asarray(u[j], dtype=np.float64)
        r[:, j] = logw[j] - 0.5 * (d * np.log(2 * np.pi) + np.log(c).sum() + (z * z / c).sum(axis=1))
        g[j] = -z / c
        if u is not None:
            g[j] = g[j] @ np.asarray(u[j], dtype=np.float64).T
    mx = r.max(axis=1, keepdims=True)
    logp = mx[:, 0] + np.log(np.exp(r - mx).sum(axis=1))
    gamma = np.exp(r - logp[:, None])
    return logp, np.einsum("nk,knd->nd", gamma, g)


def empirical(x, y, sigma):
    """The denoiser of the data y at level sigma for every row of x."""
    r = (x @ y.T) * (1.0 / sigma**2) - 0.5 * (y * y).sum(axis=1) / sigma**2
    r -= r.max(axis=1, keepdims=True)
    p = np.exp(r)
    return (p @ y) / p.sum(axis=1, keepdims=True)


def empirical_direct(x, y, sigma):
    out = []
    for row in x:
        r = -((row - y) ** 2).sum(axis=1) / (2 * sigma**2)
        p = np.exp(r - r.max())
        out.append(p @ y / p.sum())
    return np.array(out)


def mala(x, w, mu, lam, h, steps, rng):
    """steps MALA steps from x; returns the final chains and the acceptance rate."""
    n, d = x.shape
    lp, sc = evaluate(x, w, mu, lam, None, 1.0, 0.0)
    accepted = 0
    for _ in range(steps):
        xp = x + h * sc + np.sqrt(2 * h) * rng.standard_normal((n, d))
        lpp, scp = evaluate(xp, w, mu, lam, None, 1.0, 0.0)
        fwd = xp - x - h * sc
        bwd = x - xp - h * scp
        log_a = lpp - lp - ((bwd * bwd).sum(axis=1) - (fwd * fwd).sum(axis=1)) / (4 * h)
        acc = np.log(rng.random(n)) < log_a
        x = np.where(acc[:, None], xp, x)
        lp = np.where(acc, lpp, lp)
        sc = np.where(acc[:, None], scp, sc)
        accepted += acc.sum()
    return x, accepted / (n * steps)


def blas_name():
    try:
        info = np.show_config(mode="dicts")
        return info["Build Dependencies"]["blas"]["name"]
    except Exception:  # NumPy < 1.25
        try:
            libs = np.__config__.get_info("blas_opt_info").get("libraries", [])
            name = ",".join(sorted(set(libs))) or "unknown"
            # Debian's NumPy links the libblas.so.3 alternative: name what it points to.
            real = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
            if name == "blas" and os.path.exists(real):
                name = os.path.basename(os.path.dirname(real)) or real
            return name
        except Exception:
            return "unknown"


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def check_dir(path, a, s):
    """Evaluates a mixture given as .npy files in path with both GMM forms, for a comparison with
    scorekit's reference (bench/numpy_test.go). Reads x (N, d), logw (K), mu (K, d), var (K or
    K × d) and, for a full mixture, u (K, d, d); writes logp_<form>.npy (N) and score_<form>.npy
    (N, d) for form = expanded (evaluate, the timed form) and definition (gmm_definition), all
    float64."""
    def load(name):
        f = os.path.join(path, name + ".npy")
        return np.load(f) if os.path.exists(f) else None

    x, logw, mu, var, u = (load(n) for n in ("x", "logw", "mu", "var", "u"))
    lam = var if var.ndim == 2 else np.repeat(var[:, None], x.shape[1], axis=1)
    forms = {
        "expanded": evaluate(x, np.exp(logw), mu, lam, u, a, s),
        "definition": gmm_definition(x, logw, mu, var, a, s, u),
    }
    for form, (logp, score) in forms.items():
        np.save(os.path.join(path, "logp_%s.npy" % form), np.ascontiguousarray(logp, dtype=np.float64))
        np.save(os.path.join(path, "score_%s.npy" % form), np.ascontiguousarray(score, dtype=np.float64))
    print(json.dumps({"checked": sorted(forms), "n": x.shape[0], "k": len(logw), "d": x.shape[1], "a": a, "s": s}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--op", choices=["gmm", "empirical", "mala"], default="gmm")
    ap.add_argument("--kind", choices=["isotropic", "diagonal", "full"], default="diagonal")
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--m", type=int, default=10000, help="data points (empirical)")
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--h", type=float, default=0.3, help="MALA step size")
    ap.add_argument("--steps", type=int, default=100, help="MALA steps per rep")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--check-dir", metavar="DIR",
                    help="gmm: evaluate the mixture in DIR instead of timing (see check_dir)")
    ap.add_argument("--a", type=float, help="--check-dir: the noise scale a (default 1)")
    ap.add_argument("--s", type=float, help="--check-dir: the noise variance s (default sigma^2)")
    args = ap.parse_args()
    if args.check_dir:
        if args.op != "gmm":
            ap.error("--check-dir works with --op gmm only")
        check_dir(args.check_dir, 1.0 if args.a is None else args.a, args.sigma**2 if args.s is None else args.s)
        return

    rng = np.random.default_rng(7)
    dt = np.dtype(args.dtype)
    tol = 1e-4 if args.dtype == "float32" else 1e-8
    extra = {}
    if args.op == "empirical":
        y = rng.standard_normal((args.m, args.d)).astype(dt)
        x = (1.2 * rng.standard_normal((args.n, args.d))).astype(dt)
        got = empirical(x[:16], y, args.sigma)
        want = empirical_direct(x[:16].astype(np.float64), y.astype(np.float64), args.sigma)
        err = np.max(np.abs(got - want)) / (1 + np.max(np.abs(want)))
        if not err < tol:
            raise SystemExit(f"self-check failed: denoiser error {err:.3g}")
        problem = f"empirical/N={args.n}/M={args.m}/d={args.d}/{args.dtype}"
        seconds = timed(lambda: empirical(x, y, args.sigma), args.warmup, args.reps)
        extra["self_check"] = {"denoiser": float(err)}
    elif args.op == "mala":
        w, mu, lam, _ = mixture("isotropic", args.k, args.d, rng)
        mu, lam = mu.astype(dt), lam.astype(dt)
        x0 = (3 * rng.standard_normal((args.n, args.d))).astype(dt)
        rates = []

        def run():
            _, rate = mala(x0, w, mu, lam, args.h, args.steps, rng)
            rates.append(rate)

        problem = f"mala/chains={args.n}/K={args.k}/d={args.d}/steps={args.steps}/{args.dtype}"
        seconds = timed(run, args.warmup, args.reps)
        extra["accept"] = float(np.mean(rates))
    else:
        w, mu, lam, u = mixture(args.kind, args.k, args.d, rng)
        x = rng.uniform(-5, 5, size=(args.n, args.d)).astype(dt)
        a, s = 1.0, args.sigma**2
        mu, lam = mu.astype(dt), lam.astype(dt)
        u = None if u is None else u.astype(dt)
        lp, sc = evaluate(x[:64], w, mu, lam, u, a, s)
        rlp, rsc = gmm_definition(x[:64], np.log(w), mu, lam, a, s, u)
        err_lp = np.max(np.abs(lp - rlp) / (1 + np.abs(rlp)))
        err_sc = np.max(np.abs(sc - rsc)) / (1 + np.max(np.abs(rsc)))
        if not (err_lp < tol and err_sc < tol):
            raise SystemExit(f"self-check failed: log p error {err_lp:.3g}, score error {err_sc:.3g}")
        problem = f"gmm/{args.kind}/N={args.n}/K={args.k}/d={args.d}/{args.dtype}"
        seconds = timed(lambda: evaluate(x, w, mu, lam, u, a, s), args.warmup, args.reps)
        extra["self_check"] = {"logp": float(err_lp), "score": float(err_sc)}
    print(json.dumps({
        "problem": problem,
        "seconds": seconds,
        "reps": args.reps,
        "numpy": np.__version__,
        "blas": blas_name(),
        "cpus": os.cpu_count(),
        **extra,
    }))


if __name__ == "__main__":
    main()
