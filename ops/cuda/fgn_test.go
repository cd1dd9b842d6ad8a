//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Tolerances of FGN against the CPU reference.
//
// Increments. Path i's values are x_k = σ Z_k with Z = FFT(V), V = w∘W. The two backends differ in
//   - the FFT's rounding: the GPU transforms in the destination's precision, the reference in
//     float64. A radix-2^r FFT of length m in precision u has errors of about √log2(m)·u·‖V‖₂ per
//     output on average and below log2(m)·u·‖V‖₂ at the worst of many outputs (an emulated
//     float32 radix-2 FFT with correctly rounded twiddles: 0.65·log2(m)·u·‖V‖₂ at most over 2^21
//     outputs of m = 2^17); ‖V‖₂ is the RMS of Z (Parseval: Σ_k |Z_k|² = m ‖V‖₂²). Bound used:
//     4·log2(m)·u·‖V‖₂;
//   - the inputs: the kernel's normals are the reference's exactly (optest.NormalF32, NormalF64),
//     and w is rounded once to the dtype (u/2 relative). An FFT spreads these independent input
//     perturbations over its outputs: their RMS is at most the RMS relative perturbation times
//     ‖V‖₂ (Parseval again), and their maximum over outputs a few times that. Bound used:
//     2e-7·‖V‖₂ (f32) or 1e-15·‖V‖₂ (f64), about 7 times u/2;
//   - the final rounding of a float32 output, 2^-24 of |x_k| on each side.
//
// So |gpu − ref| ≤ σ‖V_i‖₂·(4·log2(m)·u + 2e-7 or 1e-15) + 2^-23·|ref| (f32; 2^-52·|ref| for f64),
// with ‖V_i‖₂ computed from the reference's normals as the norm of the signal the GPU transforms:
// paths 2q and 2q + 1 share one, V_{2q} + i V_{2q+1} (kernels/fgn.cu), whose packing and FFT
// round relative to (‖V_{2q}‖₂² + ‖V_{2q+1}‖₂²)^½ (optest.FGNRowNorms), ≈ √2 times a path's own.
//
// Paths. fgn_path sums the unrounded increments in double, fgn_cumsum (the float multi-pass
// plans) the stored ones, both in one fixed order (kernels/fgn.cu, scan_rows) in which B_k passes through at most 13 + 40·⌊k/256⌋ double roundings, each of a sum of consecutive
// x_l — a difference of two prefix sums, at most 2·M_k = 2·max_{l≤k} |B_l| — and is rounded once
// to T: |gpu B_k − Σ_{l≤k} x_l| ≤ 2^-53·2·(13 + 40⌊k/256⌋)·M_k + u·|B_k| to first order (checked
// at twice the double part). (a) Against the running sums of the GPU's own increments, which are
// x_l rounded to T (with the scale rounded to T first): plus 2u·Σ_{l≤k}|x_l| for fgn_path
// (fgn_cumsum sums exactly those values, so that part of the bound is slack there). (b) Against the
// reference's path, which sums the reference's increments in float64 and rounds once: plus the
// sum over l ≤ k of the increment tolerance (no cancellation assumed) — and nothing that grows
// with the path's length in T's precision.
func fgnRtol(dt tensor.DType, m int) float64 {
	lg := float64(bits.Len(uint(m)) - 1)
	if dt == tensor.F32 {
		return 4*lg*0x1p-24 + 2e-7
	}
	return 4*lg*0x1p-53 + 1e-15
}

// fgnUnitRoundoff is u of dt.
func fgnUnitRoundoff(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return 0x1p-24
	}
	return 0x1p-53
}

// fgnScanBound is the double-rounding part of the path bound for output k (without its factor
// M_k), the same for both element types.
func fgnScanBound(k int) float64 {
	return 2 * 2 * 0x1p-53 * float64(13+40*(k/fgnScanThreads))
}

// fgnRowNorms returns σ·‖V_i‖₂ for every path of the draw (dt's normal stream; optest.FGNRowNorms).
func fgnRowNorms(t *testing.T, dt tensor.DType, p *ops.FGNPlan, paths int, sigma float64, d ops.Draw) []float64 {
	t.Helper()
	norms, err := optest.FGNRowNorms(dt, p, paths, sigma, d)
	require.NoError(t, err)
	return norms
}

// fgnCPU returns the reference's output.
func fgnCPU(t *testing.T, dt tensor.DType, p *ops.FGNPlan, paths int, form ops.FGNForm, d ops.Draw) []float64 {
	t.Helper()
	h, err := tensor.New(nil, dt, paths, p.N())
	require.NoError(t, err)
	require.NoError(t, ops.Reference().FGN(h, p, form, d))
	return lvValues(t, h)
}

// fgnGPU runs FGN on the device into a guarded destination and returns its values.
func fgnGPU(t *testing.T, b ops.Backend, dt tensor.DType, p *ops.FGNPlan, paths int, form ops.FGNForm, d ops.Draw) []float64 {
	t.Helper()
	g := newGuarded(t, dt, nil, paths, p.N())
	defer g.close()
	require.NoError(t, b.FGN(g.view, p, form, d))
	require.NoError(t, gpu.Synchronize())
	return g.values(t, "fgn dst")
}

// fgnCompareIncrements checks the increment tolerance and returns the largest |gpu − ref| / (σ‖V‖).
func fgnCompareIncrements(got, ref, norms []float64, n int, dt tensor.DType, m int) (float64, error) {
	rtol := fgnRtol(dt, m)
	worst := 0.0
	for idx, r := range ref {
		g, scale := got[idx], norms[idx/n]
		d := math.Abs(g - r)
		tol := rtol*scale + 2*fgnUnitRoundoff(dt)*math.Abs(r)
		if !(d <= tol) {
			return worst, fmt.Errorf("path %d k=%d: got %v, reference %v (|diff| %.3g > %.3g; σ‖V‖ = %.3g)",
				idx/n, idx%n, g, r, d, tol, scale)
		}
		worst = math.Max(worst, d/scale)
	}
	return worst, nil
}

// fgnComparePath checks a path against the running sums sums (float64) of increments inc, with
// extra(k, row) added to the scan bound; it returns the largest |gpu − sum| / (2u·M_k·rounds).
func fgnComparePath(got, sums []float64, n int, dt tensor.DType, extra func(row, k int) float64) (float64, error) {
	worst := 0.0
	for row := 0; row < len(sums)/n; row++ {
		mk := 0.0
		for k := 0; k < n; k++ {
			idx := row*n + k
			mk = math.Max(mk, math.Abs(sums[idx]))
			tol := fgnScanBound(k)*mk + extra(row, k) + fgnUnitRoundoff(dt)*math.Abs(sums[idx])
			d := math.Abs(got[idx] - sums[idx])
			if !(d <= tol) {
				return worst, fmt.Errorf("path %d k=%d: got %v, want %v (|diff| %.3g > %.3g)", row, k, got[idx], sums[idx], d, tol)
			}
			if tol > 0 {
				worst = math.Max(worst, d/tol) // the fraction of the bound used
			}
		}
	}
	return worst, nil
}

// runningSums returns the float64 running sums of every row of x (rows of n).
func runningSums(x []float64, n int) []float64 {
	out := make([]float64, len(x))
	for row := 0; row < len(x)/n; row++ {
		s := 0.0
		for k := 0; k < n; k++ {
			s += x[row*n+k]
			out[row*n+k] = s
		}
	}
	return out
}

// fgnAbs returns |x| element-wise.
func fgnAbs(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Abs(v)
	}
	return out
}

var fgnHursts = []float64{0.1, 0.5, 0.9}

// FGN on the GPU equals the CPU reference for the same draw: lengths 1, 3, 1000, 1024, 2^16 ×
// paths 1, 33, 257 × H ∈ {0.1, 0.5, 0.9}, f32 and f64, unit-step and horizon increments and paths,
// inside guard bands, with a nonzero FirstChain and a site above 2^32; no device memory is
// left allocated after Close. On the emulated device the long paths have 2500 points (a
// circulant of 8192: a two-pass FFT in both dtypes) and the path counts are 1 and 33 (more paths
// than the scan's 32 blocks there).
func TestFGNParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	const horizon = 2.0
	fgnLengths := []int{1, 3, 1000, 1024, sized(1<<16, 2500)}
	fgnPaths := sized([]int{1, 33, 257}, []int{1, 33})
	for _, dt := range lvDTypes {
		for _, n := range fgnLengths {
			for _, paths := range fgnPaths {
				for hi, h := range fgnHursts {
					p, err := ops.NewFGNPlan(h, n)
					require.NoError(t, err)
					m := 2 * p.EmbedSize()
					d := ops.Draw{Seed: 0xf9 + uint64(n) + uint64(hi), Site: 1<<33 + 7, FirstChain: 3}
					label := fmt.Sprintf("%v n=%d paths=%d H=%g", dt, n, paths, h)
					for _, T := range []float64{0, horizon} {
						sigma := ops.FGNForm{Horizon: T}.Scale(h, n)
						norms := fgnRowNorms(t, dt, p, paths, sigma, d)
						inc := fgnGPU(t, b, dt, p, paths, ops.FGNForm{Horizon: T}, d)
						ref := fgnCPU(t, dt, p, paths, ops.FGNForm{Horizon: T}, d)
						w, err := fgnCompareIncrements(inc, ref, norms, n, dt, m)
						require.NoError(t, err, "%s T=%g increments", label, T)
						errs.add(fmt.Sprintf("%v increments m=%d", dt, m), w)

						path := fgnGPU(t, b, dt, p, paths, ops.FGNForm{Horizon: T, Path: true}, d)
						rtol, u := fgnRtol(dt, m), fgnUnitRoundoff(dt)
						absSums := runningSums(fgnAbs(inc), n)
						w, err = fgnComparePath(path, runningSums(inc, n), n, dt, func(row, k int) float64 {
							return 2 * u * absSums[row*n+k]
						})
						require.NoError(t, err, "%s T=%g path vs running sums of the GPU's increments", label, T)
						errs.add(fmt.Sprintf("%v path vs own increments (fraction of bound) n=%d", dt, n), w)

						refPath := fgnCPU(t, dt, p, paths, ops.FGNForm{Horizon: T, Path: true}, d)
						w, err = fgnComparePath(path, refPath, n, dt, func(row, k int) float64 {
							return float64(k+1) * rtol * norms[row]
						})
						require.NoError(t, err, "%s T=%g path vs reference", label, T)
						errs.add(fmt.Sprintf("%v path vs reference (fraction of bound) n=%d", dt, n), w)
					}
				}
			}
		}
	}
	errs.log(t, "fgn")
}

// Paths processed in chunks (a scratch cap of 2 pairs of paths forces chunks of 4, 4 and 2 of 10
// paths) give the same numbers as the reference, and as one unchunked call.
func TestFGNChunks(t *testing.T) {
	lvLeakCheck(t)
	const n, paths = 1000, 10
	p, err := ops.NewFGNPlan(0.7, n)
	require.NoError(t, err)
	m := 2 * p.EmbedSize()
	for _, dt := range lvDTypes {
		d := ops.Draw{Seed: 17, Site: 2, FirstChain: 40}
		form := ops.FGNForm{Horizon: 1, Path: true}
		whole := fgnGPU(t, lvBackend(t), dt, p, paths, form, d)

		b := lvBackend(t)
		chunked := func() []float64 {
			old := fgnMaxScratchBytes
			defer func() { fgnMaxScratchBytes = old }()
			fgnMaxScratchBytes = 2*int64(2*m*dt.Size()) + 1
			return fgnGPU(t, b, dt, p, paths, form, d)
		}()
		scratch := b.(*Backend).scratch.held("fgn scratch", dt)
		require.NotNil(t, scratch)
		assert.Equal(t, 2*2*m, scratch.Len(), "%v: the scratch holds 2 pairs of paths", dt)

		ref := fgnCPU(t, dt, p, paths, form, d)
		norms := fgnRowNorms(t, dt, p, paths, form.Scale(0.7, n), d)
		rtol := fgnRtol(dt, m)
		_, err := fgnComparePath(chunked, ref, n, dt, func(row, k int) float64 {
			return float64(k+1) * rtol * norms[row]
		})
		require.NoError(t, err, "%v chunked vs reference", dt)
		if !lvSame(whole, chunked) {
			_, err := fgnComparePath(chunked, whole, n, dt, func(row, k int) float64 { return 2 * float64(k+1) * rtol * norms[row] })
			require.NoError(t, err, "%v chunked vs whole", dt)
			t.Logf("%v: chunked and whole calls differ in the last bits (the FFT's plan depends on the batch)", dt)
		}
	}
}

// The float plans that generate the signal in the FFT's first pass (fgn_r<R>_f32, every first
// radix 128..2048) give the increments of fgn_spectrum followed by the FFT's own first pass, bit
// for bit: one, four and five paths (a last path without partner), a nonzero FirstChain and a site
// above 2^32, in one call and in chunks of two pairs; and the reference's within its bound.
func TestFGNFirstPassGenerates(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	type size struct{ logm, paths int }
	sizes := []size{{13, 5}, {14, 4}, {15, 5}, {16, 1}, {17, 5}, {19, 1}, {21, 1}}
	if !emulated {
		sizes = append(sizes, size{22, 3}, size{17, 257})
	}
	entries := map[string]bool{}
	for _, sz := range sizes {
		ne := 1 << (sz.logm - 1)
		n := ne - 5
		p, err := ops.NewFGNPlan(0.7, n)
		require.NoError(t, err)
		require.Equal(t, ne, p.EmbedSize(), "n = %d", n)
		m := 2 * ne
		entries[fgnFirstPassEntry(m)] = true
		d := ops.Draw{Seed: 0x5eed + uint64(sz.logm), Site: 1<<33 + 3, FirstChain: 11}
		form := ops.FGNForm{Horizon: 2}
		label := fmt.Sprintf("m = 2^%d, %d paths (%s)", sz.logm, sz.paths, fgnFirstPassEntry(m))
		run := func(spectrum bool, chunkPairs int) []float64 {
			oldPass, oldCap := fgnSpectrumPass, fgnMaxScratchBytes
			defer func() { fgnSpectrumPass, fgnMaxScratchBytes = oldPass, oldCap }()
			fgnSpectrumPass = spectrum
			if chunkPairs > 0 {
				fgnMaxScratchBytes = int64(chunkPairs)*int64(2*m*4) + 1
			}
			return fgnGPU(t, b, tensor.F32, p, sz.paths, form, d)
		}
		generated := run(false, 0)
		assert.True(t, lvSame(generated, run(true, 0)), "%s: the generating first pass differs from fgn_spectrum + fft", label)
		if sz.paths > 2 {
			assert.True(t, lvSame(generated, run(false, 1)), "%s: chunks of one pair differ from one call", label)
		}
		if sz.logm <= 17 {
			ref := fgnCPU(t, tensor.F32, p, sz.paths, form, d)
			norms := fgnRowNorms(t, tensor.F32, p, sz.paths, form.Scale(0.7, n), d)
			_, err := fgnCompareIncrements(generated, ref, norms, n, tensor.F32, m)
			require.NoError(t, err, "%s vs reference", label)
		}
	}
	for _, r := range []int{128, 256, 512, 1024, 2048} {
		assert.True(t, entries[fmt.Sprintf("fgn_r%d_f32", r)], "radix %d: no size runs it", r)
	}

	// A two-pass plan needs no FFT scratch beside the signal's buffer: the first pass writes the
	// buffer, the last reads it.
	fresh := lvBackend(t)
	p, err := ops.NewFGNPlan(0.7, 1<<14)
	require.NoError(t, err)
	fgnGPU(t, fresh, tensor.F32, p, 3, ops.FGNForm{}, ops.Draw{Seed: 1})
	held := fresh.(*Backend).scratch
	assert.NotNil(t, held.held("fgn scratch", tensor.F32))
	assert.Nil(t, held.held("fft scratch", tensor.F32), "m = 2^15 (two passes): no FFT scratch")
}

// When not even one pair of paths' buffer fits in the free memory, FGN says how much it needs: the
// signal's buffer, and as much again when the transform takes the FFT's scratch (double); the
// increments and the path of a generating two-pass float plan need the signal's buffer alone (the
// path is summed in the output).
func TestFGNOutOfMemory(t *testing.T) {
	lvLeakCheck(t)
	old := freeMemory
	t.Cleanup(func() { freeMemory = old })
	const pair = 1 << 20 // one pair of paths of n = 2^16: 2^17 complex values, 1 MiB in f32
	p, err := ops.NewFGNPlan(0.4, 1<<16)
	require.NoError(t, err)
	dst, err := tensor.New(gpu, tensor.F32, 2, 1<<16)
	require.NoError(t, err)
	defer dst.Close()
	dst64, err := tensor.New(gpu, tensor.F64, 2, 1<<16)
	require.NoError(t, err)
	defer dst64.Close()
	for _, c := range []struct {
		form     ops.FGNForm
		dst      *tensor.Tensor
		free     int64
		ok       bool
		fftAgain bool
		size     string
	}{
		{ops.FGNForm{}, dst, pair - 1, false, false, "1.0 MiB"},
		{ops.FGNForm{}, dst, pair, true, false, ""},
		{ops.FGNForm{Path: true}, dst, pair - 1, false, false, "1.0 MiB"},
		{ops.FGNForm{Path: true}, dst, pair, true, false, ""},
		{ops.FGNForm{Path: true}, dst64, 4*pair - 1, false, true, "2.0 MiB"},
		{ops.FGNForm{Path: true}, dst64, 4 * pair, true, true, ""},
	} {
		free := fgnHeadroom + c.free
		freeMemory = func(*Backend) (int64, int64, error) { return free, 80 << 30, nil }
		b := lvBackend(t) // fresh: no scratch held from the case before
		err = b.FGN(c.dst, p, c.form, ops.Draw{Seed: 1})
		if c.ok {
			require.NoError(t, err, "%+v %v with %d bytes", c.form, c.dst.DType(), c.free)
			continue
		}
		require.Error(t, err, "%+v %v with %d bytes", c.form, c.dst.DType(), c.free)
		assert.Contains(t, err.Error(), "fgn: a pair of paths of n = 65536 needs a complex buffer of m = 131072 values ("+c.size+")")
		assert.Equal(t, c.fftAgain, strings.Contains(err.Error(), "as much again for the FFT"), err.Error())
	}
}

// Arguments are validated as on the CPU (host destination, wrong width, nil plan).
func TestFGNRejectsOnDevice(t *testing.T) {
	b := lvBackend(t)
	p, err := ops.NewFGNPlan(0.4, 8)
	require.NoError(t, err)
	host, _ := tensor.New(nil, tensor.F64, 2, 8)
	err = b.FGN(host, p, ops.FGNForm{}, ops.Draw{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fgn: destination is on cpu")
	wrong, err := tensor.New(gpu, tensor.F64, 2, 9)
	require.NoError(t, err)
	defer wrong.Close()
	assert.ErrorContains(t, b.FGN(wrong, p, ops.FGNForm{}, ops.Draw{}), "want (paths, 8)")
	assert.ErrorContains(t, b.FGN(wrong, nil, ops.FGNForm{}, ops.Draw{}), "plan is nil")
}

// The GPU's own output has the fGn autocovariance at lags 0 and 1 (f32, H = 0.3, 2048 paths of
// length 1000 — 512 on the emulated device —, standard error from 64 batches of 32 (8) paths:
// Student's t with 63 degrees of freedom, P(|t| > 5.5) = 7.4e-7 per comparison, false-failure
// rate 1.5e-6; the test also requires the standard error below 0.01, about 0.002 with 8 paths
// per batch).
func TestFGNAutocovarianceOnDevice(t *testing.T) {
	const n, batches, h, z = 1000, 64, 0.3, 5.5
	paths := sized(2048, 512)
	b := lvBackend(t)
	p, err := ops.NewFGNPlan(h, n)
	require.NoError(t, err)
	x := fgnGPU(t, b, tensor.F32, p, paths, ops.FGNForm{}, ops.Draw{Seed: 2718, Site: 5})
	per := paths / batches
	for k := 0; k <= 1; k++ {
		est := make([]float64, batches)
		for bt := range est {
			sum := 0.0
			for i := bt * per; i < (bt+1)*per; i++ {
				for s := 0; s+k < n; s++ {
					sum += x[i*n+s] * x[i*n+s+k]
				}
			}
			est[bt] = sum / float64(per*(n-k))
		}
		mean, ss := 0.0, 0.0
		for _, v := range est {
			mean += v / batches
		}
		for _, v := range est {
			ss += (v - mean) * (v - mean)
		}
		se := math.Sqrt(ss / (batches - 1) / batches)
		want := 0.5 * (math.Pow(float64(k+1), 2*h) - 2*math.Pow(float64(k), 2*h) + math.Pow(math.Abs(float64(k-1)), 2*h))
		t.Logf("lag %d: γ̂ = %.5f ± %.5f, ρ = %.5f", k, mean, se, want)
		assert.InDelta(t, want, mean, z*se, "lag %d", k)
		assert.Less(t, se, 0.01, "lag %d: the test has power", k)
	}
}
