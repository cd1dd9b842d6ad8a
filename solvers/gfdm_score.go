package solvers

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// gfdmLaw is what the exact augmented score needs of the forward law at one time t > 0 (per
// coordinate, n = K+1; docs/math.md §5.5):
//
//	φ = Mean(t), Σ = Covariance(t), Σ⁻¹, ψ = Σ⁻¹φ, q = φᵀΣ⁻¹φ, σ̃ = 1/√q, log det Σ.
//
// Given x_0, the statistic ũ = ψᵀz/q of an augmented coordinate z ~ N(φ x_0, Σ) is N(x_0, 1/q):
// the data noised by the variance-exploding noise σ̃ (see GFDMProcess.AugmentedScore).
type gfdmLaw struct {
	t           float64
	n           int
	phi, psi    []float64
	sigma, prec []float64 // Σ and Σ⁻¹, n×n row-major
	q, sigmaVE  float64
	logDet      float64
	cond        float64 // of the equilibrated Σ
}

// GFDMMaxCondition bounds the condition number of the equilibrated covariance
// D^{-1/2} Σ(t) D^{-1/2} (D = diag Σ) at which the augmented score is evaluated. Σ(t) becomes
// nearly singular as t → 0 (the OU states and x are driven by one Brownian motion and start
// together: with K speeds they are nearly linearly dependent up to order t^K), and the table holds
// Σ to about 1e-13 of √(Σ_aa Σ_bb) (see GFDMProcess), so Σ⁻¹ — and the score — carry a relative
// error up to about 1e-13 times this condition number: at most about 1e-3 here.
const GFDMMaxCondition = 1e10

// law evaluates the forward law at t ∈ (0, 1]. Σ is equilibrated by its diagonal before its
// Cholesky factorisation (the x and y entries differ by up to 10⁵ in scale, FVE at t = 1); an
// error names t when the equilibrated Σ is not positive definite in float64 or its condition
// number exceeds GFDMMaxCondition.
func (p *GFDMProcess) law(t float64) (*gfdmLaw, error) {
	if !(t > 0 && t <= 1) {
		return nil, fmt.Errorf("time t = %g: the augmented score needs t ∈ (0, 1] (Σ(0) = 0 is singular)", t)
	}
	n := p.n
	y := make([]float64, p.stride)
	p.evaluate(y, t)
	l := &gfdmLaw{t: t, n: n, phi: y[:n:n], sigma: y[n:], prec: make([]float64, n*n), psi: make([]float64, n)}
	scale := make([]float64, n)
	for a := 0; a < n; a++ {
		if !(l.sigma[a*n+a] > 0) {
			return nil, fmt.Errorf("time t = %g: Σ(t) has the diagonal entry %g: not positive definite", t, l.sigma[a*n+a])
		}
		scale[a] = math.Sqrt(l.sigma[a*n+a])
	}
	s := mat.NewSymDense(n, nil)
	for a := 0; a < n; a++ {
		for b := a; b < n; b++ {
			s.SetSym(a, b, 0.5*(l.sigma[a*n+b]+l.sigma[b*n+a])/(scale[a]*scale[b]))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(s, false) {
		return nil, fmt.Errorf("time t = %g: eigenvalues of the %d×%d covariance did not converge", t, n, n)
	}
	ev := eig.Values(nil)
	l.cond = ev[n-1] / ev[0]
	if !(ev[0] > 0) || !(l.cond <= GFDMMaxCondition) {
		return nil, fmt.Errorf("time t = %g: the %d×%d covariance Σ(t) is too close to singular (condition number %.3g of its equilibrated form, at most %.0e): t is too close to 0 for K = %d",
			t, n, n, l.cond, GFDMMaxCondition, p.k)
	}
	var chol mat.Cholesky
	if !chol.Factorize(s) {
		return nil, fmt.Errorf("time t = %g: the %d×%d covariance Σ(t) is not positive definite in float64 (t too close to 0)", t, n, n)
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil, fmt.Errorf("time t = %g: invert Σ(t): %w", t, err)
	}
	l.logDet = chol.LogDet()
	for a := 0; a < n; a++ {
		l.logDet += 2 * math.Log(scale[a])
		for b := 0; b < n; b++ {
			l.prec[a*n+b] = inv.At(a, b) / (scale[a] * scale[b])
		}
	}
	for a := 0; a < n; a++ {
		acc := 0.0
		for b := 0; b < n; b++ {
			acc += l.prec[a*n+b] * l.phi[b]
		}
		l.psi[a] = acc
		l.q += l.phi[a] * acc
	}
	if !(l.q > 0) || math.IsInf(l.q, 0) || math.IsNaN(l.logDet) || math.IsInf(l.logDet, 0) {
		return nil, fmt.Errorf("time t = %g: φᵀΣ⁻¹φ = %g, log det Σ = %g: the forward law is degenerate in float64", t, l.q, l.logDet)
	}
	l.sigmaVE = 1 / math.Sqrt(l.q)
	return l, nil
}

// Condition returns the condition number of the equilibrated covariance D^{-1/2} Σ(t) D^{-1/2}
// (D = diag Σ(t)) and the VE level σ̃(t) = (φᵀΣ⁻¹φ)^{-1/2} of the sufficient statistic (see
// AugmentedScore): the posterior spread of x_0 given Z_t is at most σ̃. t must be in (0, 1]; an
// error says where Σ(t) is too close to singular (condition number above GFDMMaxCondition).
func (p *GFDMProcess) Condition(t float64) (cond, sigmaVE float64, err error) {
	l, err := p.law(t)
	if err != nil {
		return 0, 0, fmt.Errorf("gfdm condition: %w", err)
	}
	return l.cond, l.sigmaVE, nil
}

// project writes ũ = ψᵀz/q of every augmented coordinate: z holds the K+1 planes of (N, d)
// values (plane c at offset c·N·d), u the (N, d) result.
func (l *gfdmLaw) project(u, z []float64) {
	plane := len(u)
	for e := range u {
		acc := 0.0
		for c := 0; c < l.n; c++ {
			acc += l.psi[c] * z[c*plane+e]
		}
		u[e] = acc / l.q
	}
}

// score writes the augmented score −Σ⁻¹(z − φ D) of every coordinate into dst (planes as z) from
// the denoiser D(ũ; σ̃) of the projected coordinates, and returns, per row of (N, d), the sum over
// its coordinates of the quadratic form (z − φũ)ᵀΣ⁻¹(z − φũ) into quad (when not nil).
func (l *gfdmLaw) score(dst, quad, z, u, den []float64, d int) {
	n, plane := l.n, len(u)
	r := make([]float64, n)
	for e := range u {
		if dst != nil {
			for c := 0; c < n; c++ {
				r[c] = z[c*plane+e] - l.phi[c]*den[e]
			}
			for a := 0; a < n; a++ {
				acc := 0.0
				for c := 0; c < n; c++ {
					acc += l.prec[a*n+c] * r[c]
				}
				dst[a*plane+e] = -acc
			}
		}
		if quad != nil {
			for c := 0; c < n; c++ {
				r[c] = z[c*plane+e] - l.phi[c]*u[e]
			}
			qf := 0.0
			for a := 0; a < n; a++ {
				acc := 0.0
				for c := 0; c < n; c++ {
					acc += l.prec[a*n+c] * r[c]
				}
				qf += r[a] * acc
			}
			quad[e/d] += qf
		}
	}
}

// logNormaliser is the part of log p_t(z) of one row of d coordinates that does not depend on z
// beyond ũ: −(d/2) log q − (dK/2) log 2π − (d/2) log det Σ.
func (l *gfdmLaw) logNormaliser(d int) float64 {
	fd := float64(d)
	return -0.5*fd*math.Log(l.q) - 0.5*fd*float64(l.n-1)*log2Pi - 0.5*fd*l.logDet
}

var log2Pi = math.Log(2 * math.Pi)

// GFDMScoreOutputs are the outputs of GFDMProcess.AugmentedScore; nil ones are not computed, at
// least one must be set. Both live on the backend's device in the dtype of the input z.
type GFDMScoreOutputs struct {
	LogP  *tensor.Tensor // (N): log p_t(z) of the augmented state, all d(K+1) numbers of a row
	Score *tensor.Tensor // (K+1, N, d): ∇_z log p_t(z), planes as z
}

// AugmentedScore evaluates the exact log-density and score of the augmented state Z_t = (X_t,
// Y^1_t, …, Y^K_t) at time t ∈ (0, 1] when X_0 is drawn from the target tg (a Gaussian mixture,
// or a data set, whose law noised is again a mixture), for every row of z: z has shape (K+1, N, d)
// (the layout of SampleForward: plane 0 is x, plane k is y^k).
//
// Per coordinate the augmented state given x_0 is N(φ x_0, Σ) (φ = Mean(t), Σ = Covariance(t)),
// so for a mixture X_0 ~ Σ_k w_k N(μ_k, S_k) the law of Z_t is the Gaussian mixture with means
// μ_k ⊗ φ and covariances S_k ⊗ φφᵀ + I_d ⊗ Σ (per coordinate, with diagonal S_k, the (K+1)×(K+1)
// blocks s²_kj φφᵀ + Σ). Its score needs no (K+1)d-dimensional algebra: with ψ = Σ⁻¹φ,
// q = φᵀψ and the statistic ũ = ψᵀz/q of each coordinate,
//
//	z = φ ũ + (z − φ ũ),   ũ | x_0 ~ N(x_0, 1/q),   z − φũ ~ N(0, Σ − φφᵀ/q) independent of ũ and x_0,
//
// so ũ is sufficient for x_0, its law is the target noised by the variance-exploding noise
// σ̃ = 1/√q, and (Tweedie, with the posterior mean D(ũ; σ̃) = E[x_0 | ũ] = E[x_0 | z])
//
//	∇_z log p_t(z) = E[∇_z log N(z; φ x_0, Σ) | z] = −Σ⁻¹ (z − φ D(ũ; σ̃))
//	log p_t(z) = log p^VE_σ̃(ũ) − ½ Σ_j (z_j − φũ_j)ᵀ Σ⁻¹ (z_j − φũ_j)
//	             − (d/2) log q − (dK/2) log 2π − (d/2) log det Σ
//
// (the sum over the d coordinates j of a row). The mixture part is therefore one call of the
// target's fused mixture op (ops.Backend.GMMScore or EmpiricalScore, log p and the denoiser in one
// pass) at VE level σ̃ on the (N, d) statistics — the same op, on the CPU reference or its CUDA
// kernel, that every other sampler calls; the rest is (K+1)×(K+1) linear algebra per coordinate.
// It holds for every covariance kind of the mixture (full S_k too) and for data sets.
//
// Arithmetic: float64 on the host (z is read as float64, the mixture op runs on (N, d) float64
// tensors on b's device, the outputs are rounded once to z's dtype). Σ(t) must be positive
// definite in float64, which fails as t → 0 (the OU states start together): the error names t.
func (p *GFDMProcess) AugmentedScore(b ops.Backend, out GFDMScoreOutputs, tg target.Target, z *tensor.Tensor, t float64) error {
	const op = "gfdm augmented score"
	if b == nil {
		return fmt.Errorf("%s: nil backend", op)
	}
	if tg == nil {
		return fmt.Errorf("%s: nil target", op)
	}
	if out.LogP == nil && out.Score == nil {
		return fmt.Errorf("%s: no output requested (set LogP or Score)", op)
	}
	if z == nil || z.Closed() {
		return fmt.Errorf("%s: input z is nil or closed", op)
	}
	if z.Device() != b.Device() {
		return fmt.Errorf("%s: z is on %s, the backend runs on %s", op, z.Device().Name(), b.Device().Name())
	}
	if z.Rank() != 3 || z.Dim(0) != p.n || z.Dim(1) == 0 || z.Dim(2) != tg.Dim() {
		return fmt.Errorf("%s: z has shape %v: want (K+1, N, d) = (%d, N, %d) with N ≥ 1", op, z.Shape(), p.n, tg.Dim())
	}
	nr, d := z.Dim(1), z.Dim(2)
	for _, o := range []struct {
		name  string
		t     *tensor.Tensor
		shape []int
	}{{"log p", out.LogP, []int{nr}}, {"score", out.Score, []int{p.n, nr, d}}} {
		if o.t == nil {
			continue
		}
		if o.t.Closed() || o.t.Device() != b.Device() || o.t.DType() != z.DType() || !slices.Equal(o.t.Shape(), o.shape) {
			return fmt.Errorf("%s: %s output: want an open %v tensor of shape %v on %s", op, o.name, z.DType(), o.shape, b.Device().Name())
		}
	}
	if err := checkGFDMTime(op, t); err != nil {
		return err
	}
	l, err := p.law(t)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	zv, err := z.Float64s()
	if err != nil {
		return fmt.Errorf("%s: read z: %w", op, err)
	}
	u := make([]float64, nr*d)
	l.project(u, zv)
	lpVE := make([]float64, nr)
	den := make([]float64, nr*d)
	if err := evalVE(b, tg, lpVE, den, u, nr, d, l.sigmaVE, out.LogP != nil); err != nil {
		return fmt.Errorf("%s: t = %g: %w", op, t, err)
	}
	var score, quad []float64
	if out.Score != nil {
		score = make([]float64, p.n*nr*d)
	}
	if out.LogP != nil {
		quad = make([]float64, nr)
	}
	l.score(score, quad, zv, u, den, d)
	if out.Score != nil {
		if err := copyHost(out.Score, score); err != nil {
			return fmt.Errorf("%s: write the score: %w", op, err)
		}
	}
	if out.LogP != nil {
		c := l.logNormaliser(d)
		for i := range quad {
			quad[i] = lpVE[i] - 0.5*quad[i] + c
		}
		if err := copyHost(out.LogP, quad); err != nil {
			return fmt.Errorf("%s: write log p: %w", op, err)
		}
	}
	return nil
}

// evalVE evaluates the target at VE level sigma on the (N, d) rows u in float64 on b's device:
// the denoiser into den and, with logp, the log-density into lp.
func evalVE(b ops.Backend, tg target.Target, lp, den, u []float64, nr, d int, sigma float64, logp bool) error {
	ut, err := toDevice(b.Device(), tensor.F64, u, nr, d)
	if err != nil {
		return fmt.Errorf("statistics (%d, %d): %w", nr, d, err)
	}
	defer ut.Close()
	dt, err := tensor.New(b.Device(), tensor.F64, nr, d)
	if err != nil {
		return fmt.Errorf("denoiser (%d, %d): %w", nr, d, err)
	}
	defer dt.Close()
	o := ops.ScoreOutputs{Denoiser: dt}
	if logp {
		lt, err := tensor.New(b.Device(), tensor.F64, nr)
		if err != nil {
			return fmt.Errorf("log p (%d): %w", nr, err)
		}
		defer lt.Close()
		o.LogP = lt
	}
	if err := tg.Evaluate(b, o, ut, ops.AtSigma(sigma)); err != nil {
		return fmt.Errorf("evaluate %s at σ = %g: %w", tg, sigma, err)
	}
	dv, err := dt.Float64s()
	if err != nil {
		return err
	}
	copy(den, dv)
	if logp {
		lv, err := o.LogP.Float64s()
		if err != nil {
			return err
		}
		copy(lp, lv)
	}
	return nil
}

// copyHost writes the float64 values v into dst (any dtype, any device), rounding once.
func copyHost(dst *tensor.Tensor, v []float64) error {
	h, err := tensor.FromFloat64s(dst.DType(), v, dst.Shape()...)
	if err != nil {
		return err
	}
	defer h.Close()
	return dst.CopyFrom(h)
}
