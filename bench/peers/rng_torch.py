#!/usr/bin/env python3
"""PyTorch peer of scorekit's BenchmarkNormalCUDA / BenchmarkUniformCUDA.

Times torch.randn and torch.rand writing into a preallocated CUDA tensor (out=) of shape
(chains, dim), float32 and float64, for the element counts of bench/harness.go. Each repetition is
timed with its own pair of CUDA events on the current stream; the table reports the median over
--reps repetitions after --warmup untimed calls, and the bandwidth of writing the output once
(bytes / median time), the same accounting as scorekit's GB/s.

PyTorch's CUDA generator is Philox4x32-10, the generator scorekit uses, so the comparison is
generator against generator; normals come from Box-Muller in both.

    python3 rng_torch.py [--json torch.json] [--reps 50] [--totals 2^20,2^24,2^28]

Exits 0 with a message when torch or a CUDA device is missing. Needs no network access.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"
HEADROOM = 256 << 20  # bytes left free next to the output, as in the Go suite


def main():
    args = common.parse_args("PyTorch")
    try:
        import torch
    except ImportError as e:
        common.skip(LIBRARY, "PyTorch is not installed (%s)" % e)
    if not torch.cuda.is_available():
        common.skip(LIBRARY, "torch %s sees no CUDA device" % torch.__version__)

    dev = torch.device("cuda", 0)
    props = torch.cuda.get_device_properties(dev)
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
    torch.manual_seed(0x5EED)
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    generate = {"normal": torch.randn, "uniform": torch.rand}

    rows = []
    for op, dt, total, chains, dim in common.problems(args):
        nbytes = total * common.BYTES_PER_ELEMENT[dt]
        free, _ = torch.cuda.mem_get_info(dev)
        if nbytes + HEADROOM > free:
            print("%s %s %s %dx%d: skipped: needs %d MiB, %d MiB free"
                  % (LIBRARY, op, dt, chains, dim, nbytes >> 20, free >> 20), file=sys.stderr)
            continue
        try:
            buf = torch.empty((chains, dim), dtype=dtypes[dt], device=dev)
            fn = generate[op]
            size = (chains, dim)
            for _ in range(args.warmup):
                fn(size, out=buf)
            torch.cuda.synchronize(dev)
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(args.reps)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(args.reps)]
            for s, e in zip(starts, ends):
                s.record()
                fn(size, out=buf)
                e.record()
            torch.cuda.synchronize(dev)
            times = [s.elapsed_time(e) for s, e in zip(starts, ends)]  # milliseconds
        except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if not common.is_out_of_memory(e):
                raise
            print("%s %s %s %dx%d: skipped: %s" % (LIBRARY, op, dt, chains, dim, str(e).splitlines()[0]),
                  file=sys.stderr)
            continue
        finally:
            buf = None
            torch.cuda.empty_cache()
        rows.append(common.row(LIBRARY, op, dt, total, chains, dim, times))

    common.print_table(rows, "PyTorch %s (CUDA %s) on %s, median of %d reps after %d warm-up calls"
                       % (torch.__version__, torch.version.cuda, props.name, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
