package solvers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Diagnostics: exact samples of a Gaussian mixture, two distances between a sampler's output and
// the target (the accuracy measures of the command's demo), and per-component statistics with
// exact expectations under the mixture (MixtureModeStats, the measures of examples/rtk).
//
// Samples are flat row-major slices (N rows of d coordinates), the layout of
// tensor.Tensor.Float64s on an (N, d) tensor. Rows holding a NaN or ±Inf (chains listed in a
// NaNReport) are excluded from every statistic here, never averaged in.

// Draw sites of SampleGMM (Philox via ops.CPU(), chains as rows: sample i is chain i).
const (
	// SiteGMMComponent: one f64 uniform per sample picks its component.
	SiteGMMComponent uint64 = 0
	// SiteGMMNormal: d f64 standard normals per sample, the component's Gaussian draw.
	SiteGMMNormal uint64 = 1
)

// SampleGMM returns n exact samples of the mixture g, (n, d) row-major, drawn on the CPU
// reference from the counter-based Philox stream keyed by seed: sample i is chain i; its
// component is the first k with u < w_1 + … + w_k, u the f64 uniform of draw site
// SiteGMMComponent, and its point x = μ_k + U_k diag(√λ_k) ξ (Σ_k = U_k diag(λ_k) U_kᵀ, U_k = I
// unless the covariance is full) with ξ the d f64 normals of site SiteGMMNormal. Sample i is
// therefore a pure function of (seed, i), whatever n.
func SampleGMM(g *ops.GMM, n int, seed uint64) ([]float64, error) {
	if g == nil {
		return nil, fmt.Errorf("sample gmm: nil mixture")
	}
	if err := checkChains("sample gmm", n, 0); err != nil {
		return nil, err
	}
	p := g.Params()
	d := p.D
	u, err := tensor.New(tensor.CPU(), tensor.F64, n, 1)
	if err != nil {
		return nil, fmt.Errorf("sample gmm: %w", err)
	}
	defer u.Close()
	xi, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	if err != nil {
		return nil, fmt.Errorf("sample gmm: %w", err)
	}
	defer xi.Close()
	b := ops.CPU()
	if err := b.Uniform(u, ops.Draw{Seed: seed, Site: SiteGMMComponent}); err != nil {
		return nil, fmt.Errorf("sample gmm: component uniforms: %w", err)
	}
	if err := b.Normal(xi, ops.Draw{Seed: seed, Site: SiteGMMNormal}); err != nil {
		return nil, fmt.Errorf("sample gmm: normals: %w", err)
	}
	us, _ := u.F64()
	zs, _ := xi.F64()
	cum := make([]float64, p.K)
	acc := 0.0
	for k, lw := range p.LogWeights {
		acc += math.Exp(lw)
		cum[k] = acc
	}
	out := make([]float64, n*d)
	for i := 0; i < n; i++ {
		k := p.K - 1 // rounding: the last component takes u ≥ Σw (≈ 1)
		for c, cw := range cum {
			if us[i] < cw {
				k = c
				break
			}
		}
		row, z := out[i*d:(i+1)*d], zs[i*d:(i+1)*d]
		mu := p.Means[k*d : (k+1)*d]
		switch p.Kind {
		case ops.Isotropic:
			s := math.Sqrt(p.Lambda[k])
			for j := range row {
				row[j] = mu[j] + s*z[j]
			}
		case ops.Diagonal:
			for j := range row {
				row[j] = mu[j] + math.Sqrt(p.Lambda[k*d+j])*z[j]
			}
		default: // full
			uk := p.U[k*d*d : (k+1)*d*d]
			for r := range row {
				v := mu[r]
				for c := 0; c < d; c++ {
					v += uk[r*d+c] * math.Sqrt(p.Lambda[k*d+c]) * z[c]
				}
				row[r] = v
			}
		}
	}
	return out, nil
}

// finiteRows returns the rows of x (row-major, d columns) whose coordinates are all finite.
func finiteRows(x []float64, d int) [][]float64 {
	rows := make([][]float64, 0, len(x)/d)
	for i := 0; i+d <= len(x); i += d {
		row := x[i : i+d]
		ok := true
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				ok = false
				break
			}
		}
		if ok {
			rows = append(rows, row)
		}
	}
	return rows
}

// SlicedWasserstein returns the sliced 2-Wasserstein distance between the empirical laws of the
// samples a and b (row-major, d columns each, any numbers of rows):
//
//	SW₂(a, b) = sqrt( (1/P) Σ_p W₂²(θ_p·a, θ_p·b) )
//
// over P = projections directions θ_p drawn uniformly on the unit sphere (normalised Gaussian
// vectors from math/rand/v2's PCG seeded with (seed, 0x5357) — the directions depend on seed
// only, so two calls with one seed compare samples along the same directions). In one dimension
// θ = ±1 and SW₂ = W₂ exactly. The 1-D W₂ between the projected samples is computed from their
// sorted values: with equal sizes W₂² = (1/n) Σ_i (a₍ᵢ₎ − b₍ᵢ₎)²; with different sizes both
// quantile functions are evaluated at the M = max(n_a, n_b) levels (i + ½)/M by linear
// interpolation between order statistics. Rows with a non-finite coordinate are dropped; the
// result is NaN when either side has no finite row, d < 1 or projections < 1.
//
// Monte-Carlo error: for two independent samples of one law the result is not 0 but of order
// sqrt(log log n / n) per direction (≈ 0.02–0.04 for n ≈ 5000 standard normals; on a mixture with
// separated modes more, ≈ 0.1, as the binomial fluctuation of the mode weights moves mass far), which sets
// the floor below which differences between samplers mean nothing.
func SlicedWasserstein(a, b []float64, d, projections int, seed uint64) float64 {
	if d < 1 || projections < 1 {
		return math.NaN()
	}
	ra, rb := finiteRows(a, d), finiteRows(b, d)
	if len(ra) == 0 || len(rb) == 0 {
		return math.NaN()
	}
	rng := rand.New(rand.NewPCG(seed, 0x5357))
	theta := make([]float64, d)
	pa, pb := make([]float64, len(ra)), make([]float64, len(rb))
	total := 0.0
	for p := 0; p < projections; p++ {
		norm := 0.0
		for norm == 0 {
			for j := range theta {
				theta[j] = rng.NormFloat64()
				norm += theta[j] * theta[j]
			}
		}
		norm = math.Sqrt(norm)
		for j := range theta {
			theta[j] /= norm
		}
		project(pa, ra, theta)
		project(pb, rb, theta)
		total += w2Squared1D(pa, pb)
	}
	return math.Sqrt(total / float64(projections))
}

func project(dst []float64, rows [][]float64, theta []float64) {
	for i, r := range rows {
		s := 0.0
		for j, v := range r {
			s += v * theta[j]
		}
		dst[i] = s
	}
	slices.Sort(dst)
}

// w2Squared1D is W₂² between two sorted 1-D samples.
func w2Squared1D(a, b []float64) float64 {
	if len(a) == len(b) {
		s := 0.0
		for i := range a {
			e := a[i] - b[i]
			s += e * e
		}
		return s / float64(len(a))
	}
	m := max(len(a), len(b))
	s := 0.0
	for i := 0; i < m; i++ {
		q := (float64(i) + 0.5) / float64(m)
		e := quantile(a, q) - quantile(b, q)
		s += e * e
	}
	return s / float64(m)
}

// quantile is the empirical quantile of the sorted sample x at level q ∈ (0, 1): order
// statistic x₍ᵢ₎ sits at level (i + ½)/n, linear in between, constant beyond the ends.
func quantile(x []float64, q float64) float64 {
	n := len(x)
	pos := q*float64(n) - 0.5
	if pos <= 0 {
		return x[0]
	}
	if pos >= float64(n-1) {
		return x[n-1]
	}
	i := int(pos)
	f := pos - float64(i)
	return x[i] + f*(x[i+1]-x[i])
}

// ModeWeights returns, for each component k of g, the fraction of the finite rows of samples
// (row-major, d = g.Dim() columns) whose nearest component mean (Euclidean distance) is μ_k.
// Rows with a non-finite coordinate are excluded from numerator and denominator; with no finite
// row every fraction is NaN. For well-separated components (distance between means large against
// the components' standard deviations) this estimates the weight the sampler gives each mode.
func ModeWeights(samples []float64, d int, g *ops.GMM) []float64 {
	p := g.Params()
	out := make([]float64, p.K)
	if d != p.D {
		for k := range out {
			out[k] = math.NaN()
		}
		return out
	}
	rows := finiteRows(samples, d)
	for _, r := range rows {
		best, bestD := 0, math.Inf(1)
		for k := 0; k < p.K; k++ {
			mu := p.Means[k*d : (k+1)*d]
			s := 0.0
			for j, v := range r {
				e := v - mu[j]
				s += e * e
			}
			if s < bestD {
				best, bestD = k, s
			}
		}
		out[best]++
	}
	for k := range out {
		out[k] /= float64(len(rows)) // 0/0 = NaN when there is no finite row
	}
	return out
}

// ModeWeightError is the total-variation distance between the sampler's mode weights
// (ModeWeights) and the mixture's weights w_k:
//
//	TV = ½ Σ_k |ŵ_k − w_k|  ∈ [0, 1]
//
// 0 when every mode holds its share of the chains, 1 when they all sit in modes of weight 0. For
// exact samples its Monte-Carlo size is about ½ Σ_k sqrt(2 w_k(1 − w_k)/(π n)) (≈ 0.01 for four
// modes and n = 5000). NaN when there is no finite row.
func ModeWeightError(samples []float64, d int, g *ops.GMM) float64 {
	got := ModeWeights(samples, d, g)
	p := g.Params()
	tv := 0.0
	for k, lw := range p.LogWeights {
		tv += math.Abs(got[k] - math.Exp(lw))
	}
	return tv / 2
}

// ModeStats are the per-component statistics of a sample set under a Gaussian mixture g whose
// expectations under g are known exactly, so that they measure a sampler's error with a
// Monte-Carlo floor that shrinks as 1/√N (unlike SlicedWasserstein and ModeWeights, whose floors
// are set by the mode-weight fluctuation and by the nearest-mean assignment). With γ_k(x) =
// w_k p_k(x)/p(x) the posterior responsibility of component k under g:
//
//	E_p[γ_k(X)]                 = w_k                  (∫ p · w_k p_k / p = w_k)
//	E_p[γ_k(X) ‖X − μ_k‖²]      = w_k · tr Σ_k         (= w_k E_{p_k}‖X − μ_k‖²)
//
// both exactly, for any overlap of the components. The sample means of γ_k and of γ_k‖x − μ_k‖²
// therefore estimate w_k and w_k tr Σ_k without bias, and their ratio R_k, the responsibility-
// weighted mean squared radius of component k, estimates tr Σ_k (d σ_k² for an isotropic
// component) up to the O(1/N) bias of a ratio estimator.
type ModeStats struct {
	// N is the number of finite rows the statistics are over.
	N int
	// Weights[k] = (1/N) Σ_i γ_k(x_i), expectation w_k; WeightSE[k] its standard error, the sample
	// standard deviation of γ_k(x_i) over √N.
	Weights, WeightSE []float64
	// Radius[k] = Σ_i γ_k(x_i)‖x_i − μ_k‖² / Σ_i γ_k(x_i), expectation tr Σ_k (ExpectedRadius[k]);
	// RadiusSE[k] its delta-method standard error, sd(γ_k(x_i)(‖x_i − μ_k‖² − R_k)) / (√N ·
	// Weights[k]).
	Radius, RadiusSE, ExpectedRadius []float64
	// TrueWeights are the mixture's weights w_k.
	TrueWeights []float64
}

// RadiusError is the weighted relative within-mode radius error Σ_k w_k |R_k / tr Σ_k − 1|: 0.21
// for samples whose deviations from their component mean are all scaled by 1.1. For exact samples
// of an isotropic mixture with separated components R_k/(dσ_k²) has relative standard error
// sqrt(2/(d N w_k)), so the floor (a mean of absolute values, positive) is about
// Σ_k w_k sqrt(2/π) sqrt(2/(d N w_k)) = (2/√π) Σ_k √w_k / √(N d).
func (s ModeStats) RadiusError() float64 {
	e := 0.0
	for k, w := range s.TrueWeights {
		e += w * math.Abs(s.Radius[k]/s.ExpectedRadius[k]-1)
	}
	return e
}

// WeightError is the total variation ½ Σ_k |Weights[k] − w_k| between the mean responsibilities
// and the mixture's weights: 0 in expectation only in the limit; for exact samples of separated
// components about ½ Σ_k sqrt(2 w_k(1 − w_k)/(π N)) (the floor).
func (s ModeStats) WeightError() float64 {
	e := 0.0
	for k, w := range s.TrueWeights {
		e += math.Abs(s.Weights[k] - w)
	}
	return e / 2
}

// MixtureModeStats computes ModeStats of samples (row-major, d = g.Dim() columns) under g, the
// responsibilities γ_k(x) from b's GMM score op (ops.ScoreOutputs.Resp at ops.NoNoise) in float64
// on the CPU reference when b is nil. Rows with a non-finite coordinate are excluded; it is an
// error when no row is finite or d does not match g.
func MixtureModeStats(b ops.Backend, samples []float64, d int, g *ops.GMM) (ModeStats, error) {
	const op = "mode stats"
	if g == nil {
		return ModeStats{}, fmt.Errorf("%s: nil mixture", op)
	}
	p := g.Params()
	if d != p.D {
		return ModeStats{}, fmt.Errorf("%s: samples have dimension %d, the mixture %d", op, d, p.D)
	}
	rows := finiteRows(samples, d)
	n, K := len(rows), p.K
	if n == 0 {
		return ModeStats{}, fmt.Errorf("%s: no finite row", op)
	}
	if b == nil {
		b = ops.CPU()
	}
	x, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	if err != nil {
		return ModeStats{}, fmt.Errorf("%s: %w", op, err)
	}
	defer x.Close()
	xs, _ := x.F64()
	for i, r := range rows {
		copy(xs[i*d:(i+1)*d], r)
	}
	resp, err := tensor.New(tensor.CPU(), tensor.F64, n, K)
	if err != nil {
		return ModeStats{}, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Close()
	if err := b.GMMScore(ops.ScoreOutputs{Resp: resp}, x, g, ops.NoNoise); err != nil {
		return ModeStats{}, fmt.Errorf("%s: responsibilities of %d rows: %w", op, n, err)
	}
	gam, _ := resp.F64()
	s := ModeStats{N: n, Weights: make([]float64, K), WeightSE: make([]float64, K), Radius: make([]float64, K),
		RadiusSE: make([]float64, K), ExpectedRadius: make([]float64, K), TrueWeights: make([]float64, K)}
	r2 := make([]float64, n)
	for k := 0; k < K; k++ {
		s.TrueWeights[k] = math.Exp(p.LogWeights[k])
		if p.Kind == ops.Isotropic {
			s.ExpectedRadius[k] = float64(d) * p.Lambda[k]
		} else {
			for j := 0; j < d; j++ {
				s.ExpectedRadius[k] += p.Lambda[k*d+j]
			}
		}
		mu := p.Means[k*d : (k+1)*d]
		var sg, sgr float64
		for i, r := range rows {
			q := 0.0
			for j, v := range r {
				e := v - mu[j]
				q += e * e
			}
			r2[i] = q
			sg += gam[i*K+k]
			sgr += gam[i*K+k] * q
		}
		mg, R := sg/float64(n), sgr/sg
		var vg, vr float64
		for i := range rows {
			g := gam[i*K+k]
			vg += (g - mg) * (g - mg)
			z := g * (r2[i] - R)
			vr += z * z
		}
		s.Weights[k], s.Radius[k] = mg, R
		s.WeightSE[k] = math.Sqrt(vg / float64(n-1) / float64(n))
		s.RadiusSE[k] = math.Sqrt(vr/float64(n-1)/float64(n)) / mg
	}
	return s, nil
}

// VarianceRatio returns the mean over the listed coordinates (column indices of the row-major
// samples x, d columns) of their sample variances (divisor n − 1), divided by want, the exact
// variance each of them has under the target: 1 is perfect, below 1 the sampler shrinks the
// spread along those coordinates, above 1 it inflates it. Non-finite rows are dropped; the result
// is NaN with fewer than two finite rows, no coordinates, a coordinate outside [0, d) or want ≤ 0.
//
// Monte-Carlo error: for n exact samples whose listed coordinates are m independent Gaussians of
// variance want, the ratio is a χ²_{m(n−1)}/(m(n − 1)) variable, mean 1 and standard deviation
// sqrt(2/(m(n − 1))).
func VarianceRatio(x []float64, d int, coords []int, want float64) float64 {
	if !(want > 0) || len(coords) == 0 {
		return math.NaN()
	}
	_, cov := SampleMoments(x, d, coords)
	if cov == nil {
		return math.NaN()
	}
	m := len(coords)
	s := 0.0
	for j := 0; j < m; j++ {
		s += cov[j*m+j]
	}
	return s / float64(m) / want
}

// SampleMoments returns the sample mean (m values) and covariance (m × m row-major, divisor
// n − 1) of the listed coordinates of the row-major samples x (d columns), over the rows whose d
// coordinates are all finite. It returns nil, nil with fewer than two such rows, d < 1 or a
// coordinate outside [0, d).
func SampleMoments(x []float64, d int, coords []int) (mean, cov []float64) {
	if d < 1 {
		return nil, nil
	}
	for _, c := range coords {
		if c < 0 || c >= d {
			return nil, nil
		}
	}
	rows := finiteRows(x, d)
	n, m := len(rows), len(coords)
	if n < 2 || m == 0 {
		return nil, nil
	}
	mean, cov = make([]float64, m), make([]float64, m*m)
	for _, r := range rows {
		for a, c := range coords {
			mean[a] += r[c]
		}
	}
	for a := range mean {
		mean[a] /= float64(n)
	}
	dev := make([]float64, m)
	for _, r := range rows {
		for a, c := range coords {
			dev[a] = r[c] - mean[a]
		}
		for a := 0; a < m; a++ {
			for b := 0; b <= a; b++ {
				cov[a*m+b] += dev[a] * dev[b]
			}
		}
	}
	for a := 0; a < m; a++ {
		for b := 0; b <= a; b++ {
			cov[a*m+b] /= float64(n - 1)
			cov[b*m+a] = cov[a*m+b]
		}
	}
	return mean, cov
}

// GaussianKL returns the Kullback–Leibler divergence KL(P ‖ Q) in nats between P = N(meanP, covP)
// and Q = N(meanQ, covQ) in m = len(meanP) dimensions (covariances m × m row-major, symmetric
// positive definite):
//
//	KL = ½ [ tr(Σ_Q⁻¹ Σ_P) + (μ_Q − μ_P)ᵀ Σ_Q⁻¹ (μ_Q − μ_P) − m + log det Σ_Q − log det Σ_P ],
//
// computed from the Cholesky factors of both covariances. For m = 1 it is
// ½ (r − 1 − log r + (μ_Q − μ_P)²/σ_Q²) with r = σ_P²/σ_Q². Used with P the Gaussian fitted to a
// sampler's output (SampleMoments) and Q the exact law (or its moments), its Monte-Carlo floor
// on n exact samples is about (number of fitted parameters)/(2n): (m + m(m + 1)/2)/(2n).
func GaussianKL(meanP, covP, meanQ, covQ []float64) (float64, error) {
	m := len(meanP)
	if m == 0 || len(meanQ) != m || len(covP) != m*m || len(covQ) != m*m {
		return 0, fmt.Errorf("gaussian kl: means of %d and %d values, covariances of %d and %d (want m, m, m², m² with m ≥ 1)", m, len(meanQ), len(covP), len(covQ))
	}
	var cp, cq mat.Cholesky
	if !cp.Factorize(mat.NewSymDense(m, append([]float64(nil), covP...))) {
		return 0, fmt.Errorf("gaussian kl: covariance of P (%d × %d) is not positive definite", m, m)
	}
	if !cq.Factorize(mat.NewSymDense(m, append([]float64(nil), covQ...))) {
		return 0, fmt.Errorf("gaussian kl: covariance of Q (%d × %d) is not positive definite", m, m)
	}
	var w mat.Dense // Σ_Q⁻¹ Σ_P
	if err := cq.SolveTo(&w, mat.NewDense(m, m, append([]float64(nil), covP...))); err != nil {
		return 0, fmt.Errorf("gaussian kl: solve with Σ_Q: %w", err)
	}
	tr := mat.Trace(&w)
	diff := make([]float64, m)
	for i := range diff {
		diff[i] = meanQ[i] - meanP[i]
	}
	var z mat.VecDense
	if err := cq.SolveVecTo(&z, mat.NewVecDense(m, diff)); err != nil {
		return 0, fmt.Errorf("gaussian kl: solve with Σ_Q: %w", err)
	}
	quad := mat.Dot(mat.NewVecDense(m, diff), &z)
	return 0.5 * (tr + quad - float64(m) + cq.LogDet() - cp.LogDet()), nil
}

// GMMMoments returns the exact mean (d values) and covariance (d × d row-major) of the mixture g:
// μ = Σ_k w_k μ_k and Σ = Σ_k w_k (Σ_k + μ_k μ_kᵀ) − μ μᵀ.
func GMMMoments(g *ops.GMM) (mean, cov []float64, err error) {
	mean, err = gmmMean(g)
	if err != nil {
		return nil, nil, fmt.Errorf("gmm moments: %w", err)
	}
	p := g.Params()
	d := p.D
	cov = make([]float64, d*d)
	for k, lw := range p.LogWeights {
		w := math.Exp(lw)
		mu := p.Means[k*d : (k+1)*d]
		for r := 0; r < d; r++ {
			for c := 0; c < d; c++ {
				v := mu[r] * mu[c]
				switch p.Kind {
				case ops.Isotropic:
					if r == c {
						v += p.Lambda[k]
					}
				case ops.Diagonal:
					if r == c {
						v += p.Lambda[k*d+r]
					}
				default:
					u := p.U[k*d*d:]
					for j := 0; j < d; j++ {
						v += u[r*d+j] * p.Lambda[k*d+j] * u[c*d+j]
					}
				}
				cov[r*d+c] += w * v
			}
		}
	}
	for r := 0; r < d; r++ {
		for c := 0; c < d; c++ {
			cov[r*d+c] -= mean[r] * mean[c]
		}
	}
	return mean, cov, nil
}
