package solvers

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Where a sampler that runs from noise to data starts (the Init field of DiffusionConfig,
// DDPMConfig, RTKConfig and RFConfig).
//
// The usual start — N(0, σ_max² I) for the VE solvers, N(0, I) at the horizon T of the OU
// process — approximates the law of the noised data, p0 noised to the start, by a centred
// Gaussian. The approximation ignores the data's mean μ and covariance: it biases the samples by
// about |μ|·s/σ_max (VE, s the data's scale) or |μ|e^{−T} (OU), whatever the number of steps; on
// a mixture whose modes lie far from the origin the mean and the mode weights come out wrong. A
// target whose noised law is known exactly (a Gaussian mixture noised is a mixture; a data set
// noised is a data point plus Gaussian noise) starts from that law instead, by default.
const (
	// InitExact starts from the exact law of the noised target, a·x0 + √s·ξ with x0 ~ p0 (the
	// default; an error for a denoiser that cannot draw it — use InitPrior there).
	InitExact = "exact"
	// InitPrior starts from the textbook Gaussian: σ_0 ξ (VE), ξ (OU at T, rectified flow at t = 0).
	InitPrior = "prior"
)

// Inits returns the starts a sampler's Init takes.
func Inits() []string { return []string{InitExact, InitPrior} }

// checkInit validates an Init value ("" is InitExact) and returns it.
func checkInit(init string) (string, error) {
	switch init {
	case "", InitExact:
		return InitExact, nil
	case InitPrior:
		return InitPrior, nil
	}
	return "", fmt.Errorf("init %q: want %q (the exact noised law, the default) or %q (the Gaussian prior)", init, InitExact, InitPrior)
}

// NoisedSampler is implemented by denoisers that can draw exact samples of their data noised as
// x = a·x0 + √s·ξ, x0 ~ p0, ξ ~ N(0, I) independent (the start InitExact uses). TargetDenoiser's
// denoisers implement it for every target (see SampleNoised).
type NoisedSampler interface {
	// SampleNoised writes n samples (row-major, n·Dim() values) of a·x0 + √s·ξ into dst; sample i
	// is chain first + i of the draw keyed by seed (see SampleNoised for the layout).
	SampleNoised(dst []float64, a, s float64, seed, first uint64) error
}

// SampleNoised returns n exact samples (row-major, (n, d)) of the target t noised as a·x0 + √s·ξ:
//
//	gmm        component k with probability w_k, then x = a μ_k + U_k diag(sqrt(a² λ_k + s)) ξ
//	           (Σ_k = U_k diag(λ_k) U_kᵀ; U_k = I unless the covariance is full), the exact law
//	           N(a μ_k, a² Σ_k + s I);
//	empirical  data point J uniform on 1..M and kernel term q with probability π_q, then
//	           x = a y_J + sqrt(s m_q) ξ (the law whose density the empirical target evaluates);
//	mlp        the Gaussian with the data's mean μ and covariance C stored with the network,
//	           x = a μ + U diag(sqrt(a² λ + s)) ξ (C = U diag(λ) Uᵀ): N(a μ, a² C + s I), exact in
//	           its first two moments — the network's data law itself is known only through its
//	           samples, so this is the best start it provides (its error shrinks like C/σ² at a
//	           large starting level). A checkpoint without a covariance has no such start.
//
// The draws are the Philox stream keyed by seed: the component (and, for a data set, the kernel
// term) from the f64 uniforms of Site(0, PurposeInitComponent) — column 0, and column 1 for the
// term — and ξ from the f64 normals of Site(0, PurposeInit), chain first + i for sample i. Sample i
// is therefore a pure function of (seed, first + i): splitting the chains into batches reproduces
// the same starts. a must be finite and s a finite number ≥ 0.
func SampleNoised(t target.Target, n int, a, s float64, seed, first uint64) ([]float64, error) {
	const op = "sample noised"
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	out := make([]float64, n*t.Dim())
	if err := sampleNoised(t, out, n, a, s, seed, first); err != nil {
		return nil, err
	}
	return out, nil
}

func sampleNoised(t target.Target, dst []float64, n int, a, s float64, seed, first uint64) error {
	const op = "sample noised"
	if math.IsNaN(a) || math.IsInf(a, 0) || !(s >= 0) || math.IsInf(s, 0) {
		return fmt.Errorf("%s: a = %g, s = %g: want a finite scale and a finite variance ≥ 0", op, a, s)
	}
	if err := checkChains(op, n, first); err != nil {
		return err
	}
	d := t.Dim()
	if len(dst) != n*d {
		return fmt.Errorf("%s: destination of %d values for %d samples of dimension %d", op, len(dst), n, d)
	}
	u, z, err := startDraws(n, d, seed, first)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch tt := t.(type) {
	case target.GMM:
		mixtureDraws(dst, tt.Mixture.Params(), a, s, u, z, 2)
		return nil
	case target.Empirical:
		e := tt.DataSet
		logPi, scales := e.Mixture()
		cum := cumulative(logPi)
		m := e.Points()
		for i := 0; i < n; i++ {
			j := min(int(u[2*i]*float64(m)), m-1)
			q := pick(cum, u[2*i+1])
			sd := math.Sqrt(s * scales[q])
			row, zi := dst[i*d:(i+1)*d], z[i*d:(i+1)*d]
			for c := range row {
				row[c] = a*e.At(j, c) + sd*zi[c]
			}
		}
		return nil
	case target.MLP:
		return gaussianDraws(dst, mlpMean(tt.Net), tt.Cov, a, s, z, t)
	}
	return fmt.Errorf("%s: target %s: no exact sampler of its noised law", op, t)
}

// startDraws returns the draws of a start: two f64 uniforms (Site(0, PurposeInitComponent)) and
// d f64 normals (Site(0, PurposeInit)) per chain, on the CPU reference.
func startDraws(n, d int, seed, first uint64) (u, z []float64, err error) {
	ut, err := tensor.New(tensor.CPU(), tensor.F64, n, 2)
	if err != nil {
		return nil, nil, err
	}
	zt, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	if err != nil {
		return nil, nil, err
	}
	b := ops.CPU()
	if err := b.Uniform(ut, drawAt(seed, 0, PurposeInitComponent, first)); err != nil {
		return nil, nil, fmt.Errorf("component uniforms: %w", err)
	}
	if err := b.Normal(zt, drawAt(seed, 0, PurposeInit, first)); err != nil {
		return nil, nil, fmt.Errorf("normals: %w", err)
	}
	u, _ = ut.F64()
	z, _ = zt.F64()
	return u, z, nil
}

// cumulative returns the running sums of exp(logW).
func cumulative(logW []float64) []float64 {
	cum := make([]float64, len(logW))
	acc := 0.0
	for k, lw := range logW {
		acc += math.Exp(lw)
		cum[k] = acc
	}
	return cum
}

// pick returns the first k with u < cum[k] (the last one when rounding leaves u ≥ the total).
func pick(cum []float64, u float64) int {
	for k, c := range cum {
		if u < c {
			return k
		}
	}
	return len(cum) - 1
}

// mixtureDraws writes the samples a μ_k + U_k diag(sqrt(a² λ_k + s)) ξ of the mixture p noised
// as a·x0 + √s·ξ: sample i takes its component from uniform u[stride·i] and its ξ from z[i·d:].
func mixtureDraws(dst []float64, p ops.GMMParams, a, s float64, u, z []float64, stride int) {
	d := p.D
	cum := cumulative(p.LogWeights)
	n := len(dst) / d
	for i := 0; i < n; i++ {
		k := pick(cum, u[stride*i])
		row, zi := dst[i*d:(i+1)*d], z[i*d:(i+1)*d]
		mu := p.Means[k*d : (k+1)*d]
		switch p.Kind {
		case ops.Isotropic:
			sd := math.Sqrt(a*a*p.Lambda[k] + s)
			for j := range row {
				row[j] = a*mu[j] + sd*zi[j]
			}
		case ops.Diagonal:
			for j := range row {
				row[j] = a*mu[j] + math.Sqrt(a*a*p.Lambda[k*d+j]+s)*zi[j]
			}
		default: // full
			uk := p.U[k*d*d : (k+1)*d*d]
			for r := range row {
				v := a * mu[r]
				for c := 0; c < d; c++ {
					v += uk[r*d+c] * math.Sqrt(a*a*p.Lambda[k*d+c]+s) * zi[c]
				}
				row[r] = v
			}
		}
	}
}

// noisedStart fills x (n, d) on b's device with the start of a sampler: with InitExact the exact
// law of den's data noised as a·x0 + √s·ξ (den must be a NoisedSampler), with InitPrior the
// Gaussian priorScale·ξ. ξ is the same draw in both (Site(0, PurposeInit)), so the prior start is
// the one the samplers always had.
func noisedStart(b ops.Backend, den Denoiser, init string, x *tensor.Tensor, a, s, priorScale float64, seed, first uint64) error {
	if init == InitPrior {
		if err := b.Normal(x, drawAt(seed, 0, PurposeInit, first)); err != nil {
			return fmt.Errorf("initial state: %w", err)
		}
		if priorScale != 1 {
			if err := b.Combine(x, []ops.Term{{T: x, C: priorScale}}, 0, ops.Draw{}); err != nil {
				return fmt.Errorf("initial state: %w", err)
			}
		}
		return nil
	}
	ns, ok := den.(NoisedSampler)
	if !ok {
		return fmt.Errorf("initial state: %s cannot draw its noised law exactly (the default start): start from the Gaussian prior with Init %q (--init %s)",
			den, InitPrior, InitPrior)
	}
	n, d := x.Dim(0), x.Dim(1)
	v := make([]float64, n*d)
	if err := ns.SampleNoised(v, a, s, seed, first); err != nil {
		return fmt.Errorf("initial state: %w", err)
	}
	h, err := tensor.FromFloat64s(x.DType(), v, n, d)
	if err != nil {
		return fmt.Errorf("initial state: %w", err)
	}
	if err := x.CopyFrom(h); err != nil {
		return fmt.Errorf("initial state: %w", err)
	}
	return nil
}

// ouScaleVar is the noise of the OU process at time t: x_t = e^{−t} x0 + sqrt(1 − e^{−2t}) ξ.
func ouScaleVar(t float64) (a, s float64) { return math.Exp(-t), -math.Expm1(-2 * t) }

// SampleNoised draws the target's noised law (see the package function SampleNoised).
func (d targetDenoiser) SampleNoised(dst []float64, a, s float64, seed, first uint64) error {
	return sampleNoised(d.t, dst, len(dst)/max(d.t.Dim(), 1), a, s, seed, first)
}

// gaussianDraws writes x = a μ + U diag(sqrt(a² λ + s)) ξ for every row (C = U diag(λ) Uᵀ, tiny
// negative eigenvalues of a positive semi-definite C clamped to 0).
func gaussianDraws(dst, mean, cov []float64, a, s float64, z []float64, t target.Target) error {
	d := len(mean)
	if cov == nil {
		return fmt.Errorf("sample noised: target %s: its checkpoint holds no data covariance, so it has no start of its own (use the prior start)", t)
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(d, append([]float64(nil), cov...)), true) {
		return fmt.Errorf("sample noised: target %s: the data covariance has no eigendecomposition", t)
	}
	lambda := eig.Values(nil)
	var u mat.Dense
	eig.VectorsTo(&u)
	sd := make([]float64, d)
	for j, l := range lambda {
		sd[j] = math.Sqrt(a*a*math.Max(l, 0) + s)
	}
	for i := 0; i < len(dst)/d; i++ {
		row, zi := dst[i*d:(i+1)*d], z[i*d:(i+1)*d]
		for c := range row {
			v := a * mean[c]
			for j := 0; j < d; j++ {
				v += u.At(c, j) * sd[j] * zi[j]
			}
			row[c] = v
		}
	}
	return nil
}
