package ops

import (
	"container/list"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/scorekit/scorekit/tensor"
)

// Fractional Gaussian noise by the Davies–Harte method (docs/math.md §4.1).
//
// fGn of Hurst index H ∈ (0, 1) with unit steps is the stationary Gaussian sequence X_0, X_1, …
// with autocovariance
//
//	ρ(k) = ½(|k+1|^{2H} − 2|k|^{2H} + |k−1|^{2H}),   ρ(0) = 1,
//
// the increments of fractional Brownian motion B^H on the integers.
//
// The embedding. For a length n ≥ 1 let n_e be the smallest power of two ≥ max(n, 2) and
// m = 2·n_e. The circulant matrix with first row
//
//	c = (ρ(0), ρ(1), …, ρ(n_e − 1), ρ(n_e), ρ(n_e − 1), …, ρ(1))        (length m)
//
// has the n_e × n_e Toeplitz covariance of fGn as its leading block, so the first n_e values of a
// stationary circulant Gaussian sequence with covariance c — and any n ≤ n_e of them — are exact
// fGn. Its eigenvalues are λ = FFT(c), λ_j = Σ_k c_k e^{−2πi jk/m}; c is real and symmetric, so λ is
// real and λ_{m−j} = λ_j. For fGn every λ_j ≥ 0 (Craigmile 2003); the plan checks it and keeps the
// half spectrum s_j = sqrt(λ_j / m), j = 0..n_e.
//
// The draw. Path i of a call uses the standard normals ξ_0..ξ_{m−1} of chain d.FirstChain+i at
// site d.Site — columns 0..m−1 of that chain's row of Backend.Normal, in dst's precision (the f32
// and f64 streams differ). In the draw layout (philox.go) ξ_{2j} and ξ_{2j+1} are the cosine and
// sine branch of one Box–Muller pair. They form the Hermitian vector
//
//	W_0 = ξ_0,   W_{n_e} = ξ_1,
//	W_j = (ξ_{2j} + i ξ_{2j+1}) / √2,   W_{m−j} = conj(W_j)          (1 ≤ j < n_e)
//
// and
//
//	Z_k = Σ_{j=0}^{m−1} s_j W_j e^{−2πi jk/m}                          (the forward FFT of s∘W)
//	    = s_0 ξ_0 + (−1)^k s_{n_e} ξ_1 + √2 Σ_{j=1}^{n_e−1} s_j (ξ_{2j} cos θ_jk + ξ_{2j+1} sin θ_jk),
//	      θ_jk = 2π jk / m,
//
// is real. Since E[W_j conj(W_l)] = δ_jl and E[W_j W_j] = 0 for j ∉ {0, n_e},
// E[Z_k Z_l] = Σ_j s_j² e^{−2πi j(k−l)/m} = (1/m) Σ_j λ_j e^{−2πi j(k−l)/m} = c_{k−l}: Z is the
// circulant process, Var Z_k = ρ(0) = 1, and Z_0..Z_{n−1} is fGn of length n. The real form on the
// second line is the definition the tests evaluate literally.
//
// The output (FGNForm). With scale σ = (T/n)^H for a horizon T > 0 (σ = 1 for T = 0), the
// increments are x_k = σ Z_k, k = 0..n−1 — fGn of the grid t_k = k T/n — and the path form writes
// B(t_{k+1}) = Σ_{i=0}^{k} x_i (B(0) = 0 is not stored): fBM at t_1..t_n, Var B(t) = t^{2H}.

// MaxFGNLength is the longest fGn a plan accepts, the same on every backend: the embedding of
// length m = 2·n_e ≤ 2^24 must fit one batched FFT (MaxFFTLength), and the host spectrum stays at
// 128 MiB. (The Philox lanes of one chain would allow 2^31.)
const MaxFGNLength = MaxFFTLength / 2

// FGNPlan holds what Davies–Harte needs for one (Hurst index, length): the square roots of the
// circulant embedding's eigenvalues, computed once (docs/math.md §4.1). Plans are immutable and safe
// for concurrent use; plans of the same H and embedding size n_e share one spectrum.
type FGNPlan struct {
	hurst float64
	n     int
	spec  *fgnSpectrum
}

// fgnSpectrum is the half spectrum s_j = sqrt(λ_j / m), j = 0..n_e, of one (H, n_e).
type fgnSpectrum struct {
	ne   int
	sqrt []float64
}

// FGNForm says what FGN writes: unit-step fGn increments (the zero value), increments of a path on
// [0, Horizon] (scaled by (Horizon/n)^H), or, with Path, the fBM path B at t_k = k·Horizon/n,
// k = 1..n (cumulative sums of those increments; Horizon 0 means n, i.e. unit steps).
type FGNForm struct {
	Horizon float64
	Path    bool
}

// Scale is the factor σ = (Horizon/n)^H applied to unit-step fGn (1 when Horizon is 0).
func (f FGNForm) Scale(hurst float64, n int) float64 {
	if f.Horizon == 0 {
		return 1
	}
	return math.Pow(f.Horizon/float64(n), hurst)
}

// check validates the horizon.
func (f FGNForm) check(op string) error {
	if !(f.Horizon >= 0) || math.IsInf(f.Horizon, 0) {
		return fmt.Errorf("%s: horizon %g: must be a finite number ≥ 0 (0: unit steps)", op, f.Horizon)
	}
	return nil
}

// checkHurst validates H ∈ (0, 1).
func checkHurst(op string, hurst float64) error {
	if !(hurst > 0 && hurst < 1) {
		return fmt.Errorf("%s: hurst %g: must be in (0, 1)", op, hurst)
	}
	return nil
}

// NewFGNPlan validates H ∈ (0, 1) and 1 ≤ n ≤ MaxFGNLength and computes the plan: the eigenvalues
// λ = FFT(c) of the circulant embedding of size m = 2·n_e, in float64 with gonum's FFT, and
// s_j = sqrt(λ_j / m). An eigenvalue below −1e-12·max λ is an error (it cannot happen for fGn:
// it would mean the arithmetic failed); one in [−1e-12·max λ, 0) is rounding and is set to 0. The
// FFT of c is accurate to about log2(m)·ε·Σ|c_k| ≤ 2·log2(m)·ε·max λ (Σ|c_k| ≤ 2 max λ for fGn:
// for H ≥ ½ every c_k ≥ 0 and Σ c_k = λ_0; for H < ½ Σ|c_k| < 2 ≤ 2 max λ since the mean of the
// λ_j is c_0 = 1), below 1.5e-14·max λ for every supported m, so the allowance is 70 times
// the rounding. The spectrum is cached per (H, n_e) in a small process-wide cache (see
// fgnCacheEntries), so plans for one H and lengths with the same n_e cost one computation.
func NewFGNPlan(hurst float64, n int) (*FGNPlan, error) {
	if err := checkHurst("fgn plan", hurst); err != nil {
		return nil, err
	}
	if n < 1 || n > MaxFGNLength {
		return nil, fmt.Errorf("fgn plan: length %d: must be in [1, %d]", n, MaxFGNLength)
	}
	ne := fgnEmbedSize(n)
	spec, err := fgnSpectrumFor(hurst, ne)
	if err != nil {
		return nil, fmt.Errorf("fgn plan: hurst %g, n %d: %w", hurst, n, err)
	}
	return &FGNPlan{hurst: hurst, n: n, spec: spec}, nil
}

// Hurst is the plan's Hurst index H.
func (p *FGNPlan) Hurst() float64 { return p.hurst }

// N is the length n of the fGn the plan draws (the width of FGN's destination).
func (p *FGNPlan) N() int { return p.n }

// EmbedSize is n_e, the smallest power of two ≥ max(n, 2); the circulant has size m = 2·n_e and a
// path uses m normals.
func (p *FGNPlan) EmbedSize() int { return p.spec.ne }

// SqrtEigenvalues returns s_j = sqrt(λ_j / m), j = 0..n_e (the half spectrum; s_{m−j} = s_j). The
// slice is shared by every plan of the same (H, n_e) and must not be modified.
func (p *FGNPlan) SqrtEigenvalues() []float64 { return p.spec.sqrt }

// fgnEmbedSize is n_e for length n ≥ 1: the smallest power of two ≥ max(n, 2).
func fgnEmbedSize(n int) int {
	if n <= 2 {
		return 2
	}
	return 1 << bits.Len(uint(n-1))
}

// fgnSeriesFrom is the first lag at which fgnACF uses the series instead of the closed form.
const fgnSeriesFrom = 8

// fgnACF is ρ(k) for H = hurst and k ≥ 0. The closed form is a second difference of k^{2H} that
// loses about log2(k^{2H}/|ρ(k)|) bits to cancellation (at k = 2^20 and H = 0.9 that is 16 of 53
// bits, enough to turn a small eigenvalue of the embedding negative), so for k ≥ 8 it is evaluated
// as the convergent series
//
//	ρ(k) = k^{2H} Σ_{j≥1} C(2H, 2j) k^{−2j}
//
// (½((1+x)^a + (1−x)^a − 2) with x = 1/k, a = 2H, expanded binomially), which is accurate to a few
// ulp: its terms decrease at least as fast as k^{−2j} (64^{−j} at k = 8).
func fgnACF(hurst float64, k int) float64 {
	a := 2 * hurst
	if k < fgnSeriesFrom {
		x := float64(k)
		return 0.5 * (math.Pow(x+1, a) - 2*math.Pow(x, a) + math.Pow(math.Abs(x-1), a))
	}
	x := float64(k)
	x2 := 1 / (x * x)
	sum, binom, pow := 0.0, 1.0, 1.0
	for j := 1; j <= 64; j++ {
		i := float64(2 * j)
		binom *= (a - i + 2) * (a - i + 1) / ((i - 1) * i) // C(a, 2j) from C(a, 2j−2)
		pow *= x2
		t := binom * pow
		sum += t
		if math.Abs(t) <= 1e-17*math.Abs(sum) {
			break
		}
	}
	return math.Pow(x, a) * sum
}

// fgnEigenAllowance is the rounding allowance of the embedding's eigenvalues, relative to the
// largest (see NewFGNPlan).
const fgnEigenAllowance = 1e-12

// circulantSqrtSpectrum returns s_j = sqrt(λ_j / m), j = 0..ne, for the circulant of size m = 2·ne
// with first row (acf(0), …, acf(ne), acf(ne−1), …, acf(1)), λ its FFT (computed in float64 by
// gonum's real FFT). Eigenvalues in [−fgnEigenAllowance·max λ, 0) are set to 0; a more negative
// one is an error naming it: the covariance has no nonnegative circulant embedding of this size.
func circulantSqrtSpectrum(acf func(k int) float64, ne int) ([]float64, error) {
	m := 2 * ne
	c := make([]float64, m)
	for k := 0; k <= ne; k++ {
		c[k] = acf(k)
	}
	for k := 1; k < ne; k++ {
		c[m-k] = c[k]
	}
	coeff := fourier.NewFFT(m).Coefficients(nil, c) // λ_0..λ_{ne}; imaginary parts ≈ 0
	maxLambda := 0.0
	for _, v := range coeff {
		maxLambda = math.Max(maxLambda, real(v))
	}
	if !(maxLambda > 0) || math.IsInf(maxLambda, 0) {
		return nil, fmt.Errorf("circulant embedding of size %d: largest eigenvalue %g is not a positive number", m, maxLambda)
	}
	floor := -fgnEigenAllowance * maxLambda
	s := make([]float64, ne+1)
	for j, v := range coeff {
		lambda := real(v)
		switch {
		case math.IsNaN(lambda):
			return nil, fmt.Errorf("circulant embedding of size %d: eigenvalue λ_%d is NaN", m, j)
		case lambda < floor:
			return nil, fmt.Errorf("circulant embedding of size %d: eigenvalue λ_%d = %.6g is negative "+
				"(below the rounding allowance −%g·max λ = %.3g): no nonnegative embedding", m, j, lambda, fgnEigenAllowance, floor)
		case lambda < 0:
			lambda = 0
		}
		s[j] = math.Sqrt(lambda / float64(m))
	}
	return s, nil
}

// The spectrum cache: at most fgnCacheEntries spectra and fgnCacheBytes of them, least recently
// used evicted first; a spectrum larger than the byte bound is computed and not cached. Plans keep
// their spectrum alive whatever the cache does.
const (
	fgnCacheEntries = 32
	fgnCacheBytes   = 256 << 20
)

type fgnKey struct {
	hurst float64
	ne    int
}

type fgnEntry struct {
	key  fgnKey
	spec *fgnSpectrum
}

var fgnCache = struct {
	sync.Mutex
	items map[fgnKey]*list.Element
	order *list.List // front: most recently used
	bytes int
}{items: map[fgnKey]*list.Element{}, order: list.New()}

// fgnSpectrumFor returns the cached spectrum of (hurst, ne), computing it on a miss (outside the
// lock: two callers missing at once may both compute; the first to finish is kept).
func fgnSpectrumFor(hurst float64, ne int) (*fgnSpectrum, error) {
	key := fgnKey{hurst, ne}
	fgnCache.Lock()
	if e, ok := fgnCache.items[key]; ok {
		fgnCache.order.MoveToFront(e)
		spec := e.Value.(*fgnEntry).spec
		fgnCache.Unlock()
		return spec, nil
	}
	fgnCache.Unlock()

	s, err := circulantSqrtSpectrum(func(k int) float64 { return fgnACF(hurst, k) }, ne)
	if err != nil {
		return nil, err
	}
	spec := &fgnSpectrum{ne: ne, sqrt: s}
	size := 8 * len(s)
	if size > fgnCacheBytes {
		return spec, nil
	}

	fgnCache.Lock()
	defer fgnCache.Unlock()
	if e, ok := fgnCache.items[key]; ok {
		fgnCache.order.MoveToFront(e)
		return e.Value.(*fgnEntry).spec, nil
	}
	fgnCache.items[key] = fgnCache.order.PushFront(&fgnEntry{key, spec})
	fgnCache.bytes += size
	for fgnCache.order.Len() > fgnCacheEntries || fgnCache.bytes > fgnCacheBytes {
		e := fgnCache.order.Back()
		old := e.Value.(*fgnEntry)
		fgnCache.order.Remove(e)
		delete(fgnCache.items, old.key)
		fgnCache.bytes -= 8 * len(old.spec.sqrt)
	}
	return spec, nil
}

// CheckFGN validates FGN's arguments: a plan, a form with a finite horizon ≥ 0, and dst a 2-D
// (paths, p.N()) tensor on dev with FirstChain+paths within MaxChains.
func CheckFGN(dev tensor.Device, dst *tensor.Tensor, p *FGNPlan, form FGNForm, d Draw) error {
	if p == nil {
		return fmt.Errorf("fgn: plan is nil")
	}
	if err := form.check("fgn"); err != nil {
		return err
	}
	if err := checkFill("fgn", dev, dst, d); err != nil {
		return err
	}
	if dst.Dim(1) != p.n {
		return fmt.Errorf("fgn: destination shape %v: want (paths, %d) for the plan's length n = %d", dst.Shape(), p.n, p.n)
	}
	return nil
}

// FGN is the reference of Backend.FGN: for each path i (chain d.FirstChain+i), with ξ the chain's
// m normals at d.Site in dst's precision (normalRow) and s the plan's half spectrum, it forms
// V_j = s_j W_j (the Hermitian vector above) and Z = FFT(V), all in float64, then writes
// x_k = σ Z_k (σ = form.Scale) or, for form.Path, B_{k+1} = Σ_{i≤k} x_i summed left to right in
// float64, rounding once to dst's dtype. Since V is Hermitian, Z_k = Σ_j conj(V_j) e^{+2πi jk/m}:
// the code evaluates it as gonum's inverse real FFT (fourier.FFT.Sequence, unnormalised) of
// conj(V_0..V_{n_e}), half the work of a complex FFT of length m and the same numbers up to
// rounding (TestFGNMatchesDefinition checks it against the real form above, term by term).
// f32: the normals are the float32 stream, widened exactly; only the outputs are rounded to
// float32.
func (b cpuBackend) FGN(dst *tensor.Tensor, p *FGNPlan, form FGNForm, d Draw) error {
	if err := CheckFGN(tensor.CPU(), dst, p, form, d); err != nil {
		return err
	}
	paths, n := dst.Dim(0), dst.Dim(1)
	if paths == 0 {
		return nil
	}
	ne := p.spec.ne
	m := 2 * ne
	s := p.spec.sqrt
	sigma := form.Scale(p.hurst, n)
	f32 := dst.DType() == tensor.F32
	out := rowsOf(dst)
	b.parallelRows(paths, m*(24+bits.Len(uint(m))), func(lo, hi int) {
		fft := fourier.NewFFT(m)
		xi := make([]float64, m)
		coeff := make([]complex128, ne+1)
		z := make([]float64, m)
		for i := lo; i < hi; i++ {
			normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), f32)
			fgnHalfSpectrum(coeff, s, xi)
			fft.Sequence(z, coeff)
			x := z[:n]
			sum := 0.0
			for k := range x {
				x[k] *= sigma
				if form.Path {
					sum += x[k]
					x[k] = sum
				}
			}
			out.set(i, x)
		}
	})
	return nil
}

// fgnHalfSpectrum writes conj(V_j), j = 0..n_e, into coeff from the half spectrum s (n_e+1 values)
// and the normals xi (2·n_e values): V_0 = s_0 ξ_0, V_{n_e} = s_{n_e} ξ_1 and
// V_j = s_j (ξ_{2j} + i ξ_{2j+1}) / √2.
func fgnHalfSpectrum(coeff []complex128, s, xi []float64) {
	ne := len(s) - 1
	coeff[0] = complex(s[0]*xi[0], 0)
	coeff[ne] = complex(s[ne]*xi[1], 0)
	for j := 1; j < ne; j++ {
		w := s[j] / math.Sqrt2
		coeff[j] = complex(w*xi[2*j], -w*xi[2*j+1])
	}
}
