"""PyTorch pieces of the peers scripts: the device's JSON meta, timing with CUDA events (warm-up,
then one pair of events per call or run), the memory check before a problem, and the closed-form
log-density, gradient and MALA step of an isotropic Gaussian mixture with their self-check.

Imports torch at module level: a script imports this module only after common.import_torch has
found torch (and, for a GPU run, a CUDA device).
"""

import math
import time

import torch

import common

LIBRARY = "torch"


def device_meta(dev, args, timing, **extra):
    """The JSON meta of a peer on CUDA device dev: library, version, CUDA and device, then extra,
    then reps, warmup and how the calls were timed."""
    props = torch.cuda.get_device_properties(dev)
    meta = {
        "library": LIBRARY,
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "device": props.name,
        "device_memory_bytes": props.total_memory,
    }
    meta.update(extra)
    meta.update(reps=args.reps, warmup=args.warmup, timing=timing)
    return meta


def event_times(dev, call, reps):
    """reps calls of call queued back to back, each between its own pair of CUDA events on the
    current stream; the times in milliseconds once the device is synchronised."""
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for s, e in zip(starts, ends):
        s.record()
        call()
        e.record()
    torch.cuda.synchronize(dev)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]  # milliseconds


def time_problem(dev, label, make_call, warmup, reps, fft=False):
    """Times the call that make_call() returns: warmup untimed calls, a synchronisation, then
    event_times. None, with a note on stderr, when the device runs out of memory. Afterwards the
    caching allocator (and with fft cuFFT's plan cache) is emptied, so that one problem's memory
    does not stay for the next."""
    call = None
    try:
        call = make_call()
        for _ in range(warmup):
            call()
        torch.cuda.synchronize(dev)
        return event_times(dev, call, reps)
    except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if not common.is_out_of_memory(e):
            raise
        common.note_skip(label, str(e).splitlines()[0])
        return None
    finally:
        call = None
        if fft:
            torch.backends.cuda.cufft_plan_cache.clear()
        torch.cuda.empty_cache()


def timed_runs(dev, call, warmup, reps, max_call_s, check_first=False):
    """Per-run times in milliseconds and the result of the last timed call. First warmup untimed
    runs, each synchronised; common.TooSlow when the last of them (with check_first the first)
    takes longer than max_call_s seconds. Then reps runs, each between a pair of CUDA events on a
    CUDA device, on the host clock elsewhere (a check run, not comparable)."""
    cuda = dev.type == "cuda"
    check = 0 if check_first else warmup - 1
    for i in range(warmup):
        t0 = time.perf_counter()
        out = call()
        if cuda:
            torch.cuda.synchronize(dev)
        elapsed = time.perf_counter() - t0
        if i == check and elapsed > max_call_s:
            raise common.TooSlow("one run takes %.1f s (--max-call-s %g)" % (elapsed, max_call_s))
        del out
    times, last = [], None
    for _ in range(reps):
        last = None
        if cuda:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            last = call()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            last = call()
            times.append((time.perf_counter() - t0) * 1e3)
    return times, last


def lacks_memory(dev, need):
    """Why a problem needing need bytes of device memory cannot run on CUDA device dev now, or
    None when it fits."""
    free, _ = torch.cuda.mem_get_info(dev)
    if need > free:
        return "out of memory: needs %.1f GiB, %.1f GiB free" % (need / 2**30, free / 2**30)
    return None


def gmm(logw, mu, var):
    """The isotropic Gaussian mixture with log-weights logw (K), means mu (K x d) and variances var
    (K), batched over rows x (n x d):

        diff = x[:,None,:] - mu[None]                       (n, K, d)
        r_k = log w_k + log N(x; mu_k, var_k I)              (n, K)
        log p = logsumexp_k r_k,   grad log p = -sum_k softmax(r)_k diff_k / var_k

    Returns {"log_terms": x -> (diff, r), "closed": x -> (log p, grad) in closed form,
    "score": x -> grad alone, "autograd": x -> (log p, grad by torch.autograd.grad of sum(log p))}."""
    d = mu.shape[1]
    lognorm = logw - 0.5 * d * torch.log(2 * math.pi * var)  # (K)

    def log_terms(x):
        diff = x[:, None, :] - mu[None]                       # (n, K, d)
        return diff, lognorm - 0.5 * (diff * diff).sum(-1) / var

    def closed(x):
        diff, r = log_terms(x)
        logp = torch.logsumexp(r, 1)
        gamma = torch.softmax(r, 1) / var                      # (n, K)
        return logp, -(gamma[:, :, None] * diff).sum(1)

    def score(x):
        diff, r = log_terms(x)
        return -((torch.softmax(r, 1) / var)[:, :, None] * diff).sum(1)

    def autograd(x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logp = torch.logsumexp(log_terms(x)[1], 1)
            (g,) = torch.autograd.grad(logp.sum(), x)
        return logp.detach(), g

    return {"log_terms": log_terms, "closed": closed, "score": score, "autograd": autograd}


def mala_step(evaluate, h):
    """One MALA step with step size h, batched over the chains, as step(x, logp, grad, xi, u) ->
    (x', logp', grad', accepted): y = x + h grad + sqrt(2h) xi; log p(y), grad(y) = evaluate(y);
    log alpha = log p(y) - log p(x) + (|y - x - h grad(x)|^2 - |x - y - h grad(y)|^2) / (4h);
    accept where log u < log alpha (torch.where)."""
    noise_scale = math.sqrt(2 * h)

    def step(x, logp, grad, xi, u):
        y = x + h * grad + noise_scale * xi
        logp_y, grad_y = evaluate(y)
        fwd = ((y - x - h * grad) ** 2).sum(1)
        bwd = ((x - y - h * grad_y) ** 2).sum(1)
        log_alpha = logp_y - logp + (fwd - bwd) / (4 * h)
        acc = torch.log(u) < log_alpha
        return (torch.where(acc[:, None], y, x), torch.where(acc, logp_y, logp),
                torch.where(acc[:, None], grad_y, grad), acc)

    return step


def check_gmm(dev, logw, mu, var):
    """gmm's closed-form log p and gradient against autograd and a central difference, and its
    score against the gradient, in float64 at 7 points for the mixture given as Python lists;
    AssertionError on a disagreement."""
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=dev)  # noqa: E731
    fns = gmm(t(logw), t(mu), t(var))
    d = len(mu[0])
    gen = torch.Generator(device=dev).manual_seed(3)
    x = 3 * torch.randn(7, d, dtype=torch.float64, device=dev, generator=gen)
    lp, g = fns["closed"](x)
    lp2, g2 = fns["autograd"](x)
    if not (torch.allclose(lp, lp2, rtol=1e-12, atol=1e-12) and torch.allclose(g, g2, rtol=1e-9, atol=1e-12)):
        raise AssertionError("self-check: closed-form GMM log p / gradient differ from autograd")
    if not torch.allclose(fns["score"](x), g, rtol=1e-12, atol=1e-12):
        raise AssertionError("self-check: the GMM score differs from the gradient of log p")
    eps = 1e-6
    for j in range(d):
        e = torch.zeros_like(x)
        e[:, j] = eps
        fd = (fns["closed"](x + e)[0] - fns["closed"](x - e)[0]) / (2 * eps)
        if not torch.allclose(fd, g[:, j], rtol=1e-6, atol=1e-6):
            raise AssertionError("self-check: GMM gradient differs from a central difference in coordinate %d" % j)
