//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Parity of kernels/noise.cu with the CPU references of ops/stable.go, ops/mafbm.go and
// ops/brownian.go.
//
// Stable. Every angle is formed and reduced in float64 on both sides, so the difference is that of
// the transcendental functions evaluated in the data's precision. With u the unit of the last
// place (2^-23 for float32, 2^-52 for float64) and the documented maximum errors of the CUDA math
// library (CUDA C Programming Guide, "Mathematical Functions": powf 8 ulp, sincospif 2, logf 1;
// pow 2, sincospi 1, log 1 in double) — Go's math, in float64, is at most as far off — the map
// X = S·sin(πα(t+b))·[(cos(π(t − α(t+b)))/W)^{1−α} / cos(πt)]^{1/α} carries a relative error of
// at most
//
//	sin, cos of a reduced argument: 2 + ½ (argument rounded to float) = 2.5 u; W = −log(1 − u): 1 u
//	(c₁/W)^{1−α}: |1−α|·(4 u from c₁/W + 10.5 u from the float exponent times |log(c₁/W)| ≤ 21)
//	              + 8 u (powf)
//	inner = that / cos(πt): + 3 u;   inner^{1/α}: /α, + 8 u (powf) + 17/α u (exponent rounding
//	              times |log inner| ≤ 34);   × sin, × S: + 4 u
//
// that is stableUlps(α) = ((15|1−α| + 28)/α + 12) u. At α = 1 the map is
// (1 + 2βt) tan(πt) − (2β/π) log(W cos(πt)/(1 + 2βt)), whose two terms can cancel: the bound is
// 8 u·|X| + 200 u (|2β/π| ≤ 0.64 times |log| ≤ 35 at ≈ 9 u). The isotropic vector √A·G adds the
// normals' tolerance (optest.NormalF32/F64) to half of A's bound. The checks allow stableMargin = 4
// times these worst-case bounds; the largest error seen is logged per case.
//
// MA-fBM and Brownian accumulate in float64 on both sides from normals that agree exactly
// (optest.NormalF32, NormalF64); normals within a relative tolerance would move an output by at
// most that fraction of its majorant M — the same recursion run on |decay|, |L|, |ξ| (MA-fBM: Ā_r ←
// decay_r Ā_r + Σ_j |L_rj| |ξ_j|, M = Σ_r |w_r| Ā_r, starting from |y|) or the sums of |ξ|
// (Brownian: √h (Σ_{q<m} |ξ| + (m/τ) Σ_epoch |ξ|), doubled for increments) — plus the rounding of
// the float64 arithmetic (a few 1e-16 of M) and of the stored value (one float32 ulp of |value|
// ≤ M on each side). Checked at 2·(normal tolerance)·M + 2.5e-7·M (f32) or 4e-14·M (f64).
const stableMargin = optest.StableMargin

func noiseNormalTol(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return optest.NormalF32.Rtol
	}
	return optest.NormalF64.Rtol
}

// stableTolerance returns (rtol, floor): |gpu − ref| ≤ rtol·(|ref| + floor) (optest.StableTolerance).
func stableTolerance(s ops.StableSpec, dt tensor.DType) (float64, float64) {
	return optest.StableTolerance(s, dt)
}

// noiseCompare checks |got − ref| ≤ tol[i] element by element (equal infinities pass, NaN and
// optest.Sentinel — an element not written — never) and returns the largest |got − ref| / scale[i]
// over scale[i] > 0.
func noiseCompare(got, ref, tol, scale []float64) (float64, error) {
	if len(got) != len(ref) {
		return 0, fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	worst := 0.0
	for i, want := range ref {
		g := got[i]
		if optest.IsSentinel(g) {
			return worst, fmt.Errorf("element %d: not written (still the fill value %v), reference %v", i, g, want)
		}
		d := math.Abs(g - want)
		if g == want {
			d = 0
		}
		if !(d <= tol[i]) {
			return worst, fmt.Errorf("element %d: got %v, reference %v (|diff| %.3g > tolerance %.3g)", i, g, want, d, tol[i])
		}
		if scale[i] > 0 {
			worst = math.Max(worst, d/scale[i])
		}
	}
	return worst, nil
}

var noiseDTypes = []tensor.DType{tensor.F32, tensor.F64}

// manyPaths is the large path count of the MA-fBM and Brownian tests: 20011 on a GPU, 4099 on the
// emulated device (still more than one grid step there: 2 SMs × 16 blocks × 128 paths).
func manyPaths() int { return sized(20011, 4099) }

// Stable on the GPU equals the CPU reference within stableTolerance for every kind, both dtypes
// and odd shapes, inside guard bands; the clamp counts agree except for values within the
// tolerance of the clamp (a tie the two sides may round differently).
func TestStableParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, s := range optest.StableSpecs() {
		for _, dt := range noiseDTypes {
			rtol, floor := stableTolerance(s, dt)
			label := fmt.Sprintf("%v α=%g β=%g clamp=%g %v (rtol %.2g)", s.Kind, s.Alpha, s.Beta, s.Clamp, dt, rtol)
			for _, rows := range []int{0, 1, 33, 1025, largeRows()} {
				dims := []int{1, 2, 3, 5, 33}
				if rows == largeRows() {
					if testing.Short() {
						continue
					}
					dims = []int{1, 3}
				}
				for _, dim := range dims {
					d := ops.Draw{Seed: 0xfeed, Site: uint64(7 + rows + dim), FirstChain: 11}
					g := newGuarded(t, dt, nil, rows, dim)
					n, err := b.Stable(g.view, s, d)
					require.NoError(t, err, label)
					got := g.values(t, label)
					g.close()

					ref, err := tensor.New(nil, dt, rows, dim)
					require.NoError(t, err)
					want, err := ops.Reference().Stable(ref, s, d)
					require.NoError(t, err)
					rv := lvValues(t, ref)
					tol, scale := make([]float64, len(rv)), make([]float64, len(rv))
					for i, v := range rv {
						scale[i] = math.Abs(v) + floor
						tol[i] = rtol * scale[i]
					}
					worst, err := noiseCompare(got, rv, tol, scale)
					require.NoError(t, err, "%s rows=%d dim=%d", label, rows, dim)
					errs.add(label, worst)

					if s.Clamp > 0 {
						free := s
						free.Clamp = 0
						raw, err := tensor.New(nil, dt, rows, dim)
						require.NoError(t, err)
						_, err = ops.Reference().Stable(raw, free, d)
						require.NoError(t, err)
						ties := int64(0)
						for _, v := range lvValues(t, raw) {
							if math.Abs(math.Abs(v)-s.Clamp) <= rtol*(math.Abs(v)+floor) {
								ties++
							}
						}
						assert.LessOrEqual(t, absInt64(n-want), ties, "%s rows=%d dim=%d: clamped %d, reference %d", label, rows, dim, n, want)
						if rows*dim > 1000 {
							assert.Positive(t, want, "%s: the case must clamp something", label)
						}
					} else {
						assert.Zero(t, n, label)
					}
				}
			}
		}
	}
	errs.log(t, "stable")
}

func absInt64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// mafbmMajorant returns, per path and step, M = Σ_r |w_r| Ā_r with Ā_r ← decay_r Ā_r +
// Σ_j |L_rj| |ξ_j| from Ā = |y0| (and the final Ā per path), with ξ the reference's normals
// (optest.MAFBMMajorant).
func mafbmMajorant(t *testing.T, m *ops.MAFBM, dt tensor.DType, y0 []float64, paths, steps int, h float64, d ops.Draw, stride uint64) ([]float64, []float64) {
	t.Helper()
	maj, abar, err := optest.MAFBMMajorant(m, dt, y0, paths, steps, h, d, stride)
	require.NoError(t, err)
	return maj, abar
}

// MAFBM on the GPU equals the reference within the majorant bound for K = 1, 2, 5 and 16, both
// dtypes, odd path counts and step counts (tiles of 32 steps, partial ones included), site
// strides, a non-zero starting state, inside guard bands on dst and y.
func TestMAFBMParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, k := range []int{1, 2, 5, 16} {
		m, err := ops.NewMAFBM(0.35, k, 20, 1)
		require.NoError(t, err)
		for _, dt := range noiseDTypes {
			tol := 2*noiseNormalTol(dt) + 2.5e-7
			if dt == tensor.F64 {
				tol = 2*noiseNormalTol(dt) + 2e-14
			}
			label := fmt.Sprintf("K=%d %v", k, dt)
			for _, c := range []struct{ paths, steps int }{{0, 5}, {1, 1}, {1, 40}, {33, 7}, {1025, 33}, {manyPaths(), 65}} {
				if c.paths == manyPaths() && testing.Short() {
					continue
				}
				const h = 0.01
				d := ops.Draw{Seed: 99, Site: 1000 + uint64(c.steps), FirstChain: 5}
				const stride = 16
				y0 := make([]float64, c.paths*k)
				for i := range y0 {
					y0[i] = 0.3 * math.Sin(0.37*float64(i))
				}
				y0 = lvRounded(dt, y0)
				gd := newGuarded(t, dt, nil, c.paths, c.steps)
				gy := newGuarded(t, dt, y0, c.paths, k)
				require.NoError(t, b.MAFBM(gd.view, gy.view, m, h, d, stride), label)
				got, gotY := gd.values(t, label+" dst"), gy.values(t, label+" y")
				gd.close()
				gy.close()

				ref, err := tensor.New(nil, dt, c.paths, c.steps)
				require.NoError(t, err)
				refY := lvHost(t, dt, y0, c.paths, k)
				require.NoError(t, ops.Reference().MAFBM(ref, refY, m, h, d, stride))
				maj, majY := mafbmMajorant(t, m, dt, y0, c.paths, c.steps, h, d, stride)
				tols, tolsY := make([]float64, len(maj)), make([]float64, len(majY))
				for i := range maj {
					tols[i] = tol * maj[i]
				}
				for i := range majY {
					tolsY[i] = tol * majY[i]
				}
				worst, err := noiseCompare(got, lvValues(t, ref), tols, maj)
				require.NoError(t, err, "%s paths=%d steps=%d: dst", label, c.paths, c.steps)
				errs.add(label+" dst", worst)
				worst, err = noiseCompare(gotY, lvValues(t, refY), tolsY, majY)
				require.NoError(t, err, "%s paths=%d steps=%d: y", label, c.paths, c.steps)
				errs.add(label+" y", worst)
			}
		}
	}
	errs.log(t, "ma-fbm")

	m, err := ops.NewMAFBM(0.3, 17, 20, 1)
	require.NoError(t, err)
	dst, err := tensor.New(gpu, tensor.F32, 4, 3)
	require.NoError(t, err)
	defer dst.Close()
	y, err := tensor.New(gpu, tensor.F32, 4, 17)
	require.NoError(t, err)
	defer y.Close()
	assert.ErrorContains(t, b.MAFBM(dst, y, m, 0.1, ops.Draw{}, 1), "at most 16")
	host, _ := tensor.New(nil, tensor.F32, 4, 3)
	hy, _ := tensor.New(nil, tensor.F32, 4, 17)
	assert.ErrorContains(t, b.MAFBM(host, hy, m, 0.1, ops.Draw{}, 1), "backend runs on")
}

// brownianMajorant returns per path and point the bound's scale: √h (Σ_{q<m} |ξ| + (m/τ) Σ_epoch
// |ξ|), and for increments the sum of that scale at the point and at the one before
// (optest.BrownianMajorant).
func brownianMajorant(t *testing.T, dt tensor.DType, paths, n int, s ops.BrownianSpec, d ops.Draw) []float64 {
	t.Helper()
	maj, err := optest.BrownianMajorant(dt, paths, n, s, d)
	require.NoError(t, err)
	return maj
}

// Brownian on the GPU equals the reference within the majorant bound: plain paths, bridges with
// epochs shorter than, equal to and longer than a tile (and longer than the path), increments,
// both dtypes, odd shapes, inside guard bands. Epoch ends are exactly 0 on the GPU too.
func TestBrownianParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	errs := lvErrors{}
	for _, dt := range noiseDTypes {
		tol := 2*noiseNormalTol(dt) + 2.5e-7
		if dt == tensor.F64 {
			tol = 2*noiseNormalTol(dt) + 4e-14
		}
		for _, epoch := range []int{0, 3, 32, 50, 500} {
			for _, inc := range []bool{false, true} {
				s := ops.BrownianSpec{Horizon: 2.5, Epoch: epoch, Increments: inc}
				label := fmt.Sprintf("epoch=%d increments=%v %v", epoch, inc, dt)
				for _, c := range []struct{ paths, n int }{{0, 4}, {1, 1}, {1, 100}, {33, 7}, {1025, 33}, {manyPaths(), 129}} {
					if c.paths == manyPaths() && testing.Short() {
						continue
					}
					d := ops.Draw{Seed: 123, Site: 45, FirstChain: 77}
					g := newGuarded(t, dt, nil, c.paths, c.n)
					require.NoError(t, b.Brownian(g.view, s, d), label)
					got := g.values(t, label)
					g.close()
					ref, err := tensor.New(nil, dt, c.paths, c.n)
					require.NoError(t, err)
					require.NoError(t, ops.Reference().Brownian(ref, s, d))
					maj := brownianMajorant(t, dt, c.paths, c.n, s, d)
					tols := make([]float64, len(maj))
					for i := range maj {
						tols[i] = tol * maj[i]
					}
					worst, err := noiseCompare(got, lvValues(t, ref), tols, maj)
					require.NoError(t, err, "%s paths=%d n=%d", label, c.paths, c.n)
					errs.add(label, worst)
					if epoch > 0 && !inc {
						for p := 0; p < c.paths; p++ {
							for k := epoch; k <= c.n; k += epoch {
								require.Zero(t, got[p*c.n+k-1], "%s path %d point %d", label, p, k)
							}
						}
					}
				}
			}
		}
	}
	errs.log(t, "brownian")
}

// The backend's cached MA-fBM tables and its clamp counter (a scratch buffer, reused by every
// clamped call) are freed by Close: the device holds the same bytes before the backend exists and
// after it is closed.
func TestNoiseLeavesNoDeviceMemory(t *testing.T) {
	before := gpu.Allocated()
	func() {
		b := backend(t)
		defer func() { assert.NoError(t, b.Close()) }()
		m, err := ops.NewMAFBM(0.7, 5, 20, 1)
		require.NoError(t, err)
		dst, err := tensor.New(gpu, tensor.F64, 100, 10)
		require.NoError(t, err)
		defer dst.Close()
		y, err := tensor.New(gpu, tensor.F64, 100, 5)
		require.NoError(t, err)
		defer y.Close()
		require.NoError(t, y.Fill(0))
		mid := gpu.Allocated()
		for _, h := range []float64{0.1, 0.2, 0.1} {
			require.NoError(t, b.MAFBM(dst, y, m, h, ops.Draw{}, 1))
		}
		assert.Equal(t, int64(2*(5+5+25)*8), gpu.Allocated()-mid, "one table per step size")
		for range 2 {
			_, err = b.Stable(dst, ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.2, Clamp: 3}, ops.Draw{})
			require.NoError(t, err)
		}
		require.NoError(t, b.Brownian(dst, ops.BrownianSpec{Horizon: 1, Epoch: 4}, ops.Draw{}))
		require.NoError(t, gpu.Synchronize())
		assert.Equal(t, int64(8), b.(*Backend).ScratchBytes(), "one 8-byte clamp counter, kept for the next clamped call")
		assert.Equal(t, int64(2*(5+5+25)*8+8), gpu.Allocated()-mid, "the tables and the clamp counter")
	}()
	assert.Equal(t, before, gpu.Allocated(), "device bytes before the backend and after its Close")
}
