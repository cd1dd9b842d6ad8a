package solvers

import (
	"fmt"
	"math"
	"sync"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// The Lévy–Itō model (LIM, docs/math.md §5.2 and §5.2.1): the forward process
//
//	X_t = a_t X_0 + s_t S,   a_t^α + s_t^α = 1,   α ∈ (1, 2],
//
// with S the isotropic α-stable vector of ops.StableIsotropic, E e^{i⟨u,S⟩} = exp(−(‖u‖²/2)^{α/2}):
// S = √A·G, G ~ N(0, I), A positive stable of index α/2 with E e^{−λA} = e^{−λ^{α/2}}. At α = 2,
// A ≡ 1 and S = G ~ N(0, I): the model is the variance-preserving one of DDPM and DDIM
// (a_t² + s_t² = 1) exactly.
//
// As for the Gaussian samplers, the state is kept in the variance-exploding coordinates
// y = X_t/a_t = X_0 + ρ S at the noise-to-signal ratio ρ = s_t/a_t: given ρ ≥ 0,
// a = (1 + ρ^α)^{−1/α} and s = ρ a (LIMScales), so a grid of levels ρ_0 > … > ρ_K = 0 is the
// same kind of grid as the noise-level methods' (Sigmas), and at α = 2 the same grid.

// Limits and defaults of LIM.
const (
	// DefaultLIMAlpha is the stability index of the method "lim" when none is given.
	DefaultLIMAlpha = 1.8
	// DefaultLIMNodes is the number of quadrature nodes of A's law (StableMixingQuadrature).
	DefaultLIMNodes = 64
	// MaxLIMNodes bounds the quadrature size.
	MaxLIMNodes = 1 << 16
	// limGrading γ grades the quadrature's cells towards A's heavy tail (StableMixingQuadrature).
	limGrading = 3.0
)

// MethodLIM is the registry's name of LIM.
const MethodLIM = "lim"

// CheckLIMAlpha validates a LIM stability index: α ∈ (1, 2].
func CheckLIMAlpha(alpha float64) error {
	if !(alpha > 1 && alpha <= 2) {
		return fmt.Errorf("alpha = %g: the stability index of LIM must be in (1, 2]", alpha)
	}
	return nil
}

// LIMScales returns the signal and noise scales a, s of the level ρ ≥ 0 (the ratio s/a) under
// a^α + s^α = 1: a = (1 + ρ^α)^{−1/α}, s = ρ a. At α = 2 these are VPFromSigma's α and s.
func LIMScales(alpha, rho float64) (a, s float64) {
	if rho == 0 {
		return 1, 0
	}
	a = math.Pow(1+math.Pow(rho, alpha), -1/alpha)
	if alpha == 2 {
		a = 1 / math.Hypot(1, rho)
	}
	return a, rho * a
}

// StableMixingQuadrature returns nodes A_q > 0 and weights π_q > 0 (Σ π_q = 1) of a fixed
// quadrature of the law of the mixing variable A of an isotropic α-stable vector (A positive
// stable of index a = α/2, E e^{−λA} = e^{−λ^a}), q = 1 … Q: E f(A) ≈ Σ_q π_q f(A_q). At α = 2,
// A ≡ 1 and the rule is the one node 1 of weight 1, whatever Q.
//
// Construction: A = F^{−1}(U), U uniform on (0, 1), F the distribution function of A. The interval
// (0, 1) is cut into Q cells by u_j = 1 − (1 − j/Q)^γ (γ = 3), equal in t = 1 − (1 − u)^{1/γ}
// and refined towards u = 1, where A has its heavy tail P(A > x) ~ x^{−a}/Γ(1 − a); cell q has
// weight π_q = u_q − u_{q−1} and node A_q = F^{−1} at the image of its t-midpoint. This is the
// midpoint rule in t for ∫_0^1 f(F^{−1}(u(t))) u'(t) dt. The largest node sits at the tail
// probability (1/(2Q))^γ (2·10^{−6} at Q = 64), so only about (1/Q)^γ of the mass of A lies
// beyond the nodes.
//
// Error: for f of bounded variation V (every Gaussian density in A, as the denoiser uses, is
// unimodal in A: V ≤ 2 max f), each cell's error is at most its weight times f's oscillation on
// it, so |E f(A) − Σ π_q f(A_q)| ≤ max_q π_q · V ≤ (γ/Q) V; for smooth f the midpoint rule makes
// it O(Q^{−2}). Measured on the Laplace transform e^{−λ^a} and on the denoiser (lim_test.go).
//
// F is evaluated by Zolotarev's integral F(x) = (1/π) ∫_0^π exp(−(K(u)/x)^{a/(1−a)}) du, K the
// Kanter function of ops.StablePositive (a 4096-point midpoint rule in u), and where
// x^{−a} < 1/4 by the convergent series of the tail, P(A > x) =
// (1/π) Σ_{k≥1} (−1)^{k+1} Γ(ak)/k! sin(πak) x^{−ak}; the quantiles by regula falsi in log x.
func StableMixingQuadrature(alpha float64, q int) (nodes, weights []float64, err error) {
	if err := CheckLIMAlpha(alpha); err != nil {
		return nil, nil, fmt.Errorf("stable mixing quadrature: %w", err)
	}
	if q < 1 || q > MaxLIMNodes {
		return nil, nil, fmt.Errorf("stable mixing quadrature: %d nodes: want 1 … %d", q, MaxLIMNodes)
	}
	if alpha == 2 {
		return []float64{1}, []float64{1}, nil
	}
	key := quadKey{alpha, q}
	if v, ok := quadCache.Load(key); ok {
		r := v.([2][]float64)
		return append([]float64(nil), r[0]...), append([]float64(nil), r[1]...), nil
	}
	law := newPositiveStableLaw(alpha / 2)
	nodes, weights = make([]float64, q), make([]float64, q)
	tail := func(t float64) float64 { return math.Pow(1-t, limGrading) } // 1 − u(t)
	for j := 0; j < q; j++ {
		weights[j] = tail(float64(j)/float64(q)) - tail(float64(j+1)/float64(q))
		nodes[j] = law.quantile(tail((float64(j) + 0.5) / float64(q)))
		if !(nodes[j] > 0) || math.IsInf(nodes[j], 0) {
			return nil, nil, fmt.Errorf("stable mixing quadrature: α = %g, node %d of %d is %g", alpha, j, q, nodes[j])
		}
	}
	quadCache.Store(key, [2][]float64{append([]float64(nil), nodes...), append([]float64(nil), weights...)})
	return nodes, weights, nil
}

type quadKey struct {
	alpha float64
	q     int
}

var quadCache sync.Map

// positiveStableLaw evaluates the distribution function of A, positive stable of index
// a ∈ (0, 1) (see StableMixingQuadrature).
type positiveStableLaw struct {
	a, p  float64   // index and exponent p = a/(1 − a)
	plogK []float64 // p·log K(u_j) at the midpoints u_j of the u-rule
}

func newPositiveStableLaw(a float64) *positiveStableLaw {
	const m = 4096
	l := &positiveStableLaw{a: a, p: a / (1 - a), plogK: make([]float64, m)}
	for j := range l.plogK {
		u := math.Pi * (float64(j) + 0.5) / m
		// K(u)^p = sin(au)^{a/(1−a)} sin((1−a)u) / sin(u)^{1/(1−a)}
		l.plogK[j] = l.p*math.Log(math.Sin(a*u)) - math.Log(math.Sin(u))/(1-a) + math.Log(math.Sin((1-a)*u))
	}
	return l
}

// cdf returns F(x) = P(A ≤ x) and S(x) = P(A > x), each accurate where it is small.
func (l *positiveStableLaw) cdf(x float64) (f, s float64) {
	if !(x > 0) {
		return 0, 1
	}
	if math.IsInf(x, 1) {
		return 1, 0
	}
	lx := math.Log(x)
	if -l.a*lx < math.Log(0.25) { // x^{−a} < 1/4: the tail series
		s = l.tailSeries(lx)
		return 1 - s, s
	}
	for _, pk := range l.plogK {
		e := math.Exp(pk - l.p*lx)
		f += math.Exp(-e)
		s += -math.Expm1(-e)
	}
	n := float64(len(l.plogK))
	return f / n, s / n
}

// tailSeries is P(A > x) = (1/π) Σ_{k≥1} (−1)^{k+1} Γ(ak)/k! sin(πak) x^{−ak} at lx = log x.
func (l *positiveStableLaw) tailSeries(lx float64) float64 {
	sum := 0.0
	for k := 1; k <= 400; k++ {
		fk := float64(k)
		lg, _ := math.Lgamma(l.a * fk)
		lf, _ := math.Lgamma(fk + 1)
		mag := math.Exp(lg - lf - l.a*fk*lx)
		sn, _ := sinCosPiHalfTurns(l.a * fk)
		term := mag * sn
		if k%2 == 0 {
			term = -term
		}
		sum += term
		if mag < 1e-18*math.Abs(sum) {
			break
		}
	}
	return sum / math.Pi
}

// sinCosPiHalfTurns returns sin(πx) and cos(πx) with x reduced first (exact for the integer part).
func sinCosPiHalfTurns(x float64) (float64, float64) {
	r := x - 2*math.Floor(x/2) // in [0, 2)
	return math.Sin(math.Pi * r), math.Cos(math.Pi * r)
}

// quantile returns x with P(A > x) = tail (tail ∈ (0, 1)): a bracket in log x found by unit
// steps, then the Illinois variant of regula falsi in log x, on the smaller of the two
// probabilities.
func (l *positiveStableLaw) quantile(tail float64) float64 {
	u := 1 - tail
	// g(log x) > 0 once x is beyond the quantile.
	g := func(lx float64) float64 {
		f, s := l.cdf(math.Exp(lx))
		if u < 0.5 {
			return f - u
		}
		return tail - s
	}
	lo, hi := 0.0, 0.0
	glo, ghi := g(lo), 0.0
	for glo > 0 {
		hi, ghi = lo, glo
		lo--
		glo = g(lo)
	}
	if hi == lo {
		for hi++; ; hi++ {
			if ghi = g(hi); ghi > 0 {
				break
			}
			lo, glo = hi, ghi
		}
	}
	side := 0
	for it := 0; it < 200 && hi-lo > 1e-12*math.Max(1, math.Abs(hi)); it++ {
		m := hi - ghi*(hi-lo)/(ghi-glo)
		if !(m > lo && m < hi) {
			m = (lo + hi) / 2
		}
		gm := g(m)
		switch {
		case gm > 0:
			hi, ghi = m, gm
			if side == 1 {
				glo /= 2
			}
			side = 1
		case gm < 0:
			lo, glo = m, gm
			if side == -1 {
				ghi /= 2
			}
			side = -1
		default:
			return math.Exp(m)
		}
	}
	return math.Exp((lo + hi) / 2)
}

// LIMDenoiser is the exact denoiser of a target under LIM noise, in the variance-exploding
// coordinates y = X_0 + ρ S (S isotropic α-stable, see LIMScales):
//
//	D(y; ρ) = E[X_0 | X_0 + ρ S = y],
//
// computed by conditioning on the mixing variable A = A_q of a fixed quadrature
// (StableMixingQuadrature): given A = A_q, y | X_0 ~ N(X_0, ρ² A_q I), so the posterior of X_0 is
// a mixture over the quadrature nodes q (and the mixture's components k, or the data points i):
//
//	gmm        D = Σ_{k,q} r_kq (μ_k + Σ_k (Σ_k + ρ² A_q I)^{−1} (y − μ_k)),
//	           r_kq ∝ w_k π_q N(y; μ_k, Σ_k + ρ² A_q I): ops.Backend.GMMScaleMixtureDenoise with
//	           the quadrature as the noise's scale mixture (float64; on the GPU one kernel launch for
//	           isotropic and diagonal mixtures, the host for full ones)
//	empirical  D = Σ_{i,q} r_iq y_i, r_iq ∝ π_q N(y; y_i, ρ² A_q I): the data set's scale
//	           mixture of ops.Empirical.WithMixture (weights π_q, multipliers A_q) evaluated by
//	           ops.Backend.EmpiricalScore at the affine noise (1, ρ²), on the backend's device
//
// dst must not be y. A data set that carries its own scale mixture is refused (its kernel is not
// Gaussian). At ρ = 0, D = y. At α = 2 (one node A = 1) D is TargetDenoiser's to round-off.
type LIMDenoiser struct {
	t              target.Target
	alpha          float64
	nodes, weights []float64
	mix            *ops.ScaleMixture // the quadrature as a noise law (mixtures)
	mixed          *ops.Empirical    // the data set with the quadrature as its scale mixture
}

// NewLIMDenoiser builds the LIM denoiser of t for stability index α ∈ (1, 2] with a quadrature of
// q nodes (0: DefaultLIMNodes).
func NewLIMDenoiser(t target.Target, alpha float64, q int) (*LIMDenoiser, error) {
	const op = "lim denoiser"
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	if q == 0 {
		q = DefaultLIMNodes
	}
	nodes, weights, err := StableMixingQuadrature(alpha, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	l := &LIMDenoiser{t: t, alpha: alpha, nodes: nodes, weights: weights}
	switch tt := t.(type) {
	case target.GMM:
		if l.mix, err = ops.NewScaleMixture(weights, nodes); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	case target.Empirical:
		if tt.DataSet.MixtureSize() > 1 {
			return nil, fmt.Errorf("%s: the data set carries a %d-term scale mixture of its own: LIM needs the plain data set (its noise is the α-stable one)",
				op, tt.DataSet.MixtureSize())
		}
		if l.mixed, err = tt.DataSet.WithMixture(weights, nodes); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	default:
		return nil, fmt.Errorf("%s: target %s: no LIM denoiser for this kind", op, t)
	}
	return l, nil
}

// Alpha is the stability index; Nodes and Weights the quadrature of A (copies).
func (l *LIMDenoiser) Alpha() float64     { return l.alpha }
func (l *LIMDenoiser) Nodes() []float64   { return append([]float64(nil), l.nodes...) }
func (l *LIMDenoiser) Weights() []float64 { return append([]float64(nil), l.weights...) }

// Dim is the target's dimension.
func (l *LIMDenoiser) Dim() int { return l.t.Dim() }

func (l *LIMDenoiser) String() string {
	return fmt.Sprintf("LIM denoiser (α = %g, %d nodes) of %s", l.alpha, len(l.nodes), l.t)
}

// Denoise writes D(y; rho) for every row of y into dst (see LIMDenoiser).
func (l *LIMDenoiser) Denoise(b ops.Backend, dst, y *tensor.Tensor, rho float64) error {
	const op = "lim denoise"
	if b == nil {
		return fmt.Errorf("%s: nil backend", op)
	}
	if math.IsNaN(rho) || math.IsInf(rho, 0) || rho < 0 {
		return fmt.Errorf("%s: level rho = %g: must be a finite number ≥ 0", op, rho)
	}
	if err := l.t.Check(b.Device(), ops.ScoreOutputs{Denoiser: dst}, y, ops.AtSigma(1)); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if rho == 0 {
		if err := dst.CopyFrom(y); err != nil {
			return fmt.Errorf("%s at rho = 0: %w", op, err)
		}
		return nil
	}
	if l.mixed != nil {
		noise := ops.Noise{Kind: ops.Affine, Scale: 1, Var: rho * rho}
		if err := b.EmpiricalScore(ops.ScoreOutputs{Denoiser: dst}, y, l.mixed, noise); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	}
	g := l.t.(target.GMM).Mixture
	if err := b.GMMScaleMixtureDenoise(dst, y, g, l.mix, rho*rho); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// SampleLIMNoised returns n exact samples (row-major, (n, d)) of the target t noised by LIM,
// a·X_0 + s·S with S isotropic α-stable (no clamp): conditionally on the mixing variable A the
// law is Gaussian, so
//
//	gmm        component k with probability w_k, then x = a μ_k + U_k diag(sqrt(a² λ_k + s² A)) ξ
//	empirical  data point J uniform on 1..M, then x = a y_J + s √A ξ
//
// with the component (or point) from the f64 uniform column 0 of Site(0, PurposeInitComponent),
// ξ from the f64 normals of Site(0, PurposeInit) (SampleNoised's draws) and A from the positive
// stable map of index α/2 on the f64 uniform columns 0 and 1 of Site(0, PurposeLIM) (ops.Backend.Stable,
// kind StablePositive; A ≡ 1 at α = 2, where the samples are SampleNoised's with variance s²,
// bit for bit). Sample i is chain first + i. a and s must be finite, s ≥ 0.
func SampleLIMNoised(t target.Target, n int, alpha, a, s float64, seed, first uint64) ([]float64, error) {
	const op = "lim sample noised"
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	if err := CheckLIMAlpha(alpha); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if math.IsNaN(a) || math.IsInf(a, 0) || !(s >= 0) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("%s: a = %g, s = %g: want a finite scale and a finite noise scale ≥ 0", op, a, s)
	}
	if err := checkChains(op, n, first); err != nil {
		return nil, err
	}
	mix, err := stableMixing(n, alpha, seed, first)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	d := t.Dim()
	u, z, err := startDraws(n, d, seed, first)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]float64, n*d)
	switch tt := t.(type) {
	case target.GMM:
		p := tt.Mixture.Params()
		for i := 0; i < n; i++ {
			mixtureDraws(out[i*d:(i+1)*d], p, a, s*s*mix[i], u[2*i:2*i+1], z[i*d:(i+1)*d], 1)
		}
	case target.Empirical:
		e := tt.DataSet
		if e.MixtureSize() > 1 {
			return nil, fmt.Errorf("%s: the data set carries a scale mixture of its own", op)
		}
		m := e.Points()
		for i := 0; i < n; i++ {
			j := min(int(u[2*i]*float64(m)), m-1)
			sd := math.Sqrt(s * s * mix[i])
			for c := 0; c < d; c++ {
				out[i*d+c] = a*e.At(j, c) + sd*z[i*d+c]
			}
		}
	default:
		return nil, fmt.Errorf("%s: target %s: no exact sampler of its noised law", op, t)
	}
	return out, nil
}

// stableMixing returns the mixing variables A of chains first … first+n−1 (see SampleLIMNoised).
func stableMixing(n int, alpha float64, seed, first uint64) ([]float64, error) {
	out := make([]float64, n)
	if alpha == 2 {
		for i := range out {
			out[i] = 1
		}
		return out, nil
	}
	at, err := tensor.New(tensor.CPU(), tensor.F64, n, 1)
	if err != nil {
		return nil, err
	}
	defer at.Close()
	if _, err := ops.CPU().Stable(at, ops.StableSpec{Kind: ops.StablePositive, Alpha: alpha / 2},
		drawAt(seed, 0, PurposeLIM, first)); err != nil {
		return nil, fmt.Errorf("mixing variables: %w", err)
	}
	v, _ := at.F64()
	copy(out, v)
	return out, nil
}
