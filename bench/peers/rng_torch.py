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
    torch = common.import_torch(LIBRARY)
    import torch_common

    dev = torch.device("cuda", 0)
    meta = torch_common.device_meta(dev, args, "CUDA events around each call, median")
    torch.manual_seed(0x5EED)
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    generate = {"normal": torch.randn, "uniform": torch.rand}

    rows = []
    for op, dt, total, chains, dim in common.problems(args):
        label = "%s %s %s %dx%d" % (LIBRARY, op, dt, chains, dim)
        nbytes = total * common.BYTES_PER_ELEMENT[dt]
        free, _ = torch.cuda.mem_get_info(dev)
        if nbytes + HEADROOM > free:
            common.note_skip(label, "needs %d MiB, %d MiB free" % (nbytes >> 20, free >> 20))
            continue

        def make_call(fn=generate[op], size=(chains, dim), dtype=dtypes[dt]):
            buf = torch.empty(size, dtype=dtype, device=dev)
            return lambda: fn(size, out=buf)

        times = torch_common.time_problem(dev, label, make_call, args.warmup, args.reps)
        if times is not None:
            rows.append(common.row(LIBRARY, op, dt, total, chains, dim, times))

    common.print_table(rows, "PyTorch %s (CUDA %s) on %s, median of %d reps after %d warm-up calls"
                       % (torch.__version__, torch.version.cuda, meta["device"], args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
