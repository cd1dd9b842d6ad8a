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

// Tolerances of Combine against the float64 CPU reference, per element and relative to the
// element's term scale S = Σ_k |C_k T_k| + noise·|ξ|: optest.CombineF32/F64 with noise,
// optest.CombineNoiselessF32/F64 without (their derivation is in ops/optest/diffusion.go). In
// short: the kernel forms the reference's float64 sum in the reference's order from the same
// stored inputs and rounds once, so without noise the results agree to the last bit unless the
// Go compiler contracted an FMA (≤ 7 × 2^-53 S, 1e-15 allowed) and, for float32, the final
// rounding then lands on the neighbouring float (≤ 2^-23 S, 2.5e-7 allowed); the normals of the
// noise term are the reference's bit for bit, so noise changes nothing. MetropolisStep's
// decisions are taken in float64 on the same stored values in the reference's summation order
// (re-taken in that order by the kernel wherever its own order could disagree), so x and the
// rejection counts must agree exactly.

// Batch sizes and widths of the Combine and MetropolisStep parity tests; the large batch
// (largeRows) runs a subset of the widths (its reference runs on the CPU). The wide rows are 513
// values on a GPU and 129 on the emulated device: odd, a partial Philox lane and a group of lanes
// per row either way, at a quarter of the work.
var (
	dfRows      = []int{0, 1, 3, 31, 32, 33, 1023, 1025}
	dfLargeDims = []int{1, 3, 64}
)

func dfDims() []int { return []int{1, 2, 3, 64, sized(513, 129)} }

// dfCoeffs are the coefficients of the parity tests' terms, in term order (magnitudes spread over
// two decades, both signs, so that terms cancel somewhere).
var dfCoeffs = [ops.MaxTerms]float64{1.25, -0.75, 2.5, -0.3, 0.06, -19}

// dfShapes is every (N, d) of the parity tests; -short leaves out the large batch.
func dfShapes() []lvShape {
	var out []lvShape
	for _, n := range append(append([]int(nil), dfRows...), largeRows()) {
		if n == largeRows() && testing.Short() {
			continue
		}
		dims := dfDims()
		if n == largeRows() {
			dims = dfLargeDims
		}
		for _, d := range dims {
			out = append(out, lvShape{n, d})
		}
	}
	return out
}

func dfRtol(dt tensor.DType, noise float64) float64 {
	switch {
	case dt == tensor.F32 && noise != 0:
		return optest.CombineF32
	case dt == tensor.F32:
		return optest.CombineNoiselessF32
	case noise != 0:
		return optest.CombineF64
	}
	return optest.CombineNoiselessF64
}

// combineVariant is one Combine call of the sweep.
type combineVariant struct {
	terms   int
	alias   int // dst = term alias; −1: a separate tensor
	noise   float64
	aligned bool // buffers on 16-byte boundaries (the kernels' vector paths where d allows)
}

func (v combineVariant) String() string {
	return fmt.Sprintf("%d terms alias %d noise %g aligned %v", v.terms, v.alias, v.noise, v.aligned)
}

// combineVariants: 1..MaxTerms terms, each without and with noise, into a separate tensor and into
// one of the terms (the aliased term rotates with the shape), alternately aligned and not. The
// large batch keeps 2 and MaxTerms terms; on the emulated device every shape keeps 1, 2 and
// MaxTerms (TestCombineAliasEveryTerm and the conformance suite run every count).
func combineVariants(sh lvShape) []combineVariant {
	var out []combineVariant
	for k := 1; k <= ops.MaxTerms; k++ {
		if sh.n == largeRows() && k != 2 && k != ops.MaxTerms {
			continue
		}
		if emulated && k > 2 && k != ops.MaxTerms {
			continue
		}
		for _, noise := range []float64{0, 0.7} {
			for _, alias := range []int{-1, (sh.n + sh.d + k) % k} {
				out = append(out, combineVariant{terms: k, alias: alias, noise: noise, aligned: k%2 == 0})
			}
		}
	}
	return out
}

// Combine on the GPU equals the CPU reference for 1..6 terms, with and without noise, into a
// separate tensor or in place over any one term, for both dtypes and the edge shapes, inside NaN
// guard bands, on the vector and the scalar paths; terms other than dst are left untouched.
func TestCombineParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, dt := range lvDTypes {
		for _, sh := range dfShapes() {
			for _, v := range combineVariants(sh) {
				worst, err := combineCase(t, b, dt, sh, v)
				require.NoError(t, err, "%v %s %s", dt, sh, v)
				errs.add(fmt.Sprintf("%v noise=%v", dt, v.noise != 0), worst)
			}
		}
	}
	errs.log(t, "combine")
}

// Every choice of aliased term with MaxTerms terms, at a shape with a partial Philox lane.
func TestCombineAliasEveryTerm(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	for _, dt := range lvDTypes {
		for alias := -1; alias < ops.MaxTerms; alias++ {
			for _, noise := range []float64{0, 1.5} {
				v := combineVariant{terms: ops.MaxTerms, alias: alias, noise: noise, aligned: alias%2 == 0}
				_, err := combineCase(t, b, dt, lvShape{33, 7}, v)
				require.NoError(t, err, "%v %s", dt, v)
			}
		}
	}
}

func combineCase(t *testing.T, b ops.Backend, dt tensor.DType, sh lvShape, v combineVariant) (float64, error) {
	n, d := sh.n, sh.d
	guard := lvGuard
	if v.aligned {
		guard = lvGuardAligned
	}
	inputs := make([][]float64, v.terms)
	for k := range inputs {
		inputs[k] = lvRounded(dt, lvInput(n, d, 0.4+0.9*float64(k), []float64{1, 3, 0.5, 2, 7, 0.25}[k]))
	}
	if n > 2 {
		inputs[0][d] = math.NaN() // poisons element (1, 0)
	}
	draw := ops.Draw{Seed: 0xc0b1e + uint64(d), Site: 1<<33 + uint64(n), FirstChain: uint64(n % 5)}

	// Device.
	bufs := make([]lvGuarded, v.terms)
	terms := make([]ops.Term, v.terms)
	for k := range bufs {
		bufs[k] = newGuardedBy(t, guard, dt, inputs[k], n, d)
		defer bufs[k].close()
		terms[k] = ops.Term{T: bufs[k].view, C: dfCoeffs[k]}
	}
	out := lvGuarded{}
	if v.alias >= 0 {
		out = bufs[v.alias]
	} else {
		out = newGuardedBy(t, guard, dt, nil, n, d)
		defer out.close()
	}
	require.NoError(t, b.Combine(out.view, terms, v.noise, draw))
	require.NoError(t, gpu.Synchronize())
	got := out.values(t, "dst")
	for k, g := range bufs {
		if k != v.alias {
			require.True(t, lvSame(g.values(t, fmt.Sprintf("term %d", k)), inputs[k]), "term %d changed", k)
		}
	}

	// Reference.
	hterms := make([]ops.Term, v.terms)
	for k := range hterms {
		hterms[k] = ops.Term{T: lvHost(t, dt, inputs[k], n, d), C: dfCoeffs[k]}
	}
	hdst := lvHost(t, dt, make([]float64, n*d), n, d)
	if v.alias >= 0 {
		hdst = hterms[v.alias].T
	}
	require.NoError(t, ops.Reference().Combine(hdst, hterms, v.noise, draw))
	ref := lvValues(t, hdst)

	// Element scales from the terms.
	scale := make([]float64, n*d)
	var xi []float64
	if v.noise != 0 {
		xi = lvNormals(t, dt, n, d, draw)
	}
	for e := range scale {
		parts := make([]float64, 0, v.terms+1)
		for k := range inputs {
			parts = append(parts, dfCoeffs[k]*inputs[k][e])
		}
		if xi != nil {
			parts = append(parts, v.noise*xi[e])
		}
		scale[e] = lvAbsSum(parts...)
	}
	return lvCompareRows(got, ref, scale, 1, dfRtol(dt, v.noise))
}

// dfDomains returns a box, a ball and a polytope in dimension d with dyadic numbers (boundary points
// exact in float32 too) and a point inside each. The polytope is x_j ≥ −1 for the first
// min(d, 6) coordinates, Σ_j x_j ≤ d/8 + 1, and (d ≥ 2) x_0 − x_1 ≤ 1/2.
func dfDomains(t *testing.T, d int) []struct {
	name     string
	dom      *ops.Domain
	interior []float64
} {
	t.Helper()
	lo, hi, c := make([]float64, d), make([]float64, d), make([]float64, d)
	for j := range lo {
		lo[j], hi[j] = -1-0.25*float64(j%3), 0.5+0.125*float64(j%5)
		c[j] = 0.25 * float64(j%3)
	}
	box, err := ops.NewBox(lo, hi)
	require.NoError(t, err)
	ball, err := ops.NewBall(c, 1.5)
	require.NoError(t, err)
	var a [][]float64
	var bv []float64
	for j := 0; j < min(d, 6); j++ {
		row := make([]float64, d)
		row[j] = -1
		a, bv = append(a, row), append(bv, 1)
	}
	sum := make([]float64, d)
	for j := range sum {
		sum[j] = 1
	}
	a, bv = append(a, sum), append(bv, float64(d)/8+1)
	if d >= 2 {
		diff := make([]float64, d)
		diff[0], diff[1] = 1, -1
		a, bv = append(a, diff), append(bv, 0.5)
	}
	poly, err := ops.NewPolytope(a, bv)
	require.NoError(t, err)
	return []struct {
		name     string
		dom      *ops.Domain
		interior []float64
	}{
		{"box", box, make([]float64, d)},
		{"ball", ball, c},
		{"polytope", poly, make([]float64, d)},
	}
}

// MetropolisStep on the GPU takes exactly the reference's decisions (x and the rejection counts
// equal bit for bit) for boxes, balls and polytopes in every edge shape and both dtypes, with
// proposals inside, outside, exactly on the boundary and one ulp either side of it, NaN and
// infinite (optest.CheckMetropolisStep: guard bands around x and the counts).
func TestMetropolisStepParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	for _, dt := range lvDTypes {
		for _, sh := range dfShapes() {
			for _, dd := range dfDomains(t, sh.d) {
				err := optest.CheckMetropolisStep(b, dt, sh.n, dd.dom, dd.interior)
				require.NoError(t, err, "%v %s %s", dt, sh, dd.name)
			}
		}
	}
}

// Proposals within rounding of the boundary of domains with non-dyadic numbers, where the kernel's
// group sum and the reference's sequential sum can fall on opposite sides of the threshold: the
// kernel re-takes those decisions in the reference's order, so every decision must still agree.
// Points c + r u/‖u‖ (ball) and x0 + t a_i with a_i·(x0 + t a_i) ≈ b_i (a dense polytope), u and A
// Gaussian, for d = 64 and 513 (a group of 16 or 32 lanes per row; 129 on the emulated device,
// also 32 lanes). About half of these points land on each side (at least a tenth on either, the
// test asserts, so that it cannot pass vacuously). 20000 points per case, 2003 on the emulated
// device.
func TestMetropolisStepBoundaryTies(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	n := sized(20000, 2003)
	for _, dt := range lvDTypes {
		for _, d := range []int{64, sized(513, 129)} {
			rng := rand.New(rand.NewPCG(uint64(d), 7))
			center := make([]float64, d)
			for j := range center {
				center[j] = rng.NormFloat64()
			}
			radius := 1 + rng.Float64()
			ball, err := ops.NewBall(center, radius)
			require.NoError(t, err)
			const m = 9
			a := make([][]float64, m)
			bv := make([]float64, m)
			for i := range a {
				a[i] = make([]float64, d)
				for j := range a[i] {
					a[i][j] = rng.NormFloat64()
				}
				bv[i] = 1 + rng.Float64()
			}
			poly, err := ops.NewPolytope(a, bv)
			require.NoError(t, err)

			ballProp := make([]float64, n*d)
			polyProp := make([]float64, n*d)
			u := make([]float64, d)
			for i := 0; i < n; i++ {
				s := 0.0
				for j := range u {
					u[j] = rng.NormFloat64()
					s += u[j] * u[j]
				}
				s = math.Sqrt(s)
				for j := range u {
					ballProp[i*d+j] = center[j] + radius*u[j]/s
				}
				// The foot of the perpendicular from 0 on facet i mod m (0 is inside: b > 0),
				// nudged along u by less than rounding noise.
				ai := a[i%m]
				aa := 0.0
				for _, v := range ai {
					aa += v * v
				}
				t0 := bv[i%m] / aa
				for j := range u {
					polyProp[i*d+j] = t0*ai[j] + 1e-17*u[j]
				}
			}
			for _, c := range []struct {
				name string
				dom  *ops.Domain
				prop []float64
			}{{"ball", ball, ballProp}, {"polytope", poly, polyProp}} {
				prop := lvRounded(dt, c.prop)
				x := make([]float64, n*d)
				rej := make([]float64, n)
				xg := newGuarded(t, dt, x, n, d)
				rg := newGuarded(t, tensor.F64, rej, n)
				pd := lvDevice(t, dt, prop, n, d)
				require.NoError(t, b.MetropolisStep(xg.view, pd, c.dom, rg.view))
				require.NoError(t, gpu.Synchronize())
				gotX, gotR := xg.values(t, "x"), rg.values(t, "rejected")
				xg.close()
				rg.close()
				pd.Close()

				hx, hr := lvHost(t, dt, x, n, d), lvHost(t, tensor.F64, rej, n)
				require.NoError(t, ops.Reference().MetropolisStep(hx, lvHost(t, dt, prop, n, d), c.dom, hr))
				refR := lvValues(t, hr)
				mismatches, rejected := 0, 0
				for i := range refR {
					if gotR[i] != refR[i] {
						mismatches++
					}
					rejected += int(refR[i])
				}
				t.Logf("%v d=%d %s: %d of %d near-boundary proposals rejected, %d decisions differ",
					dt, d, c.name, rejected, n, mismatches)
				assert.Zero(t, mismatches, "%v d=%d %s", dt, d, c.name)
				assert.True(t, lvSame(gotX, lvValues(t, hx)), "%v d=%d %s: x differs", dt, d, c.name)
				assert.True(t, rejected > n/10 && rejected < n-n/10, "%v d=%d %s: %d of %d rejected: the proposals should straddle the boundary",
					dt, d, c.name, rejected, n)
			}
		}
	}
}

// The domain's numbers are uploaded once per domain (a second step reuses them), and Close frees
// them.
func TestMetropolisStepUploadsOnce(t *testing.T) {
	before := gpu.Allocated()
	bk, err := New(gpu)
	require.NoError(t, err)
	b := bk.(*Backend)
	for _, dd := range dfDomains(t, 5) {
		x := lvDevice(t, tensor.F32, make([]float64, 33*5), 33, 5)
		rej := lvDevice(t, tensor.F64, make([]float64, 33), 33)
		require.NoError(t, b.MetropolisStep(x, x, dd.dom, rej))
		held := len(b.tables.items)
		require.NoError(t, b.MetropolisStep(x, x, dd.dom, rej))
		xd := lvDevice(t, tensor.F64, make([]float64, 33*5), 33, 5)
		require.NoError(t, b.MetropolisStep(xd, xd, dd.dom, rej))
		assert.Equal(t, held, len(b.tables.items), "%s: parameters uploaded again", dd.name)
		assert.Equal(t, make([]float64, 33), lvValues(t, rej), "%s: 0 lies in the domain", dd.name)
		x.Close()
		xd.Close()
		rej.Close()
	}
	assert.Equal(t, 5, len(b.tables.items), "box: lo, hi; ball: center; polytope: A, b")
	require.NoError(t, b.Close())
	assert.Equal(t, before, gpu.Allocated(), "device memory held after Close")
}
