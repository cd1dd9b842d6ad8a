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
	"github.com/scorekit/scorekit/tensor"
)

// Parity of kernels/binterval.cu with the CPU reference of ops/binterval.go: the kernel performs
// the reference's float64 operations one for one (the f64 normals are bit-identical by
// construction, fma where the reference uses math.FMA, IEEE division and square root), so every
// increment must be the same bits — f32 outputs being the f64 value rounded once. Depths 0, 1, 20,
// 33 (the last on one site), 34 and 40 (nodes on the following sites); times per path and shared
// by every path; sizes 0, 1, 31–33, 1025 and many; inside guard bands. The reference answers
// each row in column order with its cache, the kernel descends from the root for every query
// (both times together down to where they part), so the test also checks that neither the cache
// nor the shared descent changes anything.
func TestBrownianIncrementsParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	rng := rand.New(rand.NewPCG(8, 9))
	for _, depth := range []int{0, 1, 20, 33, 34, 40} {
		spec := ops.BrownianIntervalSpec{Horizon: 1.75, Depth: depth}
		for _, c := range []struct {
			paths, q int
			shared   bool
		}{{0, 4, false}, {1, 1, false}, {3, 31, false}, {33, 32, true}, {2, 33, false}, {1025, 3, true}, {manyPaths(), 2, false}} {
			if c.paths == manyPaths() && testing.Short() {
				continue
			}
			rows := c.paths
			if c.shared {
				rows = 1
			}
			s := make([]float64, rows*c.q)
			u := make([]float64, rows*c.q)
			for i := range s {
				switch i % 5 {
				case 3: // the root's midpoint, and a step shorter than half a cell (an increment of 0)
					s[i] = spec.Horizon / 2
					u[i] = s[i] + 0.3*spec.Resolution()
					if i%2 == 0 {
						u[i] = spec.Horizon
					}
				case 0: // the whole horizon
					s[i], u[i] = 0, spec.Horizon
				case 1: // a short step off the grid
					s[i] = rng.Float64() * 1.7
					u[i] = s[i] + 1e-9 + rng.Float64()*1e-3
				default:
					x, y := rng.Float64()*spec.Horizon, rng.Float64()*spec.Horizon
					s[i], u[i] = min(x, y), max(x, y)
					if s[i] == u[i] {
						s[i] = 0
					}
				}
			}
			hs, err := tensor.FromF64(s, rows, c.q)
			require.NoError(t, err)
			hu, err := tensor.FromF64(u, rows, c.q)
			require.NoError(t, err)
			ds, err := hs.CopyTo(gpu)
			require.NoError(t, err)
			du, err := hu.CopyTo(gpu)
			require.NoError(t, err)
			t.Cleanup(func() { ds.Close(); du.Close() }) // closing twice is a no-op
			d := ops.Draw{Seed: 0xfeedbeef12, Site: 1 << 40, FirstChain: 9}
			for _, dt := range noiseDTypes {
				label := fmt.Sprintf("depth=%d paths=%d q=%d shared=%v %v", depth, c.paths, c.q, c.shared, dt)
				g := newGuarded(t, dt, nil, c.paths, c.q)
				require.NoError(t, b.BrownianIncrements(g.view, ds, du, spec, d), label)
				got := g.values(t, label)
				g.close()
				ref, err := tensor.New(nil, dt, c.paths, c.q)
				require.NoError(t, err)
				require.NoError(t, ops.Reference().BrownianIncrements(ref, hs, hu, spec, d), label)
				want := lvValues(t, ref)
				for k := range want {
					if math.Float64bits(got[k]) != math.Float64bits(want[k]) {
						require.Failf(t, "values differ", "%s: element %d (row %d, column %d): gpu %v, reference %v",
							label, k, k/c.q, k%c.q, got[k], want[k])
					}
				}
			}
			require.NoError(t, ds.Close())
			require.NoError(t, du.Close())
		}
	}
}

// The GPU refuses what the reference refuses, with the same error: invalid query values (counted
// by the kernel, then read back and checked on the host), a bad spec, times on the wrong device.
func TestBrownianIncrementsErrorsOnDevice(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	spec := ops.BrownianIntervalSpec{Horizon: 2, Depth: 12}
	d := ops.Draw{Seed: 1}
	for _, c := range []struct {
		name string
		s, u []float64
		spec ops.BrownianIntervalSpec
	}{
		{"s ≥ t", []float64{0, 1.5, 0}, []float64{1, 1, 2}, spec},
		{"t past T", []float64{0, 0, 0}, []float64{1, 2.5, 2}, spec},
		{"NaN", []float64{0, math.NaN(), 0}, []float64{1, 1, 2}, spec},
		{"s < 0", []float64{0, 0, -1e-300}, []float64{1, 1, 2}, spec},
		{"t = +Inf", []float64{0, 0, 0}, []float64{1, math.Inf(1), 2}, spec},
		{"t = NaN", []float64{0, 0, 0}, []float64{math.NaN(), 1, 2}, spec},
		{"depth", []float64{0, 0, 0}, []float64{1, 1, 2}, ops.BrownianIntervalSpec{Horizon: 2, Depth: 41}},
		{"horizon", []float64{0, 0, 0}, []float64{1, 1, 2}, ops.BrownianIntervalSpec{Horizon: math.Inf(1), Depth: 4}},
	} {
		hs, _ := tensor.FromF64(c.s, 1, 3)
		hu, _ := tensor.FromF64(c.u, 1, 3)
		ref, _ := tensor.New(nil, tensor.F64, 2, 3)
		want := ops.Reference().BrownianIncrements(ref, hs, hu, c.spec, d)
		require.Error(t, want, c.name)
		ds := lvDevice(t, tensor.F64, c.s, 1, 3)
		du := lvDevice(t, tensor.F64, c.u, 1, 3)
		dst := lvDevice(t, tensor.F64, make([]float64, 6), 2, 3)
		got := b.BrownianIncrements(dst, ds, du, c.spec, d)
		assert.EqualError(t, got, want.Error(), c.name)
		for _, x := range []*tensor.Tensor{ds, du, dst} {
			require.NoError(t, x.Close())
		}
	}
	hs, _ := tensor.FromF64([]float64{0, 0, 0}, 1, 3)
	dst := lvDevice(t, tensor.F64, make([]float64, 6), 2, 3)
	du := lvDevice(t, tensor.F64, []float64{1, 1, 2}, 1, 3)
	assert.ErrorContains(t, b.BrownianIncrements(dst, hs, du, spec, d), "query times s are on")
	require.NoError(t, dst.Close())
	require.NoError(t, du.Close())
}
