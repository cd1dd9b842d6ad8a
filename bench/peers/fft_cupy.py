#!/usr/bin/env python3
"""CuPy peer of scorekit's BenchmarkFFTCUDA: cupy.fft.fft (cuFFT) on the same problems.

The sweep, the bandwidth accounting and the table are those of fft_torch.py (imported from it;
torch itself is not needed): batch signals of n complex values, n = 2^4 ... 2^22, batch = 2^26 / n,
complex64 ("f32") and complex128 ("f64"), forward along the last axis. cupy.fft.fft returns a new
array each call; after the warm-up its memory comes from CuPy's memory pool (no device allocation)
and its cuFFT plan from CuPy's plan cache, so the timed call is the transform and the pool's
bookkeeping. Each repetition is timed with a pair of CUDA events on the current stream; the table
reports the median over --reps after --warmup untimed calls. Before timing, cupy.fft.fft is
checked against the direct O(n^2) sum on a small float64 problem.

    python3 fft_cupy.py [--json cupy-fft.json] [--reps 50] [--logn 4:22] [--total 2^26] [--dtypes f32,f64]

Exits 0 with a message when CuPy or a CUDA device is missing. Needs no network access.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fft_torch as sweep  # noqa: E402  (standard-library parts only; torch is imported in its main)

LIBRARY = "cupy"


def main():
    args = sweep.parse_args("CuPy")
    cupy, props, name = common.import_cupy(LIBRARY)
    sweep.check_against_definition(
        lambda rows: cupy.fft.fft(cupy.asarray(rows, dtype=cupy.complex128), axis=-1),
        lambda a: cupy.asnumpy(a).tolist(), "cupy.fft.fft")
    meta = common.cupy_meta(LIBRARY, cupy, props, name, args, "CUDA events around each call, median")
    dtypes = {"f32": (cupy.float32, cupy.complex64), "f64": (cupy.float64, cupy.complex128)}
    pool = cupy.get_default_memory_pool()
    rng = cupy.random.default_rng(0x5EED)

    rows = []
    for dt, n, batch in sweep.problems(args):
        label = "%s fft %s %dx%d" % (LIBRARY, dt, batch, n)
        nbytes = sweep.buffer_bytes(dt, n, batch)
        free, _ = cupy.cuda.runtime.memGetInfo()
        free += pool.free_bytes()
        if 2 * nbytes + sweep.HEADROOM > free:
            common.note_skip(label, "needs 2 x %d MiB, %d MiB free" % (nbytes >> 20, free >> 20))
            continue

        def make_call(shape=(batch, n), types=dtypes[dt]):
            real, cplx = types
            x = (rng.standard_normal(shape, dtype=real) + 1j * rng.standard_normal(shape, dtype=real)).astype(cplx)
            return lambda: cupy.fft.fft(x, axis=-1)

        times = common.cupy_time_problem(cupy, label, make_call, args.warmup, args.reps)
        if times is not None:
            rows.append(sweep.row(LIBRARY, dt, n, batch, times))

    common.print_table(rows, "CuPy %s on %s: cupy.fft.fft, median of %d reps after %d warm-up calls"
                       % (cupy.__version__, name, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
