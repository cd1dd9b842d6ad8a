#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkFFTCUDA: torch.fft.fft (cuFFT) on the same problems.

The sweep of bench/fft_cuda_test.go: batch signals of n complex values, n = 2^4 ... 2^22 with
batch = 2^26 / n (every row moves 2^26 complex values), complex64 ("f32") and complex128 ("f64"),
forward transform along the last axis, out of place into a buffer allocated once
(torch.fft.fft(x, dim=-1, out=y)), so no allocation is timed; the first (untimed) call builds
cuFFT's plan, which torch caches.

Each repetition is timed with its own pair of CUDA events on the current stream; the table reports
the median over --reps repetitions after --warmup untimed calls and the effective bandwidth
2 * batch * n * (8 or 16) bytes / median time -- one read and one write of the data, scorekit's
"GB/s" accounting for this benchmark. Before timing, torch.fft.fft is checked against the direct
O(n^2) sum on a small float64 problem (a peer that computed something else would time the wrong
thing).

    python3 fft_torch.py [--json torch-fft.json] [--reps 50] [--logn 4:22] [--total 2^26] [--dtypes f32,f64]

The module level uses the standard library only (fft_cupy.py imports the sweep and the table from
here). Exits 0 with a message when torch or a CUDA device is missing. Needs no network access.
"""

import argparse
import cmath
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"
DEFAULT_LOGN = (4, 22)
DEFAULT_TOTAL = 1 << 26
COMPLEX_BYTES = {"f32": 8, "f64": 16}
HEADROOM = 256 << 20  # bytes left free next to the buffers (cuFFT's work area, the context)


def parse_args(library):
    p = argparse.ArgumentParser(
        description="Time %s's batched complex FFT on the GPU for the problems of scorekit's "
        "BenchmarkFFTCUDA." % library
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--reps", type=int, default=50, help="timed repetitions per problem (>= 20; default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls before timing (default 5)")
    p.add_argument("--logn", default="%d:%d" % DEFAULT_LOGN,
                   help="range of log2 n, inclusive (default 4:22)")
    p.add_argument("--total", type=common.eval_pow, default=DEFAULT_TOTAL,
                   help="complex values per problem, batch = total / n (default 2^26)")
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=["f32", "f64"], help="f32,f64 (default both)")
    a = p.parse_args()
    if a.reps < 20:
        p.error("--reps must be at least 20 (the median of fewer is too noisy to compare)")
    try:
        lo, hi = (int(x) for x in a.logn.split(":"))
    except ValueError:
        p.error("--logn must be LO:HI, e.g. 4:22")
    if not 0 <= lo <= hi <= 24:
        p.error("--logn range must lie in 0:24")
    a.lengths = [1 << k for k in range(lo, hi + 1)]
    for n in a.lengths:
        if a.total % n:
            p.error("--total %d is not a multiple of n = %d" % (a.total, n))
    for dt in a.dtypes:
        if dt not in COMPLEX_BYTES:
            p.error("unknown dtype %r (want f32 or f64)" % dt)
    return a


def problems(args):
    """(dtype, n, batch) in the order of the Go benchmark."""
    for dt in args.dtypes:
        for n in args.lengths:
            yield dt, n, args.total // n


def buffer_bytes(dt, n, batch):
    return n * batch * COMPLEX_BYTES[dt]


def row(library, dt, n, batch, times_ms):
    """One result: the median of times_ms and the effective bandwidth (one read, one write)."""
    med = statistics.median(times_ms)
    nbytes = 2 * buffer_bytes(dt, n, batch)
    return {
        "library": library,
        "op": "fft",
        "dtype": dt,
        "n": n,
        "n_label": common.count_label(n),
        "batch": batch,
        "shape": "%dx%d" % (batch, n),
        "bytes": nbytes,
        "gflop": 5.0 * n * batch * math.log2(n) / 1e9 if n > 1 else 0.0,
        "reps": len(times_ms),
        "ms": med,
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "gb_per_s": nbytes / (med * 1e-3) / 1e9,
        "go_benchmark": "BenchmarkFFTCUDA/%s/n=%s/batch=%d" % (dt, common.count_label(n), batch),
    }


def direct_dft(x):
    """The definition X_k = sum_j x_j exp(-2 pi i jk/n) of a list of complex numbers."""
    n = len(x)
    return [sum(x[j] * cmath.exp(-2j * math.pi * ((j * k) % n) / n) for j in range(n)) for k in range(n)]


def check_against_definition(fft, to_list, name):
    """Compares fft (list of complex rows -> list of complex rows, float64) with the direct sum."""
    rows = [[complex(math.sin(0.7 * (i * 37 + j) + 0.1), math.cos(1.3 * (i * 11 + j))) for j in range(32)]
            for i in range(3)]
    got = to_list(fft(rows))
    for r, g in zip(rows, got):
        want = direct_dft(r)
        err = max(abs(a - b) for a, b in zip(g, want))
        if err > 1e-10:
            print("%s: FFT disagrees with the definition (max error %.3g): not timing it" % (name, err))
            sys.exit(1)


def main():
    args = parse_args("PyTorch")
    try:
        import torch
    except ImportError as e:
        common.skip(LIBRARY, "PyTorch is not installed (%s)" % e)
    if not torch.cuda.is_available():
        common.skip(LIBRARY, "torch %s sees no CUDA device" % torch.__version__)

    dev = torch.device("cuda", 0)
    props = torch.cuda.get_device_properties(dev)
    check_against_definition(
        lambda rows: torch.fft.fft(torch.tensor(rows, dtype=torch.complex128, device=dev), dim=-1),
        lambda t: t.cpu().tolist(), "torch.fft.fft")
    meta = {
        "library": LIBRARY,
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "device": props.name,
        "device_memory_bytes": props.total_memory,
        "reps": args.reps,
        "warmup": args.warmup,
        "timing": "CUDA events around each call, median",
    }
    dtypes = {"f32": torch.complex64, "f64": torch.complex128}
    gen = torch.Generator(device=dev)
    gen.manual_seed(0x5EED)

    rows = []
    for dt, n, batch in problems(args):
        nbytes = buffer_bytes(dt, n, batch)
        free, _ = torch.cuda.mem_get_info(dev)
        if 2 * nbytes + HEADROOM > free:
            print("%s fft %s %dx%d: skipped: needs 2 x %d MiB, %d MiB free"
                  % (LIBRARY, dt, batch, n, nbytes >> 20, free >> 20), file=sys.stderr)
            continue
        x = y = None
        try:
            x = torch.randn((batch, n), dtype=dtypes[dt], device=dev, generator=gen)
            y = torch.empty_like(x)
            for _ in range(args.warmup):
                torch.fft.fft(x, dim=-1, out=y)
            torch.cuda.synchronize(dev)
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(args.reps)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(args.reps)]
            for s, e in zip(starts, ends):
                s.record()
                torch.fft.fft(x, dim=-1, out=y)
                e.record()
            torch.cuda.synchronize(dev)
            times = [s.elapsed_time(e) for s, e in zip(starts, ends)]  # milliseconds
        except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if not common.is_out_of_memory(e):
                raise
            print("%s fft %s %dx%d: skipped: %s" % (LIBRARY, dt, batch, n, str(e).splitlines()[0]), file=sys.stderr)
            continue
        finally:
            x = y = None
            torch.backends.cuda.cufft_plan_cache.clear()
            torch.cuda.empty_cache()
        rows.append(row(LIBRARY, dt, n, batch, times))

    common.print_table(rows, "PyTorch %s (CUDA %s) on %s: torch.fft.fft, median of %d reps after %d warm-up calls"
                       % (torch.__version__, torch.version.cuda, props.name, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
