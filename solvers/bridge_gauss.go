package solvers

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// GaussianBridge is the exact Schrödinger bridge between Gaussian marginals N(μ_k, Σ_k) at times
// t_0 < … < t_M with the reference dX = √ε dW: the closed form Bridge is checked against.
//
// On [t_k, t_{k+1}] (length T) the coupling of X_{t_k} and X_{t_{k+1}} is the entropic optimal
// transport plan for the cost ‖x − y‖²/2 at regularisation εT, a Gaussian with cross-covariance
// (Janati et al. 2020; Mallasto et al. 2021)
//
//	C = ½ A^{½} (4 A^{½} B A^{½} + (εT)² I)^{½} A^{−½} − (εT/2) I,   A = Σ_k, B = Σ_{k+1},
//
// the one whose joint density has the cross term xᵀy/(εT) exactly (the off-diagonal block of the
// joint precision is −I/(εT)). Between the observed times the bridge is the mixture of Brownian
// bridges over that coupling: at τ = t_k + λT,
//
//	mean (1 − λ) μ_k + λ μ_{k+1},
//	cov  (1 − λ)² A + λ² B + λ(1 − λ)(C + Cᵀ) + εT λ(1 − λ) I.
//
// The multi-marginal process is Markov (the reference is), so the cross-covariance of X_{t_i}
// and X_{t_j}, i < j, is C_i Σ_{i+1}⁻¹ C_{i+1} ⋯ Σ_{j−1}⁻¹ C_{j−1}.
type GaussianBridge struct {
	times []float64
	eps   float64
	d     int
	means [][]float64
	covs  [][]float64
	cross [][]float64 // C_k, d × d row-major
}

// NewGaussianBridge builds the closed form for the marginals (means[k], covs[k]) (covariances d × d
// row-major, symmetric positive definite).
func NewGaussianBridge(times []float64, eps float64, means, covs [][]float64) (*GaussianBridge, error) {
	if err := CheckBridgeTimes(times, eps); err != nil {
		return nil, err
	}
	if len(means) != len(times) || len(covs) != len(times) {
		return nil, fmt.Errorf("gaussian bridge: %d times, %d means, %d covariances: need one of each per time", len(times), len(means), len(covs))
	}
	d := len(means[0])
	if d == 0 {
		return nil, fmt.Errorf("gaussian bridge: empty mean")
	}
	g := &GaussianBridge{times: slices.Clone(times), eps: eps, d: d}
	for k := range times {
		if len(means[k]) != d || len(covs[k]) != d*d {
			return nil, fmt.Errorf("gaussian bridge: marginal %d has a mean of %d values and a covariance of %d (want %d and %d)", k, len(means[k]), len(covs[k]), d, d*d)
		}
		g.means = append(g.means, slices.Clone(means[k]))
		g.covs = append(g.covs, slices.Clone(covs[k]))
	}
	for k := 0; k+1 < len(times); k++ {
		c, err := GaussianSBCoupling(covs[k], covs[k+1], d, eps*(times[k+1]-times[k]))
		if err != nil {
			return nil, fmt.Errorf("gaussian bridge: interval %d: %w", k, err)
		}
		g.cross = append(g.cross, c)
	}
	return g, nil
}

// Coupling is C_k = Cov(X_{t_k}, X_{t_{k+1}}) (a copy, d × d row-major).
func (g *GaussianBridge) Coupling(k int) []float64 { return slices.Clone(g.cross[k]) }

// Cross is Cov(X_{t_i}, X_{t_j}) for observed times i < j (Markov chaining of the couplings).
func (g *GaussianBridge) Cross(i, j int) ([]float64, error) {
	if i < 0 || j >= len(g.times) || i >= j {
		return nil, fmt.Errorf("gaussian bridge: cross-covariance (%d, %d): need 0 ≤ i < j ≤ %d", i, j, len(g.times)-1)
	}
	d := g.d
	c := mat.NewDense(d, d, slices.Clone(g.cross[i]))
	for k := i + 1; k < j; k++ {
		var s mat.Cholesky
		if !s.Factorize(mat.NewSymDense(d, slices.Clone(g.covs[k]))) {
			return nil, fmt.Errorf("gaussian bridge: covariance %d is not positive definite", k)
		}
		var y mat.Dense // Σ_k⁻¹ C_k
		if err := s.SolveTo(&y, mat.NewDense(d, d, slices.Clone(g.cross[k]))); err != nil {
			return nil, fmt.Errorf("gaussian bridge: solve with covariance %d: %w", k, err)
		}
		var next mat.Dense
		next.Mul(c, &y)
		c = &next
	}
	return denseData(c), nil
}

// Marginal is the bridge's mean and covariance at a time τ in [t_0, t_M].
func (g *GaussianBridge) Marginal(tau float64) (mean, cov []float64, err error) {
	if !(tau >= g.times[0] && tau <= g.times[len(g.times)-1]) {
		return nil, nil, fmt.Errorf("gaussian bridge: τ = %g: must be in [%g, %g]", tau, g.times[0], g.times[len(g.times)-1])
	}
	k := 0
	for k+2 < len(g.times) && tau > g.times[k+1] {
		k++
	}
	T := g.times[k+1] - g.times[k]
	l := (tau - g.times[k]) / T
	d := g.d
	mean = make([]float64, d)
	cov = make([]float64, d*d)
	a, b, c := g.covs[k], g.covs[k+1], g.cross[k]
	for i := 0; i < d; i++ {
		mean[i] = (1-l)*g.means[k][i] + l*g.means[k+1][i]
		for j := 0; j < d; j++ {
			v := (1-l)*(1-l)*a[i*d+j] + l*l*b[i*d+j] + l*(1-l)*(c[i*d+j]+c[j*d+i])
			if i == j {
				v += g.eps * T * l * (1 - l)
			}
			cov[i*d+j] = v
		}
	}
	return mean, cov, nil
}

// GaussianSBCoupling returns the cross-covariance C (d × d, row-major) of the Schrödinger bridge
// coupling between N(·, A) and N(·, B) for a reference Brownian motion of variance εT over the
// interval (see GaussianBridge). A must be positive definite, B positive semi-definite, εT > 0.
func GaussianSBCoupling(a, b []float64, d int, epsT float64) ([]float64, error) {
	if len(a) != d*d || len(b) != d*d {
		return nil, fmt.Errorf("covariances of %d and %d values: want %d × %d", len(a), len(b), d, d)
	}
	if !finitePositive(epsT) {
		return nil, fmt.Errorf("εT = %g: must be a finite number > 0", epsT)
	}
	aHalf, aInvHalf, err := symSqrt(a, d)
	if err != nil {
		return nil, fmt.Errorf("the first covariance: %w", err)
	}
	var m mat.Dense // 4 A^½ B A^½ + (εT)² I
	m.Product(aHalf, mat.NewDense(d, d, slices.Clone(b)), aHalf)
	m.Scale(4, &m)
	for i := 0; i < d; i++ {
		m.Set(i, i, m.At(i, i)+epsT*epsT)
	}
	mSym := make([]float64, d*d) // symmetrise the rounding
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			mSym[i*d+j] = (m.At(i, j) + m.At(j, i)) / 2
		}
	}
	dHalf, _, err := symSqrt(mSym, d)
	if err != nil {
		return nil, fmt.Errorf("4 A^½ B A^½ + (εT)² I: %w", err)
	}
	var c mat.Dense
	c.Product(aHalf, dHalf, aInvHalf)
	c.Scale(0.5, &c)
	for i := 0; i < d; i++ {
		c.Set(i, i, c.At(i, i)-epsT/2)
	}
	return denseData(&c), nil
}

// symSqrt returns S^½ and S^{−½} of a symmetric positive definite matrix (eigendecomposition).
func symSqrt(s []float64, d int) (half, invHalf *mat.Dense, err error) {
	var e mat.EigenSym
	if !e.Factorize(mat.NewSymDense(d, slices.Clone(s)), true) {
		return nil, nil, fmt.Errorf("eigendecomposition failed")
	}
	vals := e.Values(nil)
	var v mat.Dense
	e.VectorsTo(&v)
	top := slices.Max(vals)
	h, ih := make([]float64, d), make([]float64, d)
	for i, l := range vals {
		if !(l > 1e-12*top) || math.IsInf(l, 0) {
			return nil, nil, fmt.Errorf("not positive definite (eigenvalue %g, largest %g)", l, top)
		}
		h[i], ih[i] = math.Sqrt(l), 1/math.Sqrt(l)
	}
	build := func(f []float64) *mat.Dense {
		var out mat.Dense
		out.Mul(&v, mat.NewDiagDense(d, f))
		out.Mul(&out, v.T())
		return &out
	}
	return build(h), build(ih), nil
}

func denseData(m *mat.Dense) []float64 {
	r, c := m.Dims()
	out := make([]float64, 0, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out = append(out, m.At(i, j))
		}
	}
	return out
}
