#!/usr/bin/env python3
"""PyTorch twin of scorekit's learned denoiser (ops.MLP, ops/mlp.go) and its checkpoints (package
nn): the same network as a torch.nn.Module, the EDM preconditioning around it, safetensors reading
and writing, and a throughput benchmark.

The network (the comment at the top of ops/mlp.go, the definition):

    D(x; sigma) = mu + c_skip (x - mu) + c_out F(c_in (x - mu), c_noise),   D(x; 0) = x
    c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
    c_in = 1 / sqrt(sigma^2 + sd^2),  c_noise = log(sigma) / 4
    e = [cos(2 pi f_k c_noise)]_k ++ [sin(2 pi f_k c_noise)]_k
    h = W_in [u ; e] + b_in
    h <- h + beta (W_l silu(h) + b_l)                            one-layer blocks
    h <- h + beta (W_l2 silu(W_l1 silu(h) + b_l1) + b_l2)        two-layer blocks
    F = gamma (W_out silu(h)) + b_out

MLPDenoiser's state_dict() keys are the checkpoint's tensor names: data.mean and embed.freq
(buffers), input.weight/bias, blocks.<l>.<j>.weight/bias (a ModuleList of ModuleLists of
nn.Linear), output.weight/bias. A checkpoint's __metadata__ holds the architecture (format
"scorekit.mlp-denoiser", format_version "1", dim, width, depth, block_layers, fourier, sigma_data,
branch_mult, out_mult, activation "silu", embedding "fourier(log(sigma)/4)", preconditioning
"edm"); every other key is training information. An optional tensor data.cov (d, d) is the data
covariance. Files are read and written here with struct + json + NumPy (the `safetensors` package
is used instead when it is installed, unless --pure); the reader checks what scorekit's does
(header length cap, no duplicate keys, offsets tiling the data exactly, F64/F32 only, finite
values).

Modes:

    python3 mlp_torch.py eval --model M.safetensors --x X.npy --sigma S[,S2,...] --out D.npy
        D(x; sigma) in float64 for the rows of X (N, d): D.npy is (N, d) for one sigma,
        (len(sigmas), N, d) for several.
    python3 mlp_torch.py save --like M.safetensors --seed N --out P.safetensors [--dtype f32]
        a network of M's architecture with parameters drawn afresh by PyTorch (nn.Linear's own
        initialisation, data.mean ~ N(0, 1), embed.freq log-uniform in [1/4, 8]), written in
        float64 (default) or float32; data.cov is copied from M when it has one.
    python3 mlp_torch.py bench [--device cuda|cpu] [--dims 2,16,64] [--widths 128,256] [--depths 4]
                               [--block-layers 1] [--fourier 16] [--batch 1e4,1e5,1e6]
                               [--evals 18] [--dtypes f32,f64] [--variants eager,compile]
                               [--json PATH] [--jsonl]
        inference throughput, samples x evaluations per second: each timed run evaluates the
        denoiser --evals times on the whole batch, at sigmas from 80 down to 0.002 (EDM grid,
        rho = 7), under torch.inference_mode; eager and torch.compile (a skipped row naming the
        reason where it is missing or fails). CUDA runs are timed with CUDA events; --device cpu
        (the default without a GPU) uses the host clock. Prints a markdown table, with --jsonl
        also one JSON object per row on stdout, with --json PATH the rows and the device meta.
        Float32 matmuls run in full FP32 (TF32 off) unless --tf32. Before timing, the module is
        checked against a NumPy transcription of the formula above.

bench exits 0 with a message when torch is missing; eval and save need torch and NumPy.
nn/torch_test.go runs eval and save against the Go reference.
"""

import argparse
import json
import math
import os
import statistics
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LIBRARY = "torch"
FORMAT = "scorekit.mlp-denoiser"
FORMAT_VERSION = "1"
FIXED = {"activation": "silu", "embedding": "fourier(log(sigma)/4)", "preconditioning": "edm"}
INT_KEYS = ["dim", "width", "depth", "block_layers", "fourier"]
FLOAT_KEYS = ["sigma_data", "branch_mult", "out_mult"]
ARCH_KEYS = ["format", "format_version"] + INT_KEYS + FLOAT_KEYS + list(FIXED)
COV = "data.cov"
MAX_HEADER = 100_000_000
DTYPES = {"F64": "<f8", "F32": "<f4"}


class CheckpointError(Exception):
    pass


# ---- safetensors ---------------------------------------------------------------------------------

def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise CheckpointError("key %r appears twice in the header" % k)
        out[k] = v
    return out


def read_safetensors(path, pure=False):
    """(tensors, metadata) of a safetensors file: a dict name -> NumPy array (float64 or float32,
    as stored) and the __metadata__ dict (None when absent)."""
    import numpy as np
    if not pure:
        try:
            from safetensors import safe_open
        except ImportError:
            pass
        else:
            with safe_open(path, framework="np") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 8:
        raise CheckpointError("%s: truncated (%d bytes)" % (path, len(b)))
    (n,) = struct.unpack("<Q", b[:8])
    if n > MAX_HEADER or 8 + n > len(b):
        raise CheckpointError("%s: header length %d: beyond the limit or the file" % (path, n))
    raw = b[8:8 + n]
    if not raw.startswith(b"{"):
        raise CheckpointError("%s: header does not start with '{'" % path)
    header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    meta = header.pop("__metadata__", None)
    data = memoryview(b)[8 + n:]
    pos, tensors = 0, {}
    for name, e in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        if set(e) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError("%s: tensor %r: entry has fields %s" % (path, name, sorted(e)))
        if e["dtype"] not in DTYPES:
            raise CheckpointError("%s: tensor %r: dtype %s is not supported (F64, F32)" % (path, name, e["dtype"]))
        begin, end = e["data_offsets"]
        count = math.prod(e["shape"])
        if begin != pos or end - begin != count * int(DTYPES[e["dtype"]][-1]):
            raise CheckpointError("%s: tensor %r: data_offsets %s do not follow on at %d with %d values"
                                  % (path, name, e["data_offsets"], pos, count))
        tensors[name] = np.frombuffer(data, dtype=DTYPES[e["dtype"]], count=count, offset=begin).reshape(e["shape"]).copy()
        pos = end
    if pos != len(data):
        raise CheckpointError("%s: the tensors end at %d, the data at %d" % (path, pos, len(data)))
    return tensors, meta


def write_safetensors(path, tensors, metadata, pure=False):
    """Writes tensors (a dict name -> NumPy float64/float32 array, in data order) and metadata
    atomically: __metadata__ first, header padded with spaces to a multiple of 8."""
    import numpy as np
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if not pure:
        try:
            from safetensors.numpy import save_file
        except ImportError:
            pass
        else:
            save_file(tensors, path, metadata=metadata)
            return
    header, offset = {"__metadata__": metadata}, 0
    for name, v in tensors.items():
        dt = {np.dtype("float64"): "F64", np.dtype("float32"): "F32"}[v.dtype]
        header[name] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [offset, offset + v.nbytes]}
        offset += v.nbytes
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix="." + os.path.basename(path) + ".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for v in tensors.values():
                f.write(v.astype(v.dtype.newbyteorder("<"), copy=False).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def config_of(meta, path="checkpoint"):
    """The architecture (a dict of the metadata's int and float keys) of a checkpoint's metadata."""
    if meta is None or meta.get("format") != FORMAT:
        raise CheckpointError("%s: not a %s checkpoint (format %r)" % (path, FORMAT, (meta or {}).get("format")))
    missing = [k for k in ARCH_KEYS if k not in meta]
    if missing:
        raise CheckpointError("%s: metadata lacks %s" % (path, ", ".join(missing)))
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError("%s: format_version %r is not supported" % (path, meta["format_version"]))
    for k, want in FIXED.items():
        if meta[k] != want:
            raise CheckpointError("%s: metadata %s %r: this network is defined with %r" % (path, k, meta[k], want))
    cfg = {k: int(meta[k]) for k in INT_KEYS}
    cfg.update({k: float(meta[k]) for k in FLOAT_KEYS})
    return cfg


# ---- The network ---------------------------------------------------------------------------------

def make_module(torch, cfg, dtype=None):
    """MLPDenoiser(cfg): forward(x, sigma) is D(x; sigma); network(u, c_noise) is F."""
    nn = torch.nn
    dtype = dtype or torch.float64

    class MLPDenoiser(nn.Module):
        def __init__(self):
            super().__init__()
            d, w, f = cfg["dim"], cfg["width"], cfg["fourier"]
            self.data = nn.Module()
            self.data.register_buffer("mean", torch.zeros(d, dtype=dtype))
            self.embed = nn.Module()
            self.embed.register_buffer("freq", torch.zeros(f, dtype=dtype))
            self.input = nn.Linear(d + 2 * f, w, dtype=dtype)
            self.blocks = nn.ModuleList(
                nn.ModuleList(nn.Linear(w, w, dtype=dtype) for _ in range(cfg["block_layers"]))
                for _ in range(cfg["depth"]))
            self.output = nn.Linear(w, d, dtype=dtype)
            self.sigma_data = cfg["sigma_data"]
            self.branch_mult = cfg["branch_mult"]
            self.out_mult = cfg["out_mult"]

        def network(self, u, c_noise):
            """F(u, c_noise) for rows u (N, d) and c_noise (N,)."""
            silu = torch.nn.functional.silu
            arg = (2 * math.pi * self.embed.freq)[None, :] * c_noise[:, None]
            h = self.input(torch.cat([u, torch.cos(arg), torch.sin(arg)], 1))
            for block in self.blocks:
                r = h
                for layer in block:
                    r = layer(silu(r))
                h = h + self.branch_mult * r
            return self.out_mult * torch.nn.functional.linear(silu(h), self.output.weight) + self.output.bias

        def forward(self, x, sigma):
            """D(x; sigma) for rows x (N, d); sigma a number or an (N,) tensor; rows at sigma = 0
            return x."""
            sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
            sd = self.sigma_data
            s2 = sigma * sigma + sd * sd
            r = torch.sqrt(s2)
            c_skip, c_out, c_in = sd * sd / s2, sigma * sd / r, 1 / r
            c_noise = torch.log(sigma) / 4
            xc = x - self.data.mean
            f = self.network(c_in[:, None] * xc, c_noise)
            den = self.data.mean + c_skip[:, None] * xc + c_out[:, None] * f
            return torch.where((sigma == 0)[:, None], x, den)

    return MLPDenoiser()


def load_module(torch, path, pure=False, device="cpu", dtype=None):
    """(module, tensors, metadata) of a checkpoint, the parameters in float64 (or dtype)."""
    import numpy as np
    tensors, meta = read_safetensors(path, pure)
    cfg = config_of(meta, path)
    for name, v in tensors.items():
        if not np.isfinite(v).all():
            raise CheckpointError("%s: tensor %r holds a value that is not finite" % (path, name))
    m = make_module(torch, cfg)
    state = {k: torch.from_numpy(v.astype("float64")) for k, v in tensors.items() if k != COV}
    m.load_state_dict(state, strict=True)
    return m.to(device=device, dtype=dtype or torch.float64), tensors, meta


def numpy_denoise(params, cfg, x, sigma):
    """The formula of the module doc in NumPy, float64, row by row: the self-check's reference."""
    import numpy as np
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    silu = lambda z: z / (1 + np.exp(-z))  # noqa: E731
    out = np.empty_like(x)
    for i, row in enumerate(x):
        if sigma == 0:
            out[i] = row
            continue
        sd = cfg["sigma_data"]
        s2 = sigma * sigma + sd * sd
        c_skip, c_out, c_in, c_noise = sd * sd / s2, sigma * sd / math.sqrt(s2), 1 / math.sqrt(s2), math.log(sigma) / 4
        mu = p["data.mean"]
        arg = 2 * math.pi * p["embed.freq"] * c_noise
        h = p["input.weight"] @ np.concatenate([c_in * (row - mu), np.cos(arg), np.sin(arg)]) + p["input.bias"]
        for l in range(cfg["depth"]):
            r = h
            for j in range(cfg["block_layers"]):
                r = p["blocks.%d.%d.weight" % (l, j)] @ silu(r) + p["blocks.%d.%d.bias" % (l, j)]
            h = h + cfg["branch_mult"] * r
        f = cfg["out_mult"] * (p["output.weight"] @ silu(h)) + p["output.bias"]
        out[i] = mu + c_skip * (row - mu) + c_out * f
    return out


def reinitialise(torch, m, seed):
    """Fresh parameters drawn by PyTorch from seed: nn.Linear's reset_parameters, data.mean
    N(0, 1), embed.freq log-uniform in [1/4, 8]."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.reset_parameters()
        m.data.mean.copy_(torch.randn_like(m.data.mean))
        m.embed.freq.copy_(0.25 * 32 ** torch.rand_like(m.embed.freq))


# ---- Modes ---------------------------------------------------------------------------------------

def run_eval(args):
    import numpy as np
    import torch
    m, _, _ = load_module(torch, args.model, args.pure)
    x = torch.from_numpy(np.load(args.x).astype(np.float64))
    if x.ndim != 2 or x.shape[1] != m.data.mean.shape[0]:
        raise CheckpointError("%s: shape %s, the network needs (N, %d)" % (args.x, tuple(x.shape), m.data.mean.shape[0]))
    with torch.inference_mode():
        outs = [m(x, s).numpy() for s in args.sigma]
    np.save(args.out, outs[0] if len(outs) == 1 else np.stack(outs))


def run_save(args):
    import numpy as np
    import torch
    m, tensors, meta = load_module(torch, args.like, args.pure)
    reinitialise(torch, m, args.seed)
    dt = np.float32 if args.dtype == "f32" else np.float64
    out = {k: v.detach().numpy().astype(dt) for k, v in m.state_dict().items()}
    if COV in tensors:
        out[COV] = tensors[COV].astype(dt)
    md = {k: meta[k] for k in ARCH_KEYS}
    md.update({"written_by": "bench/peers/mlp_torch.py save", "torch": torch.__version__, "seed": str(args.seed),
               "init": "torch.nn.Linear.reset_parameters; data.mean N(0,1); embed.freq 0.25*32^U(0,1)",
               "like": os.path.basename(args.like)})
    write_safetensors(args.out, out, md, args.pure)


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [(a + i / max(n - 1, 1) * (b - a)) ** rho for i in range(n)]


def self_check(torch, dev):
    """The module against numpy_denoise on small random float64 networks of both block kinds."""
    import numpy as np
    for bl, f in ((1, 0), (2, 5)):
        cfg = {"dim": 3, "width": 12, "depth": 2, "block_layers": bl, "fourier": f, "sigma_data": 0.7,
               "branch_mult": 0.5, "out_mult": 1.3}
        m = make_module(torch, cfg)
        reinitialise(torch, m, 5 + bl)
        params = {k: v.numpy() for k, v in m.state_dict().items()}
        x = np.random.default_rng(3).normal(size=(5, 3)) * 2
        for s in (0.0, 0.002, 0.5, 80.0):
            with torch.inference_mode():
                got = m.to(dev)(torch.from_numpy(x).to(dev), s).cpu().numpy()
            want = numpy_denoise(params, cfg, x, s)
            if not np.allclose(got, want, rtol=1e-11, atol=1e-11):
                raise AssertionError("self-check: module and NumPy definition differ (block_layers %d, sigma %g): %g"
                                     % (bl, s, np.abs(got - want).max()))
        m.cpu()


def bench_args(p):
    add = p.add_argument
    add("--device", default=None, choices=["cuda", "cpu"], help="cuda when present, else cpu")
    add("--dims", type=common.int_list, default=[2, 16, 64])
    add("--widths", type=common.int_list, default=[128, 256])
    add("--depths", type=common.int_list, default=[4])
    add("--block-layers", type=int, default=1, choices=[1, 2])
    add("--fourier", type=int, default=16)
    add("--batch", type=common.count_list, default=[10**4, 10**5, 10**6], help="rows per evaluation")
    add("--evals", type=int, default=18, help="denoiser evaluations per timed run (default 18)")
    add("--dtypes", type=common.name_list, default=["f32", "f64"])
    common.add_variants_arg(p, ["eager", "compile"])
    common.add_compile_mode_arg(p)
    common.add_max_call_arg(p, "first run")
    common.add_output_args(p, reps=20, warmup=3, timed="runs", untimed="runs")
    add("--jsonl", action="store_true", help="also print each row as one JSON object on stdout")
    add("--tf32", action="store_true", help="allow TF32 matmuls for float32")


def run_bench(args):
    torch = common.import_torch(LIBRARY, cuda=args.device == "cuda")
    import torch_common
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    self_check(torch, dev)
    meta = {"library": LIBRARY, "version": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu (threads %d)" % torch.get_num_threads(),
            "reps": args.reps, "warmup": args.warmup, "evals": args.evals, "tf32": args.tf32,
            "compile_mode": args.compile_mode, "block_layers": args.block_layers, "fourier": args.fourier,
            "timing": "CUDA events around one run of --evals evaluations, median" if cuda else "host clock, median"}
    sigmas = karras_sigmas(args.evals)
    rows = []
    for dt in args.dtypes:
        dtype = {"f32": torch.float32, "f64": torch.float64}[dt]
        for d in args.dims:
            for w in args.widths:
                for depth in args.depths:
                    cfg = {"dim": d, "width": w, "depth": depth, "block_layers": args.block_layers,
                           "fourier": args.fourier, "sigma_data": 0.5, "branch_mult": 1 / math.sqrt(depth),
                           "out_mult": 1.0}
                    for n in args.batch:
                        for v in args.variants:
                            rows.append(bench_one(torch, torch_common, dev, args, cfg, dt, dtype, n, v, sigmas))
                            if args.jsonl:
                                print(json.dumps(rows[-1]), flush=True)
    print_table(rows, meta)
    common.write_json(args.json, meta, rows)


def bench_one(torch, torch_common, dev, args, cfg, dt, dtype, n, variant, sigmas):
    d, w = cfg["dim"], cfg["width"]
    row = {"library": LIBRARY, "variant": variant, "dtype": dt, "N": n, "d": d, "width": w, "depth": cfg["depth"],
           "block_layers": cfg["block_layers"], "fourier": cfg["fourier"], "evals": args.evals}
    need = n * (d + 2 * cfg["fourier"] + 4 * w) * (4 if dt == "f32" else 8)
    short = torch_common.lacks_memory(dev, need) if dev.type == "cuda" else None
    if variant == "compile" and not hasattr(torch, "compile"):
        short = "torch %s has no torch.compile" % torch.__version__
    if short:
        row["skipped"] = short
        return row
    try:
        m = make_module(torch, cfg).to(device=dev, dtype=dtype)
        reinitialise(torch, m, 1)
        fn = m
        if variant == "compile":
            fn = torch.compile(m, mode=args.compile_mode)
        gen = torch.Generator(device=dev).manual_seed(2)
        x = torch.randn(n, d, dtype=dtype, device=dev, generator=gen)
        sig = [torch.tensor(s, dtype=dtype, device=dev) for s in sigmas]

        def run():
            with torch.inference_mode():
                out = None
                for s in sig:
                    out = fn(x, s)
                return out

        times, _ = torch_common.timed_runs(dev, run, max(args.warmup, 1), args.reps, args.max_call_s, check_first=True)
    except Exception as e:  # noqa: BLE001
        why = common.skip_reason(e, variant, {"compile": "torch.compile"})
        if why is None:
            raise
        row["skipped"] = common.reason_text(why)
        return row
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    med = statistics.median(times)
    flops = n * args.evals * 2 * w * (d + 2 * cfg["fourier"] + cfg["depth"] * cfg["block_layers"] * w + d)
    row.update({"reps": len(times), "ms": med, "min_ms": min(times), "max_ms": max(times),
                "evals_per_s": n * args.evals / (med * 1e-3), "gflop_per_s": flops / (med * 1e-3) / 1e9})
    return row


def print_table(rows, meta):
    print("# %s %s on %s\n" % (LIBRARY, meta["version"], meta["device"]))
    print("| variant | dtype | N | d | width | depth | ms (median) | samples x evals / s | GFLOP/s |")
    print("|---|---|---|---|---|---|---:|---:|---:|")
    for r in rows:
        head = "| %s | %s | %s | %d | %d | %d |" % (r["variant"], r["dtype"], common.pow10_label(r["N"]), r["d"], r["width"], r["depth"])
        if "skipped" in r:
            print(head + " skipped: %s | | |" % r["skipped"])
        else:
            print(head + " %.4g | %.4g | %.1f |" % (r["ms"], r["evals_per_s"], r["gflop_per_s"]))
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pure", action="store_true", help="read and write safetensors with struct + json even when the safetensors package is installed")
    sub = p.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("eval", help="D(x; sigma) of a checkpoint, float64")
    e.add_argument("--model", required=True)
    e.add_argument("--x", required=True)
    e.add_argument("--sigma", required=True, type=lambda s: [float(v) for v in s.split(",")])
    e.add_argument("--out", required=True)
    s = sub.add_parser("save", help="fresh PyTorch parameters for a checkpoint's architecture")
    s.add_argument("--like", required=True)
    s.add_argument("--seed", required=True, type=int)
    s.add_argument("--out", required=True)
    s.add_argument("--dtype", default="f64", choices=["f64", "f32"])
    b = sub.add_parser("bench", help="inference throughput, eager and torch.compile")
    bench_args(b)
    args = p.parse_args()
    if args.mode == "bench":
        if args.reps < 20:
            b.error("--reps must be at least 20 (the median of fewer is too noisy to compare)")
        return run_bench(args)
    try:
        (run_eval if args.mode == "eval" else run_save)(args)
    except (CheckpointError, ValueError, KeyError, TypeError, OSError) as e:
        print("mlp_torch.py %s: %s: %s" % (args.mode, type(e).__name__, e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
