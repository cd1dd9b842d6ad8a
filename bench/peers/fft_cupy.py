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
    sweep.check_against_definition(
        lambda rows: cupy.fft.fft(cupy.asarray(rows, dtype=cupy.complex128), axis=-1),
        lambda a: cupy.asnumpy(a).tolist(), "cupy.fft.fft")
    meta = {
        "library": LIBRARY,
        "version": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "device": name,
        "device_memory_bytes": props["totalGlobalMem"],
        "reps": args.reps,
        "warmup": args.warmup,
        "timing": "CUDA events around each call, median",
    }
    dtypes = {"f32": (cupy.float32, cupy.complex64), "f64": (cupy.float64, cupy.complex128)}
    pool = cupy.get_default_memory_pool()
    rng = cupy.random.default_rng(0x5EED)

    rows = []
    for dt, n, batch in sweep.problems(args):
        nbytes = sweep.buffer_bytes(dt, n, batch)
        free, _ = cupy.cuda.runtime.memGetInfo()
        free += pool.free_bytes()
        if 2 * nbytes + sweep.HEADROOM > free:
            print("%s fft %s %dx%d: skipped: needs 2 x %d MiB, %d MiB free"
                  % (LIBRARY, dt, batch, n, nbytes >> 20, free >> 20), file=sys.stderr)
            continue
        x = y = None
        try:
            real, cplx = dtypes[dt]
            x = (rng.standard_normal((batch, n), dtype=real) + 1j * rng.standard_normal((batch, n), dtype=real)).astype(cplx)
            for _ in range(args.warmup):
                y = cupy.fft.fft(x, axis=-1)
                y = None
            cupy.cuda.Device(0).synchronize()
            starts = [cupy.cuda.Event() for _ in range(args.reps)]
            ends = [cupy.cuda.Event() for _ in range(args.reps)]
            for s, e in zip(starts, ends):
                s.record()
                y = cupy.fft.fft(x, axis=-1)
                e.record()
                y = None
            ends[-1].synchronize()
            times = [cupy.cuda.get_elapsed_time(s, e) for s, e in zip(starts, ends)]  # milliseconds
        except cupy.cuda.memory.OutOfMemoryError as e:
            print("%s fft %s %dx%d: skipped: %s" % (LIBRARY, dt, batch, n, str(e).splitlines()[0]), file=sys.stderr)
            continue
        finally:
            x = y = None
            cupy.fft.config.get_plan_cache().clear()
            pool.free_all_blocks()
        rows.append(sweep.row(LIBRARY, dt, n, batch, times))

    common.print_table(rows, "CuPy %s on %s: cupy.fft.fft, median of %d reps after %d warm-up calls"
                       % (cupy.__version__, name, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
