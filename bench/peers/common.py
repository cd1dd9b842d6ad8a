"""Shared pieces of the peers scripts: the problem sweep of the random fills (the same as
bench/harness.go), the command-line flags every script has, the count labels of the Go benchmark
names, importing the library under test (or skipping with a message), the skip reasons of a
problem, CuPy's event timing, the result table and the JSON file.

Standard library only at module level, so that the scripts start (and can skip with a message) on
a machine where the framework under test is missing: the functions that need one import it when
called or take it as an argument. torch_common.py holds the PyTorch pieces.
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
    """The command line of the random-fill peers (rng_*.py)."""
    p = argparse.ArgumentParser(
        description="Time %s's standard-normal and uniform generation on the GPU for the "
        "problems of scorekit's BenchmarkNormalCUDA / BenchmarkUniformCUDA." % library
    )
    add_output_args(p, reps=50, warmup=5)
    p.add_argument(
        "--totals",
        type=lambda s: [int(eval_pow(x)) for x in s.split(",")],
        default=DEFAULT_TOTALS,
        help="comma-separated element counts, e.g. 2^16,2^20 (default 2^20,2^24,2^28)",
    )
    p.add_argument("--dims", type=lambda s: [int(x) for x in s.split(",")], default=DIMS,
                   help="comma-separated row lengths (default 2,128)")
    p.add_argument("--dtypes", type=name_list, default=DTYPES, help="f32,f64 (default both)")
    p.add_argument("--ops", type=name_list, default=OPS, help="normal,uniform (default both)")
    if extra:
        extra(p)
    a = p.parse_args()
    check_reps(p, a)
    for t in a.totals:
        for d in a.dims:
            if t % d:
                p.error("%d elements do not split into rows of %d" % (t, d))
    check_dtypes(p, a.dtypes)
    check_known(p, "op", a.ops, OPS, "normal or uniform")
    return a


# ---- Flags and checks every peer shares ----------------------------------------------------------

def name_list(s):
    """A comma-separated list of names: "f32,f64" -> ["f32", "f64"]."""
    return s.split(",")


def int_list(s):
    """A comma-separated list of integers, empty items ignored: "2,16" -> [2, 16]."""
    return [int(x) for x in s.split(",") if x.strip()]


def count_list(s):
    """A comma-separated list of counts (parse_count), empty items ignored: "1e4,1e5"."""
    return [parse_count(x) for x in s.split(",") if x.strip()]


def add_output_args(p, reps, warmup, timed="repetitions", untimed="calls"):
    """--json, --reps and --warmup; timed and untimed name what is repeated ("runs", "calls")."""
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--reps", type=int, default=reps,
                   help="timed %s per problem (>= 20; default %d)" % (timed, reps))
    p.add_argument("--warmup", type=int, default=warmup, help="untimed %s before timing (default %d)" % (untimed, warmup))


def add_variants_arg(p, variants):
    p.add_argument("--variants", type=name_list, default=list(variants),
                   help="comma-separated, of %s (default all)" % ", ".join(variants))


def add_max_call_arg(p, what):
    """--max-call-s: a problem whose `what` ("first timed run", ...) takes longer is skipped."""
    p.add_argument("--max-call-s", type=float, default=30.0,
                   help="skip a problem whose %s takes longer than this, seconds (default 30)" % what)


def add_device_arg(p, default):
    """--device DEFAULT|cpu; the CPU runs only check the script."""
    p.add_argument("--device", default=default, choices=[default, "cpu"],
                   help="%s (default); cpu only checks that the script runs (timings not comparable)" % default)


def add_compile_mode_arg(p):
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode of the compile variant (default \"default\")")


def add_log2_sweep_args(p, logn, logn_help, total_help):
    """--logn LO:HI (default logn, a pair) and --total (default 2^26) of the FFT-based sweeps."""
    p.add_argument("--logn", default="%d:%d" % logn, help=logn_help)
    p.add_argument("--total", type=eval_pow, default=1 << 26, help=total_help)


def check_reps(p, a, compiles=False):
    """At least 20 timed repetitions and, where the first run compiles, one warm-up run."""
    if a.reps < 20:
        p.error("--reps must be at least 20 (the median of fewer is too noisy to compare)")
    if compiles and a.warmup < 1:
        p.error("--warmup must be at least 1 (the first run compiles)")


def check_known(p, kind, values, known, want=None):
    """Stops with a usage error at the first of values not in known ("unknown KIND 'x' (want WANT)";
    WANT defaults to "one of " and the known names)."""
    for v in values:
        if v not in known:
            p.error("unknown %s %r (want %s)" % (kind, v, want or "one of " + ", ".join(known)))


def check_dtypes(p, dtypes):
    check_known(p, "dtype", dtypes, BYTES_PER_ELEMENT, "f32 or f64")


def log2_range(p, spec, example, top):
    """The inclusive range LO:HI of --logn, within 0:top."""
    try:
        lo, hi = (int(x) for x in spec.split(":"))
    except ValueError:
        p.error("--logn must be LO:HI, e.g. %s" % example)
    if not 0 <= lo <= hi <= top:
        p.error("--logn range must lie in 0:%d" % top)
    return lo, hi


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


def pow10_label(n):
    """The count label of the Go benchmark names: 100000 -> "1e5", 512 -> "512"."""
    if n >= 10:
        k, m = 0, n
        while m % 10 == 0:
            m //= 10
            k += 1
        if m == 1:
            return "1e%d" % k
    return str(n)


def parse_count(s):
    """Parses "1e5", "10^5", "2^20", "1<<20" or "100000"."""
    s = s.strip()
    if "e" in s.lower():
        return int(float(s))
    return int(eval_pow(s))


def problems(args):
    """(op, dtype, total, chains, dim) in the order of the Go benchmarks."""
    for op in args.ops:
        for dt in args.dtypes:
            for total in args.totals:
                for dim in args.dims:
                    yield op, dt, total, total // dim, dim


# ---- The library under test ----------------------------------------------------------------------

def skip(library, why):
    print("%s peers: skipped: %s" % (library, why))
    sys.exit(SKIP)


def import_torch(library, cuda=True):
    """The torch module; skips (exit SKIP with the reason) when it is missing or, with cuda, when it
    sees no CUDA device."""
    try:
        import torch
    except ImportError as e:
        skip(library, "PyTorch is not installed (%s)" % e)
    if cuda and not torch.cuda.is_available():
        skip(library, "torch %s sees no CUDA device" % torch.__version__)
    return torch


def import_jax(library, platform="gpu", config=()):
    """(jax, jax.numpy, the first device of platform) with jax_enable_x64 set (the float64 problems
    need it; the float32 ones are unaffected, their dtypes are explicit) and then each (name,
    value) of config; skips when JAX or the backend is missing."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        skip(library, "JAX is not installed (%s)" % e)
    jax.config.update("jax_enable_x64", True)
    for name, value in config:
        jax.config.update(name, value)
    try:
        devs = jax.devices(platform)
    except RuntimeError as e:
        skip(library, "jax %s has no %s backend (%s)" % (jax.__version__, platform.upper(), str(e).splitlines()[0]))
    if not devs:
        skip(library, "jax %s found no %s" % (jax.__version__, platform.upper()))
    return jax, jnp, devs[0]


def jax_free_bytes(dev):
    """What XLA's allocator on dev has left; 2^62 when it does not say (XLA then reports
    RESOURCE_EXHAUSTED itself)."""
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return 1 << 62


def import_cupy(library):
    """(cupy, the properties of device 0, its name); skips when CuPy or a CUDA device is missing."""
    try:
        import cupy
    except ImportError as e:
        skip(library, "CuPy is not installed (%s)" % e)
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            skip(library, "CuPy %s sees no CUDA device" % cupy.__version__)
    except cupy.cuda.runtime.CUDARuntimeError as e:
        skip(library, "CuPy %s sees no CUDA device (%s)" % (cupy.__version__, e))
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return cupy, props, name


def cupy_meta(library, cupy, props, name, args, timing, **extra):
    """The JSON meta of a CuPy peer: library, version, runtime and device, then extra, then reps,
    warmup and how the calls were timed."""
    meta = {
        "library": library,
        "version": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "device": name,
        "device_memory_bytes": props["totalGlobalMem"],
    }
    meta.update(extra)
    meta.update(reps=args.reps, warmup=args.warmup, timing=timing)
    return meta


def cupy_time_problem(cupy, label, make_call, warmup, reps):
    """Times the call that make_call() returns: warmup untimed calls, then reps calls, each between
    its own pair of CUDA events on the current stream, in milliseconds. None, with a note on stderr,
    when the device runs out of memory. Afterwards the cuFFT plans and the pool's free blocks are
    released, so that one problem's memory does not stay for the next."""
    pool = cupy.get_default_memory_pool()
    call = None
    try:
        call = make_call()
        for _ in range(warmup):
            call()
        cupy.cuda.Device(0).synchronize()
        starts = [cupy.cuda.Event() for _ in range(reps)]
        ends = [cupy.cuda.Event() for _ in range(reps)]
        for s, e in zip(starts, ends):
            s.record()
            call()
            e.record()
        ends[-1].synchronize()
        return [cupy.cuda.get_elapsed_time(s, e) for s, e in zip(starts, ends)]  # milliseconds
    except cupy.cuda.memory.OutOfMemoryError as e:
        note_skip(label, str(e).splitlines()[0])
        return None
    finally:
        call = None
        cupy.fft.config.get_plan_cache().clear()
        pool.free_all_blocks()


# ---- Problems that do not run --------------------------------------------------------------------

class TooSlow(Exception):
    """One call or run takes longer than --max-call-s."""


def is_out_of_memory(e):
    """Whether a framework exception says the device ran out of memory."""
    msg = str(e)
    return type(e).__name__ == "OutOfMemoryError" or "RESOURCE_EXHAUSTED" in msg or "out of memory" in msg.lower()


def skip_reason(e, variant=None, failed=None, direct=(TooSlow,)):
    """Why exception e makes a problem a skipped row rather than stopping the script: e itself for
    the types in direct; "out of memory: ..." when the device ran out of memory; "<failed[variant]>
    failed: <type>: ..." for a variant whose failures are expected (compile, graph capture). None
    for anything else: a bug in the script or the installation, to re-raise."""
    if isinstance(e, direct):
        return e
    if is_out_of_memory(e):
        return "out of memory: %s" % str(e).splitlines()[0]
    if failed and variant in failed:
        return "%s failed: %s: %s" % (failed[variant], type(e).__name__, (str(e).splitlines() or [""])[0])
    return None


def reason_text(why):
    """The first line of a skip reason (an exception or a string) for a result row."""
    return str(why).splitlines()[0] if str(why) else type(why).__name__


def note_skip(label, why):
    """A problem that produced no row, on stderr: "<label>: skipped: <why>"."""
    print("%s: skipped: %s" % (label, why), file=sys.stderr)


# ---- Results -------------------------------------------------------------------------------------

def timing_fields(times_ms, nbytes):
    """The timing fields of a result row: reps, the median (ms), min_ms and max_ms of times_ms, and
    gb_per_s, nbytes per call at the median time."""
    med = statistics.median(times_ms)
    return {
        "reps": len(times_ms),
        "ms": med,
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "gb_per_s": nbytes / (med * 1e-3) / 1e9,
    }


def row(library, op, dtype, total, chains, dim, times_ms):
    """One result: the median of times_ms, and the bandwidth of writing the output once."""
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
        **timing_fields(times_ms, nbytes),
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
