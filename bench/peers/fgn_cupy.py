#!/usr/bin/env python3
"""CuPy peer of scorekit's BenchmarkFGNCUDA: fractional Gaussian noise by Davies-Harte with
cupy.fft (cuFFT) on the same problems.

The sweep, the method, the output bandwidth accounting, the table and the check against the
definition are those of fgn_torch.py (imported from it; torch itself is not needed): H = 0.7,
n = 2^10 ... 2^20 (even powers) with paths = 2^26 / n and n = 2^16 x 1024 paths, float32 and
float64, "increments" and "path". Each timed call draws m = 2 n_e standard normals per path with
cupy.random.Generator.standard_normal, forms the half spectrum and takes
cupy.fft.irfft(..., n=m, norm="forward")[:, :n] (scaled; cupy.cumsum for "path"). Arrays come from
CuPy's memory pool after the warm-up (no device allocation) and cuFFT plans from its plan cache.
Each repetition is timed with a pair of CUDA events on the current stream; the table reports the
median over --reps after --warmup untimed calls.

    python3 fgn_cupy.py [--json cupy-fgn.json] [--reps 50] [--logn 10:20] [--total 2^26]
                        [--dtypes f32,f64] [--forms increments,path]

Exits 0 with a message when CuPy or a CUDA device is missing. Needs no network access.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fgn_torch as sweep  # noqa: E402  (standard-library parts only; torch is imported in its main)

LIBRARY = "cupy"


def main():
    args = sweep.parse_args("CuPy")
    cupy, props, name = common.import_cupy(LIBRARY)

    def spectrum(hurst, ne):
        """s = sqrt(max(rfft(c), 0) / m) in float64 (once per problem)."""
        c = cupy.asarray(sweep.circulant_row(hurst, ne), dtype=cupy.float64)
        lam = cupy.fft.rfft(c).real
        sweep.check_eigenvalues(float(lam.min()), float(lam.max()))
        return cupy.sqrt(cupy.maximum(lam, 0) / (2 * ne))

    def dh(w, xi, n, scale, path):
        """Davies-Harte from the normals xi (paths, m)."""
        ne = w.shape[0] - 1
        cplx = cupy.complex64 if xi.dtype == cupy.float32 else cupy.complex128
        half = cupy.empty((xi.shape[0], ne + 1), dtype=cplx)
        half.real[:, :ne] = xi[:, 0::2] * w[:ne]
        half.imag[:, :ne] = -(xi[:, 1::2] * w[:ne])
        half[:, 0] = xi[:, 0] * w[0]
        half[:, ne] = xi[:, 1] * w[ne]
        z = cupy.fft.irfft(half, n=2 * ne, axis=-1, norm="forward")[:, :n]
        z = z * z.dtype.type(scale)
        return cupy.cumsum(z, axis=-1) if path else z

    def transform(s, rows, n):
        w = sweep.weights(cupy.asarray(s, dtype=cupy.float64))
        xi = cupy.asarray(rows, dtype=cupy.float64)
        return cupy.asnumpy(dh(w, xi, n, 1.0, False)).tolist()

    sweep.check_against_definition(lambda h, ne: cupy.asnumpy(spectrum(h, ne)).tolist(), transform,
                                   "cupy Davies-Harte")
    meta = common.cupy_meta(LIBRARY, cupy, props, name, args,
                            "CUDA events around each call (standard_normal, irfft, scale, cumsum), median",
                            hurst=sweep.HURST)
    dtypes = {"f32": cupy.float32, "f64": cupy.float64}
    pool = cupy.get_default_memory_pool()
    rng = cupy.random.default_rng(0x5EED)

    rows = []
    for dt, form, n, paths in sweep.problems(args):
        label = "%s fgn %s %s %dx%d" % (LIBRARY, form, dt, paths, n)
        need = sweep.work_bytes(dt, n, paths)
        free, _ = cupy.cuda.runtime.memGetInfo()
        free += pool.free_bytes()
        if need + sweep.HEADROOM > free:
            common.note_skip(label, "needs %d MiB, %d MiB free" % (need >> 20, free >> 20))
            continue

        def make_call(n=n, paths=paths, dtype=dtypes[dt], path=form == "path"):
            ne = sweep.embed_size(n)
            w = sweep.weights(spectrum(sweep.HURST, ne)).astype(dtype)
            scale = (1.0 / n) ** sweep.HURST if path else 1.0

            def call():
                xi = rng.standard_normal((paths, 2 * ne), dtype=dtype)
                return dh(w, xi, n, scale, path)
            return call

        times = common.cupy_time_problem(cupy, label, make_call, args.warmup, args.reps)
        if times is not None:
            rows.append(sweep.row(LIBRARY, dt, form, n, paths, times))

    common.print_table(rows, "CuPy %s on %s: Davies-Harte fGn (H = %g) with cupy.fft.irfft, median of %d reps "
                       "after %d warm-up calls" % (cupy.__version__, name, sweep.HURST, args.reps, args.warmup))
    sweep.print_samples(rows)
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
