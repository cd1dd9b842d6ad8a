//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// scaleMixSpecs are isotropic, diagonal and full mixtures in d dimensions with k components.
func scaleMixSpecs(k, d int) map[string]ops.GMMSpec {
	w, means, vars, diag, covs := make([]float64, k), make([][]float64, k), make([]float64, k), make([][]float64, k), make([][][]float64, k)
	for c := range k {
		w[c] = 1 + float64(c%3)
		means[c], diag[c], covs[c] = make([]float64, d), make([]float64, d), make([][]float64, d)
		vars[c] = 0.3 + 0.2*float64(c%4)
		for j := range d {
			means[c][j] = 3 * math.Sin(1.7*float64(c)+0.9*float64(j))
			diag[c][j] = 0.2 + 0.5*(1+math.Sin(float64(c+3*j)))
			covs[c][j] = make([]float64, d)
		}
		for i := range d {
			for j := range d {
				if i == j {
					covs[c][i][j] = diag[c][i] + 0.1
				} else {
					covs[c][i][j] = 0.05 * math.Cos(float64(i+j+c))
				}
			}
		}
	}
	return map[string]ops.GMMSpec{
		"isotropic": {Weights: w, Means: means, Vars: vars},
		"diagonal":  {Weights: w, Means: means, Diag: diag},
		"full":      {Weights: w, Means: means, Covs: covs},
	}
}

// Parity of kernels/scalemix.cu with the reference of ops/scalemix.go: the same per-term float64
// operations, the device's log and exp (within an ulp of Go's) and another association of the
// final sums, so float64 values agree to 1e-12 relative (a few ulp of the terms, which are of the
// size of the result here); float32 values are the float64 results rounded once, so they differ
// by at most one float32 ulp (2⁻²³|x|) where the two straddle a rounding boundary. Isotropic and
// diagonal mixtures run the kernel (d = 1, 3, 8 and 13: one block of 8 output coordinates, a
// partial and a second block), full ones the host fallback; N = 0, 1, 257 and many rows; Q = 1 and
// 16 nodes; v = 0 and 0.8.
func TestGMMScaleMixtureParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	rows := []int{0, 1, 257}
	if !testing.Short() {
		rows = append(rows, manyPaths())
	}
	nodes := func(q int) *ops.ScaleMixture {
		w, a := make([]float64, q), make([]float64, q)
		for i := range q {
			w[i], a[i] = 1+float64(i%5), math.Exp(0.4*float64(i)-2)
		}
		m, err := ops.NewScaleMixture(w, a)
		require.NoError(t, err)
		return m
	}
	for _, d := range []int{1, 3, 8, 13} {
		for name, spec := range scaleMixSpecs(3, d) {
			g, err := ops.NewGMM(spec)
			require.NoError(t, err)
			for _, q := range []int{1, 16} {
				m := nodes(q)
				for _, n := range rows {
					x := make([]float64, n*d)
					for i := range x {
						x[i] = 4 * math.Sin(0.61*float64(i)+0.2)
					}
					for _, dt := range noiseDTypes {
						for _, v := range []float64{0, 0.8} {
							label := fmt.Sprintf("%s d=%d Q=%d n=%d %v v=%g", name, d, q, n, dt, v)
							gx := lvDevice(t, dt, x, n, d)
							gd := lvDevice(t, dt, make([]float64, n*d), n, d)
							require.NoError(t, b.GMMScaleMixtureDenoise(gd, gx, g, m, v), label)
							hx, hd := lvHost(t, dt, x, n, d), lvHost(t, dt, make([]float64, n*d), n, d)
							require.NoError(t, ops.Reference().GMMScaleMixtureDenoise(hd, hx, g, m, v), label)
							got, want := lvValues(t, gd), lvValues(t, hd)
							for i := range want {
								tol := 1e-12 * (1 + math.Abs(want[i]))
								if dt == tensor.F32 {
									tol += 0x1p-23 * math.Abs(want[i])
								}
								if !(math.Abs(got[i]-want[i]) <= tol) {
									require.Failf(t, "values differ", "%s [%d]: gpu %v, reference %v", label, i, got[i], want[i])
								}
							}
							require.NoError(t, gx.Close())
							require.NoError(t, gd.Close())
						}
					}
				}
				require.NoError(t, ops.Release(b, m))
			}
			require.NoError(t, ops.Release(b, g))
		}
	}
}

// The GPU refuses what the reference refuses, with the same error.
func TestGMMScaleMixtureErrorsOnDevice(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	g, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0, 0}}, Vars: []float64{1}})
	require.NoError(t, err)
	m, err := ops.NewScaleMixture([]float64{1}, []float64{1})
	require.NoError(t, err)
	x := lvDevice(t, tensor.F64, make([]float64, 6), 3, 2)
	dst := lvDevice(t, tensor.F64, make([]float64, 6), 3, 2)
	hx, _ := tensor.New(nil, tensor.F64, 3, 2)
	for _, c := range []struct {
		name   string
		dst, x *tensor.Tensor
		v      float64
		check  string
	}{
		{"aliased", x, x, 1, "the same tensor"},
		{"host x", dst, hx, 1, "x is f64 on cpu"},
		{"level", dst, x, math.Inf(1), "level v = +Inf"},
	} {
		want := ops.CheckGMMScaleMixtureDenoise(gpu, c.dst, c.x, g, m, c.v)
		require.Error(t, want, c.name)
		got := b.GMMScaleMixtureDenoise(c.dst, c.x, g, m, c.v)
		assert.EqualError(t, got, want.Error(), c.name)
		assert.ErrorContains(t, got, c.check, c.name)
	}
	require.NoError(t, x.Close())
	require.NoError(t, dst.Close())
}
