package optest

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The noise ops: FFT, FGN, MAFBM, Stable and Brownian. Each check runs the op on a backend inside
// guard bands and on the CPU reference from the same inputs and draw, and compares them within the
// tolerance derived below for that op.

// hostRun runs op on a fresh host tensor of the given shape (the CPU reference's side of a check)
// and returns its values.
func hostRun(dt tensor.DType, op func(*tensor.Tensor) error, shape ...int) ([]float64, error) {
	h, err := tensor.New(nil, dt, shape...)
	if err != nil {
		return nil, err
	}
	if err := op(h); err != nil {
		return nil, err
	}
	return h.Float64s()
}

// unitRoundoff is u of dt: 2^-24 (float32) or 2^-53 (float64).
func unitRoundoff(dt tensor.DType) float64 { return pick(dt, 0x1p-24, 0x1p-53) }

// ulp1 is the unit in the last place of 1 in dt: 2^-23 (float32) or 2^-52 (float64).
func ulp1(dt tensor.DType) float64 { return pick(dt, 0x1p-23, 0x1p-52) }

// normalRtol is the normals' tolerance against the reference (NormalF32 or NormalF64).
func normalRtol(dt tensor.DType) float64 { return pick(dt, NormalF32.Rtol, NormalF64.Rtol) }

// checkTol checks |got − ref| ≤ tol[i] element by element (equal values pass, infinities
// included; NaN never does), naming elements by row and column of width; an element still holding
// Sentinel on either side was not written.
func checkTol(got, ref, tol []float64, width int) error {
	if len(got) != len(ref) {
		return fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	for i, want := range ref {
		g := got[i]
		if err := notWritten(g, want, i/width, i%width); err != nil {
			return err
		}
		if g == want {
			continue
		}
		if d := math.Abs(g - want); !(d <= tol[i]) {
			return fmt.Errorf("row %d col %d: got %v, reference %v (|diff| %.3g > tolerance %.3g)",
				i/width, i%width, g, want, d, tol[i])
		}
	}
	return nil
}

// FFTParityC is the constant of the tolerance of FFT against the float64 reference, per complex
// output value and relative to the RMS modulus of its signal's reference output:
//
//	|got − ref| ≤ FFTParityC · FFTUnit(dt, n) · RMS,   FFTUnit = max(1, log₂n) · ε,
//	ε = 2^-23 (float32), 2^-52 (float64).
//
// A transform of length n is a cascade of log₂n butterfly levels, each rounding every value by
// about ε times the signal's RMS (the transform is unitary up to a scale), so the error grows like
// log₂n·ε·RMS, the classic bound. A radix-2^r transform emulated on the host against an
// extended-precision one (n = 1 … 2^24, both directions, in place and not) stays below
// 0.94·log₂n·ε in float32 and 0.85·log₂n·ε in float64; twiddles accurate to 1 ulp instead of
// correctly rounded and, in float64, the reference's own error (≈ 0.7·log₂n·ε measured) add to
// it: c = 3 covers the sum (≤ 1.6) with room. A wrong index, sign or twiddle gives errors of
// order RMS, six (float32) or fifteen (float64) orders above the bound.
const FFTParityC = 3

// FFTUnit is max(1, log₂n)·ε of dt, the unit of the FFT tolerance.
func FFTUnit(dt tensor.DType, n int) float64 {
	return math.Max(1, float64(bits.Len(uint(max(n, 1)))-1)) * ulp1(dt)
}

// fftGuard is the number of Sentinel elements on each side of FFT buffers: 19 complex values, an
// even element count, so that the data stay aligned to a complex value in both dtypes (a device
// backend may require it).
const fftGuard = 38

// FFTLengths and FFTBatches are the signal lengths (the identity, the smallest butterfly, one
// small and one mid-size transform, and a long one) and the batch sizes (empty, single, odd, a
// partial block) of the FFT checks. On a host-emulated device (Emulated) EmulatedFFTLengths
// replace the lengths: the long one is 2^13, still two passes in both dtypes (a CUDA tile holds
// 4096 float32 or 2048 float64 values), at an eighth of the work. So they do with -short (the
// race detector's run of make test, after the full run).
var (
	FFTLengths         = []int{1, 2, 8, 1024, 1 << 16}
	EmulatedFFTLengths = []int{1, 2, 8, 1024, 1 << 13}
	FFTBatches         = []int{0, 1, 3, 33}
)

// fftInput returns batch·n complex values as 2·batch·n interleaved floats uniform in [−1, 1),
// representable in dt.
func fftInput(dt tensor.DType, seed uint64, batch, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 0xf0f7))
	v := make([]float64, 2*batch*n)
	for i := range v {
		v[i] = 2*r.Float64() - 1
	}
	return rounded(dt, v)
}

// fftRun transforms vals (batch, n, 2) on be: src inside guard bands, dst the same view (inPlace)
// or a separate Sentinel-filled guarded tensor. Out of place, src must come back unchanged. It
// returns dst's values.
func fftRun(be ops.Backend, dt tensor.DType, vals []float64, batch, n int, inverse, inPlace bool) ([]float64, error) {
	dev := be.Device()
	src, err := NewGuarded(dev, fftGuard, dt, vals, batch, n, 2)
	if err != nil {
		return nil, err
	}
	defer src.close()
	dst := src
	if !inPlace {
		if dst, err = NewGuarded(dev, fftGuard, dt, nil, batch, n, 2); err != nil {
			return nil, err
		}
		defer dst.close()
	}
	if err := be.FFT(dst.view, src.view, inverse); err != nil {
		return nil, err
	}
	if err := dev.Synchronize(); err != nil {
		return nil, err
	}
	if !inPlace {
		sv, err := src.values("src")
		if err != nil {
			return nil, err
		}
		if err := sameValues(sv, vals, 2*n); err != nil {
			return nil, fmt.Errorf("src changed by a transform that was not in place (rows: signals): %w", err)
		}
	}
	return dst.values("dst")
}

// compareFFT checks got against ref signal by signal within FFTParityC·FFTUnit·RMS.
func compareFFT(got, ref []float64, dt tensor.DType, batch, n int) error {
	if len(got) != len(ref) {
		return fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	unit := FFTUnit(dt, n)
	for b := 0; b < batch; b++ {
		sig := ref[2*b*n : 2*(b+1)*n]
		ss := 0.0
		for _, v := range sig {
			ss += v * v
		}
		rms := math.Sqrt(ss / float64(n)) // RMS modulus of the signal's complex values
		for j := 0; j < n; j++ {
			i := 2 * (b*n + j)
			d := math.Hypot(got[i]-ref[i], got[i+1]-ref[i+1])
			if d == 0 {
				continue
			}
			if e := d / (unit * rms); !(e <= FFTParityC) { // NaN fails too
				return fmt.Errorf("signal %d value %d: got (%v, %v), reference (%v, %v): error %.3g·max(1, log₂n)·ε·RMS > %d",
					b, j, got[i], got[i+1], ref[i], ref[i+1], e, FFTParityC)
			}
		}
	}
	return nil
}

// CheckFFT compares b's FFT of batch signals of length n in dt (uniform inputs in [−1, 1)) with
// the CPU reference: forward and inverse, out of place (src must come back unchanged) and in place,
// every buffer inside guard bands, every output value within FFTParityC·FFTUnit·RMS of the
// reference's.
func CheckFFT(b ops.Backend, dt tensor.DType, batch, n int) error {
	vals := fftInput(dt, uint64(1000*n+batch), batch, n)
	for _, inverse := range []bool{false, true} {
		ref, err := hostRun(dt, func(h *tensor.Tensor) error {
			src, err := tensor.FromFloat64s(dt, vals, batch, n, 2)
			if err != nil {
				return err
			}
			return ops.Reference().FFT(h, src, inverse)
		}, batch, n, 2)
		if err != nil {
			return fmt.Errorf("inverse %v: reference: %w", inverse, err)
		}
		for _, inPlace := range []bool{false, true} {
			got, err := fftRun(b, dt, vals, batch, n, inverse, inPlace)
			if err == nil {
				err = compareFFT(got, ref, dt, batch, n)
			}
			if err != nil {
				return fmt.Errorf("inverse %v, in place %v: %w", inverse, inPlace, err)
			}
		}
	}
	return nil
}

// FGNRtol is the tolerance of FGN against the reference for a circulant of m points, relative to
// σ‖V_i‖₂ (below). Path i's increments are x_k = σ Z_k with Z = FFT(V), V = s∘W (ops/fgn.go),
// and a backend may differ from the float64 reference in
//   - the FFT's rounding: transformed in the destination's precision u (2^-24 or 2^-53), an FFT of
//     length m errs by about √log₂m·u·‖V‖₂ per output on average and below log₂m·u·‖V‖₂ at the
//     worst of many outputs (an emulated float32 radix-2 FFT: 0.65·log₂m·u·‖V‖₂ at most over 2^21
//     outputs of m = 2^17), where ‖V‖₂ is the RMS of Z (Parseval: Σ_k |Z_k|² = m ‖V‖₂²); bound
//     used 4·log₂m·u·‖V‖₂;
//   - the inputs: normals equal to the reference's (NormalF32, NormalF64) and s rounded once to the
//     dtype (u/2). The FFT spreads these independent perturbations over its outputs with RMS at
//     most the RMS relative perturbation times ‖V‖₂ (Parseval again) and a maximum a few times
//     that; bound used 2e-7·‖V‖₂ (float32) or 1e-15·‖V‖₂ (float64), about 7 times u/2;
//   - the final rounding of the stored value, u·|x_k| on each side.
//
// Increments: |got − ref| ≤ FGNRtol(dt, m)·σ‖V_i‖₂ + 2u·|ref|, ‖V_i‖₂ computed from the
// reference's normals for the pair of paths i belongs to (FGNRowNorms: a backend may transform two
// paths as one complex signal).
//
// Paths (B_{k+1} = Σ_{l≤k} x_l, S_k = Σ_{l≤k} |x_l|), to first order in u:
//   - the increments a backend sums: each within the increment bound of σZ_l, plus its own
//     roundings (a scale rounded to the element type and the product, or the stored increment):
//     (k+1)·FGNRtol·σ‖V_i‖₂ + 2u·S_k (no cancellation assumed);
//   - their summation in the element type in whatever order the backend chooses: any evaluation
//     of a sum of k+1 terms by k additions errs by at most k·u·S_k (every partial sum is at most
//     S_k; Higham, Accuracy and Stability of Numerical Algorithms, §4.2);
//   - the reference's float64 sum (k·2^-53·S_k ≤ k·u·S_k) and its rounding to the dtype, and a
//     backend's own final rounding when it sums in a wider type: 2u·|ref|.
//
// Total (k+1)·FGNRtol·σ‖V_i‖₂ + (2k+2)·u·S_k + 2u·|ref|, checked with 3(k+1)·u·S_k: the margin
// covers the higher orders (k·u ≤ 6.1e-5 at the suite's lengths). The summation term holds any
// order to its worst case; the CUDA tests hold the GPU's scan to its own, tighter bound, and in
// float64 this one is already below 1e-12 of S_k at n = 1024.
func FGNRtol(dt tensor.DType, m int) float64 {
	lg := float64(bits.Len(uint(m)) - 1)
	return 4*lg*unitRoundoff(dt) + pick(dt, 2e-7, 1e-15)
}

// FGNLengths, FGNPaths, FGNHursts and FGNForms are the cases of the FGN checks: lengths whose
// embedding is the smallest (n = 1, 3: n_e = 2, 4), one just below and one at a power of two;
// no path, one and a partial block; rough, Brownian and smooth noise; unit-step and horizon
// increments and paths.
var (
	FGNLengths = []int{1, 3, 1000, 1024}
	FGNPaths   = []int{0, 1, 33}
	FGNHursts  = []float64{0.1, 0.5, 0.9}
	FGNForms   = []ops.FGNForm{{}, {Horizon: 2}, {Path: true}, {Horizon: 2, Path: true}}
)

// FGNRowNorms returns, for every path of the draw (dt's normal stream), σ·‖V‖₂ of the transform
// that carries it when paths are transformed in pairs, σ·(‖V_{2q}‖₂² + ‖V_{2q+1}‖₂²)^½ for paths
// 2q and 2q + 1 (σ‖V_{2q}‖₂ for a last path without partner): a backend may transform
// V_{2q} + i V_{2q+1} as one complex signal (ops/cuda does), whose rounding is relative to that
// norm, at most √2 times the larger path norm (and about that for paths of equal statistics).
func FGNRowNorms(dt tensor.DType, p *ops.FGNPlan, paths int, sigma float64, d ops.Draw) ([]float64, error) {
	ne := p.EmbedSize()
	s := p.SqrtEigenvalues()
	xi, err := RefNormals(dt, paths, 2*ne, d)
	if err != nil {
		return nil, err
	}
	out := make([]float64, paths)
	for i := range out {
		row := xi[i*2*ne : (i+1)*2*ne]
		ss := s[0]*s[0]*row[0]*row[0] + s[ne]*s[ne]*row[1]*row[1]
		for j := 1; j < ne; j++ {
			ss += s[j] * s[j] * (row[2*j]*row[2*j] + row[2*j+1]*row[2*j+1]) // |V_j|² + |V_{m−j}|²
		}
		out[i] = ss
	}
	for q := 0; q < paths; q += 2 {
		ss := out[q]
		if q+1 < paths {
			ss += out[q+1]
			out[q+1] = sigma * math.Sqrt(ss)
		}
		out[q] = sigma * math.Sqrt(ss)
	}
	return out, nil
}

// CheckFGN compares b's FGN (Hurst index hurst, length n, paths paths, form, draw d) in dt with the
// CPU reference: dst inside guard bands, every value within the FGNRtol bound (increments, or
// paths with the summation terms).
func CheckFGN(b ops.Backend, dt tensor.DType, hurst float64, n, paths int, form ops.FGNForm, d ops.Draw) error {
	p, err := ops.NewFGNPlan(hurst, n)
	if err != nil {
		return err
	}
	dev := b.Device()
	g, err := NewGuarded(dev, guard, dt, nil, paths, n)
	if err != nil {
		return err
	}
	defer g.close()
	if err := b.FGN(g.view, p, form, d); err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	got, err := g.values("dst")
	if err != nil {
		return err
	}
	ref, err := hostRun(dt, func(h *tensor.Tensor) error { return ops.Reference().FGN(h, p, form, d) }, paths, n)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	norms, err := FGNRowNorms(dt, p, paths, form.Scale(hurst, n), d)
	if err != nil {
		return err
	}
	var inc []float64 // the reference's increments of a path form
	if form.Path {
		incForm := form
		incForm.Path = false
		if inc, err = hostRun(dt, func(h *tensor.Tensor) error { return ops.Reference().FGN(h, p, incForm, d) }, paths, n); err != nil {
			return fmt.Errorf("reference increments: %w", err)
		}
	}
	rtol, u := FGNRtol(dt, 2*p.EmbedSize()), unitRoundoff(dt)
	tol := make([]float64, len(ref))
	for i := 0; i < paths; i++ {
		sum := 0.0 // S_k
		for k := 0; k < n; k++ {
			e := i*n + k
			if !form.Path {
				tol[e] = rtol*norms[i] + 2*u*math.Abs(ref[e])
				continue
			}
			sum += math.Abs(inc[e])
			tol[e] = float64(k+1)*rtol*norms[i] + float64(3*(k+1))*u*sum + 2*u*math.Abs(ref[e])
		}
	}
	if err := checkTol(got, ref, tol, n); err != nil {
		return fmt.Errorf("(rows: paths) %w", err)
	}
	return nil
}

// Tolerances of MAFBM and Brownian relative to an output's majorant M. Both accumulate in float64
// from the normals, which equal the reference's (NormalF32, NormalF64); normals within a relative
// tolerance of them would move an output by at most that fraction of M, the same recursion run on
// magnitudes:
//
//	MAFBM:    Ā_r ← decay_r Ā_r + Σ_{j≤r} |L_rj| |ξ_j| from Ā = |y0|, M = Σ_r |ω_r| Ā_r (the state y
//	          against Ā itself);
//	Brownian: M = √h (Σ_{q<m} |ξ_{eτ+q}| + (m/τ) Σ_{q<τ} |ξ_{eτ+q}|) at in-epoch step m (the whole
//	          path one epoch when τ = 0), for increments the sum of M at the point and the one
//	          before;
//
// plus the rounding of the float64 arithmetic in another order (a few 1e-16 of M) and of the
// stored value (one float32 ulp of |value| ≤ M on each side). Checked at
// 2·(normal tolerance)·M + 2.5e-7·M (float32), 2·(normal tolerance)·M + 2e-14·M (MAFBM float64)
// and 2·(normal tolerance)·M + 4e-14·M (Brownian float64, whose bridges subtract (m/τ)·L_τ); the
// normal tolerance is 0.
var (
	MAFBMF32    = 2*NormalF32.Rtol + 2.5e-7
	MAFBMF64    = 2*NormalF64.Rtol + 2e-14
	BrownianF32 = 2*NormalF32.Rtol + 2.5e-7
	BrownianF64 = 2*NormalF64.Rtol + 4e-14
)

// StableMargin is the factor by which Stable's tolerance exceeds the worst-case error bound of the
// map. Every angle is formed and reduced in float64 on every backend, so what differs is the
// transcendental functions evaluated in the data's precision. With u the unit in the last place
// (2^-23 for float32, 2^-52 for float64) and the CUDA math library's documented maximum errors
// (powf 8 ulp, sincospif 2, logf 1; pow 2, sincospi 1, log 1 in double; Go's float64 math is at
// most as far off), the map X = S·sin(πα(t+b))·[(cos(π(t − α(t+b)))/W)^{1−α} / cos(πt)]^{1/α}
// carries a relative error of at most
//
//	sin, cos of a reduced argument: 2 + ½ (argument rounded to float) = 2.5 u; W = −log(1 − u): 1 u
//	(c₁/W)^{1−α}: |1−α|·(4 u from c₁/W + 10.5 u from the float exponent times |log(c₁/W)| ≤ 21)
//	              + 8 u (powf)
//	inner = that / cos(πt): + 3 u;   inner^{1/α}: /α, + 8 u (powf) + 17/α u (exponent rounding
//	              times |log inner| ≤ 34);   × sin, × S: + 4 u
//
// that is StableUlps(α) = ((15|1−α| + 28)/α + 12) u. At α = 1 the map is
// (1 + 2βt) tan(πt) − (2β/π) log(W cos(πt)/(1 + 2βt)), whose two terms can cancel: the bound is
// 8 u·|X| + 200 u (|2β/π| ≤ 0.64 times |log| ≤ 35 at ≈ 9 u). The isotropic vector √A·G adds the
// normals' tolerance (NormalF32/F64) to half of A's bound. The check allows StableMargin = 4 times
// these worst-case bounds. Clamp counts must agree except for values within the tolerance of the
// clamp (near-ties the two sides may round to different sides of it).
const StableMargin = 4

// StableUlps is the worst-case relative error of the map of index a, in ulps (see StableMargin).
func StableUlps(a float64) float64 { return (15*math.Abs(1-a)+28)/a + 12 }

// StableTolerance returns (rtol, floor) of a spec in dt: |got − ref| ≤ rtol·(|ref| + floor).
func StableTolerance(s ops.StableSpec, dt tensor.DType) (rtol, floor float64) {
	u := ulp1(dt)
	c := s.Constants()
	switch {
	case s.Kind == ops.StableIsotropic:
		a := 0.0
		if !c.Degenerate {
			a = StableUlps(c.Alpha) / 2
		}
		return StableMargin * ((a+1)*u + normalRtol(dt)), 0
	case c.Alpha == 1:
		return StableMargin * 8 * u, 25
	}
	return StableMargin * StableUlps(c.Alpha) * u, 0
}

// StableSpecs are the laws of the Stable checks: every kind, α below, at and above 1 and at 2,
// skewness of both signs and ±1, and two clamped laws (scalar and isotropic).
func StableSpecs() []ops.StableSpec {
	return []ops.StableSpec{
		{Kind: ops.StableSymmetric, Alpha: 0.5},
		{Kind: ops.StableSymmetric, Alpha: 1},
		{Kind: ops.StableSymmetric, Alpha: 1.5},
		{Kind: ops.StableSymmetric, Alpha: 2},
		{Kind: ops.StableSkewed, Alpha: 0.7, Beta: 0.5},
		{Kind: ops.StableSkewed, Alpha: 1, Beta: 0.8},
		{Kind: ops.StableSkewed, Alpha: 1.3, Beta: -1},
		{Kind: ops.StablePositive, Alpha: 0.3},
		{Kind: ops.StablePositive, Alpha: 0.8},
		{Kind: ops.StableIsotropic, Alpha: 0.6},
		{Kind: ops.StableIsotropic, Alpha: 1.7},
		{Kind: ops.StableIsotropic, Alpha: 2},
		{Kind: ops.StableSymmetric, Alpha: 0.8, Clamp: 5},
		{Kind: ops.StableIsotropic, Alpha: 1.1, Clamp: 2},
	}
}

// CheckStable compares b's Stable draw of spec s into a (rows, dim) destination of dt with the CPU
// reference: dst inside guard bands, every value within StableTolerance, and the clamp count
// equal to the reference's up to the near-ties (values of the unclamped reference within the
// tolerance of the clamp). A clamped case of more than 1000 values must clamp something (else it
// tests no count); an unclamped one must report 0.
func CheckStable(b ops.Backend, dt tensor.DType, s ops.StableSpec, rows, dim int, d ops.Draw) error {
	dev := b.Device()
	g, err := NewGuarded(dev, guard, dt, nil, rows, dim)
	if err != nil {
		return err
	}
	defer g.close()
	count, err := b.Stable(g.view, s, d)
	if err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	got, err := g.values("dst")
	if err != nil {
		return err
	}
	var want int64
	ref, err := hostRun(dt, func(h *tensor.Tensor) error {
		var err error
		want, err = ops.Reference().Stable(h, s, d)
		return err
	}, rows, dim)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	rtol, floor := StableTolerance(s, dt)
	tol := make([]float64, len(ref))
	for i, v := range ref {
		tol[i] = rtol * (math.Abs(v) + floor)
	}
	if err := checkTol(got, ref, tol, dim); err != nil {
		return err
	}
	if s.Clamp == 0 {
		if count != 0 {
			return fmt.Errorf("no clamp, but %d values reported clamped", count)
		}
		return nil
	}
	free := s
	free.Clamp = 0
	raw, err := hostRun(dt, func(h *tensor.Tensor) error { _, err := ops.Reference().Stable(h, free, d); return err }, rows, dim)
	if err != nil {
		return fmt.Errorf("reference without clamp: %w", err)
	}
	ties := int64(0)
	for _, v := range raw {
		if math.Abs(math.Abs(v)-s.Clamp) <= rtol*(math.Abs(v)+floor) {
			ties++
		}
	}
	if diff := count - want; diff > ties || -diff > ties {
		return fmt.Errorf("clamp count %d, reference %d (%d near-ties to the clamp allowed)", count, want, ties)
	}
	if rows*dim > 1000 && want == 0 {
		return fmt.Errorf("the reference clamps none of %d values: the case tests no count", rows*dim)
	}
	return nil
}

// MAFBMMajorant returns, per path and step, M = Σ_r |ω_r| Ā_r with Ā_r ← decay_r Ā_r +
// Σ_{j≤r} |L_rj| |ξ_j| from Ā = |y0|, and the final Ā per path (ξ the reference's normals).
func MAFBMMajorant(m *ops.MAFBM, dt tensor.DType, y0 []float64, paths, steps int, h float64, d ops.Draw, stride uint64) ([]float64, []float64, error) {
	k := m.K()
	decay, l, err := m.Transition(h)
	if err != nil {
		return nil, nil, err
	}
	w := m.Weights()
	abar := make([]float64, len(y0))
	for i, v := range y0 {
		abar[i] = math.Abs(v)
	}
	out := make([]float64, paths*steps)
	for s := 0; s < steps; s++ {
		xi, err := RefNormals(dt, paths, k, ops.Draw{Seed: d.Seed, Site: d.Site + uint64(s)*stride, FirstChain: d.FirstChain})
		if err != nil {
			return nil, nil, err
		}
		for p := 0; p < paths; p++ {
			tot := 0.0
			for r := 0; r < k; r++ {
				acc := 0.0
				for j := 0; j <= r; j++ {
					acc += math.Abs(l[r*k+j]) * math.Abs(xi[p*k+j])
				}
				abar[p*k+r] = decay[r]*abar[p*k+r] + acc
				tot += math.Abs(w[r]) * abar[p*k+r]
			}
			out[p*steps+s] = tot
		}
	}
	return out, abar, nil
}

// MAFBMStates are the numbers of OU processes of the MAFBM checks: one, two, a few, and 16 (the
// most the CUDA kernel holds per path; the reference takes up to ops.MaxMAFBMStates).
var MAFBMStates = []int{1, 2, 5, 16}

// CheckMAFBM compares b's MAFBM of m over steps steps of size h for paths paths in dt (sites
// d.Site + s·stride) with the CPU reference, from a non-zero starting state y0 = 0.3 sin(0.37 e):
// dst and y inside guard bands, each within MAFBMF32/F64 of its majorant. With no steps, y must
// come back unchanged.
func CheckMAFBM(b ops.Backend, dt tensor.DType, m *ops.MAFBM, paths, steps int, h float64, d ops.Draw, stride uint64) error {
	k := m.K()
	y0 := make([]float64, paths*k)
	for i := range y0 {
		y0[i] = 0.3 * math.Sin(0.37*float64(i))
	}
	y0 = rounded(dt, y0)
	dev := b.Device()
	gd, err := NewGuarded(dev, guard, dt, nil, paths, steps)
	if err != nil {
		return err
	}
	defer gd.close()
	gy, err := NewGuarded(dev, guard, dt, y0, paths, k)
	if err != nil {
		return err
	}
	defer gy.close()
	if err := b.MAFBM(gd.view, gy.view, m, h, d, stride); err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	got, err := gd.values("dst")
	if err != nil {
		return err
	}
	gotY, err := gy.values("y")
	if err != nil {
		return err
	}
	refY, err := tensor.FromFloat64s(dt, y0, paths, k)
	if err != nil {
		return err
	}
	ref, err := hostRun(dt, func(dst *tensor.Tensor) error { return ops.Reference().MAFBM(dst, refY, m, h, d, stride) }, paths, steps)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	refYV, err := refY.Float64s()
	if err != nil {
		return err
	}
	maj, majY, err := MAFBMMajorant(m, dt, y0, paths, steps, h, d, stride)
	if err != nil {
		return err
	}
	rtol := pick(dt, MAFBMF32, MAFBMF64)
	scaled := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = rtol * x
		}
		return out
	}
	if err := checkTol(got, ref, scaled(maj), max(steps, 1)); err != nil {
		return fmt.Errorf("dst (rows: paths, cols: steps): %w", err)
	}
	if steps == 0 {
		if err := sameValues(gotY, y0, k); err != nil {
			return fmt.Errorf("y changed by a call of no steps: %w", err)
		}
		return nil
	}
	if err := checkTol(gotY, refYV, scaled(majY), k); err != nil {
		return fmt.Errorf("y (rows: paths, cols: states): %w", err)
	}
	return nil
}

// BrownianMajorant returns per path and point the bound's scale M (see MAFBMF32): √h (Σ_{q<m} |ξ|
// + (m/τ) Σ_epoch |ξ|), and for increments the sum of that scale at the point and at the one before.
func BrownianMajorant(dt tensor.DType, paths, n int, s ops.BrownianSpec, d ops.Draw) ([]float64, error) {
	cols := int(s.Normals(n))
	xi, err := RefNormals(dt, paths, cols, d)
	if err != nil {
		return nil, err
	}
	sh := math.Sqrt(s.Horizon / float64(n))
	seg := n
	if s.Epoch > 0 {
		seg = s.Epoch
	}
	out := make([]float64, paths*n)
	for p := 0; p < paths; p++ {
		prev := 0.0
		for e0 := 0; e0 < n; e0 += seg {
			total := 0.0
			if s.Epoch > 0 {
				for q := 0; q < seg; q++ {
					total += math.Abs(xi[p*cols+e0+q])
				}
			}
			run := 0.0
			for m := 1; m <= seg && e0+m <= n; m++ {
				run += math.Abs(xi[p*cols+e0+m-1])
				v := sh * (run + float64(m)/float64(seg)*total)
				if s.Increments {
					v, prev = v+prev, v
				}
				out[p*n+e0+m-1] = v
			}
		}
	}
	return out, nil
}

// BrownianEpochs are the epochs of the Brownian checks: none, shorter than a warp, one warp, odd,
// and longer than most of the suite's paths.
var BrownianEpochs = []int{0, 3, 32, 50, 500}

// CheckBrownian compares b's Brownian of spec s for paths paths of n points in dt with the CPU
// reference: dst inside guard bands, every value within BrownianF32/F64 of its majorant, and
// bridges (τ > 0, not increments) exactly 0 at every multiple of τ.
func CheckBrownian(b ops.Backend, dt tensor.DType, s ops.BrownianSpec, paths, n int, d ops.Draw) error {
	dev := b.Device()
	g, err := NewGuarded(dev, guard, dt, nil, paths, n)
	if err != nil {
		return err
	}
	defer g.close()
	if err := b.Brownian(g.view, s, d); err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	got, err := g.values("dst")
	if err != nil {
		return err
	}
	ref, err := hostRun(dt, func(h *tensor.Tensor) error { return ops.Reference().Brownian(h, s, d) }, paths, n)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	maj, err := BrownianMajorant(dt, paths, n, s, d)
	if err != nil {
		return err
	}
	rtol := pick(dt, BrownianF32, BrownianF64)
	for i := range maj {
		maj[i] *= rtol
	}
	if err := checkTol(got, ref, maj, n); err != nil {
		return fmt.Errorf("(rows: paths, cols: points) %w", err)
	}
	if s.Epoch > 0 && !s.Increments {
		for p := 0; p < paths; p++ {
			for k := s.Epoch; k <= n; k += s.Epoch {
				if v := got[p*n+k-1]; v != 0 {
					return fmt.Errorf("row %d col %d: %v at the end of an epoch, want exactly 0", p, k-1, v)
				}
			}
		}
	}
	return nil
}

// BrownianIntervalDepths are the tree depths RunNoise checks BrownianIncrements at: the root
// only, one level, a common depth, the deepest on one site, and two past it (on later sites).
var BrownianIntervalDepths = []int{0, 1, 20, 33, 34, 40}

// BrownianQueries returns q deterministic queries (s_j, t_j) per row for rows rows on [0, T] with
// 0 ≤ s < t ≤ T: the whole horizon, short steps off the grid, steps shorter than half a grid
// cell, the root's midpoint, and random pairs.
func BrownianQueries(spec ops.BrownianIntervalSpec, rows, q int, seed uint64) (s, t []float64) {
	rng := rand.New(rand.NewPCG(seed, 0xb1))
	T := spec.Horizon
	s, t = make([]float64, rows*q), make([]float64, rows*q)
	for i := range s {
		switch i % 5 {
		case 0:
			s[i], t[i] = 0, T
		case 1:
			s[i] = rng.Float64() * 0.9 * T
			t[i] = s[i] + T*(1e-9+rng.Float64()*1e-3)
		case 2:
			s[i] = T / 2
			t[i] = s[i] + 0.3*spec.Resolution()
		default:
			a, b := rng.Float64()*T, rng.Float64()*T
			s[i], t[i] = min(a, b), max(a, b)
			if s[i] == t[i] {
				s[i] = 0
			}
		}
	}
	return s, t
}

// CheckBrownianIncrements compares b's BrownianIncrements of spec for paths paths of q queries
// (BrownianQueries; times of shape (1, q) when shared) in dt with the CPU reference, bit for bit:
// the GPU kernel performs the reference's float64 operations on bit-identical normals. dst lies
// inside guard bands, and the times must come back unchanged.
func CheckBrownianIncrements(b ops.Backend, dt tensor.DType, spec ops.BrownianIntervalSpec, paths, q int, shared bool, d ops.Draw) error {
	dev := b.Device()
	rows := paths
	if shared {
		rows = 1
	}
	sv, tv := BrownianQueries(spec, rows, q, d.Seed)
	st, err := NewGuarded(dev, guard, tensor.F64, sv, rows, q)
	if err != nil {
		return err
	}
	defer st.close()
	tt, err := NewGuarded(dev, guard, tensor.F64, tv, rows, q)
	if err != nil {
		return err
	}
	defer tt.close()
	g, err := NewGuarded(dev, guard, dt, nil, paths, q)
	if err != nil {
		return err
	}
	defer g.close()
	if err := b.BrownianIncrements(g.view, st.view, tt.view, spec, d); err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	got, err := g.values("dst")
	if err != nil {
		return err
	}
	for _, x := range []struct {
		name string
		g    Guarded
		want []float64
	}{{"s", st, sv}, {"t", tt, tv}} {
		v, err := x.g.values(x.name)
		if err != nil {
			return err
		}
		if err := sameValues(v, x.want, q); err != nil {
			return fmt.Errorf("query times %s changed: %w", x.name, err)
		}
	}
	hs, err := tensor.FromF64(sv, rows, q)
	if err != nil {
		return err
	}
	ht, err := tensor.FromF64(tv, rows, q)
	if err != nil {
		return err
	}
	ref, err := hostRun(dt, func(h *tensor.Tensor) error { return ops.Reference().BrownianIncrements(h, hs, ht, spec, d) }, paths, q)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if err := sameValues(got, ref, q); err != nil {
		return fmt.Errorf("(rows: paths, cols: queries) %w", err)
	}
	return nil
}

// RunNoise runs the checks of the noise ops (FFT, FGN, MAFBM, Stable, Brownian,
// BrownianIncrements) against b as
// subtests: FFTLengths × FFTBatches; FGNLengths × FGNPaths × FGNHursts × FGNForms; MAFBMStates
// over empty, single, odd and partial-tile (paths, steps) with no steps and a site stride;
// StableSpecs over the edge shapes (and the large size for a clamped law, where a count spans many
// blocks); BrownianEpochs × increments over the edge shapes; BrownianIntervalDepths over edge
// shapes with per-path and shared times; both dtypes each; and the rejections of bad input. It does not close b.
func RunNoise(t *testing.T, b ops.Backend) {
	dts := []tensor.DType{tensor.F32, tensor.F64}
	t.Run("fft", func(t *testing.T) {
		lengths := FFTLengths
		if Emulated(b) || testing.Short() {
			lengths = EmulatedFFTLengths
		}
		for _, dt := range dts {
			for _, n := range lengths {
				for _, batch := range FFTBatches {
					if err := CheckFFT(b, dt, batch, n); err != nil {
						t.Fatalf("%v n %d batch %d: %v", dt, n, batch, err)
					}
				}
			}
		}
	})
	t.Run("fgn", func(t *testing.T) {
		for _, dt := range dts {
			for _, n := range FGNLengths {
				for _, paths := range FGNPaths {
					for hi, h := range FGNHursts {
						d := ops.Draw{Seed: 0xf9 + uint64(n) + uint64(hi), Site: 1<<33 + 7, FirstChain: 3}
						for _, form := range FGNForms {
							if err := CheckFGN(b, dt, h, n, paths, form, d); err != nil {
								t.Fatalf("%v n %d paths %d H %g %+v: %v", dt, n, paths, h, form, err)
							}
						}
					}
				}
			}
		}
	})
	t.Run("ma-fbm", func(t *testing.T) {
		for _, k := range MAFBMStates {
			m, err := ops.NewMAFBM(0.35, k, 20, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, dt := range dts {
				for _, c := range []struct{ paths, steps int }{{0, 5}, {3, 0}, {1, 1}, {1, 40}, {33, 7}, {1025, 33}} {
					d := ops.Draw{Seed: 99, Site: 1000 + uint64(c.steps), FirstChain: 5}
					if err := CheckMAFBM(b, dt, m, c.paths, c.steps, 0.01, d, 16); err != nil {
						t.Fatalf("K %d %v paths %d steps %d: %v", k, dt, c.paths, c.steps, err)
					}
				}
			}
		}
	})
	t.Run("stable", func(t *testing.T) {
		for _, s := range StableSpecs() {
			for _, dt := range dts {
				large := largeRows(b)
				for _, rows := range []int{0, 1, 33, 1025, large} {
					dims := []int{1, 2, 3, 5, 33}
					if rows == large {
						if s.Clamp == 0 || s.Kind == ops.StableIsotropic {
							continue
						}
						dims = []int{3}
					}
					for _, dim := range dims {
						d := ops.Draw{Seed: 0xfeed, Site: uint64(7 + rows + dim), FirstChain: 11}
						if err := CheckStable(b, dt, s, rows, dim, d); err != nil {
							t.Fatalf("%v α %g β %g clamp %g %v (%d, %d): %v", s.Kind, s.Alpha, s.Beta, s.Clamp, dt, rows, dim, err)
						}
					}
				}
			}
		}
	})
	t.Run("brownian", func(t *testing.T) {
		for _, dt := range dts {
			for _, epoch := range BrownianEpochs {
				for _, inc := range []bool{false, true} {
					s := ops.BrownianSpec{Horizon: 2.5, Epoch: epoch, Increments: inc}
					for _, c := range []struct{ paths, n int }{{0, 4}, {1, 1}, {1, 100}, {33, 7}, {1025, 33}} {
						d := ops.Draw{Seed: 123, Site: 45, FirstChain: 77}
						if err := CheckBrownian(b, dt, s, c.paths, c.n, d); err != nil {
							t.Fatalf("%v %+v paths %d n %d: %v", dt, s, c.paths, c.n, err)
						}
					}
				}
			}
		}
	})
	t.Run("brownian increments", func(t *testing.T) {
		for _, dt := range dts {
			for _, depth := range BrownianIntervalDepths {
				spec := ops.BrownianIntervalSpec{Horizon: 1.75, Depth: depth}
				for _, c := range []struct {
					paths, q int
					shared   bool
				}{{0, 4, false}, {1, 1, false}, {3, 31, false}, {33, 32, true}, {1025, 3, false}} {
					d := ops.Draw{Seed: 0xb1 + uint64(depth), Site: 1 << 40, FirstChain: 9}
					if err := CheckBrownianIncrements(b, dt, spec, c.paths, c.q, c.shared, d); err != nil {
						t.Fatalf("%v depth %d paths %d q %d shared %v: %v", dt, depth, c.paths, c.q, c.shared, err)
					}
				}
			}
		}
	})
	t.Run("noise bad input", func(t *testing.T) {
		if err := CheckNoiseRejections(b); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckNoiseRejections checks that b refuses what the CPU reference refuses, with an error, for
// FFT, FGN, MAFBM, Stable, Brownian and BrownianIncrements.
func CheckNoiseRejections(b ops.Backend) error {
	dev := b.Device()
	var all []*tensor.Tensor
	defer func() {
		for _, t := range all {
			t.Close()
		}
	}()
	alloc := func(dt tensor.DType, shape ...int) *tensor.Tensor {
		x, err := tensor.New(dev, dt, shape...)
		if err != nil {
			return nil
		}
		all = append(all, x)
		return x
	}
	sig, sig64, sigShort, sig6, sigRank2, sig0 := alloc(tensor.F32, 2, 8, 2), alloc(tensor.F64, 2, 8, 2),
		alloc(tensor.F32, 2, 4, 2), alloc(tensor.F32, 2, 6, 2), alloc(tensor.F32, 2, 16), alloc(tensor.F32, 2, 0, 2)
	x, x9, flat, x0, y, y64, yShort := alloc(tensor.F32, 4, 8), alloc(tensor.F32, 4, 9), alloc(tensor.F32, 32),
		alloc(tensor.F32, 4, 0), alloc(tensor.F32, 4, 3), alloc(tensor.F64, 4, 3), alloc(tensor.F32, 3, 3)
	for _, t := range []*tensor.Tensor{sig, sig64, sigShort, sig6, sigRank2, sig0, x, x9, flat, x0, y, y64, yShort} {
		if t == nil {
			return fmt.Errorf("allocate the rejection cases' tensors on %s", dev.Name())
		}
	}
	plan, err := ops.NewFGNPlan(0.4, 8)
	if err != nil {
		return err
	}
	m, err := ops.NewMAFBM(0.4, 3, 20, 1)
	if err != nil {
		return err
	}
	sym := ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.5}
	stable := func(s ops.StableSpec, dst *tensor.Tensor, d ops.Draw) error {
		_, err := b.Stable(dst, s, d)
		return err
	}
	bm := ops.BrownianSpec{Horizon: 1}
	bi := ops.BrownianIntervalSpec{Horizon: 2, Depth: 10}
	s3, t3, t23 := alloc(tensor.F64, 1, 3), alloc(tensor.F64, 1, 3), alloc(tensor.F64, 2, 3)
	if s3 == nil || t3 == nil || t23 == nil {
		return fmt.Errorf("allocate the rejection cases' times on %s", dev.Name())
	}
	if err := s3.Fill(0); err != nil {
		return err
	}
	if err := t3.Fill(1); err != nil {
		return err
	}
	type rejection struct {
		name string
		err  error
	}
	cases := []rejection{
		{"fft: nil src", b.FFT(sig, nil, false)},
		{"fft: nil dst", b.FFT(nil, sig, false)},
		{"fft: rank-2 src", b.FFT(sigRank2, sigRank2, false)},
		{"fft: length not a power of two", b.FFT(sig6, sig6, false)},
		{"fft: empty signals", b.FFT(sig0, sig0, true)},
		{"fft: dst shape", b.FFT(sigShort, sig, false)},
		{"fft: dst dtype", b.FFT(sig64, sig, false)},
		{"fgn: nil plan", b.FGN(x, nil, ops.FGNForm{}, ops.Draw{})},
		{"fgn: nil destination", b.FGN(nil, plan, ops.FGNForm{}, ops.Draw{})},
		{"fgn: negative horizon", b.FGN(x, plan, ops.FGNForm{Horizon: -1}, ops.Draw{})},
		{"fgn: NaN horizon", b.FGN(x, plan, ops.FGNForm{Horizon: math.NaN()}, ops.Draw{})},
		{"fgn: infinite horizon", b.FGN(x, plan, ops.FGNForm{Horizon: math.Inf(1), Path: true}, ops.Draw{})},
		{"fgn: destination width", b.FGN(x9, plan, ops.FGNForm{}, ops.Draw{})},
		{"fgn: rank-1 destination", b.FGN(flat, plan, ops.FGNForm{}, ops.Draw{})},
		{"fgn: chains beyond 2^32", b.FGN(x, plan, ops.FGNForm{}, ops.Draw{FirstChain: ops.MaxChains - 2})},
		{"ma-fbm: nil approximation", b.MAFBM(x, y, nil, 0.1, ops.Draw{}, 1)},
		{"ma-fbm: nil destination", b.MAFBM(nil, y, m, 0.1, ops.Draw{}, 1)},
		{"ma-fbm: nil state", b.MAFBM(x, nil, m, 0.1, ops.Draw{}, 1)},
		{"ma-fbm: state width", b.MAFBM(x, x9, m, 0.1, ops.Draw{}, 1)},
		{"ma-fbm: state rows", b.MAFBM(x, yShort, m, 0.1, ops.Draw{}, 1)},
		{"ma-fbm: state dtype", b.MAFBM(x, y64, m, 0.1, ops.Draw{}, 1)},
		{"ma-fbm: zero step", b.MAFBM(x, y, m, 0, ops.Draw{}, 1)},
		{"ma-fbm: NaN step", b.MAFBM(x, y, m, math.NaN(), ops.Draw{}, 1)},
		{"ma-fbm: infinite step", b.MAFBM(x, y, m, math.Inf(1), ops.Draw{}, 1)},
		{"ma-fbm: site stride 0", b.MAFBM(x, y, m, 0.1, ops.Draw{}, 0)},
		{"ma-fbm: sites beyond 2^64", b.MAFBM(x, y, m, 0.1, ops.Draw{Site: math.MaxUint64 - 20}, 16)},
		{"ma-fbm: chains beyond 2^32", b.MAFBM(x, y, m, 0.1, ops.Draw{FirstChain: ops.MaxChains - 2}, 1)},
		{"stable: unknown kind", stable(ops.StableSpec{Kind: ops.StableKind(9), Alpha: 1}, x, ops.Draw{})},
		{"stable: α = 0", stable(ops.StableSpec{Kind: ops.StableSymmetric}, x, ops.Draw{})},
		{"stable: α > 2", stable(ops.StableSpec{Kind: ops.StableSkewed, Alpha: 2.5}, x, ops.Draw{})},
		{"stable: NaN α", stable(ops.StableSpec{Kind: ops.StableIsotropic, Alpha: math.NaN()}, x, ops.Draw{})},
		{"stable: positive α = 1", stable(ops.StableSpec{Kind: ops.StablePositive, Alpha: 1}, x, ops.Draw{})},
		{"stable: |β| > 1", stable(ops.StableSpec{Kind: ops.StableSkewed, Alpha: 1.2, Beta: 1.5}, x, ops.Draw{})},
		{"stable: β of a symmetric law", stable(ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.2, Beta: 0.5}, x, ops.Draw{})},
		{"stable: negative clamp", stable(ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.2, Clamp: -1}, x, ops.Draw{})},
		{"stable: infinite clamp", stable(ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.2, Clamp: math.Inf(1)}, x, ops.Draw{})},
		{"stable: isotropic at the last site", stable(ops.StableSpec{Kind: ops.StableIsotropic, Alpha: 1.2}, x, ops.Draw{Site: math.MaxUint64})},
		{"stable: nil destination", stable(sym, nil, ops.Draw{})},
		{"stable: rank-1 destination", stable(sym, flat, ops.Draw{})},
		{"stable: chains beyond 2^32", stable(sym, x, ops.Draw{FirstChain: ops.MaxChains - 2})},
		{"brownian: nil destination", b.Brownian(nil, bm, ops.Draw{})},
		{"brownian: no points", b.Brownian(x0, bm, ops.Draw{})},
		{"brownian: zero horizon", b.Brownian(x, ops.BrownianSpec{}, ops.Draw{})},
		{"brownian: NaN horizon", b.Brownian(x, ops.BrownianSpec{Horizon: math.NaN()}, ops.Draw{})},
		{"brownian: infinite horizon", b.Brownian(x, ops.BrownianSpec{Horizon: math.Inf(1)}, ops.Draw{})},
		{"brownian: negative epoch", b.Brownian(x, ops.BrownianSpec{Horizon: 1, Epoch: -1}, ops.Draw{})},
		{"brownian: rank-1 destination", b.Brownian(flat, bm, ops.Draw{})},
		{"brownian: chains beyond 2^32", b.Brownian(x, bm, ops.Draw{FirstChain: ops.MaxChains - 2})},
		{"brownian increments: nil times", b.BrownianIncrements(y64, nil, t3, bi, ops.Draw{})},
		{"brownian increments: f32 times", b.BrownianIncrements(y64, y, t3, bi, ops.Draw{})},
		{"brownian increments: times shape", b.BrownianIncrements(y64, s3, t23, bi, ops.Draw{})},
		{"brownian increments: depth 41", b.BrownianIncrements(y64, s3, t3, ops.BrownianIntervalSpec{Horizon: 2, Depth: 41}, ops.Draw{})},
		{"brownian increments: zero horizon", b.BrownianIncrements(y64, s3, t3, ops.BrownianIntervalSpec{Depth: 4}, ops.Draw{})},
		{"brownian increments: sites beyond 2^64", b.BrownianIncrements(y64, s3, t3, ops.BrownianIntervalSpec{Horizon: 2, Depth: 40}, ops.Draw{Site: math.MaxUint64})},
		{"brownian increments: s = t", b.BrownianIncrements(y64, s3, s3, bi, ops.Draw{})},
		{"brownian increments: t past the horizon", b.BrownianIncrements(y64, s3, t3, ops.BrownianIntervalSpec{Horizon: 0.5, Depth: 4}, ops.Draw{})},
		{"brownian increments: chains beyond 2^32", b.BrownianIncrements(y64, s3, t3, bi, ops.Draw{FirstChain: ops.MaxChains - 2})},
	}
	if dev.Kind() != tensor.KindCPU {
		hsig, err := tensor.New(nil, tensor.F32, 2, 8, 2)
		if err != nil {
			return err
		}
		hx, err := tensor.New(nil, tensor.F32, 4, 8)
		if err != nil {
			return err
		}
		hy, err := tensor.New(nil, tensor.F32, 4, 3)
		if err != nil {
			return err
		}
		hs3, err := tensor.New(nil, tensor.F64, 1, 3)
		if err != nil {
			return err
		}
		cases = append(cases,
			rejection{"fft: host signals on a device backend", b.FFT(hsig, hsig, false)},
			rejection{"fgn: host destination on a device backend", b.FGN(hx, plan, ops.FGNForm{}, ops.Draw{})},
			rejection{"ma-fbm: host tensors on a device backend", b.MAFBM(hx, hy, m, 0.1, ops.Draw{}, 1)},
			rejection{"stable: host destination on a device backend", stable(sym, hx, ops.Draw{})},
			rejection{"brownian: host destination on a device backend", b.Brownian(hx, bm, ops.Draw{})},
			rejection{"brownian increments: host times on a device backend", b.BrownianIncrements(y64, hs3, t3, bi, ops.Draw{})})
	}
	var errs []error
	for _, c := range cases {
		if c.err == nil {
			errs = append(errs, fmt.Errorf("%s: accepted, want an error", c.name))
		}
	}
	return errors.Join(errs...)
}
