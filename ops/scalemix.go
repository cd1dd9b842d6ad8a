package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// ScaleMixture is the law of a Gaussian scale-mixture noise: node q, drawn with probability π_q,
// makes the noise N(0, v·A_q·I) for a level v ≥ 0 given per call. The isotropic α-stable noise of
// the Lévy–Itō model is such a mixture (A its mixing variable, integrated by a fixed quadrature:
// solvers.StableMixingQuadrature). Immutable after NewScaleMixture; a backend may keep a device
// copy of it (ops.Release frees it).
type ScaleMixture struct {
	logW, mult []float64
}

// NewScaleMixture validates the weights (finite, > 0; normalised here) and the multipliers A_q
// (finite, > 0), one each per node, at least one node.
func NewScaleMixture(weights, multipliers []float64) (*ScaleMixture, error) {
	const op = "scale mixture"
	if len(weights) == 0 || len(weights) != len(multipliers) {
		return nil, fmt.Errorf("%s: %d weights and %d multipliers (need the same number ≥ 1)", op, len(weights), len(multipliers))
	}
	total := 0.0
	for i, w := range weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("%s: weights[%d] = %g: must be finite and > 0", op, i, w)
		}
		if a := multipliers[i]; !(a > 0) || math.IsInf(a, 0) {
			return nil, fmt.Errorf("%s: multipliers[%d] = %g: must be finite and > 0", op, i, a)
		}
		total += w
	}
	m := &ScaleMixture{logW: make([]float64, len(weights)), mult: append([]float64(nil), multipliers...)}
	for i, w := range weights {
		m.logW[i] = math.Log(w / total)
	}
	return m, nil
}

// Nodes is Q; LogWeights and Multipliers are copies of log π_q and A_q.
func (m *ScaleMixture) Nodes() int             { return len(m.mult) }
func (m *ScaleMixture) LogWeights() []float64  { return append([]float64(nil), m.logW...) }
func (m *ScaleMixture) Multipliers() []float64 { return append([]float64(nil), m.mult...) }

// CheckGMMScaleMixtureDenoise validates the op's arguments: dst and x open (N, d) tensors of one
// dtype (f32 or f64) on dev, d the mixture's dimension, dst not x; a mixture and a scale
// mixture; a finite level v ≥ 0.
func CheckGMMScaleMixtureDenoise(dev tensor.Device, dst, x *tensor.Tensor, g *GMM, m *ScaleMixture, v float64) error {
	const op = "gmm scale-mixture denoise"
	if g == nil {
		return fmt.Errorf("%s: nil mixture", op)
	}
	if m == nil {
		return fmt.Errorf("%s: nil scale mixture (build it with NewScaleMixture)", op)
	}
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: x must be an open (N, d) tensor", op)
	}
	n, d, dt := x.Dim(0), x.Dim(1), x.DType()
	if dt != tensor.F32 && dt != tensor.F64 {
		return fmt.Errorf("%s: x is %v: want f32 or f64", op, dt)
	}
	if d != g.Dim() {
		return fmt.Errorf("%s: x has dimension %d, the mixture %d", op, d, g.Dim())
	}
	if err := checkSame(op, "x", x, dev, dt, n, d); err != nil {
		return err
	}
	if err := checkSame(op, "dst", dst, dev, dt, n, d); err != nil {
		return err
	}
	if dst == x {
		return fmt.Errorf("%s: dst and x are the same tensor: write the denoiser elsewhere", op)
	}
	if !(v >= 0) || math.IsInf(v, 0) {
		return fmt.Errorf("%s: level v = %g: must be a finite number ≥ 0", op, v)
	}
	return nil
}

// GMMScaleMixtureDenoise writes into dst (not x) the posterior mean E[x_0 | x] of every row x
// = x_0 + ε with x_0 ~ g and ε ~ Σ_q π_q N(0, v A_q I): conditioning on the node q as well as
// the component k, the posterior is a mixture over (k, q),
//
//	D(x) = Σ_{k,q} r_kq (μ_k + Σ_k (Σ_k + v A_q I)^{-1} (x − μ_k)),
//	r_kq ∝ w_k π_q N(x; μ_k, Σ_k + v A_q I),
//
// in float64 whatever the dtype, rounded once. The reference evaluates, per row, the log terms
// L_kq = log r_kq (up to the constant d/2·log 2π) in the eigenbasis of Σ_k (its eigenvalues λ_kj;
// the variances for diagonal and isotropic mixtures) — the log-determinants, 1/c and the shrink
// factors λ/c (c = λ_kj + v A_q) computed once per call, being the same for every row — their
// maximum and normaliser in one pass (online: s ← s·e^{m−L} + 1 at a new maximum), then the sum in
// a second pass over the stored L_kq.
func (b cpuBackend) GMMScaleMixtureDenoise(dst, x *tensor.Tensor, g *GMM, m *ScaleMixture, v float64) error {
	if err := CheckGMMScaleMixtureDenoise(tensor.CPU(), dst, x, g, m, v); err != nil {
		return err
	}
	n, d := x.Dim(0), x.Dim(1)
	if n == 0 || d == 0 {
		return nil
	}
	p := g.Params()
	K, Q := p.K, m.Nodes()
	// Row-independent per (k, q, j): 1/c and the shrink factor λ/c, c = λ_kj + v A_q; per (k, q):
	// the log weight less half the log-determinant.
	inv, shrink, base := make([]float64, K*Q*d), make([]float64, K*Q*d), make([]float64, K*Q)
	for k := 0; k < K; k++ {
		for q := 0; q < Q; q++ {
			vq := v * m.mult[q]
			l := p.LogWeights[k] + m.logW[q]
			for j := 0; j < d; j++ {
				lam := p.Lambda[k]
				if p.Kind != Isotropic {
					lam = p.Lambda[k*d+j]
				}
				c := lam + vq
				l -= 0.5 * math.Log(c)
				inv[(k*Q+q)*d+j] = 1 / c
				shrink[(k*Q+q)*d+j] = lam / c
			}
			base[k*Q+q] = l
		}
	}
	rx, rd := rowsOf(x), rowsOf(dst)
	b.parallelRows(n, 4*K*Q*d, func(lo, hi int) {
		xi, out := make([]float64, d), make([]float64, d)
		z := make([]float64, K*d) // U_kᵀ(x − μ_k): the eigen coordinates (x − μ_k without U)
		ls := make([]float64, K*Q)
		sh := make([]float64, d)
		for i := lo; i < hi; i++ {
			rx.get(i, xi)
			for k := 0; k < K; k++ {
				zk, mu := z[k*d:(k+1)*d], p.Means[k*d:(k+1)*d]
				if p.Kind == Full {
					u := p.U[k*d*d : (k+1)*d*d]
					for c := 0; c < d; c++ {
						s := 0.0
						for r := 0; r < d; r++ {
							s += u[r*d+c] * (xi[r] - mu[r])
						}
						zk[c] = s
					}
				} else {
					for j := range zk {
						zk[j] = xi[j] - mu[j]
					}
				}
			}
			mx, s := math.Inf(-1), 0.0
			for k := 0; k < K; k++ {
				zk := z[k*d : (k+1)*d]
				for q := 0; q < Q; q++ {
					ic := inv[(k*Q+q)*d : (k*Q+q+1)*d]
					quad := 0.0
					for j, zj := range zk {
						quad += zj * zj * ic[j]
					}
					l := base[k*Q+q] - 0.5*quad
					ls[k*Q+q] = l
					if l > mx {
						s = s*math.Exp(mx-l) + 1
						mx = l
					} else {
						s += math.Exp(l - mx)
					}
				}
			}
			clear(out)
			for k := 0; k < K; k++ {
				mu, zk := p.Means[k*d:(k+1)*d], z[k*d:(k+1)*d]
				clear(sh)
				rk := 0.0
				for q := 0; q < Q; q++ {
					r := math.Exp(ls[k*Q+q]-mx) / s
					rk += r
					f := shrink[(k*Q+q)*d : (k*Q+q+1)*d]
					for j := range sh {
						sh[j] += r * f[j] * zk[j]
					}
				}
				if p.Kind == Full {
					u := p.U[k*d*d : (k+1)*d*d]
					for r := 0; r < d; r++ {
						acc := 0.0
						for c := 0; c < d; c++ {
							acc += u[r*d+c] * sh[c]
						}
						out[r] += rk*mu[r] + acc
					}
				} else {
					for j := range out {
						out[j] += rk*mu[j] + sh[j]
					}
				}
			}
			rd.set(i, out)
		}
	})
	return nil
}
