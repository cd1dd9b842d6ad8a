//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// augmentedSpec builds a map of m components with r noise columns and the terms named in terms
// ("A", "C", "Bias", "B", "W"), deterministic entries of mixed sign and scale.
func augmentedSpec(m, r int, terms string) ops.AugmentedSpec {
	fill := func(n int, phase float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Sin(1.7*float64(i)+phase) * math.Pow(10, float64(i%3)-1)
		}
		return v
	}
	s := ops.AugmentedSpec{M: m, R: r, Q: 0.7}
	has := func(name string) bool { return slices.Contains(strings.Split(terms, ","), name) }
	if has("A") {
		s.A = fill(m*m, 0.1)
	}
	if has("C") {
		s.C, s.Phi = fill(m*m, 0.9), fill(m, 2.3)
	}
	if has("Bias") {
		s.Bias = fill(m, 1.4)
	}
	if has("B") {
		s.B = fill(m*m, 3.1)
	}
	if r > 0 {
		s.L = fill(m*r, 0.6)
	}
	if has("W") {
		s.W = fill(m, 2.9)
	}
	return s
}

// Parity of kernels/augmented.cu with the reference of ops/augmented.go: the kernel performs the
// reference's operations one for one (fma where it uses math.FMA) and draws the Normal fill's
// double normals, which are the reference's bits (optest.NormalF64), at the same columns j·R + c
// (pairs of one Philox block straddle coordinates when R is odd), so dst and u must be the
// reference's bits. M = 1 … 6, R ∈ {0, 1, M}, four sets of terms, dst aliasing x or y, N·d = 0,
// 1, odd and large.
func TestAugmentedStepParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	draw := ops.Draw{Seed: 41, Site: 9, FirstChain: 5}
	shapes := []struct{ n, d int }{{0, 3}, {1, 1}, {3, 5}, {17, 3}, {257, 2}}
	if !testing.Short() {
		shapes = append(shapes, struct{ n, d int }{manyPaths(), 3})
	}
	for m := 1; m <= ops.MaxAugmentedComponents; m++ {
		for _, r := range []int{0, 1, m} {
			for _, terms := range []string{"A,C,Bias,B,W", "C,W", "A", "Bias,B"} {
				spec := augmentedSpec(m, r, terms)
				am, err := ops.NewAugmentedMap(spec)
				require.NoError(t, err)
				for _, sh := range shapes {
					for _, alias := range []string{"", "x", "y"} {
						if alias == "y" && spec.B == nil {
							continue
						}
						label := fmt.Sprintf("M=%d R=%d %s n=%d d=%d dst=%s", m, r, terms, sh.n, sh.d, alias)
						checkAugmentedParity(t, b, am, sh.n, sh.d, alias, draw, label)
					}
				}
				require.NoError(t, ops.Release(b, am))
			}
		}
	}
}

func checkAugmentedParity(t *testing.T, b ops.Backend, am *ops.AugmentedMap, n, d int, alias string, draw ops.Draw, label string) {
	t.Helper()
	m := am.M()
	plane := n * d
	xs, ys, dens := make([]float64, m*plane), make([]float64, m*plane), make([]float64, plane)
	for i := range xs {
		xs[i] = 3 * math.Sin(0.31*float64(i)+0.2)
		ys[i] = 2 * math.Cos(0.17*float64(i))
	}
	for i := range dens {
		dens[i] = math.Sin(0.53 * float64(i))
	}
	readY, readDen := am.Reads()
	dev := func(v []float64, shape ...int) *tensor.Tensor { return lvDevice(t, tensor.F64, v, shape...) }
	host := func(v []float64, shape ...int) *tensor.Tensor { return lvHost(t, tensor.F64, v, shape...) }
	gx, hx := dev(xs, m, n, d), host(xs, m, n, d)
	var gy, hy, gden, hden, gu, hu *tensor.Tensor
	if readY {
		gy, hy = dev(ys, m, n, d), host(ys, m, n, d)
	}
	if readDen {
		gden, hden = dev(dens, n, d), host(dens, n, d)
	}
	if am.Projects() {
		gu, hu = dev(make([]float64, plane), n, d), host(make([]float64, plane), n, d)
	}
	var gdst, hdst *tensor.Tensor
	switch alias {
	case "x":
		gdst, hdst = gx, hx
	case "y":
		gdst, hdst = gy, hy
	default:
		gdst, hdst = dev(make([]float64, m*plane), m, n, d), host(make([]float64, m*plane), m, n, d)
	}
	require.NoError(t, b.AugmentedStep(gdst, gx, gy, gden, gu, am, draw), label)
	require.NoError(t, ops.Reference().AugmentedStep(hdst, hx, hy, hden, hu, am, draw), label)
	gotDst, refDst := lvValues(t, gdst), lvValues(t, hdst)
	var gotU, refU []float64
	if gu != nil {
		gotU, refU = lvValues(t, gu), lvValues(t, hu)
	}
	for k := range refDst {
		if math.Float64bits(gotDst[k]) != math.Float64bits(refDst[k]) {
			require.Failf(t, "values differ", "%s: dst[%d]: gpu %v, reference %v", label, k, gotDst[k], refDst[k])
		}
	}
	for e := range refU {
		if math.Float64bits(gotU[e]) != math.Float64bits(refU[e]) {
			require.Failf(t, "values differ", "%s: u[%d]: gpu %v, reference %v", label, e, gotU[e], refU[e])
		}
	}
	for _, x := range []*tensor.Tensor{gx, gy, gden, gu, gdst} {
		if x != nil && !x.Closed() {
			require.NoError(t, x.Close())
		}
	}
}

// The GPU refuses what the reference refuses, with the same error.
func TestAugmentedStepErrorsOnDevice(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	am, err := ops.NewAugmentedMap(augmentedSpec(2, 2, "C,W"))
	require.NoError(t, err)
	x := lvDevice(t, tensor.F64, make([]float64, 12), 2, 2, 3)
	dst := lvDevice(t, tensor.F64, make([]float64, 12), 2, 2, 3)
	den := lvDevice(t, tensor.F64, make([]float64, 6), 2, 3)
	u := lvDevice(t, tensor.F64, make([]float64, 6), 2, 3)
	x32 := lvDevice(t, tensor.F32, make([]float64, 12), 2, 2, 3)
	hx, _ := tensor.New(nil, tensor.F64, 2, 2, 3)
	for _, c := range []struct {
		name              string
		dst, x, y, den, u *tensor.Tensor
		m                 *ops.AugmentedMap
		d                 ops.Draw
		check             string
	}{
		{"nil map", dst, x, nil, den, u, nil, ops.Draw{}, "nil map"},
		{"f32 x", dst, x32, nil, den, u, am, ops.Draw{}, "x is f32"},
		{"host x", dst, hx, nil, den, u, am, ops.Draw{}, "x is f64 on cpu"},
		{"no den", dst, x, nil, nil, u, am, ops.Draw{}, "den is nil"},
		{"y without B", dst, x, x, den, u, am, ops.Draw{}, "no B term"},
		{"u missing", dst, x, nil, den, nil, am, ops.Draw{}, "u is nil"},
		{"u aliased", dst, x, nil, den, den, am, ops.Draw{}, "of its own"},
		{"chains", dst, x, nil, den, u, am, ops.Draw{FirstChain: ops.MaxChains - 1}, "below 2^32"},
	} {
		want := ops.CheckAugmentedStep(gpu, c.dst, c.x, c.y, c.den, c.u, c.m, c.d)
		require.Error(t, want, c.name)
		got := b.AugmentedStep(c.dst, c.x, c.y, c.den, c.u, c.m, c.d)
		assert.EqualError(t, got, want.Error(), c.name)
		assert.ErrorContains(t, got, c.check, c.name)
	}
	require.NoError(t, ops.Release(b, am))
	for _, v := range []*tensor.Tensor{x, dst, den, u, x32} {
		require.NoError(t, v.Close())
	}
}
