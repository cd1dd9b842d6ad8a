#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkGFDMCUDA (and, with --backend numpy, NumPy peer of
BenchmarkGFDM on the CPU).

Times whole runs of generative fractional diffusion (docs/math.md §5.5; solvers.GFDMSample) written
the way a PyTorch user writes a sampler: a Python loop over the steps, the augmented state
Z = (X, Y^1, ..., Y^K) of every coordinate as one float64 tensor of shape (K+1, N, d) (used as a
(K+1) x N*d matrix, so each per-coordinate (K+1) x (K+1) product is one GEMM), the exact denoiser
of the benchmark's Gaussian mixture in closed form, and the per-step (K+1) x (K+1) matrices computed
on the host in float64 with NumPy, uploaded once per problem.

The forward process (solvers/gfdm.go, base "fve" only: the benchmark's): per coordinate
dZ = F(t) Z dt + G(t) dW with one Brownian W,

    F(t) = [[0, -g w_1 gamma_1, ..., -g w_K gamma_K], [0, -diag(gamma_1, ..., gamma_K)]]
    G(t) = (g sum_k w_k, 1, ..., 1),   g(t) = sigma_min (sigma_max/sigma_min)^t sqrt(2 log(sigma_max/sigma_min))

(sigma_min = 0.01, sigma_max = 50), gamma_k and w_k the MA-fBM speeds and weights of
ops.NewMAFBM(H, K, gamma_max = 20, T = 1) (geometric speeds from 1/gamma_max to gamma_max, K = 1:
gamma = 1; weights from the normal equations A w = b with the regularised incomplete gamma function,
computed here with the standard library). The script computes the law Z_t | x_0 ~ N(phi(t) x_0,
Sigma(t)) itself, as solvers.NewGFDMProcess does: the Lyapunov ODE Sigma' = F Sigma + Sigma F^T +
G G^T (and phi' = F phi) by classical RK4, 2048 knots with 8 steps between neighbours, and any t
from the knot at or below it with at most 8 more RK4 steps. Then, as solvers.GFDMSample does:
Sigma^-1 through its diagonal equilibration, psi = Sigma^-1 phi, q = phi^T psi, sigma~ = q^-1/2, the
default t_min (the smallest t >= 1e-3 where the equilibrated Sigma has condition number <= 1e8, by
bisection in log t), the geometric grid 1 = t_0 > ... > t_{n-1} = t_min, and per step

    score S(z) = -Sigma^-1 (z - phi D(u; sigma~)),   u = psi^T z / q      (per coordinate)
    sde  z <- z - h (F z - G G^T S) + sqrt(h) G xi                         (Euler-Maruyama)
    exp  z <- A z + b D + L xi,   A = Sigma_{i+1} Psi^T Sigma_i^-1, b = phi_{i+1} - A phi_i,
         L L^T = Sigma_{i+1} - A Psi Sigma_{i+1}, Psi the transition map (RK4)  (exponential integrator)
    ode  Heun on dz/dt = F z - 1/2 G G^T S(z)

and the last step returns the posterior mean D(u; sigma~(t_min)). The start is the exact law at
t = 1: u drawn from the mixture noised to sigma~(1), plus the residual N(0, Sigma - phi phi^T / q).
The state is float64 throughout (as scorekit's); the samples are rounded once to the dtype.

The denoiser of the isotropic mixture (weights pi_k, means mu_k, variances s_k^2) at VE level sigma:

    c_k = s_k^2 + sigma^2,   r_k(x) = log pi_k - (d/2) log(2 pi c_k) - |x - mu_k|^2 / (2 c_k)
    w = softmax_k(r),        D(x; sigma) = x sum_k w_k s_k^2 / c_k + sum_k w_k (sigma^2 / c_k) mu_k

(|x - mu|^2 expanded into one GEMM). The mixture is bench/diffusion_test.go's formula (the same
numbers: diffusion_torch.mixture), with (d, modes) = (2, 3) and (16, 8).

Problems (bench/gfdm_test.go: gfdmSolvers, gfdmKs, cudaGFDMProblems, cpuGFDMProblems): solver sde
(100 steps), exp (20 steps), ode (100 steps); K in {1, 3} OU processes; H = 0.3; dtype f32; the
2-D and 16-D mixtures with N in {1e3, 1e4, 1e5, 1e6} samples (--backend numpy: the CPU benchmark's
sizes, 1e3 and 1e4 in 2-D, 1e3 in 16-D). Euler-Maruyama with 100 steps is unstable at K = 3 (the
drift is stiff along G; its accuracy columns show it): a throughput row, as in the Go benchmark.

Timing: the per-step matrices are computed once per problem before timing (NumPy, about a second;
scorekit's run computes its own inside every call, in milliseconds). Each repetition is one whole
run (the terminal draw, every step, the posterior mean, the rounding to the dtype) between a pair
of CUDA events (the host clock on the CPU); the table reports the median over --reps (>= 20) after
--warmup runs, as samples/s = N / median, chain-steps/s = N x steps / median and GB/s, the traffic
of one run by design (bytes_by_design below, the Go benchmark's gfdmMovedBytes: not what torch
moves, so a ratio of GB/s is a ratio of speeds). Accuracy of the last run, in float64 (the Go
benchmark prints the same two): mode-tv = 1/2 sum_k |mean_i r_k(x_i) - pi_k| and scale-err =
mean_i sum_k r_k(x_i) |x_i - mu_k|^2 / (d s_k^2) - 1, r_k the responsibilities at sigma = 0.

    python3 gfdm_torch.py [--quick] [--json torch-gfdm.json] [--solvers sde,exp,ode] [--ks 1,3]
                          [--dims 2,16] [--samples 1e5,1e6] [--device cpu]
    python3 gfdm_torch.py --backend numpy [...]      NumPy on the CPU (host clock), the CPU sizes
    python3 gfdm_torch.py --backend numpy --check-dir DIR
        times nothing: reads DIR/problem.json and the Go sampler's trajectories and normals, and
        writes this script's forward law, one-step updates, whole runs and own draws there
        (check_dir), so that bench/gfdm_numpy_test.go can compare them with solvers.GFDMSample.

Exits 0 with a message when NumPy, torch or (for --device cuda) a GPU is missing. Needs no network
access. The sweep, the byte count and the argument parsing at module level use the standard
library only.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import diffusion_torch  # noqa: E402  (the mixture formula; standard library at module level)

# bench/gfdm_test.go: gfdmSolvers (names and steps), gfdmKs, gfdmHurst, cpuGFDMProblems,
# cudaGFDMProblems (TestGFDMPeerTimesTheBenchmark checks them).
SOLVERS = ["sde", "exp", "ode"]
STEPS = {"sde": 100, "exp": 20, "ode": 100}
KS = [1, 3]
HURST = 0.3
DTYPE = "f32"
CPU_PROBLEMS = [(2, 3, 10**3), (2, 3, 10**4), (16, 8, 10**3)]  # (d, modes, N)
CUDA_PROBLEMS = [(d, m, n) for d, m in ((2, 3), (16, 8)) for n in (10**3, 10**4, 10**5, 10**6)]
QUICK_SAMPLES = [10**5]
BYTES = {"f32": 4, "f64": 8}
# solvers.DefaultGFDMSigmaMin, DefaultGFDMSigmaMax, DefaultGFDMGammaMax, DefaultGFDMTableSteps,
# gfdmSubsteps, GFDMTMinCondition, DefaultGFDMTMinFloor, GFDMMaxCondition, gfdmPSDTol.
SIGMA_MIN, SIGMA_MAX, GAMMA_MAX = 0.01, 50.0, 20.0
TABLE_STEPS, SUBSTEPS = 2048, 8
TMIN_CONDITION, TMIN_FLOOR, MAX_CONDITION = 1e8, 1e-3, 1e10
PSD_TOL = 1e-12


def go_benchmark(cpu, dtype, solver, k, d, modes, n):
    return "BenchmarkGFDM%s/%s/%s/K=%d/steps=%d/d=%d/modes=%d/samples=%s" % (
        "" if cpu else "CUDA", dtype, solver, k, STEPS[solver], d, modes, common.pow10_label(n))


def evals_per_sample(solver, steps):
    """Denoiser evaluations per sample (solvers.GFDMSample's Result.ScoreEvals / N)."""
    return 2 * steps - 1 if solver == "ode" else steps


def bytes_by_design(solver, k, n, d, steps, dtype):
    """The memory traffic of one run by design (bench/gfdm_test.go gfdmMovedBytes: scorekit's fused
    steps, which draw their normals in registers), s = one float64 state (K+1) N d, u = one float64
    (N, d) tensor: the start reads the noised data and writes the state and the statistics
    (s + 2u); each of the steps - 1 solver steps runs the denoiser (reads the statistics, writes
    its values) and the step (reads the state and the values, writes the state and the next
    statistics): sde and exp 2s + 4u, ode (two denoiser calls, the predictor reads z and writes
    z~, the corrector reads z~ and z and writes z) 5s + 8u; the last step runs the denoiser, reads
    its values once and writes the samples in dtype. The same count for this script, whatever it
    moves, so that a ratio of GB/s is a ratio of speeds."""
    s, u = 8 * (k + 1) * n * d, 8 * n * d
    per_step = 5 * s + 8 * u if solver == "ode" else 2 * s + 4 * u
    return (s + 2 * u) + (steps - 1) * per_step + (3 * u + BYTES[dtype] * n * d)


def state_bytes(k, n, d, modes):
    """Device memory of one run, generously: eight (K+1) x N x d float64 tensors (the state, the
    drifts, Heun's predictor, the score and temporaries) and four N x modes float64 matrices."""
    return 8 * (8 * (k + 1) * n * d + 4 * n * modes)


# ---- The forward process (NumPy, float64, on the host) -------------------------------------------

def gammainc_lower(a, x):
    """The regularised lower incomplete gamma function P(a, x), a > 0, x >= 0: the series for
    x < a + 1, else 1 - Q by the continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        ap, term = a, 1.0 / a
        total = term
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return total * math.exp(log_front)
    tiny = 1e-300
    b = x + 1 - a
    c, dd = 1 / tiny, 1 / b
    h = dd
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        dd = an * dd + b
        dd = tiny if abs(dd) < tiny else dd
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        dd = 1 / dd
        delta = dd * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return 1 - math.exp(log_front) * h


def phi2(z):
    """(e^z - 1 - z) / z^2, by its Taylor series for |z| < 1/2 (ops.phi2)."""
    if abs(z) >= 0.5:
        return (math.expm1(z) - z) / (z * z)
    total, term = 0.0, 0.5
    for n in range(40):
        if term == 0:
            break
        total += term
        term *= z / (n + 3)
    return total


def mafbm(np, hurst, k, gamma_max=GAMMA_MAX, horizon=1.0):
    """The MA-fBM speeds and weights of ops.NewMAFBM (docs/math.md §4.2)."""
    if k == 1:
        gammas = [1.0]
    else:
        gammas = [gamma_max ** ((2 * i + 1 - k) / (k - 1)) for i in range(k)]
    a, T = hurst + 0.5, horizon
    A = np.array([[T * T * phi2(-(gi + gj) * T) for gj in gammas] for gi in gammas])
    b = np.array([T * gi ** (-a) * gammainc_lower(a, gi * T) - a * gi ** (-(a + 1)) * gammainc_lower(a + 1, gi * T)
                  for gi in gammas])
    return np.array(gammas), np.linalg.solve(A, b)


class Process:
    """The fractional VE process with K OU processes (solvers.GFDMProcess, base "fve"): the table of
    (phi, Sigma) at t = i / 2048 and its dense output."""

    def __init__(self, np, hurst, k):
        self.np, self.k, self.n = np, k, k + 1
        self.gammas, self.weights = mafbm(np, hurst, k)
        self.log_rate = math.log(SIGMA_MAX / SIGMA_MIN)
        n = self.n
        # F(t) = F0 + g(t) F1, G(t) = G0 + g(t) G1.
        self.f0, self.f1 = np.zeros((n, n)), np.zeros((n, n))
        self.g0, self.g1 = np.zeros(n), np.zeros(n)
        for c in range(1, n):
            self.f1[0, c] = -self.weights[c - 1] * self.gammas[c - 1]
            self.f0[c, c] = -self.gammas[c - 1]
            self.g0[c] = 1.0
        self.g1[0] = self.weights.sum()
        phi, sig = np.zeros(n), np.zeros((n, n))
        phi[0] = 1.0
        self.knots = [(phi.copy(), sig.copy())]
        h = 1.0 / (TABLE_STEPS * SUBSTEPS)
        for i in range(TABLE_STEPS):
            for s in range(SUBSTEPS):
                phi, sig = self.rk4(phi, sig, (i * SUBSTEPS + s) * h, h)
            self.knots.append((phi.copy(), sig.copy()))

    def g(self, t):
        return SIGMA_MIN * math.exp(t * self.log_rate) * math.sqrt(2 * self.log_rate)

    def coefficients(self, t):
        gt = self.g(t)
        return self.f0 + gt * self.f1, self.g0 + gt * self.g1

    def rhs(self, phi, sig, t):
        f, g = self.coefficients(t)
        fs = f @ sig
        return f @ phi, fs + fs.T + self.np.outer(g, g)

    def rk4(self, phi, sig, t, h):
        p1, s1 = self.rhs(phi, sig, t)
        p2, s2 = self.rhs(phi + h / 2 * p1, sig + h / 2 * s1, t + h / 2)
        p3, s3 = self.rhs(phi + h / 2 * p2, sig + h / 2 * s2, t + h / 2)
        p4, s4 = self.rhs(phi + h * p3, sig + h * s3, t + h)
        return phi + h / 6 * (p1 + 2 * p2 + 2 * p3 + p4), sig + h / 6 * (s1 + 2 * s2 + 2 * s3 + s4)

    def evaluate(self, t):
        """(phi(t), Sigma(t)): from the knot at or below t, at most 8 RK4 steps landing on t."""
        m = TABLE_STEPS
        i = min(int(t * m), m - 1)
        ti = i / m
        if t < ti:
            i -= 1
            ti = i / m
        phi, sig = self.knots[i]
        r = t - ti
        if r <= 0:
            return phi.copy(), sig.copy()
        steps = max(1, min(math.ceil(r * m * SUBSTEPS), SUBSTEPS))
        h = r / steps
        for s in range(steps):
            phi, sig = self.rk4(phi, sig, ti + s * h, h)
        return phi, sig

    def transition(self, t, s):
        """Psi(t, s) = Phi(t) Phi(s)^-1 (Psi' = F Psi, Psi(s) = I), RK4 steps of the table's length."""
        np = self.np
        psi = np.eye(self.n)
        steps = max(1, math.ceil((t - s) * TABLE_STEPS * SUBSTEPS))
        h = (t - s) / steps
        for i in range(steps):
            tau = s + i * h
            k1 = self.coefficients(tau)[0] @ psi
            fm = self.coefficients(tau + h / 2)[0]
            k2 = fm @ (psi + h / 2 * k1)
            k3 = fm @ (psi + h / 2 * k2)
            k4 = self.coefficients(tau + h)[0] @ (psi + h * k3)
            psi = psi + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return psi

    def law(self, t):
        """What the score needs at t in (0, 1] (solvers' gfdmLaw); ValueError where Sigma(t) is too
        close to singular."""
        np = self.np
        phi, sig = self.evaluate(t)
        if not np.all(np.diag(sig) > 0):
            raise ValueError("time t = %g: Sigma(t) has a diagonal entry <= 0" % t)
        scale = np.sqrt(np.diag(sig))
        eq = 0.5 * (sig + sig.T) / np.outer(scale, scale)
        ev = np.linalg.eigvalsh(eq)
        cond = ev[-1] / ev[0] if ev[0] > 0 else math.inf
        if not cond <= MAX_CONDITION:
            raise ValueError("time t = %g: Sigma(t) has condition number %.3g" % (t, cond))
        chol = np.linalg.cholesky(eq)
        inv_chol = np.linalg.inv(chol)
        prec = (inv_chol.T @ inv_chol) / np.outer(scale, scale)
        psi = prec @ phi
        q = float(phi @ psi)
        f, g = self.coefficients(t)
        return {"t": t, "phi": phi, "sigma": sig, "prec": prec, "psi": psi, "q": q,
                "sigma_ve": 1 / math.sqrt(q), "cond": cond, "f": f, "g": g}

    def default_tmin(self):
        def ok(t):
            try:
                return self.law(t)["cond"] <= TMIN_CONDITION
            except (ValueError, self.np.linalg.LinAlgError):
                return False
        if ok(TMIN_FLOOR):
            return TMIN_FLOOR
        if not ok(1.0):
            return 1.0
        lo, hi = math.log(TMIN_FLOOR), 0.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if ok(math.exp(mid)):
                hi = mid
            else:
                lo = mid
        return math.exp(hi)


def psd_factor(np, c, tol):
    """L with L L^T = the positive semidefinite part of c: U diag(sqrt(max(lambda, 0))) from the
    eigendecomposition (solvers' covarianceFactorTol); ValueError below -tol * lambda_max."""
    lam, u = np.linalg.eigh(0.5 * (c + c.T))
    top = max(lam[-1], 0.0)
    if lam[0] < -tol * top:
        raise ValueError("covariance is not positive semidefinite (eigenvalue %.3g, largest %.3g)" % (lam[0], top))
    return u * np.sqrt(np.maximum(lam, 0.0))


def grid(tmin, steps):
    g = [1.0] + [math.exp(math.log(tmin) * i / (steps - 1)) for i in range(1, steps)]
    if steps > 1:
        g[-1] = tmin
    return g


def plan(np, proc, solver, steps, tmin=None):
    """Everything a run needs on the host, float64: the grid (down to tmin, default the process's
    default t_min), the law at every grid time, the terminal residual factor and, for exp, (A, b, L)
    of every step."""
    tmin = proc.default_tmin() if tmin is None else tmin
    times = grid(tmin, steps)
    laws = [proc.law(t) for t in times]
    l0 = laws[0]
    resid = l0["sigma"] - np.outer(l0["phi"], l0["phi"]) / l0["q"]
    out = {"times": times, "laws": laws, "tmin": tmin, "resid_factor": psd_factor(np, resid, PSD_TOL), "exp": None}
    if solver == "exp":
        out["exp"] = []
        for i in range(steps - 1):
            fr, to = laws[i], laws[i + 1]
            psi = proc.transition(fr["t"], to["t"])
            cross = to["sigma"] @ psi.T
            a = cross @ fr["prec"]
            cov = to["sigma"] - a @ cross.T
            cov = 0.5 * (cov + cov.T)
            out["exp"].append({"a": a, "b": to["phi"] - a @ fr["phi"], "cov": cov,
                               "l": psd_factor(np, cov, PSD_TOL * max(1.0, fr["cond"]))})
    return out


# ---- Array modules -------------------------------------------------------------------------------

class NumpyOps:
    """The array operations of the sampler on NumPy (the CPU)."""
    name = "numpy"

    def __init__(self, np, seed):
        self.np, self.rng = np, np.random.default_rng(seed)

    def asarray(self, a):
        return self.np.array(a, dtype=self.np.float64)

    def normal(self, *shape):
        return self.rng.standard_normal(shape)

    def uniform(self, n):
        return self.rng.random(n)

    def exp(self, x):
        return self.np.exp(x)

    def log(self, x):
        return self.np.log(x)

    def sqrt(self, x):
        return self.np.sqrt(x)

    def rowmax(self, x):
        return x.max(axis=1, keepdims=True)

    def rowsum(self, x):
        return x.sum(axis=1, keepdims=True)

    def searchsorted(self, cdf, u):
        return self.np.minimum(self.np.searchsorted(cdf, u, side="right"), len(cdf) - 1)

    def finite_rows(self, x):
        return x[self.np.isfinite(x).all(axis=1)]

    def round_to(self, x, dtype):
        return x.astype(self.np.float32 if dtype == "f32" else self.np.float64)

    def to_f64(self, x):
        return x.astype(self.np.float64)

    def host(self, x):
        return self.np.asarray(x)


class TorchOps:
    """The same on torch tensors on dev."""
    name = "torch"

    def __init__(self, torch, dev, seed):
        self.torch, self.dev = torch, dev
        self.gen = torch.Generator(device=dev).manual_seed(seed)

    def asarray(self, a):
        return self.torch.tensor(a, dtype=self.torch.float64, device=self.dev)

    def normal(self, *shape):
        return self.torch.randn(*shape, dtype=self.torch.float64, device=self.dev, generator=self.gen)

    def uniform(self, n):
        return self.torch.rand(n, dtype=self.torch.float64, device=self.dev, generator=self.gen)

    def exp(self, x):
        return self.torch.exp(x)

    def log(self, x):
        return self.torch.log(x)

    def sqrt(self, x):
        return self.torch.sqrt(x)

    def rowmax(self, x):
        return x.amax(1, keepdim=True)

    def rowsum(self, x):
        return x.sum(1, keepdim=True)

    def searchsorted(self, cdf, u):
        return self.torch.searchsorted(cdf, u, right=True).clamp_max(len(cdf) - 1)

    def finite_rows(self, x):
        return x[self.torch.isfinite(x).all(1)]

    def round_to(self, x, dtype):
        return x.to(self.torch.float32 if dtype == "f32" else self.torch.float64)

    def to_f64(self, x):
        return x.to(self.torch.float64)

    def host(self, x):
        return x.cpu().numpy()


# ---- The sampler ---------------------------------------------------------------------------------

def mixture_fns(ops, w, mu, var):
    """The closed-form denoiser of the isotropic mixture and the accuracy metrics, on ops' device.
    w, mu, var: Python lists (weights, K x d means, variances)."""
    wt, mut, vt = ops.asarray(w), ops.asarray(mu), ops.asarray(var)
    d = len(mu[0])
    logw = ops.log(wt)
    mumu = (mut * mut).sum(1)
    cdf = ops.asarray([sum(w[:i + 1]) for i in range(len(w))])

    def denoise(x, sigma):
        """D(x; sigma) for x (n, d), sigma a Python float."""
        s2 = sigma * sigma
        c = vt + s2
        quad = (x * x).sum(1)[:, None] - 2 * (x @ mut.T) + mumu[None, :]
        logits = logw - 0.5 * d * ops.log(2 * math.pi * c) - quad / (2 * c)
        p = ops.exp(logits - ops.rowmax(logits))
        p = p / ops.rowsum(p)
        return (p @ (vt / c))[:, None] * x + (p * (s2 / c)) @ mut

    def sample_noised(n, s):
        """n draws of x_0 + sqrt(s) xi, x_0 from the mixture."""
        comp = ops.searchsorted(cdf, ops.uniform(n))
        return mut[comp] + ops.sqrt(vt[comp] + s)[:, None] * ops.normal(n, d)

    def accuracy(x):
        """(mode-tv, scale-err) of samples x (n, d) in float64, finite rows only."""
        x = ops.finite_rows(ops.to_f64(x))
        quad = (x * x).sum(1)[:, None] - 2 * (x @ mut.T) + mumu[None, :]
        logits = logw - 0.5 * d * ops.log(2 * math.pi * vt) - quad / (2 * vt)
        r = ops.exp(logits - ops.rowmax(logits))
        r = r / ops.rowsum(r)
        tv = 0.5 * float(abs(r.mean(0) - wt).sum())
        se = float((r * quad / (d * vt)).sum(1).mean()) - 1
        return tv, se

    return {"denoise": denoise, "sample_noised": sample_noised, "accuracy": accuracy}


def device_plan(ops, pl):
    """The host plan's matrices as ops arrays (uploaded once)."""
    laws = [{"w": ops.asarray(l["psi"] / l["q"]), "phi": ops.asarray(l["phi"]), "prec": ops.asarray(l["prec"]),
             "f": ops.asarray(l["f"]), "g": ops.asarray(l["g"]), "sigma_ve": l["sigma_ve"]} for l in pl["laws"]]
    exp = None
    if pl["exp"] is not None:
        exp = [{"a": ops.asarray(e["a"]), "b": ops.asarray(e["b"]), "l": ops.asarray(e["l"])} for e in pl["exp"]]
    return {"times": pl["times"], "laws": laws, "exp": exp, "resid_factor": ops.asarray(pl["resid_factor"]),
            "phi0": ops.asarray(pl["laws"][0]["phi"]), "q0": pl["laws"][0]["q"]}


def make_sampler(ops, solver, dp, fns, n, d):
    """The sampler of solver over the plan dp, as {"start", "step", "final", "run"} on (K+1, N d)
    states: step(z, i, xi) is step i (t_i -> t_{i+1}) with its normals xi (sde: (N d), exp:
    (K+1, N d), ode: None); run(normals) is a whole run, normals(i) giving step i's."""
    denoise, laws, times = fns["denoise"], dp["laws"], dp["times"]
    c = 0.5 if solver == "ode" else 1.0

    def project(z, law):
        return law["w"] @ z  # u = psi^T z / q per coordinate: (N d)

    def drift(z, law):
        den = denoise(project(z, law).reshape(n, d), law["sigma_ve"]).reshape(-1)
        score = -(law["prec"] @ (z - law["phi"][:, None] * den[None, :]))
        return law["f"] @ z - c * law["g"][:, None] * (law["g"] @ score)[None, :]

    def start():
        u = fns["sample_noised"](n, 1 / dp["q0"]).reshape(-1)
        return dp["phi0"][:, None] * u[None, :] + dp["resid_factor"] @ ops.normal(len(laws[0]["g"]), n * d)

    def step(z, i, xi):
        h = times[i] - times[i + 1]
        if solver == "sde":
            v = drift(z, laws[i])
            return z - h * v + math.sqrt(h) * laws[i]["g"][:, None] * xi[None, :]
        if solver == "exp":
            e, law = dp["exp"][i], laws[i]
            den = denoise(project(z, law).reshape(n, d), law["sigma_ve"]).reshape(-1)
            return e["a"] @ z + e["b"][:, None] * den[None, :] + e["l"] @ xi
        v1 = drift(z, laws[i])
        v2 = drift(z - h * v1, laws[i + 1])
        return z - 0.5 * h * (v1 + v2)

    def final(z):
        law = laws[-1]
        return denoise(project(z, law).reshape(n, d), law["sigma_ve"])

    def run(normals, z=None):
        z = start() if z is None else z
        for i in range(len(times) - 1):
            z = step(z, i, normals(i))
        return final(z)

    def own_normals(i):
        if solver == "sde":
            return ops.normal(n * d)
        if solver == "exp":
            return ops.normal(len(laws[0]["g"]), n * d)
        return None

    return {"start": start, "step": step, "final": final, "run": run, "own_normals": own_normals}


# ---- Checks against the Go sampler ---------------------------------------------------------------

def check_dir(np, path):
    """Reads DIR/problem.json ({"k", "hurst", "d", "modes", "steps": {solver: S}, "tmin",
    "free_samples", "seed"}; the grids run down to the given tmin, the Go process's default, so
    that both sides step between the same times; this script's own default is reported) and, per
    solver, DIR/<solver>_trace.npy (S, K+1, N, d): solvers.GFDMSample's augmented trajectory at
    t_0 .. t_{S-1}, and DIR/<solver>_normals.npy: its normals of steps 0 .. S-2 (sde: (S-1, N, d);
    exp: (S-1, K+1, N, d)). Writes, per solver,

        <solver>_onestep.npy (S-1, K+1, N, d)  step i of this script from the traced state i with the
                                               traced normals (exp: with zero normals, the mean
                                               A z + b D, the noise being checked through its
                                               covariance below)
        <solver>_final.npy   (N, d)            the posterior mean at the last traced state
        <solver>_run.npy     (N, d)            a whole run from the traced start with the traced
                                               normals (the timed code path)
        <solver>_free.npy    (F, d)            a whole run of F = free_samples with this script's
                                               own generator (the start drawn here too)

    and start.npy (K+1, F, d), this script's own draw of the terminal state, and peer.json: the
    speeds and weights, t_min, per solver the grid, sigma~, phi and Sigma at every grid time, and
    for exp the bridge covariance L L^T of every step."""
    with open(os.path.join(path, "problem.json")) as f:
        prob = json.load(f)
    k, d, modes, seed = prob["k"], prob["d"], prob["modes"], prob["seed"]
    proc = Process(np, prob["hurst"], k)
    w, mu, var = diffusion_torch.mixture(modes, d)
    report = {"gammas": proc.gammas.tolist(), "weights": proc.weights.tolist(), "tmin": proc.default_tmin(),
              "solvers": {}}
    nf = prob["free_samples"]
    for solver, steps in prob["steps"].items():
        pl = plan(np, proc, solver, steps, prob["tmin"])
        trace = np.load(os.path.join(path, solver + "_trace.npy"))
        n = trace.shape[2]
        zs = trace.reshape(steps, k + 1, n * d)
        normals = None
        if solver != "ode":
            raw = np.load(os.path.join(path, solver + "_normals.npy"))
            normals = raw.reshape(steps - 1, -1) if solver == "sde" else raw.reshape(steps - 1, k + 1, n * d)
        ops = NumpyOps(np, seed)
        fns = mixture_fns(ops, w, mu, var)
        smp = make_sampler(ops, solver, device_plan(ops, pl), fns, n, d)
        given = (lambda i: normals[i]) if normals is not None else (lambda i: None)
        onestep = np.empty((steps - 1, k + 1, n * d))
        for i in range(steps - 1):
            xi = given(i)
            if solver == "exp":
                xi = np.zeros_like(xi)
            onestep[i] = smp["step"](zs[i], i, xi)
        np.save(os.path.join(path, solver + "_onestep.npy"), onestep.reshape(steps - 1, k + 1, n, d))
        np.save(os.path.join(path, solver + "_final.npy"), smp["final"](zs[-1]))
        np.save(os.path.join(path, solver + "_run.npy"), smp["run"](given, z=zs[0].copy()))
        free = make_sampler(ops, solver, device_plan(ops, pl), fns, nf, d)
        np.save(os.path.join(path, solver + "_free.npy"), free["run"](free["own_normals"]))
        report["solvers"][solver] = {
            "times": pl["times"], "sigma_ve": [l["sigma_ve"] for l in pl["laws"]],
            "phi": [l["phi"].tolist() for l in pl["laws"]], "sigma": [l["sigma"].tolist() for l in pl["laws"]],
            "bridge_cov": [e["cov"].tolist() for e in pl["exp"]] if pl["exp"] else [],
        }
        if solver == "sde":
            start = free["start"]()
            np.save(os.path.join(path, "start.npy"), start.reshape(k + 1, nf, d))
    with open(os.path.join(path, "peer.json"), "w") as f:
        json.dump(report, f)


# ---- Timing --------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(
        description="Time generative fractional diffusion (a Python loop over steps, the augmented state in "
        "float64 tensors, the closed-form GMM denoiser) on the problems of scorekit's BenchmarkGFDMCUDA "
        "(--backend numpy: BenchmarkGFDM on the CPU).")
    common.add_output_args(p, reps=20, warmup=2, timed="runs", untimed="runs")
    p.add_argument("--backend", default="torch", choices=["torch", "numpy"],
                   help="torch (default) or numpy (the CPU, host clock)")
    p.add_argument("--quick", action="store_true", help="N = 1e5 only (torch)")
    p.add_argument("--solvers", type=common.name_list, default=SOLVERS,
                   help="comma-separated, of %s (default all)" % ", ".join(SOLVERS))
    p.add_argument("--ks", type=common.int_list, default=KS, help="OU processes K (default 1,3)")
    p.add_argument("--dims", type=common.int_list, default=None, help="dimensions, of 2, 16 (default both)")
    p.add_argument("--samples", type=common.count_list, default=None,
                   help="samples per run, comma-separated (default the Go benchmark's sizes)")
    common.add_max_call_arg(p, "warm-up run")
    common.add_device_arg(p, "cuda")
    p.add_argument("--check-dir", metavar="DIR", help="compare with the Go sampler's files in DIR (see check_dir); "
                   "times nothing")
    a = p.parse_args()
    if a.check_dir:
        return a
    common.check_reps(p, a)
    common.check_known(p, "solver", a.solvers, SOLVERS)
    for k in a.ks:
        if not 1 <= k <= 5:
            p.error("--ks: K = %d: must be in [1, 5]" % k)
    base = CPU_PROBLEMS if a.backend == "numpy" else CUDA_PROBLEMS
    dims = sorted({d for d, _, _ in base})
    for d in a.dims or []:
        if d not in dims:
            p.error("--dims: %d is not a problem's dimension (want some of %s)" % (d, ",".join(map(str, dims))))
    samples = a.samples or (QUICK_SAMPLES if a.quick and a.backend == "torch" else None)
    if samples and any(n <= 0 for n in samples):
        p.error("--samples must be positive")
    a.problems = [(d, m, n) for d, m, n in base if (not a.dims or d in a.dims) and (not samples or n in samples)]
    if samples:  # sizes beyond the Go sweep's: every dimension at each
        have = {(d, n) for d, _, n in a.problems}
        modes = dict((d, m) for d, m, _ in base)
        a.problems += [(d, modes[d], n) for d in (a.dims or dims) for n in samples if (d, n) not in have]
        a.problems.sort(key=lambda p: (p[0], p[2]))
    return a


def problems(a):
    """(solver, K, d, modes, N) in the order of the Go benchmark."""
    for solver in a.solvers:
        for k in a.ks:
            for d, m, n in a.problems:
                yield solver, k, d, m, n


def result(library, cpu, solver, k, d, m, n, times_ms, tv, se):
    med = statistics.median(times_ms)
    steps = STEPS[solver]
    nbytes = bytes_by_design(solver, k, n, d, steps, DTYPE)
    return {
        "library": library, "dtype": DTYPE, "solver": solver, "k": k, "steps": steps, "dim": d, "modes": m,
        "samples": n, "samples_label": common.pow10_label(n), "hurst": HURST,
        "evals_per_sample": evals_per_sample(solver, steps), "bytes": nbytes,
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "samples_per_s": n / (med * 1e-3), "chain_steps_per_s": n * steps / (med * 1e-3),
        "gb_per_s": nbytes / (med * 1e-3) / 1e9, "mode_tv": tv, "scale_err": se,
        "go_benchmark": go_benchmark(cpu, DTYPE, solver, k, d, m, n),
    }


def skipped(library, cpu, solver, k, d, m, n, why):
    return {
        "library": library, "dtype": DTYPE, "solver": solver, "k": k, "steps": STEPS[solver], "dim": d, "modes": m,
        "samples": n, "samples_label": common.pow10_label(n), "skipped": common.reason_text(why),
        "go_benchmark": go_benchmark(cpu, DTYPE, solver, k, d, m, n),
    }


def print_table(rows, header):
    print(header)
    print()
    print("| library | dtype | solver | K | steps | d | modes | samples | ms per run (median) | samples/s "
          "| chain-steps/s | GB/s | mode-tv | scale-err |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        head = "| %s | %s | %s | %d | %d | %d | %d | %s |" % (
            r["library"], r["dtype"], r["solver"], r["k"], r["steps"], r["dim"], r["modes"], r["samples_label"])
        if "skipped" in r:
            print("%s skipped: %s | | | | | |" % (head, r["skipped"]))
            continue
        print("%s %.4g | %.4g | %.4g | %.3g | %.4f | %+.4g |" % (
            head, r["ms"], r["samples_per_s"], r["chain_steps_per_s"], r["gb_per_s"], r["mode_tv"], r["scale_err"]))
    sys.stdout.flush()


def host_timed_runs(call, warmup, reps, max_call_s):
    """Like torch_common.timed_runs on the host clock: warmup untimed runs (common.TooSlow when the
    last takes longer than max_call_s), then reps timed ones; the times in ms and the last result."""
    for i in range(warmup):
        t0 = time.perf_counter()
        call()
        if i == warmup - 1 and time.perf_counter() - t0 > max_call_s:
            raise common.TooSlow("one run takes %.1f s (--max-call-s %g)" % (time.perf_counter() - t0, max_call_s))
    times, last = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        last = call()
        times.append((time.perf_counter() - t0) * 1e3)
    return times, last


def import_numpy(library):
    try:
        import numpy
    except ImportError as e:
        common.skip(library, "NumPy is not installed (%s): the per-step matrices need it" % e)
    return numpy


def main():
    args = parse_args()
    if args.check_dir:
        check_dir(import_numpy("numpy"), args.check_dir)
        return
    library = args.backend
    np = import_numpy(library)
    torch = dev = None
    cuda = False
    if library == "torch":
        torch = common.import_torch(library, cuda=args.device == "cuda")
        import torch_common
        dev = torch.device(args.device)
        cuda = dev.type == "cuda"
    if cuda:
        device_name = torch.cuda.get_device_name(dev)
    elif library == "torch":
        device_name = "cpu (script check only)"
    else:
        device_name = "cpu"
    cpu_names = library == "numpy"
    meta = {
        "library": library, "version": (torch.__version__ if torch else np.__version__),
        "numpy": np.__version__, "cuda": torch.version.cuda if torch else None, "device": device_name,
        "reps": args.reps, "warmup": args.warmup, "hurst": HURST, "steps": STEPS, "base": "fve",
        "timing": ("CUDA events around one whole run (start, every step, posterior mean), median" if cuda
                   else "host clock around one whole run, median"),
        "not_timed": "the per-step (K+1)x(K+1) matrices, computed once per problem with NumPy",
    }

    rows, procs, plans = [], {}, {}
    for solver, k, d, m, n in problems(args):
        if k not in procs:
            procs[k] = Process(np, HURST, k)
        if (solver, k) not in plans:
            plans[solver, k] = plan(np, procs[k], solver, STEPS[solver])
        if cuda:
            short = torch_common.lacks_memory(dev, state_bytes(k, n, d, m))
            if short:
                rows.append(skipped(library, cpu_names, solver, k, d, m, n, short))
                continue
        seed = 1009 * k + 17 * d + n % 9973
        ops = TorchOps(torch, dev, seed) if torch else NumpyOps(np, seed)
        w, mu, var = diffusion_torch.mixture(m, d)
        fns = mixture_fns(ops, w, mu, var)
        smp = make_sampler(ops, solver, device_plan(ops, plans[solver, k]), fns, n, d)

        def once(smp=smp):
            return ops.round_to(smp["run"](smp["own_normals"]), DTYPE)

        try:
            if torch:
                times, x = torch_common.timed_runs(dev, once, max(args.warmup, 1), args.reps, args.max_call_s)
            else:
                times, x = host_timed_runs(once, max(args.warmup, 1), args.reps, args.max_call_s)
            tv, se = fns["accuracy"](x)
            rows.append(result(library, cpu_names, solver, k, d, m, n, times, tv, se))
            del x
        except Exception as e:  # noqa: BLE001
            why = common.skip_reason(e)
            if why is None:
                raise
            rows.append(skipped(library, cpu_names, solver, k, d, m, n, why))
        finally:
            del smp, fns
            if cuda:
                torch.cuda.empty_cache()

    print_table(rows, "%s %s on %s, generative fractional diffusion (FVE, H = %g), closed-form GMM denoiser; "
                "median of %d runs after %d warm-up runs" % (
                    library, meta["version"], device_name, HURST, args.reps, max(args.warmup, 1)))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
