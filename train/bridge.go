//go:build !cuda

package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Multi-marginal Schrödinger bridge matching (docs/bridge.md): iterative Markovian fitting (IMF,
// the DSBM algorithm of Shi et al. 2023) over the intervals of M+1 snapshot times, factorised per
// interval as the multi-marginal problem with a Markov reference allows.
//
// Bridge matching on one interval [s, t] (T = t − s) with coupled pairs (x_s, x_t): draw a pair,
// λ ~ U[0, 1), the Brownian-bridge point X_τ = (1 − λ) x_s + λ x_t + √(εTλ(1 − λ)) z at τ = s + λT,
// and regress the forward network's endpoint prediction D(X_τ; σ) on x_t at σ = √(ε(t − τ)) —
// exactly the denoising loss of the package (weight λ(σ), the network's μ and σd those of the
// target marginal). Its minimiser is E[x_t | X_τ], which makes the drift (D − x)/(t − τ) the
// Markovian projection's. The backward network regresses x_s at σ = √(ε(τ − s)).
//
// IMF alternates: iteration 1 fits the forward networks on the initial coupling (independent,
// plain bridge matching; or mini-batch optimal transport, BridgeConfig.Init), then simulates the fitted SDE forward from every point of p_k (the reciprocal
// projection: new pairs (x_s, X̂_t)); iteration 2 fits the backward networks on those pairs and
// simulates backward from every point of p_{k+1}; and so on. A forward iteration's pairs hold the
// data at s, a backward one's the data at t, so neither end drifts.

// BridgeConfig configures FitBridge.
type BridgeConfig struct {
	// Net is every network's architecture and optimiser; Net.Steps is the number of Adam steps of
	// one network in one iteration and Net.Seed the base of every seed of the fit. Net.Progress,
	// when set, is called for every step of every network, concurrently for different intervals.
	Net Config
	// Eps is the diffusion ε > 0 of the reference Brownian motion.
	Eps float64
	// Iterations ≥ 1: odd iterations (1, 3, …) fit the forward networks, even ones the backward.
	Iterations int
	// SimSteps ≥ 1 is the number of bridge-integrator steps per interval of the reciprocal
	// projection (solvers.BridgeSimConfig.Steps).
	SimSteps int
	// FromScratch starts every fit from a fresh network; by default (false) a fit continues from
	// the network of the same direction and interval fitted two iterations earlier (Adam restarts).
	FromScratch bool
	// Workers is the number of intervals fitted at once (0: GOMAXPROCS).
	Workers int
	// Progress, when non-nil, is called after every completed iteration; a non-nil return stops
	// the fit with that error (the report's Bridge is the last complete model).
	Progress func(BridgeReport) error
	// Backend runs the reciprocal projection's simulation (nil: ops.CPU()).
	Backend ops.Backend
	// Init is the initial coupling: InitIndependent (the default) or InitMinibatchOT.
	Init Coupling
	// Flow fits the flow-matching counterpart instead (a baseline): noise-free interpolants
	// X_τ = (1 − λ) x_s + λ x_t, a deterministic simulation, the result a solvers.NewFlowBridge.
	// Eps then only sets the networks' noise levels. With Iterations > 1 this is rectified flow's
	// reflow, per interval.
	Flow bool
}

// Coupling names the initial coupling of a bridge fit.
type Coupling string

const (
	// InitIndependent pairs every point of the larger snapshot with a uniformly drawn point of
	// the other.
	InitIndependent Coupling = "independent"
	// InitMinibatchOT draws the independent pairs, then re-pairs them within blocks of
	// MinibatchOTSize by exact optimal transport for the squared distance (an assignment problem
	// per block): the mini-batch OT coupling, much closer to the Schrödinger coupling when ε is
	// small.
	InitMinibatchOT Coupling = "minibatch-ot"
)

// MinibatchOTSize is the block size of InitMinibatchOT.
const MinibatchOTSize = 256

// BridgeReport describes one completed IMF iteration.
type BridgeReport struct {
	Iteration int
	Forward   bool
	// Loss is, per interval, the mean training loss over the fit's last tenth of steps.
	Loss []float64
	// SW is, per interval, the sliced Wasserstein distance (solvers.SlicedWasserstein, 64
	// directions) between the simulated and the observed marginal the iteration simulated to:
	// t_{k+1} for a forward iteration, t_k for a backward one.
	SW []float64
	// Bridge is the model after this iteration (both directions once both were fitted).
	Bridge *solvers.Bridge
}

// BridgeSWProjections is the number of directions of the reports' sliced Wasserstein distances.
const BridgeSWProjections = 64

func (c BridgeConfig) check(times []float64) error {
	if err := solvers.CheckBridgeTimes(times, c.Eps); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	switch {
	case c.Iterations < 1:
		return fmt.Errorf("train: bridge: iterations = %d: must be ≥ 1", c.Iterations)
	case c.SimSteps < 1:
		return fmt.Errorf("train: bridge: simulation steps = %d: must be ≥ 1 per interval", c.SimSteps)
	case c.Workers < 0:
		return fmt.Errorf("train: bridge: workers = %d: must be ≥ 0", c.Workers)
	case c.Init != "" && c.Init != InitIndependent && c.Init != InitMinibatchOT:
		return fmt.Errorf("train: bridge: initial coupling %q: want %q or %q", c.Init, InitIndependent, InitMinibatchOT)
	}
	return nil
}

// pairs is a coupling of two consecutive marginals: row i of xs with row i of xt.
type pairs struct{ xs, xt []float64 }

// FitBridge fits a multi-marginal Schrödinger bridge to snapshots: snaps[k] holds the points
// observed at times[k], row-major with d coordinates each (any number ≥ 1 of points per time).
// It returns the model after the last iteration (also passed to Progress after each).
func FitBridge(cfg BridgeConfig, times []float64, snaps [][]float64, d int) (*solvers.Bridge, error) {
	if err := cfg.check(times); err != nil {
		return nil, err
	}
	if len(snaps) != len(times) {
		return nil, fmt.Errorf("train: bridge: %d snapshots for %d times", len(snaps), len(times))
	}
	srcs := make([]Source, len(snaps))
	for k, s := range snaps {
		src, err := FromFlat(s, d)
		if err != nil {
			return nil, fmt.Errorf("train: bridge: snapshot %d (t = %g): %w", k, times[k], err)
		}
		srcs[k] = src
	}
	be := cfg.Backend
	if be == nil {
		be = ops.CPU()
	}
	M := len(times) - 1
	rng := rand.New(rand.NewPCG(cfg.Net.Seed, 0x696d66))
	cpl := make([]pairs, M)
	for k := range cpl {
		cpl[k] = initialPairs(rng, snaps[k], snaps[k+1], d, cfg.Init)
	}
	var fwd, bwd []*ops.MLP
	var model *solvers.Bridge
	for it := 1; it <= cfg.Iterations; it++ {
		forward := it%2 == 1
		prev := bwd
		if forward {
			prev = fwd
		}
		if cfg.FromScratch {
			prev = nil
		}
		nets, loss, err := fitIntervals(cfg, times, srcs, cpl, it, forward, prev)
		if err != nil {
			return model, fmt.Errorf("train: bridge: iteration %d: %w", it, err)
		}
		if forward {
			fwd = nets
		} else {
			bwd = nets
		}
		newBridge := solvers.NewBridge
		if cfg.Flow {
			newBridge = solvers.NewFlowBridge
		}
		m, err := newBridge(times, cfg.Eps, fwd, bwd)
		if err != nil {
			return model, fmt.Errorf("train: bridge: iteration %d: %w", it, err)
		}
		rep := BridgeReport{Iteration: it, Forward: forward, Loss: loss, Bridge: m}
		for k := 0; k < M; k++ {
			from, to, start, target := times[k], times[k+1], snaps[k], snaps[k+1]
			if !forward {
				from, to, start, target = to, from, target, start
			}
			sim, err := simulate(be, m, start, d, solvers.BridgeSimConfig{From: from, To: to, Steps: cfg.SimSteps,
				Seed: mix(cfg.Net.Seed, it, k, 0x73696d)})
			if err != nil {
				return model, fmt.Errorf("train: bridge: iteration %d, interval %d: %w", it, k, err)
			}
			if forward {
				cpl[k] = pairs{xs: start, xt: sim}
			} else {
				cpl[k] = pairs{xs: sim, xt: start}
			}
			rep.SW = append(rep.SW, solvers.SlicedWasserstein(sim, target, d, BridgeSWProjections, mix(cfg.Net.Seed, it, k, 0x7377)))
		}
		model = m
		if cfg.Progress != nil {
			if err := cfg.Progress(rep); err != nil {
				return model, err
			}
		}
	}
	return model, nil
}

// initialPairs is the initial coupling of snapshots a and b: every point of the larger one paired
// with a uniform draw from the other (independent), then, for InitMinibatchOT, the pairs of each
// block of MinibatchOTSize re-paired by exact OT for the squared distance.
func initialPairs(rng *rand.Rand, a, b []float64, d int, init Coupling) pairs {
	na, nb := len(a)/d, len(b)/d
	n := max(na, nb)
	ia, ib := make([]int, n), make([]int, n)
	for i := range ia {
		if na >= nb {
			ia[i], ib[i] = i, rng.IntN(nb)
		} else {
			ia[i], ib[i] = rng.IntN(na), i
		}
	}
	if init == InitMinibatchOT {
		rng.Shuffle(n, func(i, j int) { ia[i], ia[j] = ia[j], ia[i] })
		cost := make([]float64, MinibatchOTSize*MinibatchOTSize)
		for lo := 0; lo < n; lo += MinibatchOTSize {
			m := min(MinibatchOTSize, n-lo)
			for i := 0; i < m; i++ {
				x := a[ia[lo+i]*d : (ia[lo+i]+1)*d]
				for j := 0; j < m; j++ {
					y := b[ib[lo+j]*d : (ib[lo+j]+1)*d]
					s := 0.0
					for q, v := range x {
						s += (v - y[q]) * (v - y[q])
					}
					cost[i*m+j] = s
				}
			}
			perm := assign(cost[:m*m], m)
			block := append([]int(nil), ib[lo:lo+m]...)
			for i, j := range perm {
				ib[lo+i] = block[j]
			}
		}
	}
	p := pairs{xs: make([]float64, 0, n*d), xt: make([]float64, 0, n*d)}
	for i := 0; i < n; i++ {
		p.xs = append(p.xs, a[ia[i]*d:(ia[i]+1)*d]...)
		p.xt = append(p.xt, b[ib[i]*d:(ib[i]+1)*d]...)
	}
	return p
}

// simulate runs m from the rows of start (n·d values) and returns the final states.
func simulate(be ops.Backend, m *solvers.Bridge, start []float64, d int, sc solvers.BridgeSimConfig) ([]float64, error) {
	host, err := tensor.FromF64(start, len(start)/d, d)
	if err != nil {
		return nil, err
	}
	x, err := host.CopyTo(be.Device())
	if err != nil {
		return nil, err
	}
	defer x.Close()
	res, err := m.Simulate(be, x, sc)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out, err := res.Samples.Float64s()
	if err != nil {
		return nil, err
	}
	if ok, i := res.Samples.HasNaN(); ok {
		return nil, fmt.Errorf("the simulated state of point %d is not finite (lower the learning rate or raise the simulation steps)", i/d)
	}
	return out, nil
}

// mix derives a seed from the fit's seed, the iteration, the interval and a purpose.
func mix(seed uint64, it, k int, purpose uint64) uint64 {
	z := seed ^ purpose<<40 ^ uint64(it)<<20 ^ uint64(k)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// fitIntervals fits one direction's network on every interval (intervals in parallel).
func fitIntervals(cfg BridgeConfig, times []float64, srcs []Source, cpl []pairs, it int, forward bool, prev []*ops.MLP) ([]*ops.MLP, []float64, error) {
	M := len(cpl)
	nets, loss, errs := make([]*ops.MLP, M), make([]float64, M), make([]error, M)
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(workers, M); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				var p *ops.MLP
				if prev != nil {
					p = prev[k]
				}
				nets[k], loss[k], errs[k] = fitInterval(cfg, times[k], times[k+1], srcs, k, cpl[k], it, forward, p)
			}
		}()
	}
	for k := 0; k < M; k++ {
		next <- k
	}
	close(next)
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			return nil, nil, fmt.Errorf("interval %d (%g → %g): %w", k, times[k], times[k+1], err)
		}
	}
	return nets, loss, nil
}

// fitInterval fits one network by bridge matching on the pairs of [s, t].
func fitInterval(cfg BridgeConfig, s, t float64, srcs []Source, k int, p pairs, it int, forward bool, prev *ops.MLP) (*ops.MLP, float64, error) {
	src := srcs[k]
	if forward {
		src = srcs[k+1]
	}
	nc := cfg.Net
	nc.Seed = mix(cfg.Net.Seed, it, k, 0x666974)
	var losses []float64
	user := nc.Progress
	nc.Progress = func(pr Progress) error {
		losses = append(losses, pr.Loss)
		if user != nil {
			return user(pr)
		}
		return nil
	}
	tr, err := New(nc, src)
	if err != nil {
		return nil, 0, err
	}
	defer tr.Close()
	if prev != nil {
		if err := tr.SetParams(prev); err != nil {
			return nil, 0, err
		}
	}
	d := src.dim
	n := len(p.xs) / d
	T := t - s
	eps := cfg.Eps
	tr.draw = func(rng *rand.Rand, x0, x, sigma []float64) error {
		for b := range sigma {
			i := rng.IntN(n)
			xs, xt := p.xs[i*d:(i+1)*d], p.xt[i*d:(i+1)*d]
			var l, left float64 // λ and the fraction of the interval left to the target end
			if forward {
				l = rng.Float64() // [0, 1): σ² = εT(1 − λ) > 0
				left = 1 - l
				copy(x0[b*d:(b+1)*d], xt)
			} else {
				l = 1 - rng.Float64() // (0, 1]: σ² = εTλ > 0
				left = l
				copy(x0[b*d:(b+1)*d], xs)
			}
			sigma[b] = math.Sqrt(eps * T * left)
			sd := math.Sqrt(eps * T * l * (1 - l))
			if cfg.Flow {
				sd = 0
			}
			for j := 0; j < d; j++ {
				x[b*d+j] = (1-l)*xs[j] + l*xt[j] + sd*rng.NormFloat64()
			}
		}
		return nil
	}
	if err := tr.Run(); err != nil {
		return nil, 0, err
	}
	mean := math.NaN()
	if len(losses) > 0 {
		tail := losses[len(losses)-max(1, len(losses)/10):]
		mean = 0
		for _, v := range tail {
			mean += v / float64(len(tail))
		}
	}
	return tr.Model(), mean, nil
}
