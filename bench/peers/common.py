"""Shared pieces of the peers scripts: the problem sweep (the same as bench/harness.go), argument
parsing, the result table and the JSON file.

Standard library only, so that the scripts start (and can skip with a message) on a machine where
the framework under test is missing.
"""

import argparse
import datetime
import json
import platform
import statistics
import sys

# bench/harness.go: CUDATotals (the peers skip 2^16 by default: launch overhead, not the RNG) and
# RandomDims.
DEFAULT_TOTALS = [1 << 20, 1 << 24, 1 << 28]
DIMS = [2, 128]
DTYPES = ["f32", "f64"]
OPS = ["normal", "uniform"]
BYTES_PER_ELEMENT = {"f32": 4, "f64": 8}

# Exit status when the framework or a GPU is missing: 0, so that a driver script running every
# peer on a machine without one of them carries on.
SKIP = 0


def count_label(n):
    """The element-count label of the Go benchmark names: 65536 -> "64Ki", 1<<28 -> "256Mi"."""
    for unit, suffix in ((1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")):
        if n >= unit and n % unit == 0:
            return "%d%s" % (n // unit, suffix)
    return str(n)


def parse_args(library, extra=None):
    p = argparse.ArgumentParser(
        description="Time %s's standard-normal and uniform generation on the GPU for the "
        "problems of scorekit's BenchmarkNormalCUDA / BenchmarkUniformCUDA." % library
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--reps", type=int, default=50, help="timed repetitions per problem (>= 20; default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls before timing (default 5)")
    p.add_argument(
        "--totals",
        type=lambda s: [int(eval_pow(x)) for x in s.split(",")],
        default=DEFAULT_TOTALS,
        help="comma-separated element counts, e.g. 2^16,2^20 (default 2^20,2^24,2^28)",
    )
    p.add_argument("--dims", type=lambda s: [int(x) for x in s.split(",")], default=DIMS,
                   help="comma-separated row lengths (default 2,128)")
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=DTYPES, help="f32,f64 (default both)")
    p.add_argument("--ops", type=lambda s: s.split(","), default=OPS, help="normal,uniform (default both)")
    if extra:
        extra(p)
    a = p.parse_args()
    if a.reps < 20:
        p.error("--reps must be at least 20 (the median of fewer is too noisy to compare)")
    for t in a.totals:
        for d in a.dims:
            if t % d:
                p.error("%d elements do not split into rows of %d" % (t, d))
    for dt in a.dtypes:
        if dt not in BYTES_PER_ELEMENT:
            p.error("unknown dtype %r (want f32 or f64)" % dt)
    for op in a.ops:
        if op not in OPS:
            p.error("unknown op %r (want normal or uniform)" % op)
    return a


def eval_pow(s):
    """Parses "2^20", "1<<20" or "1048576"."""
    s = s.strip()
    if "^" in s:
        b, e = s.split("^")
        return int(b) ** int(e)
    if "<<" in s:
        b, e = s.split("<<")
        return int(b) << int(e)
    return int(s)


def problems(args):
    """(op, dtype, total, chains, dim) in the order of the Go benchmarks."""
    for op in args.ops:
        for dt in args.dtypes:
            for total in args.totals:
                for dim in args.dims:
                    yield op, dt, total, total // dim, dim


def skip(library, why):
    print("%s peers: skipped: %s" % (library, why))
    sys.exit(SKIP)


def is_out_of_memory(e):
    """Whether a framework exception says the device ran out of memory."""
    msg = str(e)
    return type(e).__name__ == "OutOfMemoryError" or "RESOURCE_EXHAUSTED" in msg or "out of memory" in msg.lower()


def row(library, op, dtype, total, chains, dim, times_ms):
    """One result: the median of times_ms, and the bandwidth of writing the output once."""
    med = statistics.median(times_ms)
    nbytes = total * BYTES_PER_ELEMENT[dtype]
    return {
        "library": library,
        "op": op,
        "dtype": dtype,
        "n": total,
        "n_label": count_label(total),
        "chains": chains,
        "dim": dim,
        "shape": "%dx%d" % (chains, dim),
        "bytes": nbytes,
        "reps": len(times_ms),
        "ms": med,
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "gb_per_s": nbytes / (med * 1e-3) / 1e9,
        "go_benchmark": "Benchmark%sCUDA/%s/n=%s/dim=%d" % (op.capitalize(), dtype, count_label(total), dim),
    }


def print_table(rows, header):
    print(header)
    print()
    print("| library | op | dtype | n | shape | ms (median) | GB/s |")
    print("|---|---|---|---|---|---:|---:|")
    for r in rows:
        ms = "%.4g" % r["ms"]
        line = "| %s | %s | %s | %s | %s | %s | %.1f |" % (
            r["library"], r["op"], r["dtype"], r["n_label"], r["shape"], ms, r["gb_per_s"])
        print(line)
    sys.stdout.flush()


def write_json(path, meta, rows):
    if not path:
        return
    meta = dict(meta)
    meta.setdefault("date", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("python", platform.python_version())
    meta.setdefault("host", platform.node())
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
        f.write("\n")
    print("\nwrote %s" % path)
