//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Tolerances of Step, ULDStep and AddGaussianFactor against the float64 CPU reference, per element
// and relative to the row's scale S_i: the largest, over the row, of the sum of the magnitudes of
// the terms that make up one output element (Step: |α x| + |β_i s| + |γ_i ξ|; ULD x':
// |x| + |cx v| + |cxg s| + |l11 ξ1|, v': |E v| + |cv s| + |l21 ξ1| + |l22 ξ2|; Gaussian factor
// score: |s| + |a r / v|, log p: |log p| + ‖r‖²/(2v)). Scaling by the terms rather than by |result|
// keeps the bound meaningful where the terms cancel (α x + γ ξ ≈ 0 occurs somewhere in 10^5 rows).
//
// The kernels evaluate every combination in float64, in the reference's order, from the same
// inputs (float32 inputs widen exactly), and round once; the IEEE-exact build contracts nothing.
// What remains:
//   - the normals: none, they are the reference's bit for bit (optest.NormalF32 and NormalF64:
//     both sides perform the same float32 or float64 operations);
//   - the final rounding of a float32 output: two float64 values a hair apart may round to
//     neighbouring floats, one ulp = 2^-23 ≈ 1.2e-7 of |result| ≤ S;
//   - row sums (MALA's two squared norms, the factor's ‖c − a x‖²): a different summation order,
//     at most 2(d − 1)·2^-53 ≈ 2.8e-14 of the sum for d = 128.
//
// float32: only the rounding (and the float64 sum order below it) remains, as for the Gaussian
// factor, which has no normals: 2 ulp, 2.5e-7. float64: 2.8e-14 from a sum, checked at 1e-13.
// MALA's outputs are copies (exact); its accept decisions are compared one by one.
const (
	langevinRtolF32 = 2.5e-7
	langevinRtolF64 = 1e-13
	factorRtolF32   = 2.5e-7
	factorRtolF64   = 1e-13
	// malaFlipsF32 is the number of accept decisions per case a float32 run may take differently
	// from the reference. The kernel computes log α in float64 from the same float32 inputs, so a
	// flip needs log U within a few float64 ulp of log α (probability of order 1e-12 per chain); one is
	// allowed to tolerate such a tie, none in float64.
	malaFlipsF32 = 1
)

// Sentinel elements on each side of every output: an odd count, so that the output is not 16-byte
// aligned and the kernels take their scalar path, or a multiple of 4, which keeps the allocation's
// 256-byte alignment and lets Step and ULDStep use 16-byte loads and stores where d allows.
const (
	lvGuard        = 37
	lvGuardAligned = 32
)

// Batch sizes and widths of the parity tests; the large size (largeRows) runs a subset of the
// widths (lvLargeDims: on the emulated device only 1, one Philox lane per row, and 128, whole
// lanes and the 16-byte path where the buffers are aligned; the partial lanes of 3 and 33 run at
// the smaller sizes).
var (
	lvRows = []int{0, 1, 3, 31, 33, 1025}
	lvDims = []int{1, 2, 3, 5, 16, 33, 128}
)

func lvLargeDims() []int { return sized([]int{1, 3, 33, 128}, []int{1, 128}) }

type lvShape struct{ n, d int }

func (s lvShape) String() string { return fmt.Sprintf("N=%d d=%d", s.n, s.d) }

// lvShapes is every (N, d) of the parity tests; -short leaves out the large batch.
func lvShapes() []lvShape {
	var out []lvShape
	for _, n := range append(append([]int(nil), lvRows...), largeRows()) {
		if n == largeRows() && testing.Short() {
			continue
		}
		dims := lvDims
		if n == largeRows() {
			dims = lvLargeDims()
		}
		for _, d := range dims {
			out = append(out, lvShape{n, d})
		}
	}
	return out
}

var lvDTypes = []tensor.DType{tensor.F32, tensor.F64}

func lvRtol(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return langevinRtolF32
	}
	return langevinRtolF64
}

// lvInput returns n·d deterministic values scale·sin(0.7 k + phase).
func lvInput(n, d int, phase, scale float64) []float64 {
	v := make([]float64, n*d)
	for i := range v {
		v[i] = scale * math.Sin(float64(i)*0.7+phase)
	}
	return v
}

// lvHost returns a host tensor of dt holding vals (rounded to float32 for F32).
func lvHost(t *testing.T, dt tensor.DType, vals []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromFloat64s(dt, vals, shape...)
	require.NoError(t, err)
	return x
}

// lvRounded returns vals as dt stores them.
func lvRounded(dt tensor.DType, vals []float64) []float64 {
	out := append([]float64(nil), vals...)
	if dt == tensor.F32 {
		for i, v := range out {
			out[i] = float64(float32(v))
		}
	}
	return out
}

// lvDevice returns a device copy of vals as dt.
func lvDevice(t *testing.T, dt tensor.DType, vals []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	d, err := lvHost(t, dt, vals, shape...).CopyTo(gpu)
	require.NoError(t, err)
	return d
}

func lvValues(t *testing.T, x *tensor.Tensor) []float64 {
	t.Helper()
	h := x
	if !x.OnHost() {
		var err error
		h, err = x.CopyTo(nil)
		require.NoError(t, err)
	}
	v, err := h.Float64s()
	require.NoError(t, err)
	return v
}

// lvGuarded is a device tensor (view) inside a buffer filled with optest.Sentinel, with guard
// elements on each side (an optest.Guarded on gpu).
type lvGuarded struct {
	g    optest.Guarded
	view *tensor.Tensor
}

// newGuarded allocates a tensor of the given shape holding vals (nil: optest.Sentinel everywhere)
// inside lvGuard Sentinel elements on each side.
func newGuarded(t *testing.T, dt tensor.DType, vals []float64, shape ...int) lvGuarded {
	t.Helper()
	return newGuardedBy(t, lvGuard, dt, vals, shape...)
}

// newGuardedBy is newGuarded with guard elements on each side.
func newGuardedBy(t *testing.T, guard int, dt tensor.DType, vals []float64, shape ...int) lvGuarded {
	t.Helper()
	g, err := optest.NewGuarded(gpu, guard, dt, vals, shape...)
	require.NoError(t, err)
	return lvGuarded{g: g, view: g.View()}
}

// values returns the view's values; the test fails when a guard element is no longer Sentinel,
// bit for bit.
func (g lvGuarded) values(t *testing.T, name string) []float64 {
	t.Helper()
	v, err := g.g.Values(name)
	require.NoError(t, err)
	return v
}

func (g lvGuarded) close() { g.g.Close() }

// lvSame reports whether a and b hold the same values (NaN equal to NaN).
func lvSame(a, b []float64) bool {
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

// lvAbsSum is optest.AbsSum: the row scale of a sum of terms, NaN terms skipped.
func lvAbsSum(terms ...float64) float64 { return optest.AbsSum(terms...) }

// lvCompareRows is optest.CompareRowsScaled: |got − ref| ≤ rtol·scale[row] with NaN exactly where
// the reference has NaN; it returns the largest |got − ref| / scale[row].
func lvCompareRows(got, ref, scale []float64, width int, rtol float64) (float64, error) {
	return optest.CompareRowsScaled(got, ref, scale, width, rtol)
}

// lvErrors collects the largest observed error per label, logged at the end of a test.
type lvErrors map[string]float64

func (e lvErrors) add(label string, v float64) { e[label] = math.Max(e[label], v) }

func (e lvErrors) log(t *testing.T, what string) {
	t.Helper()
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %s: max |gpu − ref| / row scale = %.3g", what, k, e[k])
	}
}

// lvLeakCheck fails the test when device memory allocated during it is still held at its end.
func lvLeakCheck(t *testing.T) {
	t.Helper()
	before := gpu.Allocated()
	t.Cleanup(func() {
		if after := gpu.Allocated(); after != before {
			t.Errorf("device memory leak: %d bytes allocated before, %d after", before, after)
		}
	})
}

func lvBackend(t *testing.T) ops.Backend {
	t.Helper()
	b := backend(t)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

// lvNormals returns the reference's normals of the draw for (n, d) in dt's stream.
func lvNormals(t *testing.T, dt tensor.DType, n, d int, draw ops.Draw) []float64 {
	t.Helper()
	xi, err := optest.RefNormals(dt, n, d, draw)
	require.NoError(t, err)
	return xi
}

type stepVariant struct {
	name     string
	c        ops.Coeffs // H unset: perChain sets it
	perChain bool
}

var stepVariants = []stepVariant{
	{"ula", ops.ULA(0.01), false},
	{"per-chain ula", ops.Coeffs{Alpha: 1, Beta: 1, Gamma: math.Sqrt2}, true},
	{"no score", ops.Coeffs{Alpha: 0.9, Beta: 0, Gamma: 0.7}, false},
	{"no noise", ops.Coeffs{Alpha: 1.2, Beta: -0.5, Gamma: 0}, false},
	{"exponential integrator", ops.Coeffs{Alpha: math.Exp(0.1), Beta: 2 * math.Expm1(0.1), Gamma: math.Sqrt(math.Expm1(0.2))}, false},
	{"per-chain scaled", ops.Coeffs{Alpha: -0.3, Beta: 2.5, Gamma: 0.25}, true},
}

// Step on the GPU equals the CPU reference for both dtypes, odd shapes, shared and per-chain step
// sizes, with and without a score, in place and not, inside guard bands.
func TestStepParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, dt := range lvDTypes {
		for _, sh := range lvShapes() {
			for vi, v := range stepVariants {
				for _, inPlace := range []bool{false, true} {
					if sh.n == largeRows() && !(vi == 0 && !inPlace || vi == 1 && inPlace) {
						continue
					}
					label := fmt.Sprintf("%v %s %s in-place=%v", dt, sh, v.name, inPlace)
					worst, err := stepCase(t, b, dt, sh, v, inPlace)
					require.NoError(t, err, label)
					errs.add(dt.String(), worst)
				}
			}
		}
	}
	errs.log(t, "step")
}

func stepCase(t *testing.T, b ops.Backend, dt tensor.DType, sh lvShape, v stepVariant, inPlace bool) (float64, error) {
	n, d := sh.n, sh.d
	x := lvInput(n, d, 0.3, 3)
	if n > 2 {
		x[d] = math.NaN() // poisons one element of row 1
	}
	s := lvInput(n, d, 1.1, 2)
	draw := ops.Draw{Seed: 0x5eed00 + uint64(d), Site: 1<<33 + uint64(n), FirstChain: uint64(n % 5)}

	// Device. In place, x (= dst) sits on a 16-byte boundary: with d a multiple of the Philox
	// lane width the kernel takes its vector path. Otherwise dst is misaligned: the scalar path.
	guard := lvGuard
	if inPlace {
		guard = lvGuardAligned
	}
	xg := newGuardedBy(t, guard, dt, x, n, d)
	defer xg.close()
	dg := xg
	if !inPlace {
		dg = newGuarded(t, dt, nil, n, d)
		defer dg.close()
	}
	c := v.c
	var score *tensor.Tensor
	if c.Beta != 0 {
		score = lvDevice(t, dt, s, n, d)
		defer score.Close()
	}
	var hs []float64
	if v.perChain {
		hs = optest.StepHs(n)
		c.H = lvDevice(t, dt, hs, n)
		defer c.H.Close()
	}
	require.NoError(t, b.Step(dg.view, xg.view, score, c, draw))
	require.NoError(t, gpu.Synchronize())
	got := dg.values(t, "dst")
	if !inPlace {
		require.True(t, lvSame(xg.values(t, "x"), lvRounded(dt, x)), "x changed by a step that was not in place")
	}

	// Reference.
	hx := lvHost(t, dt, x, n, d)
	cref := v.c
	var hscore *tensor.Tensor
	if cref.Beta != 0 {
		hscore = lvHost(t, dt, s, n, d)
	}
	if v.perChain {
		cref.H = lvHost(t, dt, hs, n)
	}
	hdst := hx
	if !inPlace {
		var err error
		hdst, err = tensor.New(nil, dt, n, d)
		require.NoError(t, err)
	}
	require.NoError(t, ops.Reference().Step(hdst, hx, hscore, cref, draw))
	ref := lvValues(t, hdst)

	// Row scales from the terms.
	xr, sr, hr := lvRounded(dt, x), lvRounded(dt, s), lvRounded(dt, hs)
	xi := lvNormals(t, dt, n, d, draw)
	scale := make([]float64, n)
	for i := range scale {
		beta, gamma := c.Beta, c.Gamma
		if v.perChain {
			beta, gamma = beta*hr[i], gamma*math.Sqrt(hr[i])
		}
		for j := 0; j < d; j++ {
			k := i*d + j
			terms := []float64{c.Alpha * xr[k]}
			if c.Beta != 0 {
				terms = append(terms, beta*sr[k])
			}
			if gamma != 0 {
				terms = append(terms, gamma*xi[k])
			}
			scale[i] = math.Max(scale[i], lvAbsSum(terms...))
		}
	}
	return lvCompareRows(got, ref, scale, d, lvRtol(dt))
}

type uldVariant struct {
	h     float64
	p     ops.ULDParams
	site  uint64
	guard int // lvGuardAligned: x and v on 16-byte boundaries (the vector path where d allows)
}

var uldVariants = []uldVariant{
	{0.1, ops.ULDParams{Gamma: 2, InvMass: 1}, 1<<32 - 1, lvGuardAligned}, // site + 1 carries into the high word
	{1e-3, ops.ULDParams{Gamma: 0.5, InvMass: 2}, 1<<40 + 7, lvGuard},     // γh < 1e-2: the series branch
	{0.5, ops.ULDParams{Gamma: 10, InvMass: 0.5}, 12, lvGuardAligned},
}

// ULDStep on the GPU equals the CPU reference (same draws at site and site+1) for both dtypes and
// odd shapes, in place inside guard bands.
func TestULDStepParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, dt := range lvDTypes {
		for _, sh := range lvShapes() {
			for vi, v := range uldVariants {
				if sh.n == largeRows() && vi > 0 {
					continue
				}
				label := fmt.Sprintf("%v %s h=%g %+v site=%d", dt, sh, v.h, v.p, v.site)
				wx, wv, err := uldCase(t, b, dt, sh, v)
				require.NoError(t, err, label)
				errs.add(dt.String()+" x", wx)
				errs.add(dt.String()+" v", wv)
			}
		}
	}
	errs.log(t, "uld step")
}

func uldCase(t *testing.T, b ops.Backend, dt tensor.DType, sh lvShape, v uldVariant) (float64, float64, error) {
	n, d := sh.n, sh.d
	x := lvInput(n, d, 0.3, 3)
	if n > 2 {
		x[d] = math.NaN()
	}
	vel := lvInput(n, d, 2.3, 1.5)
	s := lvInput(n, d, 1.1, 2)
	draw := ops.Draw{Seed: 0xd1ce + uint64(d), Site: v.site, FirstChain: uint64(n % 5)}

	xg := newGuardedBy(t, v.guard, dt, x, n, d)
	defer xg.close()
	vg := newGuardedBy(t, v.guard, dt, vel, n, d)
	defer vg.close()
	score := lvDevice(t, dt, s, n, d)
	defer score.Close()
	require.NoError(t, b.ULDStep(xg.view, vg.view, score, v.h, v.p, draw))
	require.NoError(t, gpu.Synchronize())
	gotX, gotV := xg.values(t, "x"), vg.values(t, "v")

	hx, hv := lvHost(t, dt, x, n, d), lvHost(t, dt, vel, n, d)
	require.NoError(t, ops.Reference().ULDStep(hx, hv, lvHost(t, dt, s, n, d), v.h, v.p, draw))
	refX, refV := lvValues(t, hx), lvValues(t, hv)

	e, cv, cx, cxg, l11, l21, l22 := ops.ULDCoefficients(v.h, v.p)
	xr, vr, sr := lvRounded(dt, x), lvRounded(dt, vel), lvRounded(dt, s)
	xi1 := lvNormals(t, dt, n, d, draw)
	xi2 := lvNormals(t, dt, n, d, ops.Draw{Seed: draw.Seed, Site: draw.Site + 1, FirstChain: draw.FirstChain})
	sx, sv := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			k := i*d + j
			sx[i] = math.Max(sx[i], lvAbsSum(xr[k], cx*vr[k], cxg*sr[k], l11*xi1[k]))
			sv[i] = math.Max(sv[i], lvAbsSum(e*vr[k], cv*sr[k], l21*xi1[k], l22*xi2[k]))
		}
	}
	wx, err := lvCompareRows(gotX, refX, sx, d, lvRtol(dt))
	if err != nil {
		return wx, 0, fmt.Errorf("x: %w", err)
	}
	wv, err := lvCompareRows(gotV, refV, sv, d, lvRtol(dt))
	if err != nil {
		return wx, wv, fmt.Errorf("v: %w", err)
	}
	return wx, wv, nil
}

// malaInputs is one batch of MALA chains on the standard Gaussian (log p = −‖x‖²/2, s = −x) with
// proposals y = x + h s(x) + sqrt(2h) ξ, stored as dt.
type malaInputs struct {
	x, lpx, sx, y, lpy, sy, hs, acc []float64
	h                               float64
}

// newMALAInputs is the conformance suite's batch (optest.NewMALAInputs: edge rows with a NaN
// proposal and a current log p of −∞, counts starting at i mod 3).
func newMALAInputs(t *testing.T, dt tensor.DType, n, d int, perChain bool) malaInputs {
	in, err := optest.NewMALAInputs(dt, n, d, perChain)
	require.NoError(t, err)
	return malaInputs{x: in.X, lpx: in.LogPX, sx: in.ScoreX, y: in.Y, lpy: in.LogPY, sy: in.ScoreY,
		hs: in.HS, acc: in.Accepted, h: in.H}
}

// malaResult is the state after MALAAccept.
type malaResult struct{ x, lp, s, acc []float64 }

func malaOnDevice(t *testing.T, b ops.Backend, dt tensor.DType, n, d int, m malaInputs, perChain bool, draw ops.Draw) malaResult {
	xg, lg, sg := newGuarded(t, dt, m.x, n, d), newGuarded(t, dt, m.lpx, n), newGuarded(t, dt, m.sx, n, d)
	defer xg.close()
	defer lg.close()
	defer sg.close()
	ag := newGuarded(t, tensor.F64, m.acc, n)
	defer ag.close()
	y, lpy, sy := lvDevice(t, dt, m.y, n, d), lvDevice(t, dt, m.lpy, n), lvDevice(t, dt, m.sy, n, d)
	defer y.Close()
	defer lpy.Close()
	defer sy.Close()
	var hs *tensor.Tensor
	if perChain {
		hs = lvDevice(t, dt, m.hs, n)
		defer hs.Close()
	}
	cur := ops.MALAState{X: xg.view, LogP: lg.view, Score: sg.view}
	prop := ops.MALAState{X: y, LogP: lpy, Score: sy}
	require.NoError(t, b.MALAAccept(cur, prop, m.h, hs, draw, ag.view))
	require.NoError(t, gpu.Synchronize())
	return malaResult{xg.values(t, "x"), lg.values(t, "log p"), sg.values(t, "score"), ag.values(t, "accepted")}
}

func malaOnCPU(t *testing.T, dt tensor.DType, n, d int, m malaInputs, perChain bool, draw ops.Draw) malaResult {
	x, lp, s := lvHost(t, dt, m.x, n, d), lvHost(t, dt, m.lpx, n), lvHost(t, dt, m.sx, n, d)
	acc := lvHost(t, tensor.F64, m.acc, n)
	var hs *tensor.Tensor
	if perChain {
		hs = lvHost(t, dt, m.hs, n)
	}
	cur := ops.MALAState{X: x, LogP: lp, Score: s}
	prop := ops.MALAState{X: lvHost(t, dt, m.y, n, d), LogP: lvHost(t, dt, m.lpy, n), Score: lvHost(t, dt, m.sy, n, d)}
	require.NoError(t, ops.Reference().MALAAccept(cur, prop, m.h, hs, draw, acc))
	return malaResult{lvValues(t, x), lvValues(t, lp), lvValues(t, s), lvValues(t, acc)}
}

// malaCompare counts the chains whose decision differs from the reference's and checks everything
// else: decisions are 0 or 1, agreeing chains have bit-identical state, and a chain that decided
// differently holds exactly the outcome of its own decision. It returns the flips and the number
// of chains the reference accepted.
func malaCompare(t *testing.T, n, d int, m malaInputs, got, ref malaResult) (flips, accepts int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ga, ra := got.acc[i]-m.acc[i], ref.acc[i]-m.acc[i]
		if (ga != 0 && ga != 1) || (ra != 0 && ra != 1) {
			t.Fatalf("chain %d: accepted count moved by %v (reference %v), want 0 or 1", i, ga, ra)
		}
		accepts += int(ra)
		row := func(v []float64) []float64 { return v[i*d : (i+1)*d] }
		if ga == ra {
			if !lvSame(row(got.x), row(ref.x)) || !lvSame(row(got.s), row(ref.s)) || !lvSame(got.lp[i:i+1], ref.lp[i:i+1]) {
				t.Fatalf("chain %d: same decision as the reference, different state", i)
			}
			continue
		}
		flips++
		wantX, wantS, wantL := m.x, m.sx, m.lpx
		if ga == 1 {
			wantX, wantS, wantL = m.y, m.sy, m.lpy
		}
		if !lvSame(row(got.x), row(wantX)) || !lvSame(row(got.s), row(wantS)) || !lvSame(got.lp[i:i+1], wantL[i:i+1]) {
			t.Fatalf("chain %d: state does not match its own decision (accepted %v)", i, ga)
		}
	}
	return flips, accepts
}

// MALAAccept on the GPU takes the reference's accept decisions (same uniform, log α in float64)
// and applies them exactly, for both dtypes, odd shapes, shared and per-chain step sizes.
func TestMALAAcceptParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	totalFlips := map[tensor.DType]int{}
	chains := map[tensor.DType]int{}
	for _, dt := range lvDTypes {
		for _, sh := range lvShapes() {
			for _, perChain := range []bool{false, true} {
				if sh.n == largeRows() && !perChain {
					continue
				}
				n, d := sh.n, sh.d
				m := newMALAInputs(t, dt, n, d, perChain)
				draw := ops.Draw{Seed: 0xacce97 + uint64(d), Site: 3<<32 + 5, FirstChain: uint64(n % 5)}
				got := malaOnDevice(t, b, dt, n, d, m, perChain, draw)
				ref := malaOnCPU(t, dt, n, d, m, perChain, draw)
				flips, accepts := malaCompare(t, n, d, m, got, ref)
				totalFlips[dt] += flips
				chains[dt] += n
				allowed := 0
				if dt == tensor.F32 {
					allowed = malaFlipsF32
				}
				require.LessOrEqual(t, flips, allowed, "%v %s per-chain=%v: %d decisions differ from the reference", dt, sh, perChain, flips)
				if n >= 1025 {
					rate := float64(accepts) / float64(n)
					assert.True(t, rate > 0.02 && rate < 0.98, "%v %s per-chain=%v: acceptance %.3f does not exercise both outcomes", dt, sh, perChain, rate)
					if n == largeRows() {
						t.Logf("%v %s per-chain=%v: acceptance %.3f", dt, sh, perChain, rate)
					}
				}
			}
		}
	}
	for _, dt := range lvDTypes {
		t.Logf("mala accept %v: %d of %d decisions differ from the reference", dt, totalFlips[dt], chains[dt])
	}
}

type factorVariant struct {
	name        string
	logp, score bool
	eta         float64
}

var factorVariants = []factorVariant{
	{name: "both η=0.3", logp: true, score: true, eta: 0.3},
	{name: "log p η=0.3", logp: true, eta: 0.3},
	{name: "score η=0.3", score: true, eta: 0.3},
	{name: "both η=0.01", logp: true, score: true, eta: 0.01},
}

// AddGaussianFactor on the GPU equals the CPU reference for every output subset, both dtypes and
// odd shapes, in place inside guard bands.
func TestGaussianFactorParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, dt := range lvDTypes {
		rtol := factorRtolF64
		if dt == tensor.F32 {
			rtol = factorRtolF32
		}
		for _, sh := range lvShapes() {
			for vi, v := range factorVariants {
				if sh.n == largeRows() && vi > 0 {
					continue
				}
				n, d := sh.n, sh.d
				label := fmt.Sprintf("%v %s %s", dt, sh, v.name)
				a, variance := math.Exp(-v.eta), -math.Expm1(-2*v.eta)
				x := lvInput(n, d, 0.3, 3)
				if n > 2 {
					x[d] = math.NaN()
				}
				center := lvInput(n, d, 1.7, 2.5)
				lp0, s0 := lvInput(n, 1, 0.9, 10), lvInput(n, d, 2.1, 1)

				// Device.
				xd, cd := lvDevice(t, dt, x, n, d), lvDevice(t, dt, center, n, d)
				lg, sg := newGuarded(t, dt, lp0, n), newGuarded(t, dt, s0, n, d)
				out := ops.ScoreOutputs{}
				if v.logp {
					out.LogP = lg.view
				}
				if v.score {
					out.Score = sg.view
				}
				require.NoError(t, b.AddGaussianFactor(out, xd, cd, a, variance), label)
				require.NoError(t, gpu.Synchronize())
				gotL, gotS := lg.values(t, "log p"), sg.values(t, "score")
				xd.Close()
				cd.Close()
				lg.close()
				sg.close()

				// Reference.
				hl, hs := lvHost(t, dt, lp0, n), lvHost(t, dt, s0, n, d)
				hout := ops.ScoreOutputs{}
				if v.logp {
					hout.LogP = hl
				}
				if v.score {
					hout.Score = hs
				}
				require.NoError(t, ops.Reference().AddGaussianFactor(hout, lvHost(t, dt, x, n, d), lvHost(t, dt, center, n, d), a, variance))
				refL, refS := lvValues(t, hl), lvValues(t, hs)

				xr, cr, lr, sr := lvRounded(dt, x), lvRounded(dt, center), lvRounded(dt, lp0), lvRounded(dt, s0)
				scaleL, scaleS := make([]float64, n), make([]float64, n)
				for i := 0; i < n; i++ {
					q := 0.0
					for j := 0; j < d; j++ {
						k := i*d + j
						r := cr[k] - a*xr[k]
						if !math.IsNaN(r) {
							q += r * r
						}
						scaleS[i] = math.Max(scaleS[i], lvAbsSum(sr[k], a*r/variance))
					}
					scaleL[i] = lvAbsSum(lr[i], q/(2*variance))
				}
				wl, err := lvCompareRows(gotL, refL, scaleL, 1, rtol)
				require.NoError(t, err, "%s: log p", label)
				ws, err := lvCompareRows(gotS, refS, scaleS, d, rtol)
				require.NoError(t, err, "%s: score", label)
				errs.add(dt.String()+" log p", wl)
				errs.add(dt.String()+" score", ws)
			}
		}
	}
	errs.log(t, "gaussian factor")
}

// Empty batches and zero-width rows: no launch and no change, except MALA, whose decision then
// rests on the log-densities alone (as in the reference). Bad arguments are refused before any
// launch.
func TestLangevinEdges(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	for _, dt := range lvDTypes {
		for _, sh := range []lvShape{{0, 0}, {0, 4}, {5, 0}} {
			n, d := sh.n, sh.d
			x := newGuarded(t, dt, lvInput(n, d, 0.1, 1), n, d)
			v := newGuarded(t, dt, lvInput(n, d, 0.2, 1), n, d)
			s := newGuarded(t, dt, lvInput(n, d, 0.3, 1), n, d)
			lp := newGuarded(t, dt, lvInput(n, 1, 0.4, 1), n)
			launches := launchesDuring(func() {
				require.NoError(t, b.Step(x.view, x.view, s.view, ops.ULA(0.1), ops.Draw{}), "%v %s", dt, sh)
				require.NoError(t, b.ULDStep(x.view, v.view, s.view, 0.1, ops.ULDParams{Gamma: 1, InvMass: 1}, ops.Draw{}))
				require.NoError(t, b.AddGaussianFactor(ops.ScoreOutputs{LogP: lp.view, Score: s.view}, x.view, v.view, 0.9, 0.2))
				require.NoError(t, gpu.Synchronize())
			})
			assert.Zero(t, launches, "%v %s: kernel launches", dt, sh)
			assert.True(t, lvSame(x.values(t, "x"), lvRounded(dt, lvInput(n, d, 0.1, 1))))
			assert.True(t, lvSame(v.values(t, "v"), lvRounded(dt, lvInput(n, d, 0.2, 1))))
			assert.True(t, lvSame(s.values(t, "score"), lvRounded(dt, lvInput(n, d, 0.3, 1))))
			assert.True(t, lvSame(lp.values(t, "log p"), lvRounded(dt, lvInput(n, 1, 0.4, 1))))
			x.close()
			v.close()
			s.close()
			lp.close()
		}

		// MALA with d = 0: log α = log p(y) − log p(x).
		const n = 64
		m := malaInputs{h: 0.3, x: []float64{}, sx: []float64{}, y: []float64{}, sy: []float64{}}
		m.lpx, m.lpy = lvRounded(dt, lvInput(n, 1, 0.5, 1)), lvRounded(dt, lvInput(n, 1, 2.0, 1))
		m.acc = make([]float64, n)
		draw := ops.Draw{Seed: 4, Site: 9}
		got := malaOnDevice(t, b, dt, n, 0, m, false, draw)
		ref := malaOnCPU(t, dt, n, 0, m, false, draw)
		flips, accepts := malaCompare(t, n, 0, m, got, ref)
		assert.Zero(t, flips, "%v d=0", dt)
		assert.True(t, accepts > 0 && accepts < n, "%v d=0: %d of %d accepted", dt, accepts, n)
	}

	// Refusals: the ops.Check* validators run first.
	x, err := tensor.New(gpu, tensor.F32, 4, 3)
	require.NoError(t, err)
	defer x.Close()
	lp, err := tensor.New(gpu, tensor.F32, 4)
	require.NoError(t, err)
	defer lp.Close()
	host, err := tensor.New(nil, tensor.F32, 4, 3)
	require.NoError(t, err)
	cur := ops.MALAState{X: x, LogP: lp, Score: x}
	var refusals map[string]error
	launches := launchesDuring(func() {
		refusals = map[string]error{
			"host dst":                 b.Step(host, x, x, ops.ULA(0.1), ops.Draw{}),
			"negative noise":           b.Step(x, x, x, ops.Coeffs{Alpha: 1, Gamma: -1}, ops.Draw{}),
			"f32 acceptance counts":    b.MALAAccept(cur, cur, 0.1, nil, ops.Draw{}, lp),
			"zero step":                b.ULDStep(x, x, x, 0, ops.ULDParams{Gamma: 1, InvMass: 1}, ops.Draw{}),
			"last site":                b.ULDStep(x, x, x, 0.1, ops.ULDParams{Gamma: 1, InvMass: 1}, ops.Draw{Site: math.MaxUint64}),
			"factor without outputs":   b.AddGaussianFactor(ops.ScoreOutputs{}, x, x, 0.9, 0.2),
			"chains beyond 2^32 (uld)": b.ULDStep(x, x, x, 0.1, ops.ULDParams{Gamma: 1, InvMass: 1}, ops.Draw{FirstChain: ops.MaxChains - 2}),
		}
	})
	for name, err := range refusals {
		assert.Error(t, err, name)
	}
	assert.Zero(t, launches, "kernel launches by refused calls")
}
