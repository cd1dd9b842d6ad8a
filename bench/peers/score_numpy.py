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
compares the first rows with a direct evaluation before timing (gmm, empirical).

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


def direct(x, w, mu, lam, u, a, s):
    """The per-component form (no expansion), for the self-check."""
    d = x.shape[1]
    out_lp, out_sc = [], []
    for row in x:
        rs, gs = [], []
        for j in range(len(w)):
            c = a * a * lam[j] + s
            e = row - a * mu[j]
            if u is None:
                q = (e * e / c).sum()
                g = -e / c
            else:
                z = u[j].T @ e
                q = (z * z / c).sum()
                g = -u[j] @ (z / c)
            rs.append(np.log(w[j]) - 0.5 * (d * np.log(2 * np.pi) + np.log(c).sum() + q))
            gs.append(g)
        rs = np.array(rs)
        mx = rs.max()
        p = np.exp(rs - mx)
        out_lp.append(mx + np.log(p.sum()))
        out_sc.append((p[:, None] * np.array(gs)).sum(axis=0) / p.sum())
    return np.array(out_lp), np.array(out_sc)


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
    args = ap.parse_args()

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
        rlp, rsc = direct(x[:64].astype(np.float64), w, mu.astype(np.float64), lam.astype(np.float64),
                          None if u is None else u.astype(np.float64), a, s)
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
