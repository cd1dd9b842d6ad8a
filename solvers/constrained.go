package solvers

import (
	"errors"
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// MethodMetropolisConstrained is the constrained reverse sampler (ConstrainedSample), as the
// command names it.
const MethodMetropolisConstrained = "metropolis-constrained"

// ConstrainedConfig configures MetropolisWalk and ConstrainedSample (docs/math.md §5.4). The zero
// value is not runnable: a domain (Domain or Predicate), Steps and Horizon must be given.
type ConstrainedConfig struct {
	// Domain is the constraint set M, tested by ops.Backend.MetropolisStep on the backend's
	// device. Exactly one of Domain and Predicate is set.
	Domain *ops.Domain
	// Predicate, instead of Domain, says whether a point (d coordinates, the stored values as
	// float64) lies in M. It runs on the host: every step copies the proposals and the states to
	// the host and the accepted states back, so it is much slower than a Domain on a GPU (and
	// somewhat slower on the CPU). A proposal with a NaN or ±Inf coordinate is rejected without
	// calling it. It must be safe to call from one goroutine at a time (it is never called
	// concurrently).
	Predicate func(x []float64) bool
	// Steps is the number K ≥ 1 of steps, each of size h = Horizon/K.
	Steps int
	// Horizon is the total time T > 0 of the walk (MetropolisWalk) or the noise time the reverse
	// sampler starts from (ConstrainedSample: σ² = T).
	Horizon float64
	// Thin > 0 keeps the state every Thin steps in Result.Trace, shape (K/Thin + 1, N, d): row 0
	// is the initial state, row k the state after k·Thin steps. 0 keeps no trace.
	Thin int
	// Seed keys the random stream and FirstChain is the chain index of row 0 (see Site): step i's
	// proposal normals are Site(i, PurposeConstrained).
	Seed, FirstChain uint64
	// Progress, when set, receives the steps done out of Steps (see Progress).
	Progress Progress
}

// ConstrainedResult is the result of a constrained run: the samples (and trace) of Result, and
// the rejected proposals.
type ConstrainedResult struct {
	*Result
	// Rejected[i] is the number of proposals of chain FirstChain + i that left the domain (the
	// chain stayed put at those steps).
	Rejected []int64
	// RejectedTotal is the sum of Rejected; Proposals is the number of proposals made (N·K).
	RejectedTotal, Proposals int64
}

// RejectionRate is RejectedTotal/Proposals (NaN with no proposal).
func (r *ConstrainedResult) RejectionRate() float64 {
	if r == nil || r.Proposals == 0 {
		return math.NaN()
	}
	return float64(r.RejectedTotal) / float64(r.Proposals)
}

// Close frees the result's tensors.
func (r *ConstrainedResult) Close() error {
	if r == nil {
		return nil
	}
	return r.Result.Close()
}

// validate checks cfg against the start x0 (N, d) and returns h.
func (cfg ConstrainedConfig) validate(x0 *tensor.Tensor) (float64, error) {
	if (cfg.Domain == nil) == (cfg.Predicate == nil) {
		return 0, fmt.Errorf("give exactly one of a domain and a predicate")
	}
	if cfg.Domain != nil && cfg.Domain.Dim() != x0.Dim(1) {
		return 0, fmt.Errorf("the %v domain has dimension %d, the states %d", cfg.Domain.Kind(), cfg.Domain.Dim(), x0.Dim(1))
	}
	if cfg.Steps <= 0 {
		return 0, fmt.Errorf("steps = %d: need at least one step", cfg.Steps)
	}
	if uint64(cfg.Steps) > MaxSteps {
		return 0, fmt.Errorf("steps = %d: at most %d", cfg.Steps, uint64(MaxSteps))
	}
	if !finitePositive(cfg.Horizon) {
		return 0, fmt.Errorf("horizon T = %g: must be a finite number > 0", cfg.Horizon)
	}
	if cfg.Thin < 0 || cfg.Thin > cfg.Steps {
		return 0, fmt.Errorf("thin = %d: must be in [0, steps = %d] (0 keeps no trace)", cfg.Thin, cfg.Steps)
	}
	if err := checkChains("chains", x0.Dim(0), cfg.FirstChain); err != nil {
		return 0, err
	}
	return cfg.Horizon / float64(cfg.Steps), nil
}

// inside reports whether x (d values) lies in the configured domain.
func (cfg ConstrainedConfig) inside(x []float64) bool {
	if cfg.Domain != nil {
		return cfg.Domain.Contains(x)
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return cfg.Predicate(x)
}

// checkInside returns an error naming the rows of x0 outside the domain.
func (cfg ConstrainedConfig) checkInside(x0 *tensor.Tensor) error {
	v, err := x0.Float64s()
	if err != nil {
		return fmt.Errorf("read the initial states: %w", err)
	}
	n, d := x0.Dim(0), x0.Dim(1)
	first, count := -1, 0
	for i := 0; i < n; i++ {
		if !cfg.inside(v[i*d : (i+1)*d]) {
			if first < 0 {
				first = i
			}
			count++
		}
	}
	if count > 0 {
		what := "the predicate's set"
		if cfg.Domain != nil {
			what = "the " + cfg.Domain.Kind().String()
		}
		return fmt.Errorf("%d of %d initial states lie outside %s (first: row %d = %v): start inside the domain",
			count, n, what, first, v[first*d:(first+1)*d])
	}
	return nil
}

// metropolis runs the accept-if-inside rule for one step on the device (Domain) or the host
// (Predicate).
type metropolis struct {
	b        ops.Backend
	cfg      ConstrainedConfig
	rejected *tensor.Tensor // f64 (N) on the device (Domain)
	host     []int64        // per-chain counts (Predicate)
}

func newMetropolis(b ops.Backend, cfg ConstrainedConfig, n int) (*metropolis, error) {
	m := &metropolis{b: b, cfg: cfg}
	if cfg.Domain == nil {
		m.host = make([]int64, n)
		return m, nil
	}
	r, err := tensor.New(b.Device(), tensor.F64, n)
	if err != nil {
		return nil, fmt.Errorf("allocate the rejection counts (%d): %w", n, err)
	}
	m.rejected = r
	return m, nil
}

func (m *metropolis) close() { closeAll(m.rejected) }

// step moves x to prop where prop lies in the domain and counts the other rows.
func (m *metropolis) step(x, prop *tensor.Tensor) error {
	if m.cfg.Domain != nil {
		return m.b.MetropolisStep(x, prop, m.cfg.Domain, m.rejected)
	}
	xs, err := x.Float64s()
	if err != nil {
		return fmt.Errorf("copy the states to the host: %w", err)
	}
	ps, err := prop.Float64s()
	if err != nil {
		return fmt.Errorf("copy the proposals to the host: %w", err)
	}
	n, d := x.Dim(0), x.Dim(1)
	for i := 0; i < n; i++ {
		row := ps[i*d : (i+1)*d]
		if m.cfg.inside(row) {
			copy(xs[i*d:(i+1)*d], row)
		} else {
			m.host[i]++
		}
	}
	h, err := tensor.FromFloat64s(x.DType(), xs, n, d)
	if err != nil {
		return err
	}
	if err := x.CopyFrom(h); err != nil {
		return fmt.Errorf("copy the states back: %w", err)
	}
	return nil
}

// counts returns the per-chain rejection counts.
func (m *metropolis) counts() ([]int64, error) {
	if m.rejected == nil {
		return append([]int64(nil), m.host...), nil
	}
	v, err := m.rejected.Float64s()
	if err != nil {
		return nil, fmt.Errorf("read the rejection counts: %w", err)
	}
	out := make([]int64, len(v))
	for i, c := range v {
		out[i] = int64(c)
	}
	return out, nil
}

// constrainedRun holds what both constrained samplers share.
type constrainedRun struct {
	op   string
	b    ops.Backend
	cfg  ConstrainedConfig
	h    float64
	res  *ConstrainedResult
	x    *tensor.Tensor
	prop *tensor.Tensor
	met  *metropolis
	nt   *nanTracker
	tr   *tracer
	prog *progress
}

func startConstrained(op string, b ops.Backend, x0 *tensor.Tensor, cfg ConstrainedConfig) (*constrainedRun, error) {
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if x0 == nil || x0.Closed() {
		return nil, fmt.Errorf("%s: initial state is nil or closed", op)
	}
	if x0.Device() != b.Device() {
		return nil, fmt.Errorf("%s: initial state is on %s, the backend runs on %s", op, x0.Device().Name(), b.Device().Name())
	}
	if x0.Rank() != 2 || x0.Dim(0) == 0 || x0.Dim(1) == 0 {
		return nil, fmt.Errorf("%s: initial state has shape %v: want (chains ≥ 1, dim ≥ 1)", op, x0.Shape())
	}
	h, err := cfg.validate(x0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := cfg.checkInside(x0); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	n, d, dt, dev := x0.Dim(0), x0.Dim(1), x0.DType(), b.Device()
	r := &constrainedRun{op: op, b: b, cfg: cfg, h: h, nt: newNaNTracker(n),
		prog: newProgress(cfg.Progress, int64(cfg.Steps), dev)}
	x, err := x0.CopyTo(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: copy the initial state: %w", op, err)
	}
	r.x = x
	r.res = &ConstrainedResult{Result: &Result{Samples: x}}
	if r.prop, err = tensor.New(dev, dt, n, d); err != nil {
		r.fail()
		return nil, fmt.Errorf("%s: allocate the proposals (%d, %d): %w", op, n, d, err)
	}
	if r.met, err = newMetropolis(b, cfg, n); err != nil {
		r.fail()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if cfg.Thin > 0 {
		if r.tr, err = newTracer(dev, dt, cfg.Steps/cfg.Thin+1, n, d); err != nil {
			r.fail()
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		r.res.Trace = r.tr.t
		if err := keepAndCheck(r.tr, r.nt, x, 0); err != nil {
			r.fail()
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return r, nil
}

// fail frees everything (the run is abandoned).
func (r *constrainedRun) fail() {
	r.res.Close()
	r.release()
}

// release frees the scratch.
func (r *constrainedRun) release() {
	closeAll(r.prop)
	if r.met != nil {
		r.met.close()
	}
}

// accept applies the Metropolis rule of step i to the proposals and keeps the trace.
func (r *constrainedRun) accept(i int) error {
	if err := r.met.step(r.x, r.prop); err != nil {
		return fmt.Errorf("%s: step %d: %w", r.op, i, err)
	}
	if r.tr != nil && (i+1)%r.cfg.Thin == 0 {
		if err := keepAndCheck(r.tr, r.nt, r.x, i+1); err != nil {
			return fmt.Errorf("%s: %w", r.op, err)
		}
	}
	if err := r.prog.step(int64(i + 1)); err != nil {
		return fmt.Errorf("%s: step %d: %w", r.op, i, err)
	}
	return nil
}

// finish fills in the counts and the NaN report.
func (r *constrainedRun) finish() (*ConstrainedResult, error) {
	defer r.release()
	var errs []error
	if err := r.nt.check(r.x, r.cfg.Steps); err != nil {
		errs = append(errs, err)
	}
	counts, err := r.met.counts()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		r.res.Close()
		return nil, fmt.Errorf("%s: %w", r.op, err)
	}
	r.res.NaN = r.nt.rep
	if r.tr != nil {
		r.res.TraceSteps = r.tr.steps
	}
	r.res.Rejected = counts
	for _, c := range counts {
		r.res.RejectedTotal += c
	}
	r.res.Proposals = int64(len(counts)) * int64(r.cfg.Steps)
	return r.res, nil
}

// MetropolisWalk runs the forward (noising) process of Metropolis-constrained diffusion (Fishman
// et al. 2023; docs/math.md §5.4) from the states x0 (N, d) on b's device, all of which must lie in
// the domain: K = cfg.Steps steps of size h = cfg.Horizon/K,
//
//	x' = x + √h ξ   (ξ ~ N(0, I), Site(i, PurposeConstrained); one ops.Backend.Combine)
//	x ← x' if x' ∈ M, else x stays   (ops.Backend.MetropolisStep, or the host predicate)
//
// a Metropolis chain with a symmetric proposal and the uniform law on M as target: it satisfies
// detailed balance for the uniform law, so that law is invariant at every step, and as h → 0
// it converges to reflected Brownian motion on M (time T = Horizon). The samples are the final
// states (a new tensor; x0 is not changed); the rejected proposals are counted per chain. No
// target is evaluated.
func MetropolisWalk(b ops.Backend, x0 *tensor.Tensor, cfg ConstrainedConfig) (*ConstrainedResult, error) {
	r, err := startConstrained("metropolis walk", b, x0, cfg)
	if err != nil {
		return nil, err
	}
	sd := math.Sqrt(r.h)
	for i := 0; i < cfg.Steps; i++ {
		if err := b.Combine(r.prop, []ops.Term{{T: r.x, C: 1}}, sd, drawAt(cfg.Seed, i, PurposeConstrained, cfg.FirstChain)); err != nil {
			r.fail()
			return nil, fmt.Errorf("%s: step %d: propose: %w", r.op, i, err)
		}
		if err := r.accept(i); err != nil {
			r.fail()
			return nil, err
		}
	}
	return r.finish()
}

// ConstrainedSample runs the reverse (sampling) process of Metropolis-constrained diffusion
// (Fishman et al. 2023, their Metropolis sampler; docs/math.md §5.4) on the target t from the
// states x0 (N, d), all in the domain, over the noise times τ_j = T − j h, h = T/K (T =
// cfg.Horizon, K = cfg.Steps). The forward process is MetropolisWalk (reflected Brownian motion
// dX = dB on M); its time reversal dY = ∇log p_{T−s}(Y) ds + dW is discretised by
// Euler–Maruyama, and each step's proposal is accepted only when it stays in M:
//
//	y' = y + h ∇log p_{τ_j}(y) + √h ξ   (ξ: Site(j, PurposeConstrained); one Combine)
//	y ← y' if y' ∈ M, else y stays,
//
// j = 0 … K − 1 (the last step, from τ = h to 0, uses the score at τ = h; no score is evaluated
// at τ = 0). The score used is the target's own at VE level σ_j = sqrt(τ_j) (t.Evaluate with
// ops.AtSigma: the Gaussian-mixture score under Σ_k + τ I, the data set's mean-shift score),
// which is the score of the unconstrained forward process. The reflected process's score
// differs from it only within a few σ_j of the boundary of M, so the sampler is exact in the
// limit h → 0 for targets whose mass lies well inside M at the noise levels where the boundary
// matters, and otherwise samples the target restricted to M approximately (a learned score of
// the reflected process would remove that bias: the update is the same). A NaN score gives a NaN
// proposal, which is never in M: the chain stays.
//
// The start x0 is the caller's: the stationary law of the forward walk on a bounded M is
// uniform, which SampleUniform draws for boxes and balls (T of a few squared diameters of M
// makes the forward marginal close to it). Cost: K score evaluations per chain.
func ConstrainedSample(b ops.Backend, t target.Target, x0 *tensor.Tensor, cfg ConstrainedConfig) (*ConstrainedResult, error) {
	const op = "constrained sample"
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	if x0 != nil && !x0.Closed() && x0.Rank() == 2 && x0.Dim(1) != t.Dim() {
		return nil, fmt.Errorf("%s: initial state has dimension %d, the target %s has %d", op, x0.Dim(1), t, t.Dim())
	}
	r, err := startConstrained(op, b, x0, cfg)
	if err != nil {
		return nil, err
	}
	score, err := tensor.New(b.Device(), x0.DType(), x0.Dim(0), x0.Dim(1))
	if err != nil {
		r.fail()
		return nil, fmt.Errorf("%s: allocate the score: %w", op, err)
	}
	defer score.Close()
	if err := t.Check(b.Device(), ops.ScoreOutputs{Score: score}, r.x, ops.AtSigma(math.Sqrt(cfg.Horizon))); err != nil {
		r.fail()
		return nil, fmt.Errorf("%s: target %s cannot give a score at VE noise: %w", op, t, err)
	}
	ev := &evaluator{b: b, t: t, ev: &r.res.Evals}
	sd := math.Sqrt(r.h)
	for j := 0; j < cfg.Steps; j++ {
		tau := cfg.Horizon - float64(j)*r.h
		ev.noise = ops.AtSigma(math.Sqrt(tau))
		if err := ev.eval(ops.ScoreOutputs{Score: score}, r.x); err != nil {
			r.fail()
			return nil, fmt.Errorf("%s: step %d (τ = %g): %w", op, j, tau, err)
		}
		terms := []ops.Term{{T: r.x, C: 1}, {T: score, C: r.h}}
		if err := b.Combine(r.prop, terms, sd, drawAt(cfg.Seed, j, PurposeConstrained, cfg.FirstChain)); err != nil {
			r.fail()
			return nil, fmt.Errorf("%s: step %d: propose: %w", op, j, err)
		}
		if err := r.accept(j); err != nil {
			r.fail()
			return nil, err
		}
	}
	return r.finish()
}

// Draw sites of SampleUniform (Philox via ops.CPU(), chains as rows: sample i is chain i).
const (
	// SiteUniformDomain: the f64 uniforms of SampleUniform (d per sample in a box, one — the
	// radius — in a ball).
	SiteUniformDomain uint64 = 0
	// SiteUniformDirection: the d f64 normals whose direction places a sample in a ball.
	SiteUniformDirection uint64 = 1
)

// SampleUniform returns n exact samples of the uniform law on a box or a ball, (n, d) row-major,
// from the Philox stream keyed by seed (sample i is chain i, a pure function of (seed, i)): the
// samples of SampleUniformFrom with first = 0.
func SampleUniform(dom *ops.Domain, n int, seed uint64) ([]float64, error) {
	return SampleUniformFrom(dom, n, seed, 0)
}

// SampleUniformFrom returns the samples of chains first … first + n − 1 of SampleUniform's stream
// (a batch of a larger run: the rows of SampleUniform(dom, first + n, seed) from row first):
//
//	box   x_j = lo_j + (hi_j − lo_j) u_j,           u the d uniforms of SiteUniformDomain
//	ball  x = c + r u^{1/d} z/‖z‖,                   u the uniform of SiteUniformDomain, z the
//	                                                 d normals of SiteUniformDirection
//
// (the radius of a uniform point of the d-ball has CDF ρ^d). A polytope has no such direct
// sampler: start its chains from points known to lie inside.
func SampleUniformFrom(dom *ops.Domain, n int, seed, first uint64) ([]float64, error) {
	const op = "sample uniform"
	if dom == nil {
		return nil, fmt.Errorf("%s: nil domain", op)
	}
	if err := checkChains(op, n, first); err != nil {
		return nil, err
	}
	p := dom.Params()
	d := p.Dim
	b := ops.CPU()
	switch p.Kind {
	case ops.Box:
		u, err := tensor.New(nil, tensor.F64, n, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if err := b.Uniform(u, ops.Draw{Seed: seed, Site: SiteUniformDomain, FirstChain: first}); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out, _ := u.F64()
		for i := range out {
			j := i % d
			out[i] = p.Lo[j] + (p.Hi[j]-p.Lo[j])*out[i]
			if out[i] > p.Hi[j] { // rounding of lo + (hi − lo)·u can pass hi by an ulp
				out[i] = p.Hi[j]
			}
		}
		return out, nil
	case ops.Ball:
		u, err := tensor.New(nil, tensor.F64, n, 1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		z, err := tensor.New(nil, tensor.F64, n, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if err := b.Uniform(u, ops.Draw{Seed: seed, Site: SiteUniformDomain, FirstChain: first}); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if err := b.Normal(z, ops.Draw{Seed: seed, Site: SiteUniformDirection, FirstChain: first}); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		us, _ := u.F64()
		out, _ := z.F64()
		for i := 0; i < n; i++ {
			row := out[i*d : (i+1)*d]
			norm := 0.0
			for _, v := range row {
				norm += v * v
			}
			s := p.Radius * math.Pow(us[i], 1/float64(d)) / math.Sqrt(norm)
			for j := range row {
				row[j] = p.Center[j] + s*row[j]
			}
			// ‖x − c‖ = r up to rounding (of c + s·z, which can lose ulp(|c|) ≫ ulp(r) far from
			// the origin): pull the point towards the center until it is inside; the center
			// itself always is.
			for shrink := 1e-15; !dom.Contains(row); shrink *= 4 {
				for j := range row {
					if shrink >= 1 {
						row[j] = p.Center[j]
					} else {
						row[j] = p.Center[j] + (row[j]-p.Center[j])*(1-shrink)
					}
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: no direct sampler for a %v: start from points known to lie inside", op, p.Kind)
}
