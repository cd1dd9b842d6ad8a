//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Tolerance of the GPU FFT against the float64 CPU reference, per output value and relative to
// the RMS of its signal's output:
//
//	|gpu − ref| ≤ fftParityC · max(1, log₂n) · ε · RMS(ref signal),  ε = 2^-23 (f32), 2^-52 (f64)
//
// An FFT of length n is a cascade of log₂n butterfly levels; each rounds every value by about ε
// times the signal's RMS (unitary up to scale), so the error grows like log₂n·ε·RMS — the classic
// bound, and what a float64-accurate reference can resolve. Measured with a host emulation of the
// kernels against an extended-precision transform (n = 1 … 2^24, batches up to 2^16 values, both
// directions, in place and not): at most 0.94·log₂n·ε in f32 and 0.85·log₂n·ε in f64, the largest
// at the shortest lengths, about 0.35 from n = 2^13 on. On the device two things add to it:
// sincospi's pass twiddles (≤ 1 ulp instead of correctly rounded, applied once per pass boundary,
// only for n > 4096 / 2048) and, in f64, the reference's own error (≈ 0.7·log₂n·ε64 measured).
// c = 3 covers the sum (≤ 1.6) with room; a wrong index, sign or twiddle gives errors of order 1,
// six (f32) or fifteen (f64) orders above it.
const fftParityC = 3

// fftGuard is the number of optest.Sentinel elements on each side of every device buffer: 19
// complex values, an even element count so that the data stay aligned to a complex value in both
// dtypes.
const fftGuard = 38

var fftDTypes = []tensor.DType{tensor.F32, tensor.F64}

func fftEps(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return 0x1p-23
	}
	return 0x1p-52
}

// fftInput returns batch·n complex values as 2·batch·n interleaved floats uniform in [−1, 1),
// representable in dt.
func fftInput(dt tensor.DType, seed uint64, batch, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 0xf0f7))
	v := make([]float64, 2*batch*n)
	for i := range v {
		v[i] = 2*r.Float64() - 1
		if dt == tensor.F32 {
			v[i] = float64(float32(v[i]))
		}
	}
	return v
}

// fftReference is the CPU backend's transform of vals (batch, n, 2) in dt.
func fftReference(t *testing.T, dt tensor.DType, vals []float64, batch, n int, inverse bool) []float64 {
	t.Helper()
	src := lvHost(t, dt, vals, batch, n, 2)
	dst, err := tensor.New(nil, dt, batch, n, 2)
	require.NoError(t, err)
	require.NoError(t, ops.Reference().FFT(dst, src, inverse))
	out, err := dst.Float64s()
	require.NoError(t, err)
	return out
}

// fftCompare checks got against ref signal by signal with the parity tolerance and returns the
// largest error in units of log₂n·ε·RMS.
func fftCompare(t *testing.T, dt tensor.DType, got, ref []float64, batch, n int, what string) float64 {
	t.Helper()
	require.Len(t, got, len(ref), what)
	unit := math.Max(1, math.Log2(float64(n))) * fftEps(dt)
	worst := 0.0
	for b := 0; b < batch; b++ {
		sig := ref[2*b*n : 2*(b+1)*n]
		ss := 0.0
		for _, v := range sig {
			ss += v * v
		}
		rms := math.Sqrt(ss / float64(n)) // RMS modulus of the signal's complex values
		for j := 0; j < n; j++ {
			i := 2 * (b*n + j)
			e := math.Hypot(got[i]-ref[i], got[i+1]-ref[i+1]) / (unit * rms)
			if !(e <= fftParityC) { // NaN fails too
				t.Fatalf("%s: signal %d value %d: got (%g, %g), want (%g, %g): error %.3g·log₂n·ε·RMS > %d",
					what, b, j, got[i], got[i+1], ref[i], ref[i+1], e, fftParityC)
			}
			worst = math.Max(worst, e)
		}
	}
	return worst
}

// fftBatches are the batch sizes of the parity sweep for length n: 1, 3 and a large one — 1000
// while batch·n ≤ 2^22, then 2^22/n (so that the CPU reference stays within a second per case);
// on the emulated device the cap is 2^15 values.
func fftBatches(n int) []int {
	large, most := 1000, sized(1<<22, 1<<15)
	if large*n > most {
		large = max(1, most/n)
	}
	if large <= 3 {
		return []int{1, 3}
	}
	return []int{1, 3, large}
}

// Parity with the CPU reference for every power of two n = 1 … 2^22 (single pass up to 4096 in
// f32 and 2048 in f64, two passes beyond, the largest radices of each plan included), batches 1, 3
// and large, both dtypes, both directions, in place and out of place, with guard bands around
// both buffers (out of place, src must come back unchanged). -short stops at 2^16, the emulated
// device at 2^14 (every radix of a single pass, and two passes in both dtypes from 2^13 on).
func TestFFTParity(t *testing.T) {
	b := backend(t)
	defer b.Close()
	maxLog := sized(22, 14)
	if testing.Short() {
		maxLog = min(maxLog, 16)
	}
	worst := map[tensor.DType]float64{}
	for logn := 0; logn <= maxLog; logn++ {
		n := 1 << logn
		for _, batch := range fftBatches(n) {
			for _, dt := range fftDTypes {
				worst[dt] = math.Max(worst[dt], fftParityCase(t, b, dt, batch, n))
			}
		}
	}
	for _, dt := range fftDTypes {
		t.Logf("%v: largest error %.3g·log₂n·ε·RMS (tolerance %d)", dt, worst[dt], fftParityC)
	}
}

// The three-pass plans (n = 2^23, 2^24 = ops.MaxFFTLength), where an in-place transform ends with
// a copy from the scratch buffer. On the emulated device one float32 signal of 2^23 values,
// transformed forward out of place and inverse in place (the buffer sequence of a three-pass plan
// does not depend on the dtype, and every radix it uses is covered by TestFFTParity).
func TestFFTThreePasses(t *testing.T) {
	if testing.Short() {
		t.Skip("signals of 2^23 and 2^24 values")
	}
	b := backend(t)
	defer b.Close()
	if emulated {
		for _, c := range []struct {
			dt               tensor.DType
			inverse, inPlace bool
		}{{tensor.F32, false, false}, {tensor.F32, true, true}} {
			const n = 1 << 23
			vals := fftInput(c.dt, 1000*n+1, 1, n)
			e := fftTransformCase(t, b, c.dt, vals, fftReference(t, c.dt, vals, 1, n, c.inverse), 1, n, c.inverse, c.inPlace)
			t.Logf("%v n=%d inverse=%v in place=%v: largest error %.3g·log₂n·ε·RMS", c.dt, n, c.inverse, c.inPlace, e)
		}
		return
	}
	for _, n := range []int{1 << 23, ops.MaxFFTLength} {
		for _, dt := range fftDTypes {
			e := fftParityCase(t, b, dt, 1, n)
			t.Logf("%v n=%d: largest error %.3g·log₂n·ε·RMS", dt, n, e)
		}
	}
}

// fftParityCase compares the four transforms (forward, inverse × out of place, in place) of one
// input of batch signals of length n with the CPU reference and returns the largest error.
func fftParityCase(t *testing.T, b ops.Backend, dt tensor.DType, batch, n int) float64 {
	t.Helper()
	worst := 0.0
	vals := fftInput(dt, uint64(1000*n+batch), batch, n)
	for _, inverse := range []bool{false, true} {
		ref := fftReference(t, dt, vals, batch, n, inverse)
		for _, inPlace := range []bool{false, true} {
			worst = math.Max(worst, fftTransformCase(t, b, dt, vals, ref, batch, n, inverse, inPlace))
		}
	}
	return worst
}

// fftTransformCase runs one transform of vals (batch signals of length n) on b, both buffers
// inside guard bands (out of place, src must come back unchanged), compares it with ref (the CPU
// reference's transform) and returns the largest error.
func fftTransformCase(t *testing.T, b ops.Backend, dt tensor.DType, vals, ref []float64, batch, n int, inverse, inPlace bool) float64 {
	t.Helper()
	what := fmt.Sprintf("%v n=%d batch=%d inverse=%v inPlace=%v", dt, n, batch, inverse, inPlace)
	src := newGuardedBy(t, fftGuard, dt, vals, batch, n, 2)
	defer src.close()
	dst := src
	if !inPlace {
		dst = newGuardedBy(t, fftGuard, dt, nil, batch, n, 2)
		defer dst.close()
	}
	require.NoError(t, b.FFT(dst.view, src.view, inverse), what)
	got := dst.values(t, what)
	if !inPlace {
		assert.True(t, lvSame(vals, src.values(t, what+" (src)")), "%s: src modified", what)
	}
	return fftCompare(t, dt, got, ref, batch, n, what)
}

// Many tiles: more than the grid's 64 blocks per SM, so that blocks stride over tiles, and a last
// tile that is partly past the batch. The batch repeats 7 signals, so one CPU reference per
// pattern checks every row. 2^26 values per dtype; on the emulated device (2 SMs, tiles of 64
// signals in float32 and 32 in float64) 2^20 + 5 signals' worth, still two grid strides or more.
func TestFFTLargeBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("2^26 values per dtype")
	}
	b := backend(t)
	defer b.Close()
	const n, patterns = 64, 7
	batch := sized(1<<26, 1<<20)/n + 5
	for _, dt := range fftDTypes {
		pat := fftInput(dt, 77, patterns, n)
		vals := make([]float64, 2*batch*n)
		for s := 0; s < batch; s++ {
			copy(vals[2*s*n:2*(s+1)*n], pat[2*(s%patterns)*n:])
		}
		ref := fftReference(t, dt, pat, patterns, n, false)
		x := lvDevice(t, dt, vals, batch, n, 2)
		require.NoError(t, b.FFT(x, x, false))
		got := lvValues(t, x)
		require.NoError(t, x.Close())
		refAll := make([]float64, len(vals))
		for s := 0; s < batch; s++ {
			copy(refAll[2*s*n:2*(s+1)*n], ref[2*(s%patterns)*n:])
		}
		e := fftCompare(t, dt, got, refAll, batch, n, fmt.Sprintf("%v batch=%d", dt, batch))
		t.Logf("%v n=%d batch=%d: largest error %.3g·log₂n·ε·RMS", dt, n, batch, e)
	}
}

// fftBatch (the in-place helper other launchers call) transforms a flat buffer exactly as FFT
// does, and validates its arguments.
func TestFFTBatchHelper(t *testing.T) {
	be := backend(t)
	defer be.Close()
	b := be.(*Backend)
	for _, dt := range fftDTypes {
		for _, c := range []struct{ batch, n int }{{1, 1}, {5, 8}, {3, 4096}, {2, 1 << 15}} {
			vals := fftInput(dt, uint64(c.n+c.batch), c.batch, c.n)
			for _, inverse := range []bool{false, true} {
				viaFFT := lvDevice(t, dt, vals, c.batch, c.n, 2)
				require.NoError(t, b.FFT(viaFFT, viaFFT, inverse))
				flat := lvDevice(t, dt, vals, 2*c.batch*c.n)
				require.NoError(t, b.fftBatch(flat, c.batch, c.n, inverse, nil))
				assert.Equal(t, lvValues(t, viaFFT), lvValues(t, flat), "%v %+v inverse=%v", dt, c, inverse)
				viaFFT.Close()
				flat.Close()
			}
		}
	}
	buf, err := tensor.New(gpu, tensor.F32, 2*3*8)
	require.NoError(t, err)
	defer buf.Close()
	host, _ := tensor.New(nil, tensor.F32, 2*3*8)
	closed, _ := tensor.New(gpu, tensor.F32, 2)
	closed.Close()
	for _, c := range []struct {
		name     string
		buf      *tensor.Tensor
		batch, n int
		want     string
	}{
		{"nil", nil, 3, 8, "nil or closed"},
		{"closed", closed, 1, 1, "nil or closed"},
		{"host", host, 3, 8, "is on cpu"},
		{"n not a power of two", buf, 4, 6, "power of two"},
		{"n too long", buf, 0, 1 << 25, "power of two in [1, 16777216]"},
		{"wrong size", buf, 2, 8, "does not hold batch = 2 signals of n = 8"},
		{"negative batch", buf, -1, 8, "does not hold"},
	} {
		err := b.fftBatch(c.buf, c.batch, c.n, false, nil)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want, c.name)
		}
	}
	empty, err := buf.View(0, 0)
	require.NoError(t, err)
	assert.NoError(t, b.fftBatch(empty, 0, 1, false, nil), "an empty batch in an empty buffer")
}

// fftBatch with an extraction (fGn's increments): the last pass writes value k < N of signal s,
// scaled, to rows 2s (real part) and 2s + 1 (imaginary part, absent for the last signal of an odd
// row count) of the output and nothing else — the same bits as the scaled complex transform, for
// float two-pass plans (and a three-pass one on a GPU), inside guard bands. Double transforms,
// single passes and mismatched extractions are refused.
func TestFFTBatchExtract(t *testing.T) {
	be := backend(t)
	defer be.Close()
	b := be.(*Backend)
	const scale = 0.37
	type extractCase struct{ batch, n, nout, paths int }
	cases := []extractCase{{1, 8192, 1, 1}, {3, 8192, 8192, 5}, {2, 1 << 15, 20000, 4}, {2, 1 << 15, 3, 3}}
	if !emulated {
		cases = append(cases, extractCase{1, 1 << 23, 1<<22 + 3, 2})
	}
	for _, c := range cases {
		what := fmt.Sprintf("%+v", c)
		vals := fftInput(tensor.F32, uint64(c.n+c.batch), c.batch, c.n)
		full := lvDevice(t, tensor.F32, vals, 2*c.batch*c.n)
		require.NoError(t, b.fftBatch(full, c.batch, c.n, false, nil), what)
		ref := lvValues(t, full)
		full.Close()
		want := make([]float64, c.paths*c.nout)
		for r := range c.paths {
			for k := range c.nout {
				want[r*c.nout+k] = float64(float32(ref[2*((r/2)*c.n+k)+r%2] * float64(float32(scale))))
			}
		}
		buf := lvDevice(t, tensor.F32, vals, 2*c.batch*c.n)
		g, err := optest.NewGuarded(gpu, 64, tensor.F32, nil, c.paths, c.nout)
		require.NoError(t, err)
		require.NoError(t, b.fftBatch(buf, c.batch, c.n, false, &fftExtract{Out: g.View(), N: c.nout, Paths: c.paths, Scale: scale}), what)
		require.NoError(t, gpu.Synchronize())
		got, err := g.Values("extraction")
		require.NoError(t, err, what)
		assert.True(t, lvSame(want, got), "%s: the extraction differs from the scaled transform", what)
		g.Close()
		buf.Close()
	}
	const n = 8192
	buf, err := tensor.New(gpu, tensor.F32, 2*3*n)
	require.NoError(t, err)
	defer buf.Close()
	buf64, err := tensor.New(gpu, tensor.F64, 2*3*n)
	require.NoError(t, err)
	defer buf64.Close()
	short, err := buf.View(0, 2*3*4096)
	require.NoError(t, err)
	out, err := tensor.New(gpu, tensor.F32, 6, n)
	require.NoError(t, err)
	defer out.Close()
	out64, err := tensor.New(gpu, tensor.F64, 6, n)
	require.NoError(t, err)
	defer out64.Close()
	for _, c := range []struct {
		name     string
		buf      *tensor.Tensor
		n        int
		inverse  bool
		ex       fftExtract
		wantText string
	}{
		{"fits", buf, n, false, fftExtract{Out: out, N: n, Paths: 6}, ""},
		{"double", buf64, n, false, fftExtract{Out: out64, N: n, Paths: 6}, "needs a float transform of more than one pass"},
		{"one pass", short, 4096, false, fftExtract{Out: out, N: 4096, Paths: 6}, "needs a float transform of more than one pass"},
		{"inverse", buf, n, true, fftExtract{Out: out, N: n, Paths: 6}, "does not match"},
		{"nil output", buf, n, false, fftExtract{N: n, Paths: 6}, "does not match"},
		{"dtype", buf, n, false, fftExtract{Out: out64, N: n, Paths: 6}, "does not match"},
		{"too many values", buf, n, false, fftExtract{Out: out, N: n + 1, Paths: 6}, "does not match"},
		{"too many rows", buf, n, false, fftExtract{Out: out, N: n, Paths: 7}, "does not match"},
		{"too few rows", buf, n, false, fftExtract{Out: out, N: n, Paths: 4}, "does not match"},
		{"size", buf, n, false, fftExtract{Out: out, N: n / 2, Paths: 6}, "does not match"},
	} {
		err := b.fftBatch(c.buf, 3, c.n, c.inverse, &c.ex)
		if c.wantText == "" {
			assert.NoError(t, err, c.name)
		} else {
			assert.ErrorContains(t, err, c.wantText, c.name)
		}
	}
}

// Arguments the GPU path refuses beyond ops.CheckFFT (whose errors the CPU tests cover): data not
// aligned to a complex value, and a dst that overlaps src without being it.
func TestFFTRejectsMisalignedAndOverlapping(t *testing.T) {
	b := backend(t)
	defer b.Close()
	buf, err := tensor.New(gpu, tensor.F64, 2*16+4)
	require.NoError(t, err)
	defer buf.Close()
	at := func(off int) *tensor.Tensor {
		v, err := buf.View(off, 1, 16, 2)
		require.NoError(t, err)
		return v
	}
	err = b.FFT(at(1), at(1), false)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "aligned")
	}
	err = b.FFT(at(2), at(0), false)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "overlap")
	}
	assert.NoError(t, b.FFT(at(2), at(2), false), "the same view is in place")
}

// The backend's scratch buffers and twiddle tables live until Close and no longer: device memory
// before the backend equals device memory after its Close, across growing scratch sizes (each
// growth frees the smaller buffer). Signals up to 2^20 values, 2^15 on the emulated device.
func TestFFTReleasesMemory(t *testing.T) {
	before := gpu.Allocated()
	b := backend(t)
	largest := sized(1<<20, 1<<15)
	for _, dt := range fftDTypes {
		for _, n := range []int{1 << 13, sized(1<<16, 1<<14), largest} {
			x := lvDevice(t, dt, fftInput(dt, 3, 2, n), 2, n, 2)
			require.NoError(t, b.FFT(x, x, false))
			require.NoError(t, b.FFT(x, x, true))
			require.NoError(t, x.Close())
		}
	}
	require.NoError(t, gpu.Synchronize())
	held := gpu.Allocated() - before
	// One scratch per dtype (the largest, 2·largest complex values) and one table per dtype (8 KiB).
	assert.Equal(t, int64(2*largest*2*4+2*largest*2*8+2*8192), held, "cached after the calls")
	require.NoError(t, b.Close())
	assert.Equal(t, before, gpu.Allocated(), "device bytes before the backend and after its Close")
}
