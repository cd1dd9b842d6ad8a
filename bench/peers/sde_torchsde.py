"""torchsde peer of BenchmarkSDEGradient: the gradient of L = mean(y_T) through a reversible Heun
solve, on the problems of bench/sdegrad_test.go (sde_common.PROBLEMS: ou, gbm, gmm; T = 1;
steps 1e2, 1e3, 1e4), with torchsde's own Brownian motion (torchsde.BrownianInterval, created
inside each timed gradient, as scorekit creates its intervals inside the solve).

Variants (each the gradient with respect to the parameters and y0):
  adjoint   torchsde.sdeint_adjoint(method="reversible_heun",
            adjoint_method="adjoint_reversible_heun"): states rebuilt by the algebraic inverse,
            memory independent of the steps (scorekit's algorithm)
  backprop  torchsde.sdeint(method="reversible_heun") and autograd through the stored graph
            (memory grows with the steps)

Each row: the median time of one gradient (forward solve + backward pass) over --reps after
--warmup, steps/s = paths x d x steps / median seconds (the Go metric), and the peak memory of one
gradient: on CUDA torch.cuda.max_memory_allocated after reset_peak_memory_stats, less what was
allocated before; on the CPU the growth of the process's maximum RSS (resource.getrusage) during one
gradient -- a high-water mark, 0 when the gradient stays below an earlier peak (steps run in
increasing order, so growth with the steps shows).

Before timing, both variants' gradients are checked against central finite differences of the
torchsde solve (the same BrownianInterval object, so the same path) on a small float64 problem of
every family; a disagreement stops the script.

    python3 sde_torchsde.py [--device cpu] [--families ou,gbm] [--steps 1e2,1e3] [--json out.json]

Exits 0 with a message when torch or torchsde is missing (pip install torchsde) or, for
--device cuda (the default), when there is no CUDA device.
"""

import math
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sde_common  # noqa: E402

LIBRARY = "torchsde"
VARIANTS = ["adjoint", "backprop"]
SEED = 3


def import_torchsde(device):
    torch = common.import_torch(LIBRARY, cuda=device == "cuda")
    try:
        import torchsde
    except ImportError as e:
        common.skip(LIBRARY, "torchsde is not installed (%s); pip install torchsde" % e)
    return torch, torchsde


def make_sde(torch, family, params, dtype, dev):
    """The family as a torchsde SDE (Stratonovich, diagonal noise) whose parameters are
    nn.Parameters in the order of sde_common.params_of; returns (sde, list of parameters)."""
    prob = sde_common.PROBLEMS[family]
    d = prob["d"]
    t = lambda v: torch.nn.Parameter(torch.tensor(v, dtype=dtype, device=dev))  # noqa: E731

    class SDE(torch.nn.Module):
        noise_type = "diagonal"
        sde_type = "stratonovich"

    if family == "ou":
        class OU(SDE):
            def __init__(self):
                super().__init__()
                self.theta, self.mu, self.sigma = t(params[0]), t(params[1]), t(params[2])

            def f(self, _t, y):
                return self.theta * (self.mu - y)

            def g(self, _t, y):
                return self.sigma.expand_as(y)
        s = OU()
        return s, [s.theta, s.mu, s.sigma]
    if family == "gbm":
        class GBM(SDE):
            def __init__(self):
                super().__init__()
                self.mu, self.sigma = t(params[0]), t(params[1])

            def f(self, _t, y):
                return (self.mu - 0.5 * self.sigma * self.sigma) * y

            def g(self, _t, y):
                return self.sigma * y
        s = GBM()
        return s, [s.mu, s.sigma]
    k = len(prob["vars"])
    var = torch.tensor(prob["vars"], dtype=dtype, device=dev)

    class GMM(SDE):
        def __init__(self):
            super().__init__()
            self.means = torch.nn.Parameter(torch.tensor(params[:k * d], dtype=dtype, device=dev).reshape(k, d))
            self.logits = torch.nn.Parameter(torch.tensor(params[k * d:], dtype=dtype, device=dev))

        def f(self, _t, y):
            diff = self.means[None, :, :] - y[:, None, :]
            ell = self.logits[None, :] - (diff * diff).sum(-1) / (2 * var) - 0.5 * d * torch.log(var)
            r = torch.softmax(ell, dim=1)
            return (r[:, :, None] * diff / var[None, :, None]).sum(1)

        def g(self, _t, y):
            return torch.full_like(y, math.sqrt(2.0))
    s = GMM()
    return s, [s.means, s.logits]


def gradient_fn(torch, torchsde, family, steps, dtype, dev, variant, params=None, bm=None):
    """A function returning (loss, flat dL/dtheta, dL/dy0) of one gradient; a fresh
    BrownianInterval (entropy SEED) per call unless bm is given."""
    prob = sde_common.PROBLEMS[family]
    n, d = prob["paths"], prob["d"]
    params = sde_common.params_of(family) if params is None else params
    sde, plist = make_sde(torch, family, params, dtype, dev)
    x0 = torch.tensor(sde_common.start_row(family), dtype=dtype, device=dev).expand(n, d).contiguous()
    ts = torch.tensor([0.0, sde_common.HORIZON], dtype=dtype, device=dev)
    h = sde_common.HORIZON / steps

    def call(y0=x0):
        y0 = y0.detach().clone().requires_grad_(True)
        b = bm or torchsde.BrownianInterval(t0=0.0, t1=sde_common.HORIZON, size=(n, d), dtype=dtype,
                                            device=dev, entropy=SEED, dt=h)
        if variant == "adjoint":
            ys = torchsde.sdeint_adjoint(sde, y0, ts, bm=b, method="reversible_heun",
                                         adjoint_method="adjoint_reversible_heun", dt=h,
                                         adjoint_params=tuple(plist))
        else:
            ys = torchsde.sdeint(sde, y0, ts, bm=b, method="reversible_heun", dt=h)
        loss = ys[-1].mean()
        grads = torch.autograd.grad(loss, plist + [y0])
        return loss.detach(), torch.cat([g.reshape(-1) for g in grads[:-1]]), grads[-1]

    def loss_at(p, y0=x0):
        s, _ = make_sde(torch, family, p, dtype, dev)
        with torch.no_grad():
            return float(torchsde.sdeint(s, y0, ts, bm=bm, method="reversible_heun", dt=h)[-1].mean())
    return call, loss_at, x0


def self_check(torch, torchsde, dev):
    """Every variant's gradient against central differences of the solve, float64, 40 steps, on a
    3-path version of each family (one BrownianInterval object, so every solve sees one path)."""
    saved = {f: dict(p) for f, p in sde_common.PROBLEMS.items()}
    try:
        for family in sde_common.FAMILIES:
            sde_common.PROBLEMS[family]["paths"] = 3
            d = sde_common.PROBLEMS[family]["d"]
            bm = torchsde.BrownianInterval(t0=0.0, t1=sde_common.HORIZON, size=(3, d), dtype=torch.float64,
                                           device=dev, entropy=SEED)
            p0 = sde_common.params_of(family)
            for variant in VARIANTS:
                call, loss_at, x0 = gradient_fn(torch, torchsde, family, 40, torch.float64, dev, variant, bm=bm)
                x0 = x0 + 0.1 * torch.arange(x0.numel(), dtype=torch.float64, device=dev).reshape(x0.shape) / x0.numel()
                _, gp, gx = call(x0)
                fd_p, fd_x = [], []
                for i in range(len(p0)):
                    e = 1e-6 * max(1.0, abs(p0[i]))
                    pp, pm = list(p0), list(p0)
                    pp[i] += e
                    pm[i] -= e
                    fd_p.append((loss_at(pp, x0) - loss_at(pm, x0)) / (2 * e))
                for i in range(x0.numel()):
                    xp, xm = x0.clone(), x0.clone()
                    xp.view(-1)[i] += 1e-6
                    xm.view(-1)[i] -= 1e-6
                    fd_x.append((loss_at(p0, xp) - loss_at(p0, xm)) / 2e-6)
                what = "%s/%s" % (family, variant)
                sde_common.check_close(LIBRARY, what + " dL/dtheta", gp.tolist(), fd_p, 1e-5)
                sde_common.check_close(LIBRARY, what + " dL/dx0", gx.reshape(-1).tolist(), fd_x, 1e-5)
    finally:
        for f, p in saved.items():
            sde_common.PROBLEMS[f].clear()
            sde_common.PROBLEMS[f].update(p)


def peak_bytes(torch, dev, call):
    """The peak memory of one call of call (see the module comment) and how it was measured."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        out = call()
        torch.cuda.synchronize(dev)
        del out
        return torch.cuda.max_memory_allocated(dev) - base, "torch.cuda.max_memory_allocated of one gradient"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = call()
    del out
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) * 1024, "growth of the process's max RSS during one gradient"


def main():
    args = sde_common.parse_args(LIBRARY, VARIANTS, "cuda")
    torch, torchsde = import_torchsde(args.device)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    self_check(torch, torchsde, dev)
    import torch_common
    dtypes = {"f32": torch.float32, "f64": torch.float64}
    rows = []
    for family in args.families:
        for dt in args.dtypes:
            for steps in sorted(args.steps):
                for variant in args.variants:
                    try:
                        call, _, _ = gradient_fn(torch, torchsde, family, steps, dtypes[dt], dev, variant)
                        times, _ = torch_common.timed_runs(dev, call, args.warmup, args.reps, args.max_call_s,
                                                           check_first=True)
                        peak, how = peak_bytes(torch, dev, call)
                        rows.append(sde_common.result(LIBRARY, variant, family, dt, steps, times, peak,
                                                      args.device, how))
                    except Exception as e:  # noqa: BLE001
                        why = common.skip_reason(e)
                        if why is None:
                            raise
                        rows.append(sde_common.skipped(LIBRARY, variant, family, dt, steps, why, args.device))
                    finally:
                        if cuda:
                            torch.cuda.empty_cache()
    device_name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    version = getattr(torchsde, "__version__", "unknown")
    sde_common.print_table(rows, "torchsde %s (torch %s) on %s, reversible Heun, terminal-mean loss; median of %d "
                           "gradients after %d warm-up gradients" % (version, torch.__version__, device_name,
                                                                     args.reps, args.warmup))
    meta = {"library": LIBRARY, "version": version, "torch": torch.__version__, "device": device_name,
            "reps": args.reps, "warmup": args.warmup, "seed": SEED, "date_started": time.strftime("%Y-%m-%d"),
            "timing": ("CUDA events" if cuda else "host clock") + " around one gradient (solve + backward), median"}
    common.write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()
