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

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fgn_torch as sweep  # noqa: E402  (standard-library parts only; torch is imported in its main)

LIBRARY = "cupy"


def main():
    args = sweep.parse_args("CuPy")
    try:
        import cupy
    except ImportError as e:
        common.skip(LIBRARY, "CuPy is not installed (%s)" % e)
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            common.skip(LIBRARY, "CuPy %s sees no CUDA device" % cupy.__version__)
    except cupy.cuda.runtime.CUDARuntimeError as e:
        common.skip(LIBRARY, "CuPy %s sees no CUDA device (%s)" % (cupy.__version__, e))

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])

    def spectrum(hurst, ne):
        """s = sqrt(max(rfft(c), 0) / m) in float64 (once per problem)."""
        c = cupy.asarray(sweep.circulant_row(hurst, ne), dtype=cupy.float64)
        lam = cupy.fft.rfft(c).real
        if float(lam.min()) < -1e-12 * float(lam.max()):
            raise ValueError("negative circulant eigenvalue %g" % float(lam.min()))
        return cupy.sqrt(cupy.maximum(lam, 0) / (2 * ne))

    def weights(s):
        """w_j = s_j / sqrt(2) for 0 < j < n_e; w_0 = s_0, w_ne = s_ne."""
        w = s / math.sqrt(2)
        w[0], w[-1] = s[0], s[-1]
        return w

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
        w = weights(cupy.asarray(s, dtype=cupy.float64))
        xi = cupy.asarray(rows, dtype=cupy.float64)
        return cupy.asnumpy(dh(w, xi, n, 1.0, False)).tolist()

    sweep.check_against_definition(lambda h, ne: cupy.asnumpy(spectrum(h, ne)).tolist(), transform,
                                   "cupy Davies-Harte")
    meta = {
        "library": LIBRARY,
        "version": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "device": name,
        "device_memory_bytes": props["totalGlobalMem"],
        "hurst": sweep.HURST,
        "reps": args.reps,
        "warmup": args.warmup,
        "timing": "CUDA events around each call (standard_normal, irfft, scale, cumsum), median",
    }
    dtypes = {"f32": cupy.float32, "f64": cupy.float64}
    pool = cupy.get_default_memory_pool()
    rng = cupy.random.default_rng(0x5EED)

    rows = []
    for dt, form, n, paths in sweep.problems(args):
        need = sweep.work_bytes(dt, n, paths)
        free, _ = cupy.cuda.runtime.memGetInfo()
        free += pool.free_bytes()
        if need + sweep.HEADROOM > free:
            print("%s fgn %s %s %dx%d: skipped: needs %d MiB, %d MiB free"
                  % (LIBRARY, form, dt, paths, n, need >> 20, free >> 20), file=sys.stderr)
            continue
        ne = sweep.embed_size(n)
        w = weights(spectrum(sweep.HURST, ne)).astype(dtypes[dt])
        scale = (1.0 / n) ** sweep.HURST if form == "path" else 1.0
        path = form == "path"

        def call():
            xi = rng.standard_normal((paths, 2 * ne), dtype=dtypes[dt])
            return dh(w, xi, n, scale, path)

        try:
            for _ in range(args.warmup):
                call()
            cupy.cuda.Device(0).synchronize()
            starts = [cupy.cuda.Event() for _ in range(args.reps)]
            ends = [cupy.cuda.Event() for _ in range(args.reps)]
            for s, e in zip(starts, ends):
                s.record()
                call()
                e.record()
            ends[-1].synchronize()
            times = [cupy.cuda.get_elapsed_time(s, e) for s, e in zip(starts, ends)]  # milliseconds
        except cupy.cuda.memory.OutOfMemoryError as e:
            print("%s fgn %s %s %dx%d: skipped: %s" % (LIBRARY, form, dt, paths, n, str(e).splitlines()[0]),
                  file=sys.stderr)
            continue
        finally:
            w = None
            cupy.fft.config.get_plan_cache().clear()
            pool.free_all_blocks()
        rows.append(sweep.row(LIBRARY, dt, form, n, paths, times))

    common.print_table(rows, "CuPy %s on %s: Davies-Harte fGn (H = %g) with cupy.fft.irfft, median of %d reps "
                       "after %d warm-up calls" % (cupy.__version__, name, sweep.HURST, args.reps, args.warmup))
    sweep.print_samples(rows)
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
