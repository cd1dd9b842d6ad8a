#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkGMMScoreCUDA / BenchmarkEmpiricalScoreCUDA.

Times, on the GPU and in the dtype of the Go benchmark, what a PyTorch user would write for the
same problems (bench/score_test.go):

GMM score and log-density (VE noise sigma = 0.5, N rows x K components x d), for isotropic
mixtures (one variance v_k per component, c_k = a^2 v_k + s) and diagonal ones (a variance
v_kj per component and coordinate, c_kj = a^2 v_kj + s), the two kinds of the Go sweep:
  eager    diff = x[:,None,:] - a*mu[None]; quadratic forms (isotropic: sum_j diff^2 / c_k;
           diagonal: sum_j diff_j * g_j with g = diff / c, an N x K x d tensor more);
           r = log-weights + log-normal; log p = torch.logsumexp(r); responsibilities
           gamma = torch.softmax(r); score = -sum_k gamma_k diff_k / c_k  -- in row chunks when
           the N x K x d tensors would not fit in --budget-gib
  compile  the same function under torch.compile (--compile-mode, default "default"); a compile
           failure is reported as a skipped row with its error
  matmul   the expanded form: isotropic |x|^2 - 2a x.mu^T + a^2|mu|^2 and
           score = w @ a mu - x sum_k w_k, w = gamma / c; diagonal (x*x) @ (1/c)^T -
           2 x @ (a mu / c)^T + sum_j a^2 mu^2 / c and score = gamma @ (a mu / c) - x (gamma @ 1/c):
           GEMMs, no N x K x d tensor

Empirical optimal denoiser (one mixture term, N queries x M data points x d):
  eager    torch.softmax(-torch.cdist(x, y)**2 / (2 sigma^2), dim=1) @ y  -- needs the N x M
           matrix; where it cannot be allocated the row says so (skipped, not a crash)
  chunked  the same over chunks of M with an online softmax (running max, rescaled sums), so it
           runs wherever one N x chunk block fits in --budget-gib

GFLOP/s use scorekit's FLOP counts (bench/score_test.go: gmmFLOPsPerPair, empiricalFLOPsPerPoint),
not what PyTorch executes, so for one problem the GFLOP/s ratio of two rows is their speed ratio.
Float32 matmuls run in full FP32 (TF32 off) unless --tf32.

Each problem: --warmup untimed calls, then --reps (>= 20) calls, each between its own pair of CUDA
events on the current stream; the table reports the median. Inputs are drawn once per problem on
the GPU from a fixed seed. A problem whose single call takes longer than --max-call-s is skipped
(named in the table) so that the full sweep finishes.

    python3 score_torch.py [--quick] [--json torch-score.json] [--ops gmm,empirical]
                           [--gmm-kinds diagonal --gmm-n 1e6 --gmm-k 64] [--variants eager,compile]

Before timing, every variant (chunked paths included) is checked on small float64 problems: the
GMM forms of both kinds against the NumPy definition (score_numpy.gmm_definition, which
bench/numpy_test.go checks against scorekit's reference; NumPy is needed for that), the denoisers
against the definition; a disagreement stops the script.

Exits 0 with a message when torch or a CUDA device is missing (--device cpu runs the sweep on the
CPU, only to check the script: those timings compare with nothing). Needs no network access.

The sweep, FLOP counts, argument parsing and table at module level use the standard library only;
score_jax.py imports them from here.
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"

GMM_KINDS = ["isotropic", "diagonal"]


def gmm_grid(kind, ns, ks, ds):
    """Every (kind, N, K, d) of one grid, in the order of the Go benchmark (bench/score_test.go
    gmmGrid)."""
    return [(kind, n, k, d) for n in ns for k in ks for d in ds]


# The sweeps of bench/score_test.go. cudaGMMCases: isotropic over the grid; diagonal at K = 8,
# d in {16, 128} over the rows; the diagonal design point N = 10^6, K = 64, d in {2, 16, 64}
# (the performance model's workloads) and d = 8, 17. Its full-covariance cases have no peer.
GMM_NS = [10**3, 10**4, 10**5, 10**6]
GMM_KS = [1, 8, 64, 512]
GMM_DS = [2, 16, 128, 512]
GMM_CASES = (gmm_grid("isotropic", GMM_NS, GMM_KS, GMM_DS)
             + gmm_grid("diagonal", GMM_NS, [8], [16, 128])
             + gmm_grid("diagonal", [10**6], [64], [2, 8, 16, 17, 64]))
# cudaEmpiricalCases.
EMP_NS = [10**3, 10**4, 10**5]
EMP_MS = [10**3, 10**4, 10**5, 10**6]
EMP_DS = [2, 16, 64, 128, 512]
# --quick: the sizes where the design's targets apply (N >= 10^5 for the GMM, d >= 64 for the
# denoiser), one step either side; for diagonal mixtures those of the Go sweep among them and the
# design point at d = 16.
QUICK_GMM_CASES = (gmm_grid("isotropic", [10**4, 10**5], [8, 64], [16, 128])
                   + gmm_grid("diagonal", [10**4, 10**5], [8], [16, 128])
                   + [("diagonal", 10**6, 64, 16)])
QUICK = {"emp_n": [10**3, 10**4], "emp_m": [10**4, 10**5], "emp_d": [64, 128]}
SIGMA = 0.5  # VE noise level of every problem (a = 1, s = sigma^2), as in the Go benchmarks
DTYPES = ["f32", "f64"]
BYTES = {"f32": 4, "f64": 8}
OPS = ["gmm", "empirical"]


# FLOP counts: bench/score_test.go, the same for every backend and peer. An FMA counts as two.
def gmm_flops_per_pair(d, full=False):
    """Isotropic/diagonal: 6d + 6 per (row, component); full: 4d^2 + 6d + 6."""
    return 6 * d + 6 + (4 * d * d if full else 0)


def gmm_flops(n, k, d):
    return n * k * gmm_flops_per_pair(d)


def empirical_flops_per_point(d, q=1):
    """3d + q(2d + 6) per (query, point): 5d + 6 with one mixture term."""
    return 3 * d + q * (2 * d + 6)


def empirical_flops(n, m, d):
    return n * m * empirical_flops_per_point(d)


def go_benchmark(op, dtype, n, km, d, kind=None):
    """The Go benchmark of a problem; kind is the GMM's covariance ("isotropic", "diagonal")."""
    if op == "gmm":
        return "BenchmarkGMMScoreCUDA/%s/%s/N=%s/K=%d/d=%d" % (dtype, kind, common.pow10_label(n), km, d)
    return "BenchmarkEmpiricalScoreCUDA/%s/N=%s/M=%s/d=%d" % (dtype, common.pow10_label(n), common.pow10_label(km), d)


def parse_args(variants, defaults, description, extra=None):
    """The score peers' command line. variants: {op: [names]}, defaults: {op: [names]}; extra(p)
    adds a library's own options."""
    p = argparse.ArgumentParser(description=description)
    common.add_output_args(p, reps=20, warmup=3)
    p.add_argument("--quick", action="store_true",
                   help="a small sweep around the design's targets instead of the full one")
    p.add_argument("--ops", type=common.name_list, default=OPS, help="gmm,empirical (default both)")
    p.add_argument("--dtypes", type=common.name_list, default=DTYPES, help="f32,f64 (default both)")
    p.add_argument("--variants", type=common.name_list, default=None,
                   help="comma-separated; of %s (default: %s)" % (
                       ", ".join("%s: %s" % (op, "/".join(v)) for op, v in variants.items()),
                       ",".join(sorted({x for v in defaults.values() for x in v}))))
    p.add_argument("--gmm-kinds", type=common.name_list, default=GMM_KINDS,
                   help="GMM covariances, comma-separated: isotropic,diagonal (default both)")
    for name, what in (("gmm-n", "N"), ("gmm-k", "K"), ("gmm-d", "d")):
        p.add_argument("--" + name, type=common.count_list, default=None,
                       help="keep only the GMM problems with these %s, comma-separated (default: every "
                            "problem of the sweep, or of --quick)" % what)
    for name, default, what in (("emp-n", EMP_NS, "empirical queries N"),
                                ("emp-m", EMP_MS, "empirical data points M"),
                                ("emp-d", EMP_DS, "empirical dimensions d")):
        p.add_argument("--" + name, type=common.count_list, default=None,
                       help="%s, comma-separated (default %s; --quick: %s)" % (
                           what, ",".join(map(common.pow10_label, default)),
                           ",".join(map(common.pow10_label, QUICK[name.replace("-", "_")]))))
    p.add_argument("--budget-gib", type=float, default=2.0,
                   help="largest intermediate tensor one chunk may create, GiB (default 2)")
    common.add_max_call_arg(p, "first call")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in float32 matmuls (default: full FP32)")
    if extra:
        extra(p)
    return p


def finish_args(p, a, variants, defaults):
    common.check_reps(p, a)
    common.check_dtypes(p, a.dtypes)
    common.check_known(p, "op", a.ops, OPS, "gmm or empirical")
    known = sorted({x for v in variants.values() for x in v})
    if a.variants is None:
        a.variants = sorted({x for v in defaults.values() for x in v})
    common.check_known(p, "variant", a.variants, known)
    common.check_known(p, "GMM covariance", a.gmm_kinds, GMM_KINDS)
    full = {"emp_n": EMP_NS, "emp_m": EMP_MS, "emp_d": EMP_DS}
    for key, default in full.items():
        if getattr(a, key) is None:
            setattr(a, key, QUICK[key] if a.quick else default)
        if any(v <= 0 for v in getattr(a, key)):
            p.error("--%s: sizes must be positive" % key.replace("_", "-"))
    sweep = QUICK_GMM_CASES if a.quick else GMM_CASES
    a.gmm_cases = [c for c in sweep if c[0] in a.gmm_kinds and all(
        want is None or v in want for v, want in zip(c[1:], (a.gmm_n, a.gmm_k, a.gmm_d)))]
    if "gmm" in a.ops and not a.gmm_cases:
        p.error("no GMM problem of the %s sweep has those sizes; its %s ones (N, K, d): %s" % (
            "--quick" if a.quick else "full", "/".join(a.gmm_kinds), ", ".join(
                "%s %d %d" % (common.pow10_label(c[1]), c[2], c[3]) for c in sweep if c[0] in a.gmm_kinds)))
    return a


def gmm_problems(a):
    """(dtype, kind, N, K, d) in the order of the Go benchmark."""
    for dt in a.dtypes:
        for kind, n, k, d in a.gmm_cases:
            yield dt, kind, n, k, d


def empirical_problems(a):
    """(dtype, N, M, d) in the order of the Go benchmark."""
    for dt in a.dtypes:
        for n in a.emp_n:
            for m in a.emp_m:
                for d in a.emp_d:
                    yield dt, n, m, d


def equal_chunks(total, per_chunk_bytes, budget_bytes):
    """The smallest number of equal chunks (a divisor of total) whose intermediate, per_chunk_bytes
    per unit of total, fits in budget_bytes; total when even one unit does not fit."""
    for c in range(1, total + 1):
        if total % c == 0 and (total // c) * per_chunk_bytes <= budget_bytes:
            return c
    return total


def problem_fields(library, variant, op, dtype, n, km, d, kind):
    """The fields every row has; a GMM row also names its covariance ("covariance": kind)."""
    fields = {"library": library, "variant": variant, "op": op}
    if op == "gmm":
        fields["covariance"] = kind
    fields.update({"dtype": dtype, "n": n, ("k" if op == "gmm" else "m"): km, "d": d})
    return fields


def op_label(r):
    """The op column of the table: "gmm/<covariance>" (the Go benchmark name's part) or "empirical"."""
    return "%s/%s" % (r["op"], r["covariance"]) if "covariance" in r else r["op"]


def result(library, variant, op, dtype, n, km, d, chunks, times_ms, flops, kind=None):
    med = statistics.median(times_ms)
    r = problem_fields(library, variant, op, dtype, n, km, d, kind)
    r.update({
        "chunks": chunks,
        "reps": len(times_ms), "ms": med, "min_ms": min(times_ms), "max_ms": max(times_ms),
        "flops": flops, "gflop_per_s": flops / (med * 1e-3) / 1e9,
        "go_benchmark": go_benchmark(op, dtype, n, km, d, kind),
    })
    return r


def skipped(library, variant, op, dtype, n, km, d, why, kind=None):
    why = str(why).strip().splitlines()[0][:200] if str(why).strip() else type(why).__name__
    r = problem_fields(library, variant, op, dtype, n, km, d, kind)
    print("%s %s %s %s N=%s %s=%s d=%d: skipped: %s" % (library, variant, op_label(r), dtype, common.pow10_label(n),
          "K" if op == "gmm" else "M", common.pow10_label(km), d, why), file=sys.stderr)
    sys.stderr.flush()
    r.update({"skipped": why, "go_benchmark": go_benchmark(op, dtype, n, km, d, kind)})
    return r


def print_table(rows, header):
    print(header)
    print()
    print("| library | variant | op | dtype | N | K or M | d | chunks | ms (median) | GFLOP/s |")
    print("|---|---|---|---|---|---|---|---:|---:|---:|")
    for r in rows:
        km = r.get("k", r.get("m"))
        head = "| %s | %s | %s | %s | %s | %s | %d |" % (r["library"], r["variant"], op_label(r), r["dtype"],
                                                      common.pow10_label(r["n"]), common.pow10_label(km), r["d"])
        if "skipped" in r:
            print("%s | skipped: %s | |" % (head, r["skipped"].replace("|", "/")))
        else:
            print("%s %d | %.4g | %.4g |" % (head, r["chunks"], r["ms"], r["gflop_per_s"]))
    sys.stdout.flush()


class Unavailable(Exception):
    """The library cannot run this variant (e.g. no torch.compile before torch 2.0)."""


# The GMM self-check's problems: n rows (a multiple of the 3 row blocks the check uses), K, d.
GMM_CHECK_N, GMM_CHECK_K, GMM_CHECK_D = 12, 5, 7


def gmm_check_problems(library):
    """Small float64 GMM problems and what they must give, for the self-checks of the torch and JAX
    peers: one per kind of GMM_KINDS, as (kind, inputs, log p, score) with inputs {"x", "mu", "var",
    "logw"} (var: (K) isotropic, (K, d) diagonal) and the outputs of score_numpy.gmm_definition, the
    NumPy definition that bench/numpy_test.go checks against scorekit's reference, at this module's
    noise level (a = 1, s = SIGMA^2). NumPy arrays; skips the peer (exit 0) without NumPy."""
    try:
        import numpy as np
        import score_numpy
    except ImportError as e:
        common.skip(library, "NumPy is not installed (%s); the self-check's reference needs it" % e)
    rng = np.random.default_rng(7)
    n, k, d = GMM_CHECK_N, GMM_CHECK_K, GMM_CHECK_D
    out = []
    for kind in GMM_KINDS:
        w = 0.5 + rng.random(k)
        inputs = {
            "x": 3 * rng.standard_normal((n, d)),
            "mu": 3 * rng.standard_normal((k, d)),
            "var": 0.5 + 1.5 * rng.random(k if kind == "isotropic" else (k, d)),
            "logw": np.log(w / w.sum()),
        }
        logp, score = score_numpy.gmm_definition(inputs["x"], inputs["logw"], inputs["mu"], inputs["var"],
                                                 1.0, SIGMA * SIGMA)
        out.append((kind, inputs, logp, score))
    return out


def check_close(library, what, got, want):
    """Stops the peer when got (a NumPy array) differs from want by more than 1e-9 (1 + max|want|)."""
    err = float(abs(got - want).max())
    if not err <= 1e-9 * (1 + float(abs(want).max())):
        raise AssertionError("%s self-check: %s differs from the definition by %g" % (library, what, err))


# ---- PyTorch -------------------------------------------------------------------------------

VARIANTS = {"gmm": ["eager", "compile", "matmul"], "empirical": ["eager", "chunked"]}
DEFAULTS = VARIANTS
LOG_2PI = math.log(2 * math.pi)
INV_2S2 = 1.0 / (2 * SIGMA * SIGMA)


def add_args(p):
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                   help="torch.compile mode of the compile variant (default: default)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cuda (default); cpu only checks that the script runs (host-clock timings, "
                        "not comparable with anything)")


def gmm_body(torch, x, mu_a, c, lognorm):
    """Isotropic, c (K): the straightforward form, an (n, K, d) difference tensor."""
    diff = x[:, None, :] - mu_a[None]                # (n, K, d)
    q = (diff * diff).sum(-1)                        # (n, K) quadratic forms
    r = lognorm - 0.5 * q / c                        # (n, K) log w_k + log N(x; a mu_k, c_k I)
    logp = torch.logsumexp(r, dim=1)
    gamma = torch.softmax(r, dim=1)                  # responsibilities
    score = -torch.einsum("nk,nkd->nd", gamma / c, diff)
    return score, logp


def gmm_body_matmul(torch, x, mu_a, c, lognorm):
    """Isotropic, c (K): the expanded form, GEMMs and (n, K) matrices only."""
    q = (x * x).sum(1, keepdim=True) - 2 * (x @ mu_a.T) + (mu_a * mu_a).sum(1)
    r = lognorm - 0.5 * q / c
    logp = torch.logsumexp(r, dim=1)
    w = torch.softmax(r, dim=1) / c
    score = w @ mu_a - x * w.sum(1, keepdim=True)
    return score, logp


def gmm_body_diag(torch, x, mu_a, c, lognorm):
    """Diagonal, c (K, d): the straightforward form, the (n, K, d) difference and its scaled twin
    g = C_k^-1 (x - a mu_k)."""
    diff = x[:, None, :] - mu_a[None]                # (n, K, d)
    g = diff / c                                     # (n, K, d) per-coordinate precisions
    r = lognorm - 0.5 * (diff * g).sum(-1)           # (n, K) log w_k + log N(x; a mu_k, diag c_k)
    logp = torch.logsumexp(r, dim=1)
    gamma = torch.softmax(r, dim=1)                  # responsibilities
    score = -torch.einsum("nk,nkd->nd", gamma, g)
    return score, logp


def gmm_body_diag_matmul(torch, x, mu_a, c, lognorm):
    """Diagonal, c (K, d): the expanded form sum_j (x_j^2 - 2 x_j m_kj + m_kj^2) / c_kj on GEMMs,
    (n, K) matrices only."""
    inv = 1.0 / c                                    # (K, d)
    m_inv = mu_a * inv
    q = (x * x) @ inv.T - 2 * (x @ m_inv.T) + (mu_a * m_inv).sum(1)
    r = lognorm - 0.5 * q
    logp = torch.logsumexp(r, dim=1)
    gamma = torch.softmax(r, dim=1)
    score = gamma @ m_inv - x * (gamma @ inv)
    return score, logp


# The GMM form of each (covariance, variant); compile runs the eager form under torch.compile.
GMM_BODIES = {
    ("isotropic", "eager"): gmm_body, ("isotropic", "compile"): gmm_body, ("isotropic", "matmul"): gmm_body_matmul,
    ("diagonal", "eager"): gmm_body_diag, ("diagonal", "compile"): gmm_body_diag,
    ("diagonal", "matmul"): gmm_body_diag_matmul,
}


def gmm_row_bytes(kind, variant, k, d, size):
    """The intermediates of one row of a GMM form, bytes: the (K, d) blocks of the eager forms (the
    difference and its square; diagonal: also the scaled difference), the (K) and (d) vectors of
    the expanded ones."""
    if variant == "matmul":
        return (3 * k + (3 if kind == "diagonal" else 2) * d) * size
    return ((3 if kind == "diagonal" else 2) * k * d + 4 * k) * size


def gmm_call(torch, f, x, mu, var, logw, score, logp, chunks):
    """One GMM evaluation into (score, logp): the per-noise-level constants (K and K x d arrays:
    a mu_k, c = a^2 v + s, the log-normalisers), then f on `chunks` equal row blocks. var is (K)
    for an isotropic mixture, (K, d) for a diagonal one."""
    n, d = x.shape
    rows = n // chunks
    a, s = 1.0, SIGMA * SIGMA

    def call():
        c = a * a * var + s
        logdet = d * torch.log(c) if c.dim() == 1 else torch.log(c).sum(1)
        mu_a, lognorm = a * mu, logw - 0.5 * (d * LOG_2PI + logdet)
        for i in range(chunks):
            lo, hi = i * rows, (i + 1) * rows
            sc, lp = f(x[lo:hi], mu_a, c, lognorm)
            score[lo:hi].copy_(sc)
            logp[lo:hi].copy_(lp)
    return call


def empirical_eager_call(torch, x, y, den):
    """softmax(-cdist(x, y)^2 / (2 sigma^2)) @ y, the whole N x M matrix at once."""
    def call():
        w = torch.softmax(-torch.cdist(x, y).square() * INV_2S2, dim=1)
        torch.matmul(w, y, out=den)
    return call


def empirical_chunked_call(torch, x, y, den, mc):
    """The same over chunks of mc data points with an online softmax."""
    n, d = x.shape

    def call():
        run_max = torch.full((n, 1), -math.inf, device=x.device, dtype=x.dtype)
        run_sum = torch.zeros(n, 1, device=x.device, dtype=x.dtype)
        acc = torch.zeros(n, d, device=x.device, dtype=x.dtype)
        for yc in y.split(mc):
            logits = torch.cdist(x, yc).square_().mul_(-INV_2S2)
            new_max = torch.maximum(run_max, logits.amax(1, keepdim=True))
            scale = torch.exp(run_max - new_max)
            pc = logits.sub_(new_max).exp_()
            run_sum = run_sum * scale + pc.sum(1, keepdim=True)
            acc = torch.addmm(acc * scale, pc, yc)
            run_max = new_max
        torch.div(acc, run_sum, out=den)
    return call


def self_check(torch, dev):
    """Every variant on small float64 problems, chunked code paths included: the GMM forms of both
    covariances (the eager one is also compile's) against the NumPy definition, the denoisers
    against the definition. A peer that computes something else would time the wrong thing."""
    import numpy as np  # gmm_check_problems has skipped the peer when NumPy is missing

    def tensor(a):
        return torch.tensor(a.tolist(), dtype=torch.float64, device=dev)

    for kind, inputs, ref_logp, ref_score in gmm_check_problems(LIBRARY):
        x, mu, var, logw = (tensor(inputs[v]) for v in ("x", "mu", "var", "logw"))
        n, d = x.shape
        for name in ("eager", "matmul"):
            body = GMM_BODIES[kind, name]
            score, logp = torch.empty_like(x), torch.empty(n, device=dev, dtype=x.dtype)
            gmm_call(torch, lambda *a, body=body: body(torch, *a), x, mu, var, logw, score, logp, 3)()
            check_close(LIBRARY, "gmm %s %s log p" % (kind, name), np.array(logp.cpu().tolist()), ref_logp)
            check_close(LIBRARY, "gmm %s %s score" % (kind, name), np.array(score.cpu().tolist()), ref_score)
    g = torch.Generator(device=dev)
    g.manual_seed(7)
    n, d = GMM_CHECK_N, GMM_CHECK_D
    m = 40
    y = torch.randn(m, d, generator=g, device=dev, dtype=torch.float64)
    xq = 1.2 * torch.randn(n, d, generator=g, device=dev, dtype=torch.float64)
    w = torch.softmax(-((xq[:, None, :] - y[None]) ** 2).sum(-1) * INV_2S2, dim=1)
    ref = w @ y
    for name, make in (("eager", lambda den: empirical_eager_call(torch, xq, y, den)),
                       ("chunked", lambda den: empirical_chunked_call(torch, xq, y, den, 8))):
        den = torch.empty_like(xq)
        make(den)()
        err = (den - ref).abs().max().item()
        if not err <= 1e-9:
            raise AssertionError("self-check: empirical %s differs from the definition by %g" % (name, err))


def main():
    p = parse_args(VARIANTS, DEFAULTS,
                   "Time PyTorch on the problems of scorekit's BenchmarkGMMScoreCUDA and "
                   "BenchmarkEmpiricalScoreCUDA.", add_args)
    args = finish_args(p, p.parse_args(), VARIANTS, DEFAULTS)
    on_gpu = args.device == "cuda"
    torch = common.import_torch(LIBRARY, cuda=on_gpu)
    import torch_common

    if on_gpu:
        dev = torch.device("cuda", 0)
        props = torch.cuda.get_device_properties(dev)
        device_name, device_memory = props.name, props.total_memory
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    else:
        dev = torch.device("cpu")
        device_name, device_memory = "cpu (script check only)", 0
    self_check(torch, dev)
    meta = {
        "library": LIBRARY, "version": torch.__version__, "cuda": torch.version.cuda,
        "device": device_name, "device_memory_bytes": device_memory,
        "reps": args.reps, "warmup": args.warmup, "tf32": args.tf32, "compile_mode": args.compile_mode,
        "budget_gib": args.budget_gib, "sigma": SIGMA,
        "timing": "CUDA events around each call, median" if on_gpu else "host clock (cpu check run)",
        "flops": "scorekit's counts: GMM (6d+6) per (row, component), isotropic and diagonal; empirical (5d+6) "
                 "per (query, point)",
    }
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    budget = int(args.budget_gib * (1 << 30))
    gen = torch.Generator(device=dev)

    def sync():
        if on_gpu:
            torch.cuda.synchronize(dev)

    def timed(fn):
        """Per-call times in ms after the warm-up; TooSlow when the first call is too long."""
        t0 = time.perf_counter()
        fn()
        sync()
        first = time.perf_counter() - t0
        if first > args.max_call_s:
            raise common.TooSlow("one call takes %.1f s (--max-call-s %g)" % (first, args.max_call_s))
        for _ in range(args.warmup - 1):
            fn()
        sync()
        if on_gpu:
            return torch_common.event_times(dev, fn, args.reps)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    def free_bytes():
        if on_gpu:
            return torch.cuda.mem_get_info(dev)[0] - (256 << 20)
        return 1 << 62

    def release():
        if on_gpu:
            torch.cuda.synchronize(dev)
            torch.cuda.empty_cache()

    rows = []

    def run(variant, op, dt, n, km, d, flops, make, kind=None):
        """make() returns (call, chunks); out of memory, too slow and compile failures become
        skipped rows, anything else is a bug and stops the script. kind: the GMM's covariance."""
        try:
            call, chunks = make()
            rows.append(result(LIBRARY, variant, op, dt, n, km, d, chunks, timed(call), flops, kind))
        except Exception as e:  # noqa: BLE001
            why = common.skip_reason(e, variant, {"compile": "torch.compile"},
                                     direct=(common.TooSlow, Unavailable, MemoryError))
            if why is None:
                raise
            rows.append(skipped(LIBRARY, variant, op, dt, n, km, d, why, kind))
        finally:
            release()

    if "gmm" in args.ops:
        names = [v for v in VARIANTS["gmm"] if v in args.variants]
        for dt, kind, n, k, d in gmm_problems(args) if names else ():
            dtype, size = dtypes[dt], BYTES[dt]
            flops = gmm_flops(n, k, d)
            need = size * (2 * n * d + n + 2 * k * d + 2 * k)
            if need > free_bytes():
                for v in names:
                    rows.append(skipped(LIBRARY, v, "gmm", dt, n, k, d, "out of memory: inputs and outputs need %.1f GiB"
                                        % (need / 2**30), kind))
                continue
            gen.manual_seed(n * 1000003 + k * 1009 + d)
            x = 3 * torch.randn(n, d, generator=gen, device=dev, dtype=dtype)
            mu = 3 * torch.randn(k, d, generator=gen, device=dev, dtype=dtype)
            # the variances: one per component (isotropic) or per component and coordinate (diagonal)
            var_shape = (k,) if kind == "isotropic" else (k, d)
            var = 0.5 + 1.5 * torch.rand(var_shape, generator=gen, device=dev, dtype=dtype)
            logw = torch.log_softmax(torch.log(0.5 + torch.rand(k, generator=gen, device=dev, dtype=dtype)), 0)
            score = torch.empty(n, d, device=dev, dtype=dtype)
            logp = torch.empty(n, device=dev, dtype=dtype)
            for variant in names:
                body = GMM_BODIES[kind, variant]
                chunks = equal_chunks(n, gmm_row_bytes(kind, variant, k, d, size), budget)

                def make(variant=variant, body=body, chunks=chunks):
                    def f(*a):
                        return body(torch, *a)
                    if variant == "compile":
                        if not hasattr(torch, "compile"):
                            raise Unavailable("torch.compile needs torch >= 2.0 (this is %s)" % torch.__version__)
                        torch._dynamo.reset()
                        f = torch.compile(f, mode=args.compile_mode, dynamic=False, fullgraph=True)
                    call = gmm_call(torch, f, x, mu, var, logw, score, logp, chunks)
                    if variant == "compile":
                        call()  # compiles here, outside the --max-call-s check of the first timed call
                        sync()
                    return call, chunks

                run(variant, "gmm", dt, n, k, d, flops, make, kind)
            x = mu = var = logw = score = logp = None
            release()

    if "empirical" in args.ops:
        names = [v for v in VARIANTS["empirical"] if v in args.variants]
        for dt, n, m, d in empirical_problems(args) if names else ():
            dtype, size = dtypes[dt], BYTES[dt]
            flops = empirical_flops(n, m, d)
            need = size * (2 * n * d + m * d)
            if need > free_bytes():
                for v in names:
                    rows.append(skipped(LIBRARY, v, "empirical", dt, n, m, d,
                                        "out of memory: inputs and outputs need %.1f GiB" % (need / 2**30)))
                continue
            gen.manual_seed(n * 1000003 + m * 1009 + d)
            y = torch.randn(m, d, generator=gen, device=dev, dtype=dtype)
            x = 1.2 * torch.randn(n, d, generator=gen, device=dev, dtype=dtype)
            den = torch.empty(n, d, device=dev, dtype=dtype)
            for variant in names:
                if variant == "eager":
                    def make():
                        need = 3 * n * m * size  # cdist, its square, the softmax
                        if need > free_bytes():
                            raise MemoryError("out of memory: the N x M matrices need %.1f GiB" % (need / 2**30))
                        return empirical_eager_call(torch, x, y, den), 1
                else:
                    def make():
                        chunks = equal_chunks(m, 3 * n * size, budget)
                        if 3 * n * (m // chunks) * size > budget:
                            raise MemoryError("out of memory: one N x 1 block exceeds --budget-gib")
                        return empirical_chunked_call(torch, x, y, den, m // chunks), chunks
                run(variant, "empirical", dt, n, m, d, flops, make)
            x = y = den = None
            release()

    print_table(rows, "PyTorch %s (CUDA %s) on %s, %s, median of %d reps after %d warm-up calls; "
                "GFLOP/s by scorekit's FLOP counts" % (torch.__version__, torch.version.cuda, device_name,
                                                       "TF32 allowed" if args.tf32 else "TF32 off", args.reps,
                                                       args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
