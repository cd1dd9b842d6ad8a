package solvers

import "math"

// Dual-averaging constants of Hoffman & Gelman (2014, "The No-U-Turn Sampler", §3.2.1), which
// take them from Nesterov's primal-dual averaging (2009).
const (
	daGamma = 0.05 // shrinkage of log h towards μ
	daT0    = 10   // stabilises the first iterations
	daKappa = 0.75 // weight decay of the averaged iterate
)

// dualAveraging adapts a step size h towards a target acceptance δ. With α_m the acceptance
// observed at iteration m = 1, 2, …:
//
//	H̄_m      = (1 − 1/(m + t0)) H̄_{m−1} + (δ − α_m)/(m + t0)
//	log h_m  = μ − (√m/γ) H̄_m
//	log h̄_m  = m^{−κ} log h_m + (1 − m^{−κ}) log h̄_{m−1}
//
// with μ = log(10 h0), H̄_0 = 0, log h̄_0 = 0, γ = 0.05, t0 = 10, κ = 0.75. h_m is used while
// adapting; h̄_m (an average that forgets the early iterates) is the step size frozen after the
// warm-up. Too many acceptances (α > δ) make H̄ negative and h grow, and vice versa.
type dualAveraging struct {
	mu, delta     float64
	hBar, logHBar float64
	logH          float64
	m             int
}

func newDualAveraging(h0, delta float64) *dualAveraging {
	return &dualAveraging{mu: math.Log(10 * h0), delta: delta, logH: math.Log(h0)}
}

// update records the acceptance α of the step just taken and returns the step size to use next.
func (d *dualAveraging) update(alpha float64) float64 {
	d.m++
	m := float64(d.m)
	w := 1 / (m + daT0)
	d.hBar = (1-w)*d.hBar + w*(d.delta-alpha)
	d.logH = d.mu - math.Sqrt(m)/daGamma*d.hBar
	eta := math.Pow(m, -daKappa)
	d.logHBar = eta*d.logH + (1-eta)*d.logHBar
	return math.Exp(d.logH)
}

// current is the step size to use now: h_m while adapting.
func (d *dualAveraging) current() float64 { return math.Exp(d.logH) }

// final is the frozen step size h̄_m (h0 if no update was made).
func (d *dualAveraging) final() float64 {
	if d.m == 0 {
		return math.Exp(d.logH)
	}
	return math.Exp(d.logHBar)
}
