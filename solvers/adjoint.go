package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Discrete adjoint of reversible Heun (docs/math.md §4.8). For a loss L(y_N, z_N) of the final
// state of a ReversibleHeun solve of a ParametricSDE, Adjoint returns dL/dx_0 and dL/dθ: the
// exact gradient of the discretised solve (backprop through the stored states gives the same
// numbers up to round-off), computed with memory that does not grow with the number of steps.
//
// Step k maps (y, z) at t_k to (y', z') at t_{k+1} with f_0, g_0 at (t_k, z) and f_1, g_1 at
// (t_{k+1}, z'). Given the cotangents (a_y, a_z) of (y', z'), its vector–Jacobian product is
//
//	a_z̃ = a_z + [∂f_1/∂x]ᵀ(½h a_y) + [∂g_1/∂x]ᵀ(½ a_y ⊗ ΔW)
//	a_y ← a_y + 2 a_z̃
//	a_z ← −a_z̃ + [∂f_0/∂x]ᵀ(½h a_y_old + h a_z̃) + [∂g_0/∂x]ᵀ((½ a_y_old + a_z̃) ⊗ ΔW)
//
// and the same cotangents of f_0, g_0, f_1, g_1 against ∂/∂θ add into dL/dθ. The backward pass
// runs k = N−1 … 0: it evaluates the first line at z_{k+1}, rebuilds (y_k, z_k) from (y_{k+1},
// z_{k+1}) with the algebraic inverse and the same increments ΔW_k (asked again of the Brownian
// intervals), then evaluates the last line at z_k. Since y_0 = z_0 = x_0, dL/dx_0 = a_y + a_z at
// the end. (For general noise, (v ⊗ ΔW)_{i,j} = v_i ΔW_j; for diagonal noise it is v_i ΔW_i.)

// ParametricSDE is a StratonovichSDE whose drift and diffusion depend on parameters θ (P values),
// with their vector–Jacobian products.
type ParametricSDE interface {
	StratonovichSDE
	// Params returns a copy of θ.
	Params() []float64
	// WithParams returns the same family at θ = p; an error for a wrong length or a value the
	// family does not accept (not finite, or out of its domain).
	WithParams(p []float64) (ParametricSDE, error)
	// VJP adds, for n states x (n, d) at time t, cotangents vf (n, d) of f(t, x) and vg of g(t, x)
	// (the layout Diffusion writes):
	//
	//	dx += vfᵀ ∂f/∂x + vgᵀ ∂g/∂x     (n, d), row by row
	//	dp += Σ_rows vfᵀ ∂f/∂θ + vgᵀ ∂g/∂θ  (P)
	//
	// It must not allocate per call beyond a fixed scratch (the adjoint's memory bound relies on it).
	VJP(dx, dp, vf, vg, x []float64, n int, t float64) error
}

// RevHeunGradient is what Adjoint returns.
type RevHeunGradient struct {
	// X0 is dL/dx_0 (N, d).
	X0 []float64
	// Params is dL/dθ (P), summed over the chains (they share θ).
	Params []float64
	// Start is the reconstructed initial state (y_0, z_0): x_0 twice, up to round-off.
	Start RevHeunState
}

// adjointWork holds the buffers of the backward pass: O(N·d·m), none of them per step.
type adjointWork struct {
	*heunWork
	ay, az, azt, dx, vf, vg []float64
}

func newAdjointWork(sde StratonovichSDE, n int) *adjointWork {
	w := newHeunWork(sde, n)
	nd := n * w.d
	return &adjointWork{heunWork: w, ay: make([]float64, nd), az: make([]float64, nd), azt: make([]float64, nd),
		dx: make([]float64, nd), vf: make([]float64, nd), vg: make([]float64, len(w.g))}
}

// fillNoiseCotangent writes vg = (c ⊙ v) ⊗ ΔW, per element c1·v1_i + c2·v2_i (v2 may be nil).
func (w *adjointWork) fillNoiseCotangent(diag bool, c1 float64, v1 []float64, c2 float64, v2 []float64) {
	for i := range v1 {
		a := c1 * v1[i]
		if v2 != nil {
			a += c2 * v2[i]
		}
		if diag {
			w.vg[i] = a * w.dw[i]
			continue
		}
		row := i / w.d
		for k := 0; k < w.m; k++ {
			w.vg[i*w.m+k] = a * w.dw[row*w.m+k]
		}
	}
}

// backwardHalf1 is the first half of the VJP of step k: with the cotangents (w.ay, w.az) of
// (y_{k+1}, z_{k+1}), it sets w.azt = a_z̃ (the cotangent of z_{k+1} through f_1, g_1) and adds
// their parameter cotangent into dp. z1 is z_{k+1}; w.dw holds ΔW_k.
func (r ReversibleHeun) backwardHalf1(p ParametricSDE, w *adjointWork, dp, z1 []float64, k int, h float64) error {
	diag := r.SDE.DiagonalNoise()
	for i, a := range w.ay {
		w.vf[i] = 0.5 * h * a
	}
	w.fillNoiseCotangent(diag, 0.5, w.ay, 0, nil)
	copy(w.azt, w.az)
	if err := p.VJP(w.azt, dp, w.vf, w.vg, z1, w.n, r.time(k+1)); err != nil {
		return fmt.Errorf("reversible heun adjoint: step %d: %w", k, err)
	}
	return nil
}

// backwardHalf2 is the second half: z0 is z_k; it leaves the cotangents of (y_k, z_k) in
// (w.ay, w.az) and adds the parameter cotangent of f_0, g_0 into dp.
func (r ReversibleHeun) backwardHalf2(p ParametricSDE, w *adjointWork, dp, z0 []float64, k int, h float64) error {
	diag := r.SDE.DiagonalNoise()
	for i := range w.vf {
		w.vf[i] = 0.5*h*w.ay[i] + h*w.azt[i]
	}
	w.fillNoiseCotangent(diag, 0.5, w.ay, 1, w.azt)
	clear(w.dx)
	if err := p.VJP(w.dx, dp, w.vf, w.vg, z0, w.n, r.time(k)); err != nil {
		return fmt.Errorf("reversible heun adjoint: step %d: %w", k, err)
	}
	for i := range w.ay {
		w.ay[i] += 2 * w.azt[i]
		w.az[i] = w.dx[i] - w.azt[i]
	}
	return nil
}

// checkAdjoint validates the arguments of a gradient: the configuration, a ParametricSDE with
// finite parameters, a final state and cotangents of the right shapes, all finite.
func (r ReversibleHeun) checkAdjoint(n int, states [][]float64, cotY, cotZ []float64) (ParametricSDE, error) {
	const op = "reversible heun adjoint"
	if err := r.check(n); err != nil {
		return nil, err
	}
	p, ok := r.SDE.(ParametricSDE)
	if !ok {
		return nil, fmt.Errorf("%s: %T has no parameters to differentiate (not a ParametricSDE)", op, r.SDE)
	}
	for i, v := range p.Params() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: parameter %d is %g: must be finite", op, i, v)
		}
	}
	d := p.Dim()
	for _, s := range states {
		if len(s) != n*d {
			return nil, fmt.Errorf("%s: state has %d values, want %d chains × %d", op, len(s), n, d)
		}
		if err := checkValues("state", s, d); err != nil {
			return nil, err
		}
	}
	if len(cotY) != n*d {
		return nil, fmt.Errorf("%s: cotangent of y has %d values, want %d chains × %d", op, len(cotY), n, d)
	}
	if err := checkValues("cotangent of y", cotY, d); err != nil {
		return nil, err
	}
	if cotZ != nil {
		if len(cotZ) != n*d {
			return nil, fmt.Errorf("%s: cotangent of z has %d values, want %d chains × %d (or none)", op, len(cotZ), n, d)
		}
		if err := checkValues("cotangent of z", cotZ, d); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Adjoint returns the gradient of a loss L of the final state of Solve (same configuration, an
// SDE that is a ParametricSDE) given its cotangents cotY = ∂L/∂y_N and cotZ = ∂L/∂z_N (nil: L
// does not depend on z_N), each (N, d). It walks the steps backward, reconstructing the states
// with the algebraic inverse, so its memory is O(N·d) whatever the number of steps. final and
// the cotangents are not modified.
func (r ReversibleHeun) Adjoint(final RevHeunState, cotY, cotZ []float64) (RevHeunGradient, error) {
	n := final.N
	p, err := r.checkAdjoint(n, [][]float64{final.Y, final.Z}, cotY, cotZ)
	if err != nil {
		return RevHeunGradient{}, err
	}
	g := RevHeunGradient{X0: make([]float64, len(cotY)), Params: make([]float64, len(p.Params())),
		Start: RevHeunState{Y: append([]float64(nil), final.Y...), Z: append([]float64(nil), final.Z...), N: n}}
	if n == 0 {
		return g, nil
	}
	paths, err := r.intervals(n)
	if err != nil {
		return RevHeunGradient{}, err
	}
	w, h := newAdjointWork(r.SDE, n), r.StepSize()
	copy(w.ay, cotY)
	copy(w.az, cotZ) // nil copies nothing: the buffer is zero
	y, z := g.Start.Y, g.Start.Z
	for k := r.Steps - 1; k >= 0; k-- {
		if err := r.increments(w.heunWork, paths, k); err != nil {
			return RevHeunGradient{}, err
		}
		if err := r.backwardHalf1(p, w, g.Params, z, k, h); err != nil {
			return RevHeunGradient{}, err
		}
		if err := r.inverse(w.heunWork, y, z, k, h); err != nil {
			return RevHeunGradient{}, err
		}
		if err := r.backwardHalf2(p, w, g.Params, z, k, h); err != nil {
			return RevHeunGradient{}, err
		}
	}
	for i := range g.X0 {
		g.X0[i] = w.ay[i] + w.az[i]
	}
	if err := checkValues("gradient with respect to x0 is not finite", g.X0, r.SDE.Dim()); err != nil {
		return RevHeunGradient{}, err
	}
	return g, r.checkFinal(g.Start)
}

// AffineParametric is a ParametricSDE that is one ops.AffineSDE on every coordinate (OUFamily,
// GBMFamily): AdjointOn runs its backward pass fused on a backend.
type AffineParametric interface {
	ParametricSDE
	// Affine is the family's AffineFamily at its parameters.
	Affine() AffineFamily
	// AffineGradient maps the loss's cotangents of the coefficients (A, B, C, E) of the AffineSDE,
	// summed over the chains and coordinates, to dL/dθ by the chain rule.
	AffineGradient(g [4]float64) []float64
}

// AdjointOn is Adjoint for an AffineParametric family or a GMMLangevinFamily on backend b with the
// state stored in dtype dt: every chunk of RevHeunChunk steps (last first) asks
// b.BrownianIncrements for its increments (the values Adjoint's Brownian intervals give) and walks
// them back in one fused call (on the GPU one kernel launch per chunk), which reconstructs the
// state and carries its cotangents. For an affine family, b.ReversibleHeunAdjoint carries the
// cotangents of the coefficients per coordinate, summed on the host and mapped to θ
// (AffineGradient); for the mixture, b.LangevinMixtureHeunAdjoint carries each chain's cotangent
// of the means and logits, summed over the chains on the host. The memory is
// O(N·d·RevHeunChunk) (for the mixture plus N·(K·d + K) cotangents and N·(7d + 2K) work values)
// whatever the number of steps. In float64 the result equals Adjoint's to
// round-off (the two order the same sums differently: the fused step writes its products as fma);
// in float32 the state is rounded between chunks, as in ReconstructOn. final is Solve's (or
// SolveOn's) final state; it and the cotangents are not modified.
func (r ReversibleHeun) AdjointOn(b ops.Backend, dt tensor.DType, final RevHeunState, cotY, cotZ []float64) (RevHeunGradient, error) {
	n := final.N
	p, err := r.checkAdjoint(n, [][]float64{final.Y, final.Z}, cotY, cotZ)
	if err != nil {
		return RevHeunGradient{}, err
	}
	switch r.SDE.(type) {
	case AffineParametric, *GMMLangevinFamily:
	default:
		return RevHeunGradient{}, fmt.Errorf("reversible heun adjoint: the fused backward pass needs an affine family (OUFamily, GBMFamily) or a GMMLangevinFamily, not %T", r.SDE)
	}
	if dt != tensor.F32 && dt != tensor.F64 {
		return RevHeunGradient{}, fmt.Errorf("reversible heun adjoint: dtype %v: want f32 or f64", dt)
	}
	g := RevHeunGradient{X0: make([]float64, len(cotY)), Params: make([]float64, len(p.Params()))}
	if n == 0 {
		g.Start = RevHeunState{Y: []float64{}, Z: []float64{}}
		return g, nil
	}
	adj := &heunAdjointOn{cotY: cotY, cotZ: cotZ}
	if g.Start, err = r.runOn(b, dt, final.Y, final.Z, n, ops.HeunInverse, 0, nil, adj); err != nil {
		return RevHeunGradient{}, err
	}
	g.X0 = adj.x0
	g.Params = adj.params
	if err := checkValues("gradient with respect to x0 is not finite", g.X0, r.SDE.Dim()); err != nil {
		return RevHeunGradient{}, err
	}
	for i, v := range g.Params {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return RevHeunGradient{}, fmt.Errorf("reversible heun adjoint: the gradient with respect to parameter %d is %g", i, v)
		}
	}
	return g, nil
}

// TerminalMeanLoss is L = mean of y over the n chains and d coordinates, and its cotangent
// ∂L/∂y = 1/(n·d) everywhere.
func TerminalMeanLoss(y []float64, n, d int) (float64, []float64, error) {
	if n < 1 || d < 1 || len(y) != n*d {
		return 0, nil, fmt.Errorf("terminal mean loss: %d values for %d chains × %d", len(y), n, d)
	}
	c := 1 / float64(n*d)
	l, cot := 0.0, make([]float64, len(y))
	for i, v := range y {
		l += v
		cot[i] = c
	}
	return l * c, cot, nil
}

// TerminalVarianceLoss is L = (1/d) Σ_j (1/n) Σ_c (y_{c,j} − ȳ_j)², the variance over the chains
// (divided by n) averaged over the coordinates, and its cotangent ∂L/∂y_{c,j} =
// 2(y_{c,j} − ȳ_j)/(n·d) (the terms through ȳ_j sum to zero).
func TerminalVarianceLoss(y []float64, n, d int) (float64, []float64, error) {
	if n < 1 || d < 1 || len(y) != n*d {
		return 0, nil, fmt.Errorf("terminal variance loss: %d values for %d chains × %d", len(y), n, d)
	}
	mean := make([]float64, d)
	for i, v := range y {
		mean[i%d] += v
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	c := 1 / float64(n*d)
	l, cot := 0.0, make([]float64, len(y))
	for i, v := range y {
		e := v - mean[i%d]
		l += e * e
		cot[i] = 2 * e * c
	}
	return l * c, cot, nil
}

// OUFamily is the Ornstein–Uhlenbeck SDE dX = θ(μ − X) dt + σ dW (ops.OrnsteinUhlenbeck) on D
// coordinates with parameters (θ, μ, σ): its drift and diffusion are AffineFamily's, bit for bit.
type OUFamily struct {
	AffineFamily
	Theta, Mu, Sigma float64
}

// NewOUFamily validates the parameters (ops.OrnsteinUhlenbeck) and d ≥ 1.
func NewOUFamily(theta, mu, sigma float64, d int) (OUFamily, error) {
	if d < 1 {
		return OUFamily{}, fmt.Errorf("ornstein-uhlenbeck family: dimension %d: must be ≥ 1", d)
	}
	s, err := ops.OrnsteinUhlenbeck(theta, mu, sigma)
	if err != nil {
		return OUFamily{}, err
	}
	return OUFamily{AffineFamily: AffineFamily{SDE: s, D: d}, Theta: theta, Mu: mu, Sigma: sigma}, nil
}

// Params is (θ, μ, σ).
func (o OUFamily) Params() []float64 { return []float64{o.Theta, o.Mu, o.Sigma} }

// WithParams is NewOUFamily(p[0], p[1], p[2], D).
func (o OUFamily) WithParams(p []float64) (ParametricSDE, error) {
	if len(p) != 3 {
		return nil, fmt.Errorf("ornstein-uhlenbeck family: %d parameters, want 3 (θ, μ, σ)", len(p))
	}
	return NewOUFamily(p[0], p[1], p[2], o.D)
}

// VJP of f = θ(μ − x), g = σ: ∂f/∂x = −θ, ∂f/∂θ = μ − x, ∂f/∂μ = θ, ∂g/∂σ = 1.
func (o OUFamily) VJP(dx, dp, vf, vg, x []float64, n int, t float64) error {
	for i, v := range x[:n*o.D] {
		dx[i] -= o.Theta * vf[i]
		dp[0] += vf[i] * (o.Mu - v)
		dp[1] += vf[i] * o.Theta
		dp[2] += vg[i]
	}
	return nil
}

// AffineGradient maps the coefficients' cotangents to (θ, μ, σ): A = θμ, B = −θ, C = σ, so
// dθ = μ g_A − g_B, dμ = θ g_A, dσ = g_C.
func (o OUFamily) AffineGradient(g [4]float64) []float64 {
	return []float64{o.Mu*g[0] - g[1], o.Theta * g[0], g[2]}
}

// GBMFamily is the geometric Brownian motion of Itô form dX = μX dt + σX dW
// (ops.GeometricBrownian, integrated in its Stratonovich form f = (μ − σ²/2)x, g = σx) on D
// coordinates with parameters (μ, σ).
type GBMFamily struct {
	AffineFamily
	Mu, Sigma float64
}

// NewGBMFamily validates the parameters (ops.GeometricBrownian) and d ≥ 1.
func NewGBMFamily(mu, sigma float64, d int) (GBMFamily, error) {
	if d < 1 {
		return GBMFamily{}, fmt.Errorf("geometric brownian family: dimension %d: must be ≥ 1", d)
	}
	s, err := ops.GeometricBrownian(mu, sigma)
	if err != nil {
		return GBMFamily{}, err
	}
	return GBMFamily{AffineFamily: AffineFamily{SDE: s, D: d}, Mu: mu, Sigma: sigma}, nil
}

// Params is (μ, σ).
func (b GBMFamily) Params() []float64 { return []float64{b.Mu, b.Sigma} }

// WithParams is NewGBMFamily(p[0], p[1], D).
func (b GBMFamily) WithParams(p []float64) (ParametricSDE, error) {
	if len(p) != 2 {
		return nil, fmt.Errorf("geometric brownian family: %d parameters, want 2 (μ, σ)", len(p))
	}
	return NewGBMFamily(p[0], p[1], b.D)
}

// VJP of f = (μ − σ²/2)x, g = σx: ∂f/∂x = μ − σ²/2, ∂g/∂x = σ, ∂f/∂μ = x, ∂f/∂σ = −σx,
// ∂g/∂σ = x.
func (b GBMFamily) VJP(dx, dp, vf, vg, x []float64, n int, t float64) error {
	slope := b.Mu - 0.5*b.Sigma*b.Sigma
	for i, v := range x[:n*b.D] {
		dx[i] += slope*vf[i] + b.Sigma*vg[i]
		dp[0] += vf[i] * v
		dp[1] += (vg[i] - b.Sigma*vf[i]) * v
	}
	return nil
}

// AffineGradient maps the coefficients' cotangents to (μ, σ): B = μ − σ²/2, E = σ, so dμ = g_B,
// dσ = g_E − σ g_B.
func (b GBMFamily) AffineGradient(g [4]float64) []float64 {
	return []float64{g[1], g[3] - b.Sigma*g[1]}
}
