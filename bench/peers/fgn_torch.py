#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkFGNCUDA: fractional Gaussian noise by Davies-Harte with
torch.fft on the same problems.

The sweep of bench/fgn_cuda_test.go: H = 0.7, n = 2^10, 2^12, ..., 2^20 with paths = 2^26 / n, and
n = 2^16 with 1024 paths; float32 and float64; two forms, "increments" (unit-step fGn) and "path"
(the running sums: fBM on [0, 1], scaled by (1/n)^H). The method is scorekit's (ops/fgn.go): n_e the
power of two >= max(n, 2), m = 2 n_e, s = sqrt(rfft(c) / m) for the circulant row c of the fGn
autocovariance, computed once per problem in float64 outside the timed region; each timed call
draws m standard normals per path (torch.randn), forms the half spectrum
conj(V_j) = s_j (xi_{2j} - i xi_{2j+1}) / sqrt(2) (V_0 = s_0 xi_0, V_{n_e} = s_{n_e} xi_1), and
takes Z = irfft(conj(V), n=m, norm="forward") -- the unnormalised Hermitian inverse real FFT,
which equals scorekit's forward complex FFT of the Hermitian vector V and costs half of it -- then
keeps Z[:, :n], scaled, and for "path" its cumulative sum. This is how a PyTorch user would write
it; the result is not the same numbers as scorekit's (another generator), only the same law.

Each repetition is timed with its own pair of CUDA events on the current stream; the table reports
the median over --reps repetitions after --warmup untimed calls and the output bandwidth
paths * n * (4 or 8) bytes / median time, scorekit's "GB/s" for this benchmark; the JSON rows add
samples/s. Before timing, the transform is checked against the direct real-form sum of ops/fgn.go
on a small float64 problem (a peer that computed something else would time the wrong thing).

    python3 fgn_torch.py [--json torch-fgn.json] [--reps 50] [--logn 10:20] [--total 2^26]
                         [--dtypes f32,f64] [--forms increments,path]

The module level uses the standard library only (fgn_cupy.py imports the sweep, the table and the
checks from here). Exits 0 with a message when torch or a CUDA device is missing. Needs no
network access.
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"
HURST = 0.7
DEFAULT_LOGN = (10, 20)
EXTRA = [(1 << 16, 1024)]  # (n, paths) problems beyond the sweep
FORMS = ["increments", "path"]
HEADROOM = 256 << 20  # bytes left free next to the buffers (cuFFT's work area, the context)


def parse_args(library):
    p = argparse.ArgumentParser(
        description="Time Davies-Harte fractional Gaussian noise written with %s's FFT on the GPU for "
        "the problems of scorekit's BenchmarkFGNCUDA." % library
    )
    common.add_output_args(p, reps=50, warmup=5)
    common.add_log2_sweep_args(p, DEFAULT_LOGN, "range of log2 n, inclusive, even steps (default 10:20)",
                               "output values per problem, paths = total / n (default 2^26)")
    p.add_argument("--no-extra", action="store_true", help="leave out n = 2^16 x 1024 paths")
    p.add_argument("--dtypes", type=common.name_list, default=["f32", "f64"], help="f32,f64 (default both)")
    p.add_argument("--forms", type=common.name_list, default=FORMS, help="increments,path (default both)")
    a = p.parse_args()
    common.check_reps(p, a)
    lo, hi = common.log2_range(p, a.logn, "10:20", 23)
    a.cases = [(1 << k, a.total >> k) for k in range(lo, hi + 1, 2)]
    for n, _ in a.cases:
        if a.total % n:
            p.error("--total %d is not a multiple of n = %d" % (a.total, n))
    if not a.no_extra:
        a.cases += EXTRA
    common.check_dtypes(p, a.dtypes)
    common.check_known(p, "form", a.forms, FORMS, "increments or path")
    return a


def problems(args):
    """(dtype, form, n, paths) in the order of the Go benchmark."""
    for dt in args.dtypes:
        for form in args.forms:
            for n, paths in args.cases:
                yield dt, form, n, paths


def embed_size(n):
    """n_e: the smallest power of two >= max(n, 2)."""
    ne = 2
    while ne < n:
        ne *= 2
    return ne


def work_bytes(dt, n, paths):
    """Device memory of one call at its peak: the normals (m per path), the half spectrum (n_e + 1
    complex values per path), the transform's output (m per path) and the result (n per path)."""
    ne = embed_size(n)
    size = common.BYTES_PER_ELEMENT[dt]
    return paths * size * (2 * ne + 2 * (ne + 1) + 2 * ne + n)


def rho(hurst, k):
    """The fGn autocovariance at lag k >= 0, evaluated without the closed form's cancellation:
    1/2 k^a (expm1(a log1p(1/k)) + expm1(a log1p(-1/k))), a = 2H."""
    if k == 0:
        return 1.0
    a = 2 * hurst
    x = 1.0 / k
    lo = math.expm1(a * math.log1p(-x)) if k > 1 else -1.0
    return 0.5 * k ** a * (math.expm1(a * math.log1p(x)) + lo)


def circulant_row(hurst, ne):
    """c = (rho(0), ..., rho(n_e), rho(n_e - 1), ..., rho(1)), length 2 n_e."""
    r = [rho(hurst, k) for k in range(ne + 1)]
    return r + r[ne - 1:0:-1]


def check_eigenvalues(lam_min, lam_max):
    """The circulant embedding is valid: no eigenvalue below -1e-12 of the largest (rounding)."""
    if lam_min < -1e-12 * lam_max:
        raise ValueError("negative circulant eigenvalue %g" % lam_min)


def weights(s):
    """w_j = s_j / sqrt(2) for 0 < j < n_e; w_0 = s_0, w_ne = s_ne (s an array of any library)."""
    w = s / math.sqrt(2)
    w[0], w[-1] = s[0], s[-1]
    return w


def direct(s, xi, n):
    """The real form of ops/fgn.go: Z_k = s_0 xi_0 + (-1)^k s_ne xi_1
    + sqrt(2) sum_{j=1}^{ne-1} s_j (xi_{2j} cos t + xi_{2j+1} sin t), t = 2 pi j k / m."""
    ne = len(s) - 1
    m = 2 * ne
    out = []
    for k in range(n):
        z = s[0] * xi[0] + (-1) ** k * s[ne] * xi[1]
        for j in range(1, ne):
            t = 2 * math.pi * ((j * k) % m) / m
            z += math.sqrt(2) * s[j] * (xi[2 * j] * math.cos(t) + xi[2 * j + 1] * math.sin(t))
        out.append(z)
    return out


def check_against_definition(spectrum, transform, name):
    """spectrum(hurst, ne) -> list s (float64); transform(s, xi_rows, n) -> list of rows (float64).
    Checks the eigenvalues against direct cosine sums and the transform against direct()."""
    ne, n = 8, 7
    m = 2 * ne
    s = spectrum(HURST, ne)
    c = circulant_row(HURST, ne)
    for j in range(ne + 1):
        lam = sum(c[k] * math.cos(2 * math.pi * ((j * k) % m) / m) for k in range(m))
        if abs(s[j] * s[j] * m - lam) > 1e-12 * max(1.0, abs(lam)):
            print("%s: eigenvalue %d is %.17g, direct sum %.17g: not timing it" % (name, j, s[j] * s[j] * m, lam))
            sys.exit(1)
    rows = [[math.sin(0.7 * (i * 31 + j) + 0.2) * 1.3 for j in range(m)] for i in range(3)]
    got = transform(s, rows, n)
    for r, g in zip(rows, got):
        want = direct(s, r, n)
        err = max(abs(a - b) for a, b in zip(g, want))
        if err > 1e-12:
            print("%s: Davies-Harte disagrees with the definition (max error %.3g): not timing it" % (name, err))
            sys.exit(1)


def row(library, dt, form, n, paths, times_ms):
    """One result: the median of times_ms, the output bandwidth and samples/s."""
    nbytes = n * paths * common.BYTES_PER_ELEMENT[dt]
    timing = common.timing_fields(times_ms, nbytes)
    return {
        "library": library,
        "op": "fgn-" + form,
        "dtype": dt,
        "hurst": HURST,
        "n": n,
        "n_label": common.count_label(n),
        "paths": paths,
        "shape": "%dx%d" % (paths, n),
        "bytes": nbytes,
        **timing,
        "samples_per_s": n * paths / (timing["ms"] * 1e-3),
        "go_benchmark": "BenchmarkFGNCUDA/%s/%s/n=%s/paths=%d" % (dt, form, common.count_label(n), paths),
    }


def print_samples(rows):
    """The samples/s of every row (the Go benchmark's "samples/s" metric)."""
    print()
    print("| library | op | dtype | n | shape | samples/s |")
    print("|---|---|---|---|---|---:|")
    for r in rows:
        print("| %s | %s | %s | %s | %s | %.4g |" % (r["library"], r["op"], r["dtype"], r["n_label"], r["shape"],
                                                   r["samples_per_s"]))
    sys.stdout.flush()


def main():
    args = parse_args("PyTorch")
    torch = common.import_torch(LIBRARY)
    import torch_common

    dev = torch.device("cuda", 0)

    def spectrum(hurst, ne):
        """s = sqrt(max(rfft(c), 0) / m) in float64 on the CPU (once per problem)."""
        c = torch.tensor(circulant_row(hurst, ne), dtype=torch.float64)
        lam = torch.fft.rfft(c).real
        check_eigenvalues(float(lam.min()), float(lam.max()))
        return torch.sqrt(lam.clamp(min=0) / (2 * ne))

    def dh(w, xi, n, scale, path):
        """Davies-Harte from the normals xi (paths, m)."""
        ne = w.shape[0] - 1
        re = xi[:, 0::2] * w[:ne]
        im = xi[:, 1::2] * w[:ne]
        half = torch.empty((xi.shape[0], ne + 1), dtype=torch.complex64 if xi.dtype == torch.float32
                           else torch.complex128, device=xi.device)
        half[:, :ne] = torch.complex(re, -im)
        half[:, 0] = xi[:, 0] * w[0]
        half[:, ne] = xi[:, 1] * w[ne]
        z = torch.fft.irfft(half, n=2 * ne, dim=-1, norm="forward")[:, :n]
        z = z * scale
        return torch.cumsum(z, dim=-1) if path else z

    def transform(s, rows, n):
        w = weights(torch.tensor(s, dtype=torch.float64)).to(dev)
        xi = torch.tensor(rows, dtype=torch.float64, device=dev)
        return dh(w, xi, n, 1.0, False).cpu().tolist()

    check_against_definition(lambda h, ne: spectrum(h, ne).tolist(), transform, "torch Davies-Harte")
    meta = torch_common.device_meta(dev, args, "CUDA events around each call (randn, irfft, scale, cumsum), median",
                                    hurst=HURST)
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    gen = torch.Generator(device=dev)
    gen.manual_seed(0x5EED)

    rows = []
    for dt, form, n, paths in problems(args):
        label = "%s fgn %s %s %dx%d" % (LIBRARY, form, dt, paths, n)
        need = work_bytes(dt, n, paths)
        free, _ = torch.cuda.mem_get_info(dev)
        if need + HEADROOM > free:
            common.note_skip(label, "needs %d MiB, %d MiB free" % (need >> 20, free >> 20))
            continue

        def make_call(n=n, paths=paths, dtype=dtypes[dt], path=form == "path"):
            ne = embed_size(n)
            w = weights(spectrum(HURST, ne)).to(device=dev, dtype=dtype)
            scale = (1.0 / n) ** HURST if path else 1.0

            def call():
                xi = torch.randn((paths, 2 * ne), dtype=dtype, device=dev, generator=gen)
                return dh(w, xi, n, scale, path)
            return call

        times = torch_common.time_problem(dev, label, make_call, args.warmup, args.reps, fft=True)
        if times is not None:
            rows.append(row(LIBRARY, dt, form, n, paths, times))

    common.print_table(rows, "PyTorch %s (CUDA %s) on %s: Davies-Harte fGn (H = %g) with torch.fft.irfft, "
                       "median of %d reps after %d warm-up calls"
                       % (torch.__version__, torch.version.cuda, meta["device"], HURST, args.reps, args.warmup))
    print_samples(rows)
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
