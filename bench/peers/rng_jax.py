#!/usr/bin/env python3
"""JAX peer of scorekit's BenchmarkNormalCUDA / BenchmarkUniformCUDA.

Times jax.random.normal and jax.random.uniform of shape (chains, dim), float32 and float64, each
under jax.jit with the shape and dtype static, for the element counts of bench/harness.go. Each
repetition calls the compiled function on a fresh key and waits with block_until_ready, timed with
the host clock (so one dispatch, ~10-50 us, is included: it dominates only the smallest problems).
The table reports the median over --reps repetitions after --warmup calls (the first compiles),
and the bandwidth of writing the output once (bytes / median time), scorekit's GB/s accounting.

JAX cannot fill a caller's buffer: every call returns a new array, which XLA's pooling allocator
serves without a device allocation after the warm-up.

--prng picks JAX's key implementation: threefry2x32 (JAX's default, a counter-based generator
computed in the XLA graph), or rbg / unsafe_rbg (XLA's RngBitGenerator, Philox on GPU, the
generator scorekit uses). Normals use JAX's own transform (inverse error function), not
Box-Muller.

    python3 rng_jax.py [--json jax.json] [--prng threefry2x32] [--reps 50]

Exits 0 with a message when jax or a GPU backend is missing. Needs no network access. Set
XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.75 of the GPU) if the 2^28-element f64 problem
(2 GiB) does not fit.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "jax"


def add_args(p):
    p.add_argument("--prng", default="threefry2x32", choices=["threefry2x32", "rbg", "unsafe_rbg"],
                   help="jax_default_prng_impl (default threefry2x32, JAX's default)")


def main():
    args = common.parse_args("JAX", add_args)
    jax, jnp, gpu = common.import_jax(LIBRARY, "gpu", [("jax_default_prng_impl", args.prng)])

    meta = {
        "library": LIBRARY,
        "version": jax.__version__,
        "device": gpu.device_kind,
        "prng": args.prng,
        "reps": args.reps,
        "warmup": args.warmup,
        "timing": "host clock around jit call + block_until_ready, median",
    }
    dtypes = {"f32": jnp.float32, "f64": jnp.float64}
    generate = {"normal": jax.random.normal, "uniform": jax.random.uniform}
    # Rows of a non-default key implementation say so in the library column.
    label = LIBRARY if args.prng == "threefry2x32" else "%s/%s" % (LIBRARY, args.prng)

    rows = []
    for op, dt, total, chains, dim in common.problems(args):
        shape, dtype, fn = (chains, dim), dtypes[dt], generate[op]
        f = jax.jit(lambda key, fn=fn, shape=shape, dtype=dtype: fn(key, shape, dtype))
        try:
            with jax.default_device(gpu):
                keys = jax.random.split(jax.random.PRNGKey(0x5EED), args.warmup + args.reps)
                keys = [keys[i] for i in range(len(keys))]
                for k in keys:
                    k.block_until_ready()
                for k in keys[: args.warmup]:
                    f(k).block_until_ready()
                times = []
                for k in keys[args.warmup:]:
                    t0 = time.perf_counter()
                    out = f(k)
                    out.block_until_ready()
                    times.append((time.perf_counter() - t0) * 1e3)
                    del out
        except Exception as e:
            # Out of device memory (XlaRuntimeError RESOURCE_EXHAUSTED) skips the problem; anything
            # else is a bug in this script or the installation and stops it.
            if not common.is_out_of_memory(e):
                raise
            common.note_skip("%s %s %s %dx%d" % (LIBRARY, op, dt, chains, dim), str(e).splitlines()[0])
            continue
        rows.append(common.row(label, op, dt, total, chains, dim, times))

    common.print_table(rows, "JAX %s on %s (prng %s), median of %d reps after %d warm-up calls"
                       % (jax.__version__, gpu.device_kind, args.prng, args.reps, args.warmup))
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
