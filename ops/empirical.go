package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// Empirical is the optimal-denoiser target of a data set {y_1..y_M} ⊂ R^d (docs/math.md §1.2): the
// noised density is p(x) = (1/M) Σ_i Σ_q π_q N(x; a y_i, s·m_q I) — with one mixture term (π = 1,
// m = 1) the Gaussian kernel density of the data, and with several a scale mixture (the
// conditionally Gaussian form of α-stable noise). Its denoiser is the posterior mean of the data
// point, D(x) = Σ_{i,q} w_iq y_i with w = softmax_{i,q}(log π_q − d/2 log(s m_q) − ‖x − a y_i‖² / (2 s m_q)),
// one step of Gaussian mean shift.
type Empirical struct {
	data    *tensor.Tensor // host (M, d), f32 or f64
	m, d    int
	sqNorms []float64 // ‖y_i‖², precomputed
	logPi   []float64 // Q, log mixture weights (normalised)
	scales  []float64 // Q, variance multipliers m_q
}

// NewEmpirical wraps a host data tensor of shape (M, d), M ≥ 1 (not copied: do not change it
// afterwards). Non-finite data is an error naming the first bad point.
func NewEmpirical(data *tensor.Tensor) (*Empirical, error) {
	if data == nil || data.Closed() {
		return nil, fmt.Errorf("empirical: data tensor is nil or closed")
	}
	if !data.OnHost() {
		return nil, fmt.Errorf("empirical: data is on %s: pass a host tensor (backends upload it)", data.Device().Name())
	}
	if data.Rank() != 2 {
		return nil, fmt.Errorf("empirical: data shape %v: want (points, dim)", data.Shape())
	}
	m, d := data.Dim(0), data.Dim(1)
	if m == 0 || d == 0 {
		return nil, fmt.Errorf("empirical: data shape %v: need at least one point of dimension ≥ 1", data.Shape())
	}
	e := &Empirical{data: data, m: m, d: d, sqNorms: make([]float64, m), logPi: []float64{0}, scales: []float64{1}}
	for i := 0; i < m; i++ {
		s := 0.0
		for j := 0; j < d; j++ {
			v := e.At(i, j)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("empirical: data[%d][%d] = %g: must be finite", i, j, v)
			}
			s += v * v
		}
		e.sqNorms[i] = s
	}
	return e, nil
}

// WithMixture returns a copy of e whose kernel is the scale mixture Σ_q π_q N(·; a y, s m_q I):
// weights π_q > 0 (normalised) and variance multipliers m_q > 0.
func (e *Empirical) WithMixture(weights, scales []float64) (*Empirical, error) {
	if len(weights) == 0 || len(weights) != len(scales) {
		return nil, fmt.Errorf("empirical: mixture: %d weights and %d scales (need the same number ≥ 1)", len(weights), len(scales))
	}
	total := 0.0
	for i, w := range weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("empirical: mixture weights[%d] = %g: must be finite and > 0", i, w)
		}
		if s := scales[i]; !(s > 0) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("empirical: mixture scales[%d] = %g: must be finite and > 0", i, s)
		}
		total += w
	}
	c := *e
	c.logPi = make([]float64, len(weights))
	for i, w := range weights {
		c.logPi[i] = math.Log(w / total)
	}
	c.scales = append([]float64(nil), scales...)
	return &c, nil
}

// Points is M, Dim is d, MixtureSize is Q.
func (e *Empirical) Points() int      { return e.m }
func (e *Empirical) Dim() int         { return e.d }
func (e *Empirical) MixtureSize() int { return len(e.scales) }

// Data is the host data tensor (M, d).
func (e *Empirical) Data() *tensor.Tensor { return e.data }

// SqNorms returns ‖y_i‖² (a copy).
func (e *Empirical) SqNorms() []float64 { return append([]float64(nil), e.sqNorms...) }

// Mixture returns the log weights log π_q and the variance multipliers m_q (copies).
func (e *Empirical) Mixture() (logWeights, scales []float64) {
	return append([]float64(nil), e.logPi...), append([]float64(nil), e.scales...)
}

// At returns coordinate j of point i as float64.
func (e *Empirical) At(i, j int) float64 {
	if e.data.DType() == tensor.F32 {
		v, _ := e.data.F32()
		return float64(v[i*e.d+j])
	}
	v, _ := e.data.F64()
	return v[i*e.d+j]
}
