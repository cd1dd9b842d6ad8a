package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
)

// GMMLangevinFamily is the overdamped Langevin SDE dX = ∇log p(X) dt + √2 dW of an isotropic
// Gaussian mixture p(x) ∝ Σ_k exp(α_k) N(x; μ_k, v_k I) whose means μ_k and logits α_k (the
// weights are softmax(α)) are the parameters; the variances v_k are fixed. The score is
//
//	s(x) = Σ_k r_k(x) e_k(x),  e_k = (μ_k − x)/v_k,
//	r = softmax(ℓ),  ℓ_k = α_k − |x − μ_k|²/(2v_k) − (d/2) log v_k   (the responsibilities).
//
// Its vector–Jacobian product for a cotangent u of s (one row): with c_k = uᵀe_k,
// c̄ = Σ_k r_k c_k and β_k = r_k (c_k − c̄) (the pull-back through the softmax, since
// ∂ℓ_k/∂x = e_k, ∂ℓ_k/∂μ_k = −e_k, ∂ℓ_k/∂α_j = δ_kj, ∂e_k/∂x = −I/v_k, ∂e_k/∂μ_k = I/v_k):
//
//	uᵀ ∂s/∂x   = Σ_k β_k e_k − (Σ_k r_k/v_k) u
//	uᵀ ∂s/∂μ_k = −β_k e_k + (r_k/v_k) u
//	uᵀ ∂s/∂α_k = β_k
//
// The diffusion √2 depends on nothing. Parameters are laid out as the K×d means (row-major),
// then the K logits. A *GMMLangevinFamily keeps scratch space and is not safe for concurrent use.
type GMMLangevinFamily struct {
	m    *ops.LangevinMixture
	r, c []float64 // K scratch
}

// NewGMMLangevinFamily builds the family of K = len(vars) components in dimension d from means
// (K×d row-major), logits (K) and variances (K); everything must be finite and the variances > 0.
func NewGMMLangevinFamily(d int, means, logits, vars []float64) (*GMMLangevinFamily, error) {
	m, err := ops.NewLangevinMixture(d, means, logits, vars)
	if err != nil {
		return nil, fmt.Errorf("gmm langevin family: %w", err)
	}
	return &GMMLangevinFamily{m: m, r: make([]float64, m.K()), c: make([]float64, m.K())}, nil
}

func (g *GMMLangevinFamily) Dim() int            { return g.m.Dim() }
func (g *GMMLangevinFamily) NoiseDim() int       { return g.m.Dim() }
func (g *GMMLangevinFamily) DiagonalNoise() bool { return true }

// K is the number of components.
func (g *GMMLangevinFamily) K() int { return g.m.K() }

// Mixture is the family's ops.LangevinMixture at its parameters: the fused reversible Heun ops
// (SolveOn, ReconstructOn, AdjointOn) run it.
func (g *GMMLangevinFamily) Mixture() *ops.LangevinMixture { return g.m }

// Params is the K×d means then the K logits.
func (g *GMMLangevinFamily) Params() []float64 { return append(g.m.Means(), g.m.Logits()...) }

// WithParams is the family with means p[:K·d] and logits p[K·d:], the same variances.
func (g *GMMLangevinFamily) WithParams(p []float64) (ParametricSDE, error) {
	k, d := g.m.K(), g.m.Dim()
	if len(p) != k*d+k {
		return nil, fmt.Errorf("gmm langevin family: %d parameters, want %d means × %d + %d logits", len(p), k, d, k)
	}
	return NewGMMLangevinFamily(d, p[:k*d], p[k*d:], g.m.Vars())
}

// Drift writes the score s(x) (ops.LangevinMixture.Score, row by row).
func (g *GMMLangevinFamily) Drift(dst, x []float64, n int, t float64) error {
	d := g.m.Dim()
	for c := range n {
		g.m.Score(dst[c*d:(c+1)*d], x[c*d:(c+1)*d], g.r)
	}
	return nil
}

// Diffusion writes √2.
func (g *GMMLangevinFamily) Diffusion(dst, x []float64, n int, t float64) error {
	for i := range dst[:n*g.m.Dim()] {
		dst[i] = math.Sqrt2
	}
	return nil
}

// VJP is the pull-back of the score written in the type's comment (ops.LangevinMixture.ScoreVJP,
// row by row); vg contributes nothing.
func (g *GMMLangevinFamily) VJP(dx, dp, vf, vg, x []float64, n int, t float64) error {
	d := g.m.Dim()
	for c := range n {
		g.m.ScoreVJP(dx[c*d:(c+1)*d], dp, vf[c*d:(c+1)*d], x[c*d:(c+1)*d], g.r, g.c)
	}
	return nil
}
