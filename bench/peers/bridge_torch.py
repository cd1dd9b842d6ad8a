#!/usr/bin/env python3
"""PyTorch twin of scorekit's Schrödinger-bridge simulation (solvers.Bridge.Simulate,
docs/bridge.md): the bridge file's networks as torch modules (mlp_torch.make_module) and the
bridge step, for a check against the Go implementation and a throughput benchmark.

The step from tau with r = |end - tau| left, of size h, on interval k toward its end:

    D  = net_k(x; sigma = sqrt(eps r))                  the endpoint prediction
    x' = (1 - h/r) x + (h/r) D + sqrt(eps h (r - h) / r) xi

(no xi for a flow bridge). An interval [t_k, t_{k+1}] takes S steps of equal size; a part of an
interval ceil(S x its fraction) steps.

Modes:

    python3 bridge_torch.py simulate --model B.safetensors --x X.npy --from T --to T --steps S --out Y.npy
        the deterministic path (flow bridges only: the noise of a Schrödinger bridge comes from
        scorekit's Philox streams, which PyTorch does not draw), float64, CPU.
    python3 bridge_torch.py bench [--device cuda|cpu] [--dims 2,50] [--batch 4096,65536]
                                  [--steps 20] [--dtypes f32,f64] [--variants eager,compile]
                                  [--json PATH]
        throughput of the simulation of one interval over --steps steps with networks of width
        64, depth 2, 8 Fourier frequencies (the sizes of BenchmarkBridgeSimulate): point-steps
        per second and GFLOP/s of the networks (2 W (d + 2F) + 2 L W^2 + 2 W d per point and
        step). CUDA runs are timed with CUDA events, CPU runs with the host clock; median of
        --reps runs after --warmup.
"""

import argparse
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import mlp_torch  # noqa: E402

LIBRARY = "pytorch"


def load_bridge(torch, path):
    """(times, eps, flow, fwd modules, bwd modules) of a bridge file, float64 on the CPU."""
    import numpy as np
    tensors, meta = mlp_torch.read_safetensors(path, pure=True)
    if meta.get("format") != "scorekit.mlp-set" or meta.get("kind") != "schrodinger-bridge":
        raise SystemExit("%s: not a scorekit bridge file" % path)
    times = [float(v) for v in meta["times"].split(",")]
    eps = float(meta["eps"])
    flow = meta.get("flow") == "1"
    nets = {}
    for name in meta["networks"].split(","):
        sub = {k[len(name) + 1:]: v for k, v in meta.items() if k.startswith(name + ".")}
        cfg = mlp_torch.config_of(sub, "%s:%s" % (path, name))
        m = mlp_torch.make_module(torch, cfg)
        state = {k[len(name) + 1:]: torch.from_numpy(np.asarray(v, dtype=np.float64))
                 for k, v in tensors.items() if k.startswith(name + ".")}
        m.load_state_dict(state, strict=True)
        nets[name] = m
    m = len(times) - 1
    fwd = [nets.get("fwd-%d" % k) for k in range(m)]
    bwd = [nets.get("bwd-%d" % k) for k in range(m)]
    return times, eps, flow, fwd, bwd


def grid(times, start, end, steps):
    """The steps (k, tau0, tau1, end) from start to end, in running order (solvers.Bridge.Grid)."""
    fwd = end > start
    lo, hi = min(start, end), max(start, end)
    m = len(times) - 1
    out = []
    for j in range(m):
        k = j if fwd else m - 1 - j
        a, e = max(lo, times[k]), min(hi, times[k + 1])
        if not e > a:
            continue
        n = max(1, int(math.ceil(steps * (e - a) / (times[k + 1] - times[k]) - 1e-9)))
        at = [a + (e - a) * i / n for i in range(n)] + [e]
        for i in range(n):
            if fwd:
                out.append((k, at[i], at[i + 1], times[k + 1]))
            else:
                out.append((k, at[n - i], at[n - i - 1], times[k]))
    return out


def simulate(torch, nets, eps, flow, times, x, start, end, steps, gen=None):
    fwd_nets, bwd_nets = nets
    for k, t0, t1, e in grid(times, start, end, steps):
        net = fwd_nets[k] if end > start else bwd_nets[k]
        r, h = abs(e - t0), abs(t1 - t0)
        den = net(x, math.sqrt(eps * r))
        f = h / r
        x = (1 - f) * x + f * den
        if not flow:
            x = x + math.sqrt(max(eps * h * (r - h) / r, 0)) * torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=gen)
    return x


def run_simulate(args):
    torch = common.import_torch(LIBRARY, cuda=False)
    import numpy as np
    times, eps, flow, fwd, bwd = load_bridge(torch, args.model)
    if not flow:
        raise SystemExit("simulate: %s is a Schrödinger bridge; only flow bridges have a path PyTorch can reproduce" % args.model)
    x = torch.from_numpy(np.load(args.x).astype(np.float64))
    with torch.inference_mode():
        y = simulate(torch, (fwd, bwd), eps, flow, times, x, args.start, args.end, args.steps)
    np.save(args.out, y.numpy())


def run_bench(args):
    torch = common.import_torch(LIBRARY, cuda=args.device == "cuda")
    import torch_common
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    meta = {"library": LIBRARY, "version": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu (threads %d)" % torch.get_num_threads(),
            "reps": args.reps, "warmup": args.warmup, "steps": args.steps, "width": 64, "depth": 2, "fourier": 8,
            "timing": "CUDA events around one simulation, median" if cuda else "host clock, median"}
    rows = []
    for dt in args.dtypes:
        dtype = {"f32": torch.float32, "f64": torch.float64}[dt]
        for d in args.dims:
            for n in args.batch:
                for v in args.variants:
                    rows.append(bench_one(torch, torch_common, dev, args, d, n, dt, dtype, v))
                    print(json.dumps(rows[-1]), flush=True)
    common.write_json(args.json, meta, rows)


def bench_one(torch, torch_common, dev, args, d, n, dt, dtype, variant):
    w, depth, f = 64, 2, 8
    row = {"library": LIBRARY, "variant": variant, "dtype": dt, "N": n, "d": d, "steps": args.steps}
    if variant == "compile" and not hasattr(torch, "compile"):
        row["skipped"] = "torch %s has no torch.compile" % torch.__version__
        return row
    cfg = {"dim": d, "width": w, "depth": depth, "block_layers": 1, "fourier": f, "sigma_data": 1.0,
           "branch_mult": 1.0, "out_mult": 1.0}
    try:
        m = mlp_torch.make_module(torch, cfg).to(device=dev, dtype=dtype)
        mlp_torch.reinitialise(torch, m, 1)
        fn = torch.compile(m) if variant == "compile" else m
        gen = torch.Generator(device=dev).manual_seed(2)
        x0 = torch.randn(n, d, dtype=dtype, device=dev, generator=gen)

        def run():
            with torch.inference_mode():
                return simulate(torch, ([fn], None), 0.5, False, [0.0, 1.0], x0, 0.0, 1.0, args.steps, gen)

        times, _ = torch_common.timed_runs(dev, run, max(args.warmup, 1), args.reps, args.max_call_s)
    except Exception as e:  # noqa: BLE001
        why = common.skip_reason(e, variant, {"compile": "torch.compile"})
        if why is None:
            raise
        row["skipped"] = common.reason_text(why)
        return row
    med = statistics.median(times)
    flops = n * args.steps * (2 * w * (d + 2 * f) + 2 * depth * w * w + 2 * w * d)
    row.update({"reps": len(times), "ms": med, "point_steps_per_s": n * args.steps / (med * 1e-3),
                "gflop_per_s": flops / (med * 1e-3) / 1e9})
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("simulate")
    s.add_argument("--model", required=True)
    s.add_argument("--x", required=True)
    s.add_argument("--from", dest="start", type=float, required=True)
    s.add_argument("--to", dest="end", type=float, required=True)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--out", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--device", default=None, choices=["cuda", "cpu"])
    b.add_argument("--dims", type=common.int_list, default=[2, 50])
    b.add_argument("--batch", type=common.count_list, default=[4096, 65536])
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--dtypes", type=common.name_list, default=["f32", "f64"])
    common.add_variants_arg(b, ["eager", "compile"])
    common.add_max_call_arg(b, "first run")
    common.add_output_args(b, reps=5, warmup=2, timed="runs", untimed="runs")
    args = p.parse_args()
    if args.mode == "simulate":
        run_simulate(args)
    else:
        run_bench(args)


if __name__ == "__main__":
    main()
