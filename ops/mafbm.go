package ops

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/mathext"

	"github.com/scorekit/scorekit/tensor"
)

// MAFBM is the Markov approximation of type-II fBM by K Ornstein–Uhlenbeck processes driven by
// one Brownian motion (docs/math.md §4.2): speeds γ_k, weights ω_k and the squared
// relative L² error.
//
// Type-II (Riemann–Liouville) fBM of Hurst index H is
//
//	B^H_t = ∫_0^t k(t − u) dW_u,   k(u) = u^{H−½} / Γ(H+½),   Var B^H_t = t^{2H} / (2H Γ(H+½)²),
//
// and its approximation is B̂_t = Σ_k ω_k Y^k_t with dY^k = −γ_k Y^k dt + dW (one W for every k),
// Y^k_0 = 0, that is the kernel k replaced by Σ_k ω_k e^{−γ_k u}.
//
// Speeds: the geometric grid γ_k = r^{k − (K+1)/2}, k = 1..K, r = γ_max^{2/(K−1)}, from 1/γ_max to
// γ_max; for K = 1 the grid is its geometric midpoint, γ_1 = 1 (a single OU process of unit
// speed).
//
// Weights: ω minimises the time-integrated error variance ∫_0^T E(B^H_t − B̂_t)² dt, a quadratic
// form c − 2bᵀω + ωᵀAω whose optimum solves A ω = b, with g = γ_i + γ_j, a = H + ½ and P the
// regularised lower incomplete gamma function:
//
//	A_ij = ∫_0^T ∫_0^t e^{−g u} du dt = (T + (e^{−gT} − 1)/g) / g = T² φ₂(−gT),  φ₂(z) = (e^z − 1 − z)/z²
//	b_k  = ∫_0^T ∫_0^t k(u) e^{−γ_k u} du dt = T γ_k^{−a} P(a, γ_k T) − a γ_k^{−(a+1)} P(a+1, γ_k T)
//	c    = ∫_0^T Var B^H_t dt = T^{2H+1} / (2H (2H+1) Γ(H+½)²)
//
// (A is evaluated through φ₂ so that small g T loses no digits). A is the Gram matrix of the
// functions t ↦ e^{−γ_k t} in a weighted L², symmetric positive definite but ill-conditioned when
// many speeds crowd together; it is solved by Cholesky when that is well conditioned
// (condition < 1e12), otherwise by a truncated SVD (singular values below 1e-14·σ_max dropped).
// Condition reports the condition number of A either way. RelErrorSq is 1 − bᵀω / c, the optimal
// integrated squared error relative to c (its square root is the relative L² error).
//
// A MAFBM is immutable after NewMAFBM and safe for concurrent use.
type MAFBM struct {
	hurst, horizon, gammaMax float64
	k                        int
	gammas, weights          []float64
	relErr, cond             float64
}

// MaxMAFBMStates bounds K: beyond a few dozen speeds on one grid the weights are determined only
// up to the conditioning of A, and the O(K²) per-step work buys nothing.
const MaxMAFBMStates = 64

// NewMAFBM validates H ∈ (0, 1), K ≥ 1, γ_max > 1 and T > 0 and computes the speeds and weights.
// K is at most MaxMAFBMStates; every value must be finite.
func NewMAFBM(hurst float64, k int, gammaMax, horizon float64) (*MAFBM, error) {
	const op = "ma-fbm"
	if !(hurst > 0 && hurst < 1) {
		return nil, fmt.Errorf("%s: hurst %g: must be in (0, 1)", op, hurst)
	}
	if k < 1 || k > MaxMAFBMStates {
		return nil, fmt.Errorf("%s: K = %d OU processes: must be in [1, %d]", op, k, MaxMAFBMStates)
	}
	if !(gammaMax > 1) || math.IsInf(gammaMax, 0) {
		return nil, fmt.Errorf("%s: γ_max = %g: must be a finite number > 1", op, gammaMax)
	}
	if !(horizon > 0) || math.IsInf(horizon, 0) {
		return nil, fmt.Errorf("%s: horizon T = %g: must be a finite number > 0", op, horizon)
	}
	m := &MAFBM{hurst: hurst, horizon: horizon, gammaMax: gammaMax, k: k}
	m.gammas = make([]float64, k)
	if k == 1 {
		m.gammas[0] = 1
	} else {
		for i := range m.gammas {
			// γ_{i+1} = r^{i+1−(K+1)/2} = γ_max^{(2i+1−K)/(K−1)}: exactly 1/γ_max … γ_max at the ends.
			m.gammas[i] = math.Pow(gammaMax, float64(2*i+1-k)/float64(k-1))
		}
	}
	a := hurst + 0.5
	T := horizon
	A := mat.NewSymDense(k, nil)
	b := mat.NewVecDense(k, nil)
	for i, gi := range m.gammas {
		for j := i; j < k; j++ {
			g := gi + m.gammas[j]
			A.SetSym(i, j, T*T*phi2(-g*T))
		}
		b.SetVec(i, T*math.Pow(gi, -a)*mathext.GammaIncReg(a, gi*T)-
			a*math.Pow(gi, -(a+1))*mathext.GammaIncReg(a+1, gi*T))
	}
	w, cond, err := solveSPD(A, b)
	if err != nil {
		return nil, fmt.Errorf("%s: weights (H = %g, K = %d, γ_max = %g, T = %g): %w", op, hurst, k, gammaMax, horizon, err)
	}
	m.weights, m.cond = w, cond
	ga := math.Gamma(a)
	c := math.Pow(T, 2*hurst+1) / (2 * hurst * (2*hurst + 1) * ga * ga)
	m.relErr = 1 - mat.Dot(b, mat.NewVecDense(k, w))/c
	return m, nil
}

// solveSPD solves A x = b for a symmetric positive (semi)definite A: by Cholesky when A is well
// conditioned, else by an SVD that drops singular values below 1e-14·σ_max. It returns the
// solution and A's condition number.
func solveSPD(A *mat.SymDense, b *mat.VecDense) ([]float64, float64, error) {
	k := b.Len()
	var x mat.VecDense
	var ch mat.Cholesky
	if ch.Factorize(A) && ch.Cond() < 1e12 {
		if err := ch.SolveVecTo(&x, b); err == nil {
			return finiteOrNil(x.RawVector().Data, ch.Cond())
		}
	}
	var svd mat.SVD
	if !svd.Factorize(A, mat.SVDThin) {
		return nil, math.Inf(1), fmt.Errorf("singular value decomposition of the %d×%d normal matrix failed", k, k)
	}
	rank := svd.Rank(1e-14)
	if rank == 0 {
		return nil, math.Inf(1), fmt.Errorf("the %d×%d normal matrix is numerically zero", k, k)
	}
	svd.SolveVecTo(&x, b, rank)
	return finiteOrNil(x.RawVector().Data, svd.Cond())
}

func finiteOrNil(x []float64, cond float64) ([]float64, float64, error) {
	for _, v := range x {
		if !finite(v) {
			return nil, cond, fmt.Errorf("non-finite weights (condition number %.3g)", cond)
		}
	}
	return append([]float64(nil), x...), cond, nil
}

// phi2 is φ₂(z) = (e^z − 1 − z)/z², by its Taylor series Σ_n z^n/(n+2)! for |z| < ½ (where the
// closed form cancels) and by expm1 elsewhere.
func phi2(z float64) float64 {
	if math.Abs(z) >= 0.5 {
		return (math.Expm1(z) - z) / (z * z)
	}
	sum, term := 0.0, 0.5 // term_n = z^n/(n+2)!
	for n := 0; n < 40 && term != 0; n++ {
		sum += term
		term *= z / float64(n+3)
	}
	return sum
}

// Hurst is H.
func (m *MAFBM) Hurst() float64 { return m.hurst }

// K is the number of OU processes.
func (m *MAFBM) K() int { return m.k }

// Horizon is T, the interval [0, T] the weights are fitted on.
func (m *MAFBM) Horizon() float64 { return m.horizon }

// GammaMax is the largest speed γ_max.
func (m *MAFBM) GammaMax() float64 { return m.gammaMax }

// Gammas returns a copy of the speeds γ_1 < … < γ_K.
func (m *MAFBM) Gammas() []float64 { return append([]float64(nil), m.gammas...) }

// Weights returns a copy of the weights ω_1 … ω_K.
func (m *MAFBM) Weights() []float64 { return append([]float64(nil), m.weights...) }

// RelErrorSq is 1 − bᵀω / c: the time-integrated error variance ∫_0^T E(B^H_t − B̂_t)² dt of the
// optimal weights relative to ∫_0^T Var B^H_t dt.
func (m *MAFBM) RelErrorSq() float64 { return m.relErr }

// Condition is the condition number of the normal matrix A the weights were solved from.
func (m *MAFBM) Condition() float64 { return m.cond }

// ExactVariance is the variance of the type-II fBM being approximated, t^{2H} / (2H Γ(H+½)²).
func (m *MAFBM) ExactVariance(t float64) float64 {
	g := math.Gamma(m.hurst + 0.5)
	return math.Pow(t, 2*m.hurst) / (2 * m.hurst * g * g)
}

// Covariance is Cov(B̂_s, B̂_t) of the approximation started at Y = 0: for s ≤ t,
//
//	Cov(Y^i_s, Y^j_t) = ∫_0^s e^{−γ_i(s−u)} e^{−γ_j(t−u)} du = e^{−γ_j(t−s)} (1 − e^{−(γ_i+γ_j)s}) / (γ_i+γ_j)
//
// and Cov(B̂_s, B̂_t) = Σ_ij ω_i ω_j Cov(Y^i_s, Y^j_t). Negative times count as 0.
func (m *MAFBM) Covariance(s, t float64) float64 {
	if s > t {
		s, t = t, s
	}
	if !(s > 0) {
		return 0
	}
	sum := 0.0
	for i, gi := range m.gammas {
		for j, gj := range m.gammas {
			g := gi + gj
			sum += m.weights[i] * m.weights[j] * math.Exp(-gj*(t-s)) * -math.Expm1(-g*s) / g
		}
	}
	return sum
}

// Variance is Var B̂_t = Covariance(t, t).
func (m *MAFBM) Variance(t float64) float64 { return m.Covariance(t, t) }

// Transition returns the exact transition of the OU state over a step h, which any sampler of the
// augmented state (Y^1..Y^K) uses: given Y at time t,
//
//	Y_{t+h} = decay ∘ Y_t + L ξ,   ξ ~ N(0, I_K),
//	decay_k = e^{−γ_k h},   L Lᵀ = C,   C_ij = ∫_0^h e^{−(γ_i+γ_j)u} du = (1 − e^{−(γ_i+γ_j)h}) / (γ_i+γ_j)
//
// (C computed with expm1). chol is L, lower triangular with a non-negative diagonal, row-major
// K×K: the Cholesky factor of C. Over a short step the K processes move almost together and C is
// nearly of rank one (its eigenvalues fall like h, h³, h⁵, …), so a plain Cholesky meets pivots
// that rounding has made negative. L is therefore computed as the triangular factor of C's
// positive semidefinite part: C = U Λ Uᵀ (symmetric eigendecomposition), eigenvalues within
// rounding of zero (≥ −64·K·ε·λ_max) set to 0, and L = Rᵀ from the QR factorisation
// Λ^{1/2} Uᵀ = Q R, so that L Lᵀ = U Λ Uᵀ = C to within rounding of its largest eigenvalue.
// Where C is well conditioned this is its Cholesky factor. An eigenvalue below −64·K·ε·λ_max
// (C not positive semidefinite) or a non-finite entry is an error; h must be a finite number > 0.
func (m *MAFBM) Transition(h float64) (decay, chol []float64, err error) {
	if !(h > 0) || math.IsInf(h, 0) {
		return nil, nil, fmt.Errorf("ma-fbm transition: step h = %g: must be a finite number > 0", h)
	}
	k := m.k
	decay = make([]float64, k)
	c := mat.NewSymDense(k, nil)
	for i, gi := range m.gammas {
		decay[i] = math.Exp(-gi * h)
		for j := i; j < k; j++ {
			g := gi + m.gammas[j]
			c.SetSym(i, j, -math.Expm1(-g*h)/g)
		}
	}
	chol, err = psdFactor(c)
	if err != nil {
		return nil, nil, fmt.Errorf("ma-fbm transition (K = %d, h = %g): %w", k, h, err)
	}
	return decay, chol, nil
}

// psdFactor returns the lower-triangular L (row-major, non-negative diagonal) with L Lᵀ = the
// positive semidefinite part of c, by eigendecomposition and QR (see Transition).
func psdFactor(c *mat.SymDense) ([]float64, error) {
	n := c.SymmetricDim()
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			if !finite(c.At(i, j)) {
				return nil, fmt.Errorf("covariance entry (%d, %d) is %g", i, j, c.At(i, j))
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(c, true) {
		return nil, fmt.Errorf("eigendecomposition of the %d×%d covariance failed", n, n)
	}
	lambda := eig.Values(nil) // ascending
	var u mat.Dense
	eig.VectorsTo(&u)
	top := lambda[n-1]
	tol := 64 * float64(n) * 0x1p-52 * top
	if lambda[0] < -tol {
		return nil, fmt.Errorf("covariance is not positive semidefinite (eigenvalue %.3g, largest %.3g)", lambda[0], top)
	}
	// M = Λ^{1/2} Uᵀ: row q is sqrt(λ_q) times eigenvector q.
	mm := mat.NewDense(n, n, nil)
	for q := 0; q < n; q++ {
		s := math.Sqrt(math.Max(lambda[q], 0))
		for j := 0; j < n; j++ {
			mm.Set(q, j, s*u.At(j, q))
		}
	}
	var qr mat.QR
	qr.Factorize(mm)
	var r mat.Dense
	qr.RTo(&r)
	l := make([]float64, n*n)
	for i := 0; i < n; i++ {
		sign := 1.0
		if r.At(i, i) < 0 {
			sign = -1 // flip row i of R (column i of L): L Lᵀ is unchanged
		}
		for j := i; j < n; j++ {
			l[j*n+i] = sign * r.At(i, j)
		}
	}
	return l, nil
}

// CheckMAFBM validates MAFBM's arguments: dst (paths, S) and y (paths, K) of one dtype on dev,
// a step h > 0, stride ≥ 1 and sites d.Site + s·stride, s < S, within uint64.
func CheckMAFBM(dev tensor.Device, dst, y *tensor.Tensor, m *MAFBM, h float64, d Draw, stride uint64) error {
	const op = "ma-fbm"
	if m == nil {
		return fmt.Errorf("%s: nil approximation (build one with NewMAFBM)", op)
	}
	if err := checkFill(op, dev, dst, d); err != nil {
		return err
	}
	if err := checkSame(op, "state y", y, dev, dst.DType(), dst.Dim(0), m.k); err != nil {
		return err
	}
	if !(h > 0) || math.IsInf(h, 0) {
		return fmt.Errorf("%s: step h = %g: must be a finite number > 0", op, h)
	}
	if stride == 0 {
		return fmt.Errorf("%s: site stride 0: must be ≥ 1 (each step draws at its own site)", op)
	}
	if s := uint64(dst.Dim(1)); s > 1 && s-1 > (math.MaxUint64-d.Site)/stride {
		return fmt.Errorf("%s: %d steps from site %d with stride %d overflow the 64-bit site", op, s, d.Site, stride)
	}
	return nil
}

// MAFBM advances every path (row i is chain d.FirstChain+i) by S = dst.Dim(1) exact steps of size
// h. With Y the row of y (read in float64), for s = 0..S−1:
//
//	ξ = the K normals of the draw at site d.Site + s·stride (columns 0..K−1 of the Normal fill of
//	    that site, in dst's precision)
//	Y_k ← decay_k·Y_k + (Σ_{j ≤ k} L_kj ξ_j)     (j ascending; decay, L from m.Transition(h))
//	dst[i, s] = Σ_k ω_k Y_k                       (k ascending)
//
// then y's row receives Y. All arithmetic is float64; dst and y are rounded once when stored (so a
// float32 y carries a rounding from one call to the next: prefer long calls, or float64). A zero y
// starts fresh paths at B̂_0 = 0.
func (b cpuBackend) MAFBM(dst, y *tensor.Tensor, m *MAFBM, h float64, d Draw, stride uint64) error {
	if err := CheckMAFBM(tensor.CPU(), dst, y, m, h, d, stride); err != nil {
		return err
	}
	decay, chol, err := m.Transition(h)
	if err != nil {
		return err
	}
	n, steps, k := dst.Dim(0), dst.Dim(1), m.k
	f32 := dst.DType() == tensor.F32
	rd, ry := rowsOf(dst), rowsOf(y)
	b.parallelRows(n, steps*(k*k+10*k)+1, func(lo, hi int) {
		state, xi, out := make([]float64, k), make([]float64, k), make([]float64, steps)
		for i := lo; i < hi; i++ {
			chain := uint32(d.FirstChain + uint64(i))
			ry.get(i, state)
			for s := 0; s < steps; s++ {
				normalRow(xi, d.Seed, d.Site+uint64(s)*stride, chain, f32)
				out[s] = mafbmStep(state, xi, decay, chol, m.weights)
			}
			if steps > 0 {
				rd.set(i, out)
			}
			ry.set(i, state)
		}
	})
	return nil
}

// mafbmStep applies one transition to state with the normals xi and returns Σ_k ω_k Y_k, in the
// order the kernels follow.
func mafbmStep(state, xi, decay, chol, w []float64) float64 {
	k := len(state)
	for r := 0; r < k; r++ {
		acc := 0.0
		for j := 0; j <= r; j++ {
			acc += chol[r*k+j] * xi[j]
		}
		state[r] = decay[r]*state[r] + acc
	}
	out := 0.0
	for r := 0; r < k; r++ {
		out += w[r] * state[r]
	}
	return out
}
