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
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"
DEFAULT_LOGN = (4, 22)
COMPLEX_BYTES = {"f32": 8, "f64": 16}
HEADROOM = 256 << 20  # bytes left free next to the buffers (cuFFT's work area, the context)


def parse_args(library):
    p = argparse.ArgumentParser(
        description="Time %s's batched complex FFT on the GPU for the problems of scorekit's "
        "BenchmarkFFTCUDA." % library
    )
    common.add_output_args(p, reps=50, warmup=5)
    common.add_log2_sweep_args(p, DEFAULT_LOGN, "range of log2 n, inclusive (default 4:22)",
                               "complex values per problem, batch = total / n (default 2^26)")
    p.add_argument("--dtypes", type=common.name_list, default=["f32", "f64"], help="f32,f64 (default both)")
    a = p.parse_args()
    common.check_reps(p, a)
    lo, hi = common.log2_range(p, a.logn, "4:22", 24)
    a.lengths = [1 << k for k in range(lo, hi + 1)]
    for n in a.lengths:
        if a.total % n:
            p.error("--total %d is not a multiple of n = %d" % (a.total, n))
    common.check_dtypes(p, a.dtypes)
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
        **common.timing_fields(times_ms, nbytes),
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
    torch = common.import_torch(LIBRARY)
    import torch_common

    dev = torch.device("cuda", 0)
    check_against_definition(
        lambda rows: torch.fft.fft(torch.tensor(rows, dtype=torch.complex128, device=dev), dim=-1),
        lambda t: t.cpu().tolist(), "torch.fft.fft")
    meta = torch_common.device_meta(dev, args, "CUDA events around each call, median")
    dtypes = {"f32": torch.complex64, "f64": torch.complex128}
    gen = torch.Generator(device=dev)
    gen.manual_seed(0x5EED)

    rows = []
    for dt, n, batch in problems(args):
        label = "%s fft %s %dx%d" % (LIBRARY, dt, batch, n)
        nbytes = buffer_bytes(dt, n, batch)
        free, _ = torch.cuda.mem_get_info(dev)
        if 2 * nbytes + HEADROOM > free:
            common.note_skip(label, "needs 2 x %d MiB, %d MiB free" % (nbytes >> 20, free >> 20))
            continue

        def make_call(shape=(batch, n), dtype=dtypes[dt]):
            x = torch.randn(shape, dtype=dtype, device=dev, generator=gen)
            y = torch.empty_like(x)
            return lambda: torch.fft.fft(x, dim=-1, out=y)

        times = torch_common.time_problem(dev, label, make_call, args.warmup, args.reps, fft=True)
        if times is not None:
            rows.append(row(LIBRARY, dt, n, batch, times))

    common.print_table(rows, "PyTorch %s (CUDA %s) on %s: torch.fft.fft, median of %d reps after %d warm-up calls"
                       % (torch.__version__, torch.version.cuda, meta["device"], args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
