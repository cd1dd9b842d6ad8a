package solvers

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Reversible Heun (docs/math.md §4.7, Kidger et al. 2021): the Stratonovich SDE
// dX = f(t, X) dt + g(t, X) ∘ dW on [0, T], W an m-dimensional Brownian motion per chain, with the
// state (y, z) (z the auxiliary, both start at x_0) and uniform steps h = T/Steps,
// t_n = T·(n/Steps):
//
//	z_{n+1} = 2y_n − z_n + f(t_n, z_n) h + g(t_n, z_n) ΔW_n
//	y_{n+1} = y_n + ½(f(t_n, z_n) + f(t_{n+1}, z_{n+1})) h + ½(g(t_n, z_n) + g(t_{n+1}, z_{n+1})) ΔW_n
//
// and its exact algebraic inverse (Reconstruct), which recovers (y_n, z_n) from (y_{n+1},
// z_{n+1}) with the same ΔW_n. The increments ΔW_n = W(t_n, t_{n+1}) come from Brownian
// intervals (ops.BrownianInterval): the backward pass asks for them again, in the opposite order,
// and gets the same bits, so the reconstruction is exact up to round-off and nothing of the
// forward trajectory is stored.
//
// Arithmetic (fixed: ops.ReversibleHeun and its kernel repeat it bit for bit for AffineFamily),
// per coordinate i with fma(a, b, c) = a·b + c rounded once, G the diffusion values:
//
//	z' = fma(G_{i,m−1}, ΔW_{m−1}, … fma(G_{i,0}, ΔW_0, fma(f_i, h, 2y_i − z_i)))
//	y' = fma(½(G+G')_{i,m−1}, ΔW_{m−1}, … fma(½(f_i + f'_i), h, y_i))
//
// (diagonal noise: the one term G_i ΔW_i), and the inverse the same with the products negated,
// from 2y' − z' and y'.

// MaxRevHeunDepth is the deepest Brownian interval a reversible Heun solve uses: 33 levels, the
// deepest whose normals fit on the one draw site Site(0, PurposeBrownianInterval).
const MaxRevHeunDepth = 33

// StratonovichSDE is dX = f(t, X) dt + g(t, X) ∘ dW for a batch of n states x (n, d) row-major,
// W an m-dimensional Brownian motion per chain (m = NoiseDim).
type StratonovichSDE interface {
	// Dim is d, the state's dimension.
	Dim() int
	// NoiseDim is m, the Brownian motion's dimension.
	NoiseDim() int
	// DiagonalNoise reports a diagonal g (then m = d, and Diffusion writes the d diagonal values
	// per state; coordinate i is driven by W_i alone).
	DiagonalNoise() bool
	// Drift writes f(t, x) into dst (n, d).
	Drift(dst, x []float64, n int, t float64) error
	// Diffusion writes g(t, x) into dst: (n, d) for diagonal noise, else (n, d, m) row-major.
	Diffusion(dst, x []float64, n int, t float64) error
}

// ReversibleHeun solves a StratonovichSDE on [0, Horizon] with Steps reversible Heun steps. The
// Brownian motion of noise dimension k of chain c (c counted from FirstChain) is path c·m + k of
// the Brownian interval of Depth levels at Site(0, PurposeBrownianInterval) of Seed.
type ReversibleHeun struct {
	SDE     StratonovichSDE
	Horizon float64
	Steps   int
	// Depth of the Brownian interval (resolution Horizon·2^−Depth), at most MaxRevHeunDepth and
	// with 2^Depth ≥ Steps; 0 selects DefaultRevHeunDepth(Steps).
	Depth      int
	Seed       uint64
	FirstChain uint64
}

// DefaultRevHeunDepth is min(33, ⌈log2 steps⌉ + 20): a resolution of 2^−20 of a step at least, so
// that a time off the grid moves by at most a millionth of a step, and for a power-of-two number
// of steps every step time lies on the grid.
func DefaultRevHeunDepth(steps int) int {
	if steps < 1 {
		steps = 1
	}
	return min(MaxRevHeunDepth, bits.Len(uint(steps-1))+20)
}

// RevHeunState is the solver's state (y, z) for N chains, each (N, d) row-major.
type RevHeunState struct {
	Y, Z []float64
	N    int
}

// Interval returns the spec and draw of the Brownian interval of the solve.
func (r ReversibleHeun) Interval() (ops.BrownianIntervalSpec, ops.Draw) {
	depth := r.Depth
	if depth == 0 {
		depth = DefaultRevHeunDepth(r.Steps)
	}
	return ops.BrownianIntervalSpec{Horizon: r.Horizon, Depth: depth},
		ops.Draw{Seed: r.Seed, Site: Site(0, PurposeBrownianInterval)}
}

// StepSize is h = Horizon/Steps.
func (r ReversibleHeun) StepSize() float64 { return r.Horizon / float64(r.Steps) }

// time is t_n = T·(n/Steps): t_0 = 0 and t_Steps = T exactly.
func (r ReversibleHeun) time(n int) float64 { return r.Horizon * (float64(n) / float64(r.Steps)) }

// check validates the configuration and a batch of n chains.
func (r ReversibleHeun) check(n int) error {
	const op = "reversible heun"
	if r.SDE == nil {
		return fmt.Errorf("%s: no SDE", op)
	}
	d, m := r.SDE.Dim(), r.SDE.NoiseDim()
	switch {
	case d < 1:
		return fmt.Errorf("%s: state dimension %d: must be ≥ 1", op, d)
	case m < 1:
		return fmt.Errorf("%s: noise dimension %d: must be ≥ 1", op, m)
	case r.SDE.DiagonalNoise() && m != d:
		return fmt.Errorf("%s: diagonal noise needs the noise dimension %d to equal the state dimension %d", op, m, d)
	case !(r.Horizon > 0) || math.IsInf(r.Horizon, 0):
		return fmt.Errorf("%s: horizon T = %g: must be a finite number > 0", op, r.Horizon)
	case r.Steps < 1:
		return fmt.Errorf("%s: steps = %d: must be ≥ 1", op, r.Steps)
	case uint64(r.Steps) > MaxSteps:
		return fmt.Errorf("%s: steps = %d: at most %d", op, r.Steps, uint64(MaxSteps))
	case r.Depth < 0 || r.Depth > MaxRevHeunDepth:
		return fmt.Errorf("%s: interval depth %d: must be between 1 and %d (0: the default), the deepest whose normals fit on one draw site",
			op, r.Depth, MaxRevHeunDepth)
	case n < 0:
		return fmt.Errorf("%s: %d chains", op, n)
	}
	spec, draw := r.Interval()
	if uint64(1)<<uint(spec.Depth) < uint64(r.Steps) {
		return fmt.Errorf("%s: interval depth %d has 2^%d grid cells, fewer than the %d steps: steps would share grid points and get no noise",
			op, spec.Depth, spec.Depth, r.Steps)
	}
	if err := spec.Check(draw.Site); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if h := r.StepSize(); !(h > 0) {
		return fmt.Errorf("%s: step size T/steps = %g/%d underflows", op, r.Horizon, r.Steps)
	}
	if r.FirstChain >= ops.MaxChains || uint64(n) > ops.MaxChains-r.FirstChain ||
		(r.FirstChain+uint64(n))*uint64(m) > ops.MaxChains {
		return fmt.Errorf("%s: chains %d..%d with %d Brownian paths each: path indices must be below 2^32",
			op, r.FirstChain, r.FirstChain+uint64(n), m)
	}
	return nil
}

// checkValues reports the first non-finite value of x (n, d) as an error about what.
func checkValues(what string, x []float64, d int) error {
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("reversible heun: %s: chain %d, coordinate %d is %g: must be finite", what, i/d, i%d, v)
		}
	}
	return nil
}

// intervals returns the Brownian intervals of the n chains' m paths each.
func (r ReversibleHeun) intervals(n int) ([]*ops.BrownianInterval, error) {
	spec, draw := r.Interval()
	m := r.SDE.NoiseDim()
	out := make([]*ops.BrownianInterval, n*m)
	for p := range out {
		bi, err := ops.NewBrownianInterval(spec, draw, r.FirstChain*uint64(m)+uint64(p))
		if err != nil {
			return nil, fmt.Errorf("reversible heun: %w", err)
		}
		out[p] = bi
	}
	return out, nil
}

// heunWork holds the buffers of one batch.
type heunWork struct {
	n, d, m      int
	dw           []float64 // (n, m)
	f, f1, g, g1 []float64
}

func newHeunWork(sde StratonovichSDE, n int) *heunWork {
	d, m := sde.Dim(), sde.NoiseDim()
	gl := n * d * m
	if sde.DiagonalNoise() {
		gl = n * d
	}
	return &heunWork{n: n, d: d, m: m, dw: make([]float64, n*m), f: make([]float64, n*d),
		f1: make([]float64, n*d), g: make([]float64, gl), g1: make([]float64, gl)}
}

// increments fills w.dw with W(t_k, t_{k+1}) of every path.
func (r ReversibleHeun) increments(w *heunWork, paths []*ops.BrownianInterval, k int) error {
	s, t := r.time(k), r.time(k+1)
	for p, bi := range paths {
		v, err := bi.Increment(s, t)
		if err != nil {
			return fmt.Errorf("reversible heun: step %d: %w", k, err)
		}
		w.dw[p] = v
	}
	return nil
}

// eval writes f and g at (t, x).
func (r ReversibleHeun) eval(f, g, x []float64, n int, t float64) error {
	if err := r.SDE.Drift(f, x, n, t); err != nil {
		return fmt.Errorf("reversible heun: drift at t = %g: %w", t, err)
	}
	if err := r.SDE.Diffusion(g, x, n, t); err != nil {
		return fmt.Errorf("reversible heun: diffusion at t = %g: %w", t, err)
	}
	return nil
}

// noise returns fma(c·G_{i,m−1}, ΔW_{m−1}, … fma(c·G_{i,0}, ΔW_0, acc)) for state element i of
// chain row, c = ±1 or ±½ applied as c·(G + G2) when g2 is not nil (the sum of the two
// diffusion values), else c·G.
func (w *heunWork) noise(diag bool, acc, c float64, g, g2 []float64, row, i int) float64 {
	if diag {
		gv := g[i]
		if g2 != nil {
			gv += g2[i]
		}
		return math.FMA(c*gv, w.dw[i], acc)
	}
	for k := 0; k < w.m; k++ {
		gv := g[i*w.m+k]
		if g2 != nil {
			gv += g2[i*w.m+k]
		}
		acc = math.FMA(c*gv, w.dw[row*w.m+k], acc)
	}
	return acc
}

// forward is step k, in place on (y, z).
func (r ReversibleHeun) forward(w *heunWork, y, z []float64, k int, h float64) error {
	diag := r.SDE.DiagonalNoise()
	if err := r.eval(w.f, w.g, z, w.n, r.time(k)); err != nil {
		return err
	}
	for i := range z {
		z[i] = w.noise(diag, math.FMA(w.f[i], h, 2*y[i]-z[i]), 1, w.g, nil, i/w.d, i)
	}
	if err := r.eval(w.f1, w.g1, z, w.n, r.time(k+1)); err != nil {
		return err
	}
	for i := range y {
		y[i] = w.noise(diag, math.FMA(0.5*(w.f[i]+w.f1[i]), h, y[i]), 0.5, w.g, w.g1, i/w.d, i)
	}
	return nil
}

// inverse undoes step k, in place on (y, z).
func (r ReversibleHeun) inverse(w *heunWork, y, z []float64, k int, h float64) error {
	diag := r.SDE.DiagonalNoise()
	if err := r.eval(w.f1, w.g1, z, w.n, r.time(k+1)); err != nil {
		return err
	}
	for i := range z {
		z[i] = w.noise(diag, math.FMA(-w.f1[i], h, 2*y[i]-z[i]), -1, w.g1, nil, i/w.d, i)
	}
	if err := r.eval(w.f, w.g, z, w.n, r.time(k)); err != nil {
		return err
	}
	for i := range y {
		y[i] = w.noise(diag, math.FMA(-0.5*(w.f[i]+w.f1[i]), h, y[i]), -0.5, w.g, w.g1, i/w.d, i)
	}
	return nil
}

// Solve integrates n chains from x0 (n, d) over [0, T] and returns the final state (y_N, z_N);
// y_N is the solution. x0 is not modified. A final state that is not finite (the SDE blew up) is
// returned with an error naming the first bad value.
func (r ReversibleHeun) Solve(x0 []float64, n int) (RevHeunState, error) {
	return r.SolveTrace(x0, n, 0, nil)
}

// RevHeunRecord receives the solution y (N, d) after step k of a solve (k = 0: the start). y is
// the solver's own buffer, valid only during the call: copy what is kept. An error stops the
// solve and is returned by it.
type RevHeunRecord func(k int, y []float64) error

// checkTrace validates a trace's stride: every ≥ 1 with a record, anything without one.
func checkTrace(every int, record RevHeunRecord) error {
	if record != nil && every < 1 {
		return fmt.Errorf("reversible heun: trace every %d steps: must be ≥ 1", every)
	}
	return nil
}

// recordAt reports whether the state after step k is traced: every multiple of every, and the
// last step.
func (r ReversibleHeun) recordAt(k, every int) bool { return k%every == 0 || k == r.Steps }

// recordEmpty hands record the steps 0, every, 2·every, … and the last of a solve of no chains.
func (r ReversibleHeun) recordEmpty(every int, record RevHeunRecord) error {
	for k := 0; ; k = min(k+every, r.Steps) {
		if err := record(k, []float64{}); err != nil {
			return err
		}
		if k == r.Steps {
			return nil
		}
	}
}

// SolveTrace is Solve that also hands record (nil: none) the solution after steps 0, every,
// 2·every, … and after the last step: the values Solve computes, step for step.
func (r ReversibleHeun) SolveTrace(x0 []float64, n, every int, record RevHeunRecord) (RevHeunState, error) {
	if err := r.check(n); err != nil {
		return RevHeunState{}, err
	}
	if err := checkTrace(every, record); err != nil {
		return RevHeunState{}, err
	}
	d := r.SDE.Dim()
	if len(x0) != n*d {
		return RevHeunState{}, fmt.Errorf("reversible heun: x0 has %d values, want %d chains × %d", len(x0), n, d)
	}
	if err := checkValues("x0", x0, d); err != nil {
		return RevHeunState{}, err
	}
	st := RevHeunState{Y: append([]float64(nil), x0...), Z: append([]float64(nil), x0...), N: n}
	if n == 0 {
		if record != nil {
			return st, r.recordEmpty(every, record)
		}
		return st, nil
	}
	if record != nil {
		if err := record(0, st.Y); err != nil {
			return RevHeunState{}, err
		}
	}
	paths, err := r.intervals(n)
	if err != nil {
		return RevHeunState{}, err
	}
	w, h := newHeunWork(r.SDE, n), r.StepSize()
	for k := 0; k < r.Steps; k++ {
		if err := r.increments(w, paths, k); err != nil {
			return RevHeunState{}, err
		}
		if err := r.forward(w, st.Y, st.Z, k, h); err != nil {
			return RevHeunState{}, err
		}
		if record != nil && r.recordAt(k+1, every) {
			if err := record(k+1, st.Y); err != nil {
				return RevHeunState{}, err
			}
		}
	}
	return st, r.checkFinal(st)
}

// Reconstruct runs the inverse steps from a final state (y_N, z_N) of Solve (same configuration)
// back to t = 0 and returns (y_0, z_0): x_0 twice, up to round-off. final is not modified.
func (r ReversibleHeun) Reconstruct(final RevHeunState) (RevHeunState, error) {
	if err := r.checkReconstruct(final); err != nil {
		return RevHeunState{}, err
	}
	n := final.N
	st := RevHeunState{Y: append([]float64(nil), final.Y...), Z: append([]float64(nil), final.Z...), N: n}
	if n == 0 {
		return st, nil
	}
	paths, err := r.intervals(n)
	if err != nil {
		return RevHeunState{}, err
	}
	w, h := newHeunWork(r.SDE, n), r.StepSize()
	for k := r.Steps - 1; k >= 0; k-- {
		if err := r.increments(w, paths, k); err != nil {
			return RevHeunState{}, err
		}
		if err := r.inverse(w, st.Y, st.Z, k, h); err != nil {
			return RevHeunState{}, err
		}
	}
	return st, r.checkFinal(st)
}

// checkReconstruct checks the configuration and a final state given to Reconstruct or
// ReconstructOn: n chains of Dim values in Y and Z, all finite.
func (r ReversibleHeun) checkReconstruct(final RevHeunState) error {
	n := final.N
	if err := r.check(n); err != nil {
		return err
	}
	d := r.SDE.Dim()
	if len(final.Y) != n*d || len(final.Z) != n*d {
		return fmt.Errorf("reversible heun: state has %d and %d values, want %d chains × %d", len(final.Y), len(final.Z), n, d)
	}
	if err := checkValues("final y", final.Y, d); err != nil {
		return err
	}
	return checkValues("final z", final.Z, d)
}

// checkFinal reports a state that is no longer finite.
func (r ReversibleHeun) checkFinal(st RevHeunState) error {
	d := r.SDE.Dim()
	if err := checkValues("y is no longer finite", st.Y, d); err != nil {
		return err
	}
	return checkValues("z is no longer finite", st.Z, d)
}

// AffineFamily is the coordinate-wise affine SDE of ops.AffineSDE on D coordinates with diagonal
// noise (ops.OrnsteinUhlenbeck, ops.GeometricBrownian). Its solves also run fused on a backend
// (SolveOn, ReconstructOn), with the same values.
type AffineFamily struct {
	SDE ops.AffineSDE
	D   int
}

func (a AffineFamily) Dim() int            { return a.D }
func (a AffineFamily) NoiseDim() int       { return a.D }
func (a AffineFamily) DiagonalNoise() bool { return true }

// Affine returns a itself: the families that embed AffineFamily (OUFamily, GBMFamily) have it
// too, which is how the fused paths (SolveOn, ReconstructOn, AdjointOn) recognise them.
func (a AffineFamily) Affine() AffineFamily { return a }

// affineSDE is an SDE the fused paths integrate: AffineFamily and the families embedding it.
type affineSDE interface{ Affine() AffineFamily }

// Drift writes fma(B, x, A) per coordinate.
func (a AffineFamily) Drift(dst, x []float64, n int, t float64) error {
	for i, v := range x[:n*a.D] {
		dst[i] = a.SDE.Drift(v)
	}
	return nil
}

// Diffusion writes fma(E, x, C) per coordinate.
func (a AffineFamily) Diffusion(dst, x []float64, n int, t float64) error {
	for i, v := range x[:n*a.D] {
		dst[i] = a.SDE.Diffusion(v)
	}
	return nil
}

// GBMExact is the solution x0·exp((μ − σ²/2) t + σ W_t) of the Itô geometric Brownian motion
// dX = μX dt + σX dW (ops.GeometricBrownian) at time t, given W_t.
func GBMExact(mu, sigma, x0, t, w float64) float64 {
	return x0 * math.Exp((mu-0.5*sigma*sigma)*t+sigma*w)
}

// GMMLangevin is the overdamped Langevin SDE dX = ∇log p(X) dt + √2 dW of a Gaussian mixture p
// (additive diagonal noise, so Itô and Stratonovich agree), its score from Backend.GMMScore
// (ops.CPU() when Backend is nil) on the host.
type GMMLangevin struct {
	GMM     *ops.GMM
	Backend ops.Backend
}

func (l GMMLangevin) Dim() int            { return l.GMM.Dim() }
func (l GMMLangevin) NoiseDim() int       { return l.GMM.Dim() }
func (l GMMLangevin) DiagonalNoise() bool { return true }

// Drift writes ∇log p(x).
func (l GMMLangevin) Drift(dst, x []float64, n int, t float64) error {
	b := l.Backend
	if b == nil {
		b = ops.CPU()
	}
	d := l.GMM.Dim()
	xt, err := tensor.FromF64(x[:n*d], n, d)
	if err != nil {
		return err
	}
	st, err := tensor.FromF64(dst[:n*d], n, d)
	if err != nil {
		return err
	}
	return b.GMMScore(ops.ScoreOutputs{Score: st}, xt, l.GMM, ops.NoNoise)
}

// Diffusion writes √2.
func (l GMMLangevin) Diffusion(dst, x []float64, n int, t float64) error {
	for i := range dst[:n*l.GMM.Dim()] {
		dst[i] = math.Sqrt2
	}
	return nil
}

// RevHeunChunk is the number of steps of one fused call (SolveOn, ReconstructOn): their
// increments, (N·d, RevHeunChunk) float64, are drawn by one BrownianIncrements call and consumed
// by one ReversibleHeun call. A float32 state is rounded to float32 between chunks.
const RevHeunChunk = 256

// SolveOn is Solve for an AffineFamily (or a family embedding it) or a GMMLangevinFamily on
// backend b with the state stored in dtype dt: the increments of each chunk of steps come from
// b.BrownianIncrements (the same values as Solve's Brownian intervals) and the steps from the fused
// b.ReversibleHeun (b.LangevinMixtureHeun for the mixture). In float64 its result is Solve's, bit
// for bit (for the mixture on a GPU: to a few ulp per step, the device's exp); in float32 it
// rounds the state between chunks.
func (r ReversibleHeun) SolveOn(b ops.Backend, dt tensor.DType, x0 []float64, n int) (RevHeunState, error) {
	return r.SolveTraceOn(b, dt, x0, n, 0, nil)
}

// SolveTraceOn is SolveOn that also hands record (nil: none) the solution after steps 0, every,
// 2·every, … and after the last step, read back from the device (in float64, from the state of
// dtype dt). A traced step also ends a fused call, so in float32 the state is rounded there too;
// in float64 the values are SolveTrace's, bit for bit.
func (r ReversibleHeun) SolveTraceOn(b ops.Backend, dt tensor.DType, x0 []float64, n, every int, record RevHeunRecord) (RevHeunState, error) {
	if err := r.check(n); err != nil {
		return RevHeunState{}, err
	}
	if err := checkTrace(every, record); err != nil {
		return RevHeunState{}, err
	}
	if len(x0) != n*r.SDE.Dim() {
		return RevHeunState{}, fmt.Errorf("reversible heun: x0 has %d values, want %d chains × %d", len(x0), n, r.SDE.Dim())
	}
	if err := checkValues("x0", x0, r.SDE.Dim()); err != nil {
		return RevHeunState{}, err
	}
	return r.runOn(b, dt, x0, x0, n, ops.HeunForward, every, record, nil)
}

// ReconstructOn is Reconstruct for the families of SolveOn on backend b in dtype dt (see SolveOn).
func (r ReversibleHeun) ReconstructOn(b ops.Backend, dt tensor.DType, final RevHeunState) (RevHeunState, error) {
	if err := r.checkReconstruct(final); err != nil {
		return RevHeunState{}, err
	}
	n := final.N
	return r.runOn(b, dt, final.Y, final.Z, n, ops.HeunInverse, 0, nil, nil)
}

// heunAdjointOn carries the cotangents of a fused backward pass (AdjointOn): in, those of the
// final state (cotZ nil: zero); out, dL/dx_0 and dL/dθ.
type heunAdjointOn struct {
	cotY, cotZ []float64
	x0         []float64
	params     []float64
}

// fusedHeun is a family whose reversible Heun steps and discrete adjoint run fused on a backend:
// an AffineFamily (ops.Backend.ReversibleHeun, one thread per coordinate) or a GMMLangevinFamily
// (ops.Backend.LangevinMixtureHeun, one thread per chain).
type fusedHeun interface {
	steps(b ops.Backend, y, z, dw *tensor.Tensor, h float64, dir ops.HeunDirection) error
	adjoint(b ops.Backend, y, z, ay, az, grad, dw *tensor.Tensor, h float64) error
	// gradShape is the shape of the per-chain (or per-coordinate) parameter cotangents the
	// adjoint op accumulates; paramGradient maps their values to dL/dθ.
	gradShape(n, d int) []int
	paramGradient(grad []float64, n, d int) ([]float64, error)
}

type affineFused struct {
	a AffineFamily
	p AffineParametric // nil: no parameters
}

func (f affineFused) steps(b ops.Backend, y, z, dw *tensor.Tensor, h float64, dir ops.HeunDirection) error {
	return b.ReversibleHeun(y, z, dw, f.a.SDE, h, dir)
}

func (f affineFused) adjoint(b ops.Backend, y, z, ay, az, grad, dw *tensor.Tensor, h float64) error {
	return b.ReversibleHeunAdjoint(y, z, ay, az, grad, dw, f.a.SDE, h)
}

func (f affineFused) gradShape(n, d int) []int { return []int{n * d, 4} }

// paramGradient sums the coefficients' cotangents (A, B, C, E) over the coordinates and maps them
// to θ (AffineGradient).
func (f affineFused) paramGradient(grad []float64, n, d int) ([]float64, error) {
	if f.p == nil {
		return nil, fmt.Errorf("reversible heun adjoint: the fused backward pass needs an affine family with parameters (OUFamily, GBMFamily), not %T", f.a)
	}
	var coef [4]float64
	for i := range n * d {
		for j := range coef {
			coef[j] += grad[4*i+j]
		}
	}
	return f.p.AffineGradient(coef), nil
}

type lmFused struct{ m *ops.LangevinMixture }

func (f lmFused) steps(b ops.Backend, y, z, dw *tensor.Tensor, h float64, dir ops.HeunDirection) error {
	return b.LangevinMixtureHeun(y, z, dw, f.m, h, dir)
}

func (f lmFused) adjoint(b ops.Backend, y, z, ay, az, grad, dw *tensor.Tensor, h float64) error {
	return b.LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw, f.m, h)
}

func (f lmFused) gradShape(n, d int) []int { return []int{f.m.NumParams(), n} }

// paramGradient sums each parameter's cotangents over the chains, in chain order.
func (f lmFused) paramGradient(grad []float64, n, d int) ([]float64, error) {
	p := make([]float64, f.m.NumParams())
	for i := range p {
		for _, v := range grad[i*n : (i+1)*n] {
			p[i] += v
		}
	}
	return p, nil
}

// fused returns the fused form of r.SDE.
func (r ReversibleHeun) fused() (fusedHeun, int, error) {
	switch s := r.SDE.(type) {
	case affineSDE:
		a := s.Affine()
		if err := a.SDE.Check(); err != nil {
			return nil, 0, fmt.Errorf("reversible heun: %w", err)
		}
		ap, _ := r.SDE.(AffineParametric)
		return affineFused{a: a, p: ap}, a.D, nil
	case *GMMLangevinFamily:
		return lmFused{m: s.Mixture()}, s.Dim(), nil
	}
	return nil, 0, fmt.Errorf("reversible heun: the fused path integrates an AffineFamily (or a family embedding it) or a GMMLangevinFamily, not %T", r.SDE)
}

// runOn runs all the steps (forward) or all the inverse steps (last chunk first) on b; forward,
// it hands record (nil: none) y after steps 0, every, 2·every, … and the last. With adj (inverse
// only) the inverse steps are the adjoint's (ops.Backend.ReversibleHeunAdjoint), which carry the
// cotangents back with the state.
func (r ReversibleHeun) runOn(b ops.Backend, dt tensor.DType, y0, z0 []float64, n int, dir ops.HeunDirection,
	every int, record RevHeunRecord, adj *heunAdjointOn) (st RevHeunState, err error) {
	fam, d, err := r.fused()
	if err != nil {
		return RevHeunState{}, err
	}
	if n == 0 {
		if record != nil {
			return RevHeunState{Y: []float64{}, Z: []float64{}}, r.recordEmpty(every, record)
		}
		return RevHeunState{Y: []float64{}, Z: []float64{}}, nil
	}
	dev := b.Device()
	var open []*tensor.Tensor
	defer func() {
		for _, t := range open {
			if cerr := t.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("reversible heun: release: %w", cerr)
			}
		}
	}()
	upload := func(dt tensor.DType, vals []float64, shape ...int) (*tensor.Tensor, error) {
		h, err := tensor.FromFloat64s(dt, vals, shape...)
		if err != nil {
			return nil, err
		}
		t, err := h.CopyTo(dev)
		if err != nil {
			return nil, fmt.Errorf("reversible heun: copy %v to %s: %w", shape, dev.Name(), err)
		}
		open = append(open, t)
		return t, nil
	}
	y, err := upload(dt, y0, n, d)
	if err != nil {
		return RevHeunState{}, err
	}
	z, err := upload(dt, z0, n, d)
	if err != nil {
		return RevHeunState{}, err
	}
	var ay, az, grad *tensor.Tensor
	if adj != nil {
		if ay, err = upload(tensor.F64, adj.cotY, n, d); err != nil {
			return RevHeunState{}, err
		}
		cz := adj.cotZ
		if cz == nil {
			cz = make([]float64, n*d)
		}
		if az, err = upload(tensor.F64, cz, n, d); err != nil {
			return RevHeunState{}, err
		}
		gs := fam.gradShape(n, d)
		if grad, err = upload(tensor.F64, make([]float64, gs[0]*gs[1]), gs...); err != nil {
			return RevHeunState{}, err
		}
	}
	chunk := min(RevHeunChunk, r.Steps)
	ts, err := upload(tensor.F64, make([]float64, chunk), 1, chunk)
	if err != nil {
		return RevHeunState{}, err
	}
	te, err := upload(tensor.F64, make([]float64, chunk), 1, chunk)
	if err != nil {
		return RevHeunState{}, err
	}
	dw, err := tensor.New(dev, tensor.F64, n*d, chunk)
	if err != nil {
		return RevHeunState{}, fmt.Errorf("reversible heun: increments (%d, %d) on %s: %w", n*d, chunk, dev.Name(), err)
	}
	open = append(open, dw)
	spec, draw := r.Interval()
	draw.FirstChain = r.FirstChain * uint64(d)
	hs, he := make([]float64, chunk), make([]float64, chunk)
	// The calls: steps [k0, k0 + q), at most chunk each, ending at every traced step.
	type call struct{ k0, q int }
	var calls []call
	for k0 := 0; k0 < r.Steps; {
		q := min(chunk, r.Steps-k0)
		if record != nil {
			q = min(q, every-k0%every)
		}
		calls = append(calls, call{k0, q})
		k0 += q
	}
	readY := func() ([]float64, error) {
		hy, err := y.CopyTo(nil)
		if err != nil {
			return nil, fmt.Errorf("reversible heun: read y back: %w", err)
		}
		return hy.Float64s()
	}
	if record != nil {
		v, err := readY()
		if err != nil {
			return RevHeunState{}, err
		}
		if err := record(0, v); err != nil {
			return RevHeunState{}, err
		}
	}
	for c := range calls {
		if dir == ops.HeunInverse {
			c = len(calls) - 1 - c
		}
		k0, q := calls[c].k0, calls[c].q
		for j := range q {
			hs[j], he[j] = r.time(k0+j), r.time(k0+j+1)
		}
		sv, err := ts.View(0, 1, q)
		if err != nil {
			return RevHeunState{}, err
		}
		ev, err := te.View(0, 1, q)
		if err != nil {
			return RevHeunState{}, err
		}
		wv, err := dw.View(0, n*d, q)
		if err != nil {
			return RevHeunState{}, err
		}
		hsv, _ := tensor.FromF64(hs[:q], 1, q)
		hev, _ := tensor.FromF64(he[:q], 1, q)
		if err := sv.CopyFrom(hsv); err != nil {
			return RevHeunState{}, fmt.Errorf("reversible heun: step times: %w", err)
		}
		if err := ev.CopyFrom(hev); err != nil {
			return RevHeunState{}, fmt.Errorf("reversible heun: step times: %w", err)
		}
		if err := b.BrownianIncrements(wv, sv, ev, spec, draw); err != nil {
			return RevHeunState{}, fmt.Errorf("reversible heun: steps %d..%d: %w", k0, k0+q, err)
		}
		if adj != nil {
			err = fam.adjoint(b, y, z, ay, az, grad, wv, r.StepSize())
		} else {
			err = fam.steps(b, y, z, wv, r.StepSize(), dir)
		}
		if err != nil {
			return RevHeunState{}, fmt.Errorf("reversible heun: steps %d..%d: %w", k0, k0+q, err)
		}
		if record != nil && r.recordAt(k0+q, every) {
			v, err := readY()
			if err != nil {
				return RevHeunState{}, err
			}
			if err := record(k0+q, v); err != nil {
				return RevHeunState{}, err
			}
		}
	}
	hy, err := y.CopyTo(nil)
	if err != nil {
		return RevHeunState{}, fmt.Errorf("reversible heun: read y back: %w", err)
	}
	hz, err := z.CopyTo(nil)
	if err != nil {
		return RevHeunState{}, fmt.Errorf("reversible heun: read z back: %w", err)
	}
	st.N = n
	if st.Y, err = hy.Float64s(); err != nil {
		return RevHeunState{}, err
	}
	if st.Z, err = hz.Float64s(); err != nil {
		return RevHeunState{}, err
	}
	if adj != nil {
		var va, vc, vg []float64
		if va, err = ay.Float64s(); err == nil {
			if vc, err = az.Float64s(); err == nil {
				vg, err = grad.Float64s()
			}
		}
		if err != nil {
			return RevHeunState{}, fmt.Errorf("reversible heun adjoint: read the cotangents back: %w", err)
		}
		adj.x0 = make([]float64, n*d)
		for i := range adj.x0 {
			adj.x0[i] = va[i] + vc[i]
		}
		if adj.params, err = fam.paramGradient(vg, n, d); err != nil {
			return RevHeunState{}, err
		}
	}
	return st, r.checkFinal(st)
}
