package solvers

import (
	"fmt"
	"math"
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
	k, d    int
	means   []float64 // K×d
	logits  []float64 // K
	vars    []float64 // K
	logNorm []float64 // K: −(d/2) log v_k
	r, c    []float64 // K scratch
}

// NewGMMLangevinFamily builds the family of K = len(vars) components in dimension d from means
// (K×d row-major), logits (K) and variances (K); everything must be finite and the variances > 0.
func NewGMMLangevinFamily(d int, means, logits, vars []float64) (*GMMLangevinFamily, error) {
	const op = "gmm langevin family"
	k := len(vars)
	switch {
	case d < 1:
		return nil, fmt.Errorf("%s: dimension %d: must be ≥ 1", op, d)
	case k < 1:
		return nil, fmt.Errorf("%s: no components", op)
	case len(means) != k*d:
		return nil, fmt.Errorf("%s: %d mean values, want %d components × %d", op, len(means), k, d)
	case len(logits) != k:
		return nil, fmt.Errorf("%s: %d logits for %d components", op, len(logits), k)
	}
	for i, v := range means {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: mean %d, coordinate %d is %g: must be finite", op, i/d, i%d, v)
		}
	}
	for i, v := range logits {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: logit %d is %g: must be finite", op, i, v)
		}
	}
	g := &GMMLangevinFamily{k: k, d: d, means: append([]float64(nil), means...), logits: append([]float64(nil), logits...),
		vars: append([]float64(nil), vars...), logNorm: make([]float64, k), r: make([]float64, k),
		c: make([]float64, k)}
	for i, v := range vars {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: variance %d is %g: must be finite and > 0", op, i, v)
		}
		g.logNorm[i] = -0.5 * float64(d) * math.Log(v)
	}
	return g, nil
}

func (g *GMMLangevinFamily) Dim() int            { return g.d }
func (g *GMMLangevinFamily) NoiseDim() int       { return g.d }
func (g *GMMLangevinFamily) DiagonalNoise() bool { return true }

// K is the number of components.
func (g *GMMLangevinFamily) K() int { return g.k }

// Params is the K×d means then the K logits.
func (g *GMMLangevinFamily) Params() []float64 {
	return append(append(make([]float64, 0, g.k*g.d+g.k), g.means...), g.logits...)
}

// WithParams is the family with means p[:K·d] and logits p[K·d:], the same variances.
func (g *GMMLangevinFamily) WithParams(p []float64) (ParametricSDE, error) {
	if len(p) != g.k*g.d+g.k {
		return nil, fmt.Errorf("gmm langevin family: %d parameters, want %d means × %d + %d logits", len(p), g.k, g.d, g.k)
	}
	return NewGMMLangevinFamily(g.d, p[:g.k*g.d], p[g.k*g.d:], g.vars)
}

// responsibilities sets g.r = softmax(ℓ) at the row x (d values), by log-sum-exp.
func (g *GMMLangevinFamily) responsibilities(x []float64) {
	top := math.Inf(-1)
	for k := range g.k {
		mu := g.means[k*g.d : (k+1)*g.d]
		q := 0.0
		for j, v := range x {
			e := v - mu[j]
			q += e * e
		}
		l := g.logits[k] - q/(2*g.vars[k]) + g.logNorm[k]
		g.r[k] = l
		top = max(top, l)
	}
	sum := 0.0
	for k := range g.r {
		g.r[k] = math.Exp(g.r[k] - top)
		sum += g.r[k]
	}
	for k := range g.r {
		g.r[k] /= sum
	}
}

// Drift writes the score s(x).
func (g *GMMLangevinFamily) Drift(dst, x []float64, n int, t float64) error {
	d := g.d
	for c := range n {
		row, out := x[c*d:(c+1)*d], dst[c*d:(c+1)*d]
		g.responsibilities(row)
		clear(out)
		for k := range g.k {
			mu, w := g.means[k*d:(k+1)*d], g.r[k]/g.vars[k]
			for j, v := range row {
				out[j] += w * (mu[j] - v)
			}
		}
	}
	return nil
}

// Diffusion writes √2.
func (g *GMMLangevinFamily) Diffusion(dst, x []float64, n int, t float64) error {
	for i := range dst[:n*g.d] {
		dst[i] = math.Sqrt2
	}
	return nil
}

// VJP is the pull-back of the score written in the type's comment; vg contributes nothing.
func (g *GMMLangevinFamily) VJP(dx, dp, vf, vg, x []float64, n int, t float64) error {
	d, kd := g.d, g.k*g.d
	for c := range n {
		row, u, out := x[c*d:(c+1)*d], vf[c*d:(c+1)*d], dx[c*d:(c+1)*d]
		g.responsibilities(row)
		cbar := 0.0
		for k := range g.k {
			mu := g.means[k*d : (k+1)*d]
			ck := 0.0
			for j, v := range row {
				ck += u[j] * (mu[j] - v)
			}
			g.c[k] = ck / g.vars[k]
			cbar += g.r[k] * g.c[k]
		}
		for k := range g.k {
			mu, dmu := g.means[k*d:(k+1)*d], dp[k*d:(k+1)*d]
			beta := g.r[k] * (g.c[k] - cbar)
			rv := g.r[k] / g.vars[k]
			for j, v := range row {
				e := (mu[j] - v) / g.vars[k]
				out[j] += beta*e - rv*u[j]
				dmu[j] += rv*u[j] - beta*e
			}
			dp[kd+k] += beta
		}
	}
	return nil
}
