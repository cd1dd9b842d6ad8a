package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// References for rectified flow (docs/math.md §5.3): the closed-form flow map of Gaussian data,
// the closed-form output of the Euler sampler on it, and a fourth-order ODE solve for any target
// whose denoiser RectifiedFlow accepts. They are the yardsticks of examples/rf-lowdim.

// RFGaussianFlow is the rectified-flow ODE of Gaussian data x1 ~ N(μ, Σ), Σ = U diag(λ) Uᵀ, in
// closed form. With x_t = (1 − t) x0 + t x1 the law of x_t is N(tμ, S_t), S_t = (1 − t)² I + t² Σ,
// and the velocity v(x, t) = E[x1 − x0 | x_t = x] is affine in x:
//
//	v(x, t) = μ + A_t (x − tμ),   A_t = U diag(a_t(λ)) Uᵀ,   a_t(λ) = (tλ − (1 − t)) / ((1 − t)² + t²λ).
//
// Since a_t(λ) = d/dt log σ_t(λ) with σ_t(λ) = sqrt((1 − t)² + t²λ), and the matrices A_t commute
// (one eigenbasis U for every t), the ODE dx/dt = v(x, t) from x_0 = x0 is solved by
//
//	Φ_t(x0) = tμ + S_t^{1/2} x0 = tμ + U diag(σ_t(λ)) Uᵀ x0,      Φ_1(x0) = μ + Σ^{1/2} x0,
//
// the symmetric square root: the flow map of the data is μ + Σ^{1/2} x0 (μ + s x0 for N(μ, s² I)).
//
// The Euler sampler of RectifiedFlow is linear too. Per eigen-direction λ, y_i = x_i − t_i μ obeys
// y_{i+1} = g_i y_i with
//
//	g_i(λ) = 1 − r_i + r_i t_i λ / σ_{t_i}(λ)²,   r_i = (t_{i+1} − t_i)/(1 − t_i)
//
// (the step x_{i+1} = (1 − r_i) x_i + r_i D(x_i; t_i) with D(x; t) = μ + tλ (x − tμ)/σ_t²; at t_0 = 0,
// D = μ and g_0 = 1 − t_1), so the sampler returns x_K = μ + U diag(c(λ)) Uᵀ x0 with c = Π_i g_i:
// its output law is N(μ, U diag(c²) Uᵀ), exactly, and c(λ)/sqrt(λ) is the factor by which it
// shrinks (< 1) or inflates (> 1) the spread of the data along that direction. The last step
// (r = 1) contributes t λ/σ_t(λ)², t = t_{K−1}: for λ = ε² and 1 − t_{K−1} = δ the product is
// ≈ σ_{1−δ}(ε²) · ε²/σ_{1−δ}(ε²)² = ε²/sqrt(δ² + ε²) when the steps before track σ_t, a shrink
// factor ε/sqrt(δ² + ε²): about ε/δ when δ ≫ ε, and 1 − O(δ²/ε²) when δ ≪ ε.
type RFGaussianFlow struct {
	d      int
	mean   []float64 // μ
	lambda []float64 // eigenvalues of Σ
	u      []float64 // d×d row-major, column j the eigenvector of λ_j; nil for U = I
}

// NewRFGaussianFlow returns the closed-form flow of the Gaussian g, a mixture of one component
// (isotropic, diagonal or full).
func NewRFGaussianFlow(g *ops.GMM) (*RFGaussianFlow, error) {
	if g == nil {
		return nil, fmt.Errorf("rectified-flow gaussian flow: nil mixture")
	}
	p := g.Params()
	if p.K != 1 {
		return nil, fmt.Errorf("rectified-flow gaussian flow: the mixture has %d components: the flow map is closed-form (linear) for one Gaussian only", p.K)
	}
	f := &RFGaussianFlow{d: p.D, mean: p.Means, lambda: make([]float64, p.D)}
	switch p.Kind {
	case ops.Isotropic:
		for j := range f.lambda {
			f.lambda[j] = p.Lambda[0]
		}
	case ops.Diagonal:
		copy(f.lambda, p.Lambda)
	default:
		copy(f.lambda, p.Lambda)
		f.u = p.U
	}
	return f, nil
}

// Dim is the dimension d.
func (f *RFGaussianFlow) Dim() int { return f.d }

// Eigenvalues returns λ, the eigenvalues of Σ in the order of the eigenvectors (the coordinates'
// variances for an isotropic or diagonal Gaussian).
func (f *RFGaussianFlow) Eigenvalues() []float64 { return append([]float64(nil), f.lambda...) }

// Map writes Φ_t(x0) = tμ + U diag(σ_t(λ)) Uᵀ x0 of every row of x0 (row-major, d columns) into
// dst (dst may be x0), t ∈ [0, 1].
func (f *RFGaussianFlow) Map(dst, x0 []float64, t float64) error {
	if !(t >= 0 && t <= 1) {
		return fmt.Errorf("rectified-flow gaussian flow: time t = %g: must be in [0, 1]", t)
	}
	gain := make([]float64, f.d)
	for j, l := range f.lambda {
		gain[j] = math.Sqrt((1-t)*(1-t) + t*t*l)
	}
	return f.apply("map", dst, x0, t, gain)
}

// EulerGains returns c(λ_j) = Π_i g_i(λ_j), j = 0 … d − 1, of the Euler sampler on the grid times
// (0 = t_0 < … < t_K = 1, as RFTimes returns): the sampler maps x0 to μ + U diag(c) Uᵀ x0.
func (f *RFGaussianFlow) EulerGains(times []float64) ([]float64, error) {
	if _, err := RFTimes(RFConfig{Times: times}); err != nil {
		return nil, fmt.Errorf("rectified-flow gaussian flow: euler gains: %w", err)
	}
	c := make([]float64, f.d)
	for j, l := range f.lambda {
		c[j] = rfEulerGain(times, l)
	}
	return c, nil
}

// rfEulerGain is Π_i g_i(λ) over the grid (see RFGaussianFlow).
func rfEulerGain(times []float64, lambda float64) float64 {
	c := 1.0
	for i := 0; i+1 < len(times); i++ {
		t, t1 := times[i], times[i+1]
		r := (t1 - t) / (1 - t)
		s2 := (1-t)*(1-t) + t*t*lambda
		c *= 1 - r + r*t*lambda/s2
	}
	return c
}

// EulerMap writes the Euler sampler's output μ + U diag(c) Uᵀ x0 on the grid times into dst (see
// EulerGains): what RectifiedFlow returns from the start x0, up to rounding.
func (f *RFGaussianFlow) EulerMap(dst, x0, times []float64) error {
	c, err := f.EulerGains(times)
	if err != nil {
		return err
	}
	return f.apply("euler map", dst, x0, 1, c)
}

// apply writes tμ + U diag(gain) Uᵀ x0 into dst.
func (f *RFGaussianFlow) apply(op string, dst, x0 []float64, t float64, gain []float64) error {
	d := f.d
	if len(x0)%d != 0 || len(dst) != len(x0) {
		return fmt.Errorf("rectified-flow gaussian flow: %s: %d start values and %d outputs for d = %d (want equal multiples of d)", op, len(x0), len(dst), d)
	}
	z := make([]float64, d)
	for i := 0; i < len(x0); i += d {
		row, out := x0[i:i+d], dst[i:i+d]
		if f.u == nil {
			for j := range out {
				out[j] = t*f.mean[j] + gain[j]*row[j]
			}
			continue
		}
		for j := range z { // z = diag(gain) Uᵀ x0
			s := 0.0
			for r := 0; r < d; r++ {
				s += f.u[r*d+j] * row[r]
			}
			z[j] = gain[j] * s
		}
		for r := range out {
			s := t * f.mean[r]
			for j := 0; j < d; j++ {
				s += f.u[r*d+j] * z[j]
			}
			out[r] = s
		}
	}
	return nil
}

// RFReferenceRK4 integrates the rectified-flow ODE dx/dt = v(x, t) of the target tg (a Gaussian
// mixture or a data set, as RectifiedFlow) from the rows of x0 (row-major, d = tg.Dim() columns)
// with the classical fourth-order Runge–Kutta method on the grid times (0 = t_0 < … < t_K = 1,
// K ≥ 2), and writes x_1 into dst. The steps [t_i, t_{i+1}] for i < K − 1 are RK4 steps (stages at
// t_i, t_i + h/2 twice and t_{i+1}; v(x, 0) = E[x1] − x); the last interval is closed by the limit
// the Euler sampler also takes, x_1 = D(x; t_{K−1}), v being undefined at t = 1. That last step is
// exact to O(δ²/λ) relative along a direction of data variance λ, δ = 1 − t_{K−1} (for a Gaussian
// it returns t λ/σ_t(λ) instead of sqrt(λ) times the direction's coordinate of x0): with the
// low-dimension grid of a small δ and many steps this is a reference for the samplers, whose
// own accuracy the caller checks by halving K. It runs on the CPU backend (ops.CPU()) in float64
// and costs 4(K − 1) denoiser evaluations per row (the stage at t = 0 uses the data mean).
func RFReferenceRK4(dst []float64, tg target.Target, x0 []float64, times []float64) error {
	const op = "rectified-flow rk4 reference"
	if tg == nil {
		return fmt.Errorf("%s: nil target", op)
	}
	if _, err := RFTimes(RFConfig{Times: times}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	K := len(times) - 1
	if K < 2 {
		return fmt.Errorf("%s: %d steps: need at least 2 (RK4 steps, then the last-step limit)", op, K)
	}
	d := tg.Dim()
	if d < 1 || len(x0)%d != 0 || len(x0) == 0 || len(dst) != len(x0) {
		return fmt.Errorf("%s: %d start values and %d outputs for d = %d (want equal non-zero multiples of d)", op, len(x0), len(dst), d)
	}
	n := len(x0) / d
	mean, err := dataMean(tg)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	b := ops.CPU()
	xt, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	if err != nil {
		return fmt.Errorf("%s: allocate (%d, %d): %w", op, n, d, err)
	}
	defer xt.Close()
	den, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	if err != nil {
		return fmt.Errorf("%s: allocate (%d, %d): %w", op, n, d, err)
	}
	defer den.Close()
	xs, _ := xt.F64()
	ds, _ := den.F64()
	// denoise sets ds = D(x; t) (E[x1] at t = 0).
	denoise := func(x []float64, t float64) error {
		if t == 0 {
			for i := 0; i < n; i++ {
				copy(ds[i*d:(i+1)*d], mean)
			}
			return nil
		}
		copy(xs, x)
		return tg.Evaluate(b, ops.ScoreOutputs{Denoiser: den}, xt, rfNoise(t))
	}
	// velocity sets k = v(x, t) = (D − x)/(1 − t).
	velocity := func(k, x []float64, t float64) error {
		if err := denoise(x, t); err != nil {
			return fmt.Errorf("%s: denoiser at t = %g: %w", op, t, err)
		}
		c := 1 / (1 - t)
		for i := range k {
			k[i] = c * (ds[i] - x[i])
		}
		return nil
	}
	x := append([]float64(nil), x0...)
	y := make([]float64, len(x))
	k1, k2, k3, k4 := make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	for i := 0; i+1 < K; i++ {
		t, h := times[i], times[i+1]-times[i]
		if err := velocity(k1, x, t); err != nil {
			return err
		}
		for j := range y {
			y[j] = x[j] + h/2*k1[j]
		}
		if err := velocity(k2, y, t+h/2); err != nil {
			return err
		}
		for j := range y {
			y[j] = x[j] + h/2*k2[j]
		}
		if err := velocity(k3, y, t+h/2); err != nil {
			return err
		}
		for j := range y {
			y[j] = x[j] + h*k3[j]
		}
		if err := velocity(k4, y, times[i+1]); err != nil {
			return err
		}
		for j := range x {
			x[j] += h / 6 * (k1[j] + 2*k2[j] + 2*k3[j] + k4[j])
		}
	}
	if err := denoise(x, times[K-1]); err != nil {
		return fmt.Errorf("%s: denoiser at t = %g: %w", op, times[K-1], err)
	}
	copy(dst, ds)
	return nil
}
