//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Tolerances of EmpiricalScore against the float64 CPU reference, per element and relative to
// the output row's scale: |gpu − ref| ≤ rtol·(|ref| + max_row |ref|), NaN where the reference is
// NaN.
//
// float32: the reference computes in float64 from the same float32 queries (the float64 data is
// rounded to float32 by the upload: 6e-8 relative). The kernel sums the d squared differences of
// a distance in float32 (each difference one rounding, 32-term blocks), so a logit ‖x − a y‖²/(2v)
// carries an absolute error of a few float32 ulp of its size, which is about d/2 for points near
// the query; the exponential turns it into the same relative error of the weights, which then sum
// over M·Q terms. With d ≤ 513 that is a few 1e-6 of the row's scale (a few 1e-5 when the noise
// spreads the weights over many points); 2e-4 (the conformance suite's float32 score tolerance)
// leaves a margin of 5 or more.
// The score is accumulated as Σ w (a y − x), never as a Σ w y − x Σ w, so it keeps this relative
// accuracy when x sits on a data point.
// float64: the same argument with 2^-53 (≈ 1e-14 of the row scale), plus 1–2 ulp from the
// device's exp and log: 1e-11.
const (
	empiricalRtolF32 = 2e-4
	empiricalRtolF64 = 1e-11
)

const empiricalGuard = 37 // optest.Sentinel elements on each side of every output

// Output selections.
const (
	empLogP = 1 << iota
	empScore
	empDen
	empAll = empLogP | empScore | empDen
)

// empiricalTarget returns M points uniform in [-1, 1]^d, stored as dataDT, with Q mixture terms
// (Q = 1: the plain kernel density).
func empiricalTarget(t *testing.T, m, d, q int, seed int64, dataDT tensor.DType) *ops.Empirical {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	vals := make([]float64, m*d)
	for i := range vals {
		vals[i] = 2*rng.Float64() - 1
	}
	var data *tensor.Tensor
	var err error
	if dataDT == tensor.F32 {
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		data, err = tensor.FromF32(f, m, d)
	} else {
		data, err = tensor.FromF64(vals, m, d)
	}
	require.NoError(t, err)
	e, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	if q > 1 {
		w, s := make([]float64, q), make([]float64, q)
		for i := range w {
			w[i], s[i] = float64(i+1), 0.5+float64(i)
		}
		e, err = e.WithMixture(w, s)
		require.NoError(t, err)
	}
	return e
}

// empiricalQueries returns n query rows near the data (a data point plus N(0, 0.5²) noise), with
// a NaN coordinate in row 1 when n > 2 (it must poison that row only).
func empiricalQueries(e *ops.Empirical, n int, seed int64) []float64 {
	rng := rand.New(rand.NewSource(seed))
	d := e.Dim()
	x := make([]float64, n*d)
	for i := 0; i < n; i++ {
		k := rng.Intn(e.Points())
		for j := 0; j < d; j++ {
			x[i*d+j] = e.At(k, j) + 0.5*rng.NormFloat64()
		}
	}
	if n > 2 {
		x[d] = math.NaN()
	}
	return x
}

// empNoise is a noise setting with its per-row levels (if any) on the host.
type empNoise struct {
	name   string
	noise  ops.Noise
	levels []float64
}

// empiricalNoises: VE, VP, affine, and per-row VE levels with invalid entries (−1, 0, +Inf, NaN
// at rows 3, 5, 7, 9 where they exist).
func empiricalNoises(n int) []empNoise {
	levels := make([]float64, n)
	for i := range levels {
		levels[i] = 0.3 + 0.2*float64(i%5)
	}
	for i, v := range map[int]float64{3: -1, 5: 0, 7: math.Inf(1), 9: math.NaN()} {
		if i < n {
			levels[i] = v
		}
	}
	return []empNoise{
		{name: "ve", noise: ops.AtSigma(0.5)},
		{name: "vp", noise: ops.AtTime(0.4)},
		{name: "affine", noise: ops.Noise{Kind: ops.Affine, Scale: 0.9, Var: 0.3}},
		{name: "per-row", noise: ops.Noise{Kind: ops.VE}, levels: levels},
	}
}

func empHost(t *testing.T, dt tensor.DType, v []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	if dt == tensor.F64 {
		h, err := tensor.FromF64(append([]float64(nil), v...), shape...)
		require.NoError(t, err)
		return h
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	h, err := tensor.FromF32(f, shape...)
	require.NoError(t, err)
	return h
}

// evalEmpirical runs b.EmpiricalScore on x (rows of width d) with the selected outputs and returns
// them on the host. Every output starts as optest.Sentinel (so that an element left unwritten,
// on the GPU or in the reference, is seen); on a GPU each output is a view inside a buffer whose
// guard bands must come back untouched, bit for bit.
func evalEmpirical(t *testing.T, b ops.Backend, e *ops.Empirical, x []float64, dt tensor.DType, nc empNoise, want int) map[string][]float64 {
	t.Helper()
	dev := b.Device()
	d := e.Dim()
	n := len(x) / d
	xt, err := empHost(t, dt, x, n, d).CopyTo(dev)
	require.NoError(t, err)
	defer xt.Close()
	nz := nc.noise
	if nc.levels != nil {
		lt, err := empHost(t, dt, nc.levels, n).CopyTo(dev)
		require.NoError(t, err)
		defer lt.Close()
		nz.Levels = lt
	}
	guard := 0
	if dev.Kind() != tensor.KindCPU {
		guard = empiricalGuard
	}
	bufs := map[string]*tensor.Tensor{}
	var out ops.ScoreOutputs
	for _, o := range []struct {
		name  string
		bit   int
		shape []int
		dst   **tensor.Tensor
	}{
		{"log p", empLogP, []int{n}, &out.LogP},
		{"score", empScore, []int{n, d}, &out.Score},
		{"denoiser", empDen, []int{n, d}, &out.Denoiser},
	} {
		if want&o.bit == 0 {
			continue
		}
		width := 1
		if len(o.shape) == 2 {
			width = d
		}
		buf, err := tensor.New(dev, dt, guard+n*width+guard)
		require.NoError(t, err)
		defer buf.Close()
		require.NoError(t, buf.Fill(optest.Sentinel))
		v, err := buf.View(guard, o.shape...)
		require.NoError(t, err)
		*o.dst = v
		bufs[o.name] = buf
	}
	require.NoError(t, b.EmpiricalScore(out, xt, e, nz))
	require.NoError(t, dev.Synchronize())
	res := map[string][]float64{}
	for name, buf := range bufs {
		h, err := buf.CopyTo(nil)
		require.NoError(t, err)
		all, err := h.Float64s()
		require.NoError(t, err)
		require.NoError(t, optest.CheckGuards(all, guard, name))
		res[name] = all[guard : len(all)-guard]
	}
	return res
}

// empRowError is max |got − ref| / (|ref| + max_row |ref|) over (rows × width) outputs (0 where both
// are equal, +Inf where exactly one is NaN or either still holds optest.Sentinel: not written).
func empRowError(got, ref []float64, width int) float64 {
	worst := 0.0
	for r := 0; r*width < len(ref); r++ {
		row := ref[r*width : (r+1)*width]
		scale := 0.0
		for _, v := range row {
			if !math.IsNaN(v) {
				scale = math.Max(scale, math.Abs(v))
			}
		}
		for j, want := range row {
			g := got[r*width+j]
			switch {
			case optest.IsSentinel(g) || optest.IsSentinel(want) || math.IsNaN(want) != math.IsNaN(g):
				return math.Inf(1)
			case math.IsNaN(want) || g == want:
				continue
			}
			worst = math.Max(worst, math.Abs(g-want)/(math.Abs(want)+scale))
		}
	}
	return worst
}

// empMaxErrors collects the largest error seen per dtype, for the log.
type empMaxErrors map[tensor.DType]float64

func (m empMaxErrors) log(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		if v, ok := m[dt]; ok {
			t.Logf("%v: max error %.3g of the row scale (tolerance %g)", dt, v, empiricalRtol(dt))
		}
	}
}

func empiricalRtol(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return empiricalRtolF32
	}
	return empiricalRtolF64
}

// empCheck evaluates the selected outputs on b and on the CPU reference and compares them.
func empCheck(t *testing.T, b ops.Backend, e *ops.Empirical, x []float64, dt tensor.DType, nc empNoise, want int, errs empMaxErrors) map[string][]float64 {
	t.Helper()
	got := evalEmpirical(t, b, e, x, dt, nc, want)
	ref := evalEmpirical(t, ops.Reference(), e, x, dt, nc, want)
	empCompare(t, got, ref, e.Dim(), dt, errs)
	return got
}

// empCompare compares every output of got with the reference's (rows of width d, log p of 1) under
// empiricalRtol and records the largest error.
func empCompare(t *testing.T, got, ref map[string][]float64, d int, dt tensor.DType, errs empMaxErrors) {
	t.Helper()
	for name, g := range got {
		r, ok := ref[name]
		if !assert.True(t, ok, "%s: no reference", name) {
			continue
		}
		width := d
		if name == "log p" {
			width = 1
		}
		err := empRowError(g, r, width)
		errs[dt] = math.Max(errs[dt], err)
		assert.LessOrEqual(t, err, empiricalRtol(dt), "%s: error %.3g of the row scale", name, err)
	}
}

// setEmpiricalKnobs sets the path-forcing knobs for one test and restores them after it.
func setEmpiricalKnobs(t *testing.T, chunk, splits int) {
	oldChunk, oldSplits := maxChunkPoints, forceSplits
	maxChunkPoints, forceSplits = chunk, splits
	t.Cleanup(func() { maxChunkPoints, forceSplits = oldChunk, oldSplits })
}

func closeEmpiricalBackend(t *testing.T, b ops.Backend) {
	t.Helper()
	require.NoError(t, b.Close())
}

// Every output against the CPU reference over shapes (odd N, M, d; one and three mixture terms),
// all noise kinds, per-row levels with invalid rows, both dtypes. On the emulated device the data
// sets are smaller (129 points for the sweep over d, at most 1025 over M, the large case 67
// queries × 513 points): still several row tiles and data tiles, and (M = 1025, N = 31) several
// blocks per row tile.
func TestEmpiricalScoreParity(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	type shape struct{ n, m, d, q int }
	var shapes []shape
	for _, d := range []int{1, 2, 3, 17, 64, 128, 513} {
		for _, q := range []int{1, 3} {
			shapes = append(shapes, shape{33, sized(1000, 129), d, q})
		}
	}
	for _, n := range []int{0, 1, 3, 31, 33, 1025} {
		shapes = append(shapes, shape{n, 33, 17, 3})
	}
	for _, m := range []int{1, 3, 33, 1000, sized(4099, 1025)} {
		for _, q := range []int{1, 3} {
			shapes = append(shapes, shape{31, m, 64, q})
		}
	}
	shapes = append(shapes, sized(shape{1025, 4099, 128, 1}, shape{67, 513, 128, 1}))
	errs := empMaxErrors{}
	for i, s := range shapes {
		e := empiricalTarget(t, s.m, s.d, s.q, int64(i), tensor.F64)
		x := empiricalQueries(e, s.n, int64(1000+i))
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			for _, nc := range empiricalNoises(s.n) {
				t.Run(fmt.Sprintf("N%d_M%d_d%d_Q%d/%v/%s", s.n, s.m, s.d, s.q, dt, nc.name), func(t *testing.T) {
					empCheck(t, b, e, x, dt, nc, empAll, errs)
				})
			}
		}
	}
	errs.log(t)
}

// Each output alone (and each pair) equals the same output computed with all of them, bit for bit:
// the accumulators and reductions do not depend on what else is asked for. With Q = 1 and Q = 3,
// one block per row tile and several; 700 data points (257 on the emulated device).
func TestEmpiricalScoreOutputSubsets(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	errs := empMaxErrors{}
	for _, splits := range []int{1, 3} {
		for _, q := range []int{1, 3} {
			setEmpiricalKnobs(t, 0, splits)
			e := empiricalTarget(t, sized(700, 257), 40, q, int64(q), tensor.F64)
			x := empiricalQueries(e, 70, 7)
			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				nc := empiricalNoises(70)[3]
				all := empCheck(t, b, e, x, dt, nc, empAll, errs)
				for _, want := range []int{empLogP, empScore, empDen, empLogP | empScore, empLogP | empDen, empScore | empDen} {
					got := empCheck(t, b, e, x, dt, nc, want, errs)
					for name, v := range got {
						assert.True(t, empSameBits(v, all[name]), "splits %d Q %d %v outputs %03b: %s differs from the all-outputs run", splits, q, dt, want, name)
					}
				}
			}
		}
	}
	errs.log(t)
}

// The register-accumulator entry (float, d ≤ 64, one vector output) gives the bits of the
// global-memory one: every noise setting, d on both sides of the narrow-slab switch (16, 17) and at
// the limit (64); VP noise and per-row levels with invalid rows; one block per row tile and three;
// the data in one pass and in chunks (so the registers are resumed from the slots). 67 queries over
// 300 points, the score alone and the denoiser with log p.
func TestEmpiricalScoreRegisterEntry(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	errs := empMaxErrors{}
	setGlobal := func(v bool) {
		old := globalAccumulators
		globalAccumulators = v
		t.Cleanup(func() { globalAccumulators = old })
	}
	for _, d := range []int{1, 16, 17, 64} {
		e := empiricalTarget(t, 300, d, 2, int64(d), tensor.F64)
		x := empiricalQueries(e, 67, int64(100+d))
		noises := empiricalNoises(67)
		for _, nc := range []empNoise{noises[1], noises[3]} {
			for _, knobs := range [][2]int{{0, 1}, {0, 3}, {100, 1}, {100, 3}} {
				for _, want := range []int{empScore, empLogP | empDen} {
					name := fmt.Sprintf("d%d/%s/chunk %d splits %d/outputs %03b", d, nc.name, knobs[0], knobs[1], want)
					setEmpiricalKnobs(t, knobs[0], knobs[1])
					setGlobal(true)
					global := empCheck(t, b, e, x, tensor.F32, nc, want, errs)
					setGlobal(false)
					reg := empCheck(t, b, e, x, tensor.F32, nc, want, errs)
					for out, v := range reg {
						assert.True(t, empSameBits(v, global[out]), "%s: %s differs between the register and global entries", name, out)
					}
				}
			}
		}
	}
	errs.log(t)
}

// empSameBits reports whether two result vectors are identical (NaN matching NaN).
func empSameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// The chunked path (data copied from the host in pieces, state carried between launches) gives
// the one-pass result: bit for bit with one block per row tile (the same tiles in the same order),
// within tolerance with several blocks per row tile. Data stored as f32 and as f64 (the f32
// kernel converts f64 data chunk by chunk). 130 queries over 1000 points, every noise setting; on
// the emulated device 67 queries over 400 points (2 row tiles; 7, 7 and 2 chunks in float32, 13, 5
// and 2 in float64), a shared level and per-row levels with invalid rows.
func TestEmpiricalScoreChunked(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	errs := empMaxErrors{}
	m, n := sized(1000, 400), sized(130, 67)
	for _, dataDT := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, q := range []int{1, 3} {
			e := empiricalTarget(t, m, 33, q, 11, dataDT)
			x := empiricalQueries(e, n, 12)
			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				noises := empiricalNoises(n)
				if emulated {
					noises = []empNoise{noises[0], noises[3]}
				}
				for _, nc := range noises {
					name := fmt.Sprintf("data %v/Q%d/%v/%s", dataDT, q, dt, nc.name)
					ref := evalEmpirical(t, ops.Reference(), e, x, dt, nc, empAll)
					check := func() map[string][]float64 {
						got := evalEmpirical(t, b, e, x, dt, nc, empAll)
						empCompare(t, got, ref, e.Dim(), dt, errs)
						return got
					}
					setEmpiricalKnobs(t, 0, 1)
					one := check()
					for _, chunk := range []int{1, 100, 333} { // rounded to whole tiles: 1 tile, 1–3 tiles, 5–10 tiles
						setEmpiricalKnobs(t, chunk, 1)
						got := check()
						for out, v := range got {
							assert.True(t, empSameBits(v, one[out]), "%s: chunks of ≤ %d points: %s differs from one pass", name, chunk, out)
						}
						setEmpiricalKnobs(t, chunk, 3)
						check()
					}
				}
			}
		}
	}
	errs.log(t)
}

// A device with little free memory: the launcher cuts the data into chunks that fit; with less
// than one tile plus the row state it refuses with the sizes involved.
func TestEmpiricalScoreMemoryLimit(t *testing.T) {
	e := empiricalTarget(t, 2000, 64, 1, 21, tensor.F64)
	x := empiricalQueries(e, 50, 22)
	nc := empiricalNoises(50)[0]
	old := freeMemory
	t.Cleanup(func() { freeMemory = old })
	_, total, err := gpu.MemInfo()
	require.NoError(t, err)
	headroom := min(max(total/32, 128<<20), 1<<30)

	// One block per row tile; room for the row state and about 300 points of f64 data (600 of
	// f32): chunks of 288 (f64) and 576 (f32) points.
	setEmpiricalKnobs(t, 0, 1)
	freeMemory = func(*Backend) (int64, int64, error) { return headroom + 4096 + 300*64*8, total, nil }
	b := backend(t)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		p, err := b.(*Backend).planEmpirical(e, dt, 50, ops.ScoreOutputs{})
		require.NoError(t, err)
		assert.Nil(t, p.resident, "%v: the data must not be uploaded whole", dt)
		assert.Equal(t, 9*empiricalTile(dt), p.chunk, "%v: chunk of 9 tiles", dt)
		p.close()
	}
	errs := empMaxErrors{}
	empCheck(t, b, e, x, tensor.F32, nc, empAll, errs)
	empCheck(t, b, e, x, tensor.F64, nc, empAll, errs)
	closeEmpiricalBackend(t, b)
	errs.log(t)

	// Room for nothing: a clear error.
	freeMemory = func(*Backend) (int64, int64, error) { return headroom, total, nil }
	b = backend(t)
	defer closeEmpiricalBackend(t, b)
	xt, err := empHost(t, tensor.F32, x, 50, 64).CopyTo(gpu)
	require.NoError(t, err)
	defer xt.Close()
	lp, err := tensor.New(gpu, tensor.F32, 50)
	require.NoError(t, err)
	defer lp.Close()
	err = b.EmpiricalScore(ops.ScoreOutputs{LogP: lp}, xt, e, nc.noise)
	require.Error(t, err)
	for _, s := range []string{"does not fit", "needs", "free", "M = 2000", "d = 64"} {
		assert.Contains(t, err.Error(), s)
	}
	t.Log(err)
}

// Several blocks share one row tile's data (the split path), including more splits than data
// tiles (empty splits), against the reference. 999 data points (333 on the emulated device: 6 and
// 11 tiles in float32 and float64, fewer than 64 splits).
func TestEmpiricalScoreSplits(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	errs := empMaxErrors{}
	for _, splits := range []int{2, 5, 64} {
		setEmpiricalKnobs(t, 0, splits)
		for _, q := range []int{1, 3} {
			e := empiricalTarget(t, sized(999, 333), 17, q, 31, tensor.F64)
			x := empiricalQueries(e, 67, 32)
			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				for _, nc := range empiricalNoises(67) {
					empCheck(t, b, e, x, dt, nc, empAll, errs)
				}
			}
		}
	}
	errs.log(t)
}

// With a single data point the posterior mean is that point: exactly with one mixture term
// (weight e^0 = 1), within 2·2^-23 (2^-52) of |y| with three (Σ_q p_q y / Σ_q p_q: a sum of three
// products and a division).
func TestEmpiricalScoreSinglePoint(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, q := range []int{1, 3} {
			e := empiricalTarget(t, 1, 9, q, 41, dt)
			x := empiricalQueries(e, 40, 42)
			got := evalEmpirical(t, b, e, x, dt, empiricalNoises(40)[1], empDen)["denoiser"]
			ulp := math.Pow(2, -23)
			if dt == tensor.F64 {
				ulp = math.Pow(2, -52)
			}
			for i := 0; i < 40; i++ {
				for j := 0; j < 9; j++ {
					g, y := got[i*9+j], e.At(0, j)
					if i == 1 {
						assert.True(t, math.IsNaN(g), "row 1 has a NaN coordinate")
						continue
					}
					if q == 1 {
						assert.Equal(t, y, g, "%v row %d col %d", dt, i, j)
					} else {
						assert.InDelta(t, y, g, 2*ulp*math.Abs(y), "%v Q=3 row %d col %d", dt, i, j)
					}
				}
			}
		}
	}
}

// Rows whose level is not a finite positive number get NaN everywhere; the other rows are finite.
func TestEmpiricalScoreInvalidRows(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	e := empiricalTarget(t, 300, 5, 3, 51, tensor.F64)
	x := empiricalQueries(e, 12, 52)
	x[5] = 0 // no NaN coordinate here: every non-finite output must come from a level
	nc := empiricalNoises(12)[3]
	bad := map[int]bool{3: true, 5: true, 7: true, 9: true}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		got := evalEmpirical(t, b, e, x, dt, nc, empAll)
		for name, v := range got {
			width := len(v) / 12
			for i := 0; i < 12; i++ {
				for _, g := range v[i*width : (i+1)*width] {
					if bad[i] {
						assert.True(t, math.IsNaN(g), "%v %s row %d (level %g) must be NaN", dt, name, i, nc.levels[i])
					} else {
						assert.False(t, math.IsNaN(g) || math.IsInf(g, 0) || optest.IsSentinel(g), "%v %s row %d: %v", dt, name, i, g)
					}
				}
			}
		}
	}
}

// Far from the data with tiny noise (|x| = 1e4, σ = 1e-3) the logits are about −1e14: the online
// softmax never exponentiates an unshifted one, so the outputs are finite and right.
func TestEmpiricalScoreFarFromData(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	e := empiricalTarget(t, 200, 4, 1, 61, tensor.F64)
	x := empiricalQueries(e, 9, 62)
	for i := range x {
		x[i] += 1e4
	}
	nc := empNoise{name: "σ=1e-3", noise: ops.AtSigma(1e-3)}
	errs := empMaxErrors{}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		got := empCheck(t, b, e, x, dt, nc, empAll, errs)
		for name, v := range got {
			for i, g := range v {
				if width := len(v) / 9; i/width != 1 {
					assert.False(t, math.IsNaN(g) || math.IsInf(g, 0) || optest.IsSentinel(g), "%v %s[%d] = %v", dt, name, i, g)
				}
			}
		}
	}
	errs.log(t)
}

// Outputs that overlap an input or each other are refused.
func TestEmpiricalScoreOverlap(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	e := empiricalTarget(t, 10, 3, 1, 71, tensor.F64)
	buf, err := tensor.New(gpu, tensor.F32, 3*4*3)
	require.NoError(t, err)
	defer buf.Close()
	x, _ := buf.View(0, 4, 3)
	a, _ := buf.View(12, 4, 3)
	c, _ := buf.View(18, 4, 3) // overlaps a
	for _, tc := range []struct {
		name string
		out  ops.ScoreOutputs
	}{
		{"score is x", ops.ScoreOutputs{Score: x}},
		{"denoiser overlaps score", ops.ScoreOutputs{Score: a, Denoiser: c}},
	} {
		err := b.EmpiricalScore(tc.out, x, e, ops.AtSigma(1))
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), "overlaps", tc.name)
	}
}

// The data is uploaded once per dtype and shared by copies of the target (WithMixture); every
// device allocation is returned by Close.
func TestEmpiricalScoreCacheAndLeaks(t *testing.T) {
	before := gpu.Allocated()
	b := backend(t)
	e := empiricalTarget(t, 500, 16, 1, 81, tensor.F64)
	x := empiricalQueries(e, 1000, 82)
	nc := empiricalNoises(1000)[0]
	setEmpiricalKnobs(t, 0, 1)
	evalEmpirical(t, b, e, x, tensor.F32, nc, empAll)
	first := gpu.Allocated()
	evalEmpirical(t, b, e, x, tensor.F32, nc, empAll)
	assert.Equal(t, first, gpu.Allocated(), "a second call allocates nothing")
	e3, err := e.WithMixture([]float64{1, 2, 3}, []float64{0.5, 1, 2})
	require.NoError(t, err)
	evalEmpirical(t, b, e3, x, tensor.F32, nc, empAll)
	assert.Equal(t, int64(3*2*8), gpu.Allocated()-first, "a mixture copy adds only its (A_q, 1/m_q) table")
	// The other paths: chunked, split, f64.
	setEmpiricalKnobs(t, 100, 1)
	evalEmpirical(t, b, e, x, tensor.F32, nc, empAll)
	setEmpiricalKnobs(t, 0, 4)
	evalEmpirical(t, b, e, x[:16*40], tensor.F64, empiricalNoises(40)[3], empAll)
	require.NoError(t, b.Close())
	assert.Equal(t, before, gpu.Allocated(), "device bytes before the backend and after its Close")
}

// N = 0 does nothing and succeeds; a data set has no noise-free density.
func TestEmpiricalScoreEdges(t *testing.T) {
	b := backend(t)
	defer closeEmpiricalBackend(t, b)
	e := empiricalTarget(t, 10, 3, 1, 91, tensor.F64)
	x, err := tensor.New(gpu, tensor.F32, 0, 3)
	require.NoError(t, err)
	defer x.Close()
	lp, err := tensor.New(gpu, tensor.F32, 0)
	require.NoError(t, err)
	defer lp.Close()
	launches := launchesDuring(func() {
		require.NoError(t, b.EmpiricalScore(ops.ScoreOutputs{LogP: lp}, x, e, ops.AtSigma(1)))
		err = b.EmpiricalScore(ops.ScoreOutputs{LogP: lp}, x, e, ops.NoNoise)
	})
	assert.Zero(t, launches, "kernel launches for N = 0 and for a refused call")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "noise"), err.Error())
}
