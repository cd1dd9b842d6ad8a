package ops

import (
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// rowIO gives float64 access to the rows of x, the outputs and the per-row levels, whatever their
// dtype (absent tensors give rows that are not ok()).
type rowIO struct {
	x, logp, score, den, resp, levels rows
}

func newRowIO(out ScoreOutputs, x *tensor.Tensor, noise Noise) *rowIO {
	return &rowIO{x: rowsOf(x), logp: rowsOf(out.LogP), score: rowsOf(out.Score), den: rowsOf(out.Denoiser),
		resp: rowsOf(out.Resp), levels: rowsOf(noise.Levels)}
}

// load copies row i of x into buf and returns the row's noise (a, s); ok is false for a bad level.
func (r *rowIO) load(i int, buf []float64, noise Noise) (a, s float64, ok bool) {
	r.x.get(i, buf)
	level := noise.Level
	if r.levels.ok() {
		level = r.levels.at(i)
	}
	return noise.ScaleVar(level)
}

// store writes row i's requested outputs (resp may be nil when responsibilities were not asked for).
func (r *rowIO) store(i int, logp float64, score, den, resp []float64) {
	if r.logp.ok() {
		r.logp.put(i, logp)
	}
	if r.score.ok() {
		r.score.set(i, score)
	}
	if r.den.ok() {
		r.den.set(i, den)
	}
	if r.resp.ok() {
		r.resp.set(i, resp)
	}
}

// tweedie writes the denoiser (x + s·score)/a into den.
func tweedie(den, x, score []float64, a, s float64) {
	for j := range den {
		den[j] = (x[j] + s*score[j]) / a
	}
}

// onlineLSE is the streaming log-sum-exp with a weighted vector sum: after adding terms (r_c, g_c)
// it holds m = max r_c, sum = Σ e^{r_c − m}, acc = Σ e^{r_c − m} g_c, rescaled whenever the
// maximum grows, so no e^{r} is ever formed (finite at |x| = 1e4, σ = 1e-3, where the naive
// form is 0/0).
type onlineLSE struct {
	m, sum float64
	acc    []float64
}

func (o *onlineLSE) reset() {
	o.m, o.sum = math.Inf(-1), 0
	for j := range o.acc {
		o.acc[j] = 0
	}
}

// add adds the term e^{r} g (g may be nil when no vector is accumulated). A term r = −∞ (a
// component whose quadratic form overflowed) has weight 0 and changes nothing, also as the first
// term (where r − m would be NaN); a NaN r makes everything NaN.
func (o *onlineLSE) add(r float64, g []float64) {
	if math.IsInf(r, -1) {
		return
	}
	if r > o.m {
		scale := math.Exp(o.m - r) // 0 on the first term
		o.sum = o.sum*scale + 1
		for j := range g {
			o.acc[j] = o.acc[j]*scale + g[j]
		}
		o.m = r
		return
	}
	p := math.Exp(r - o.m)
	o.sum += p
	for j := range g {
		o.acc[j] += p * g[j]
	}
}

func (o *onlineLSE) lse() float64 { return o.m + math.Log(o.sum) }

var log2Pi = math.Log(2 * math.Pi)

// rowCost is the work of one row of a GMM score on the CPU (for parallelRows): K·d, times 2d
// with full covariances (two matrix–vector products per component).
func (g *GMM) rowCost() int {
	cost := g.k * g.d
	if g.kind == Full {
		cost *= 2 * g.d
	}
	return cost
}

// GMMScore is the reference of the fused Gaussian-mixture op (docs/math.md §1.1). For row x at
// noise (a, s), component k has mean m_k = a μ_k and covariance C_k = U_k diag(c_k) U_kᵀ with
// c_k = a² λ_k + s; with z_k = U_kᵀ (x − m_k) (z = x − m_k when U_k = I):
//
//	r_k = log w_k − ½ (d log 2π + Σ_j log c_kj + Σ_j z_kj² / c_kj)
//	log p = logsumexp_k r_k,   γ_k = e^{r_k − log p}
//	∇ log p = Σ_k γ_k g_k,    g_k = −C_k⁻¹ (x − m_k) = −U_k (z_k / c_k)
//	D = (x + s ∇log p) / a
//
// accumulated with the online log-sum-exp in float64. A row with a NaN coordinate or an invalid
// per-row level gets NaN outputs; the other rows are unaffected.
func (b cpuBackend) GMMScore(out ScoreOutputs, x *tensor.Tensor, g *GMM, noise Noise) error {
	if err := CheckGMMScore(tensor.CPU(), out, x, g, noise); err != nil {
		return err
	}
	io := newRowIO(out, x, noise)
	d, k := g.d, g.k
	b.parallelRows(x.Dim(0), g.rowCost(), func(lo, hi int) {
		xr := make([]float64, d)
		diff := make([]float64, d)
		z := make([]float64, d)
		grad := make([]float64, d)
		score := make([]float64, d)
		var resp, rs []float64
		den := make([]float64, d)
		if io.resp.ok() {
			resp, rs = make([]float64, k), make([]float64, k)
		}
		acc := onlineLSE{acc: make([]float64, d)}
		for i := lo; i < hi; i++ {
			a, s, ok := io.load(i, xr, noise)
			if !ok {
				nanRow(score, resp)
				io.store(i, math.NaN(), score, score, resp)
				continue
			}
			acc.reset()
			for c := 0; c < k; c++ {
				mu := g.means[c*d : (c+1)*d]
				for j := range diff {
					diff[j] = xr[j] - a*mu[j]
				}
				var r float64
				switch g.kind {
				case Isotropic:
					cv := a*a*g.lambda[c] + s
					q := 0.0
					for j, v := range diff {
						q += v * v
						grad[j] = -v / cv
					}
					r = g.logW[c] - 0.5*(float64(d)*(log2Pi+math.Log(cv))+q/cv)
				case Diagonal:
					lam := g.lambda[c*d : (c+1)*d]
					q, logdet := 0.0, 0.0
					for j, v := range diff {
						cv := a*a*lam[j] + s
						q += v * v / cv
						logdet += math.Log(cv)
						grad[j] = -v / cv
					}
					r = g.logW[c] - 0.5*(float64(d)*log2Pi+logdet+q)
				case Full:
					lam := g.lambda[c*d : (c+1)*d]
					u := g.u[c*d*d : (c+1)*d*d]
					q, logdet := 0.0, 0.0
					for j := 0; j < d; j++ { // z_j = Σ_i U_ij diff_i
						zj := 0.0
						for i2 := 0; i2 < d; i2++ {
							zj += u[i2*d+j] * diff[i2]
						}
						cv := a*a*lam[j] + s
						q += zj * zj / cv
						logdet += math.Log(cv)
						z[j] = zj / cv
					}
					for i2 := 0; i2 < d; i2++ { // grad = −U (z / c)
						gi := 0.0
						for j := 0; j < d; j++ {
							gi += u[i2*d+j] * z[j]
						}
						grad[i2] = -gi
					}
					r = g.logW[c] - 0.5*(float64(d)*log2Pi+logdet+q)
				}
				if rs != nil {
					rs[c] = r
				}
				acc.add(r, grad)
			}
			lse := acc.lse()
			for j := range score {
				score[j] = acc.acc[j] / acc.sum
			}
			for c := range rs {
				resp[c] = math.Exp(rs[c] - lse)
			}
			tweedie(den, xr, score, a, s)
			io.store(i, lse, score, den, resp)
		}
	})
	return nil
}

// EmpiricalScore is the reference of the optimal denoiser of a data set (docs/math.md §1.2). For
// row x at noise (a, s), over pairs (i, q) with variance v_q = s m_q:
//
//	r_iq = log π_q − log M − d/2 log(2π v_q) − ‖x − a y_i‖² / (2 v_q)
//	log p = logsumexp r,   w = softmax r
//	D = Σ w_iq y_i,        ∇ log p = Σ w_iq (a y_i − x) / v_q
//
// (with one mixture term ∇ log p = (a D − x)/s, Tweedie). Online log-sum-exp in float64. The
// distance is summed from the differences, not expanded as ‖x‖² − 2a x·y + a²‖y‖²: far from the
// data (|x| = 1e4, σ = 1e-3) the expansion cancels catastrophically.
func (b cpuBackend) EmpiricalScore(out ScoreOutputs, x *tensor.Tensor, e *Empirical, noise Noise) error {
	if err := CheckEmpiricalScore(tensor.CPU(), out, x, e, noise); err != nil {
		return err
	}
	io := newRowIO(out, x, noise)
	d, m, nq := e.d, e.m, len(e.scales)
	logM := math.Log(float64(m))
	b.parallelRows(x.Dim(0), m*nq*d, func(lo, hi int) {
		xr := make([]float64, d)
		term := make([]float64, 2*d+1) // (y_i, y_i / m_q, 1 / m_q)
		den := onlineLSE{acc: make([]float64, 2*d+1)}
		score := make([]float64, d)
		denoised := make([]float64, d)
		for i := lo; i < hi; i++ {
			a, s, ok := io.load(i, xr, noise)
			if !ok {
				nanRow(score, nil)
				io.store(i, math.NaN(), score, score, nil)
				continue
			}
			den.reset()
			for p := 0; p < m; p++ {
				dist := 0.0
				for j := 0; j < d; j++ {
					y := e.At(p, j)
					dj := xr[j] - a*y
					dist += dj * dj
					term[j] = y
				}
				for q := 0; q < nq; q++ {
					v := s * e.scales[q]
					r := e.logPi[q] - logM - 0.5*float64(d)*(log2Pi+math.Log(v)) - dist/(2*v)
					inv := 1 / e.scales[q]
					for j := 0; j < d; j++ {
						term[d+j] = term[j] * inv
					}
					term[2*d] = inv
					den.add(r, term)
				}
			}
			lse := den.lse()
			for j := 0; j < d; j++ {
				denoised[j] = den.acc[j] / den.sum
				score[j] = (a*den.acc[d+j] - xr[j]*den.acc[2*d]) / (s * den.sum)
			}
			// The posterior mean Σ w y itself: (x + s·score)/a equals it only with one mixture term.
			io.store(i, lse, score, denoised, nil)
		}
	})
	return nil
}

func nanRow(score, resp []float64) {
	for j := range score {
		score[j] = math.NaN()
	}
	for j := range resp {
		resp[j] = math.NaN()
	}
}
