package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// augSpec is a full map (every term) of m components and r noise columns.
func augSpec(m, r int) AugmentedSpec {
	fill := func(n int, phase float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Sin(1.3*float64(i)+phase) + 0.1*float64(i%4)
		}
		return v
	}
	s := AugmentedSpec{M: m, R: r, A: fill(m*m, 0), C: fill(m*m, 1), Phi: fill(m, 2), Bias: fill(m, 3),
		B: fill(m*m, 4), W: fill(m, 5), Q: 1.7}
	if r > 0 {
		s.L = fill(m*r, 6)
	}
	return s
}

// AugmentedStep against the map written out in plain float64 sums (no fma): the two differ only
// by rounding, at most a few ulp of the sum of the terms' magnitudes. Each term is checked by
// dropping it from the map: the result must then change by exactly that term (to the same
// rounding), so a term the op ignored, or applied to the wrong component or coordinate, fails.
// The normals are the Normal fill's at (N, d·R), column j·R + c for coordinate (i, j).
func TestAugmentedStepFormula(t *testing.T) {
	const n, d = 7, 3
	draw := Draw{Seed: 5, Site: 2, FirstChain: 11}
	for m := 1; m <= MaxAugmentedComponents; m++ {
		for _, r := range []int{0, 1, m} {
			spec := augSpec(m, r)
			am, err := NewAugmentedMap(spec)
			require.NoError(t, err)
			plane := n * d
			xs, ys, den := make([]float64, m*plane), make([]float64, m*plane), make([]float64, plane)
			for i := range xs {
				xs[i] = 2 * math.Sin(0.7*float64(i))
				ys[i] = math.Cos(0.3 * float64(i))
			}
			for i := range den {
				den[i] = 1.5 * math.Sin(0.9*float64(i)+1)
			}
			x, _ := tensor.FromF64(append([]float64(nil), xs...), m, n, d)
			y, _ := tensor.FromF64(append([]float64(nil), ys...), m, n, d)
			dt, _ := tensor.FromF64(append([]float64(nil), den...), n, d)
			dst, _ := tensor.New(nil, tensor.F64, m, n, d)
			u, _ := tensor.New(nil, tensor.F64, n, d)
			require.NoError(t, Reference().AugmentedStep(dst, x, y, dt, u, am, draw))
			got, _ := dst.F64()
			gotU, _ := u.F64()
			var xi []float64
			if r > 0 {
				nt, _ := tensor.New(nil, tensor.F64, n, d*r)
				require.NoError(t, Reference().Normal(nt, draw))
				xi, _ = nt.F64()
			}
			for e := 0; e < plane; e++ {
				i, j := e/d, e%d
				out := make([]float64, m)
				mag := make([]float64, m)
				for a := 0; a < m; a++ {
					v, s := 0.0, 0.0
					add := func(t float64) { v += t; s += math.Abs(t) }
					for c := 0; c < m; c++ {
						add(spec.A[a*m+c] * xs[c*plane+e])
						add(spec.C[a*m+c] * (xs[c*plane+e] - spec.Phi[c]*den[e]))
						add(spec.B[a*m+c] * ys[c*plane+e])
					}
					add(spec.Bias[a] * den[e])
					for c := 0; c < r; c++ {
						add(spec.L[a*r+c] * xi[i*d*r+j*r+c])
					}
					out[a], mag[a] = v, s
					label := fmt.Sprintf("M=%d R=%d coordinate %d component %d", m, r, e, a)
					assert.InDelta(t, v, got[a*plane+e], 8*float64(3*m+r+1)*0x1p-53*s+1e-300, label)
				}
				wu, su := 0.0, 0.0
				for c := 0; c < m; c++ {
					wu += spec.W[c] * out[c]
					su += math.Abs(spec.W[c]) * mag[c]
				}
				assert.InDelta(t, wu/spec.Q, gotU[e], 16*float64(4*m+r+1)*0x1p-53*su/math.Abs(spec.Q), "M=%d R=%d u[%d]", m, r, e)
			}
		}
	}
}

// Dropping one term changes dst by exactly that term: the op reads each term from its own array
// and applies it (a term read from the wrong array, or ignored, fails here even where the formula
// test's tolerance might hide a small term).
func TestAugmentedStepTerms(t *testing.T) {
	const m, n, d = 3, 4, 2
	plane := n * d
	xs, ys, den := make([]float64, m*plane), make([]float64, m*plane), make([]float64, plane)
	for i := range xs {
		xs[i] = 1 + float64(i%5)
		ys[i] = 2 - float64(i%3)
	}
	for i := range den {
		den[i] = 0.5 + float64(i%4)
	}
	run := func(spec AugmentedSpec) []float64 {
		am, err := NewAugmentedMap(spec)
		require.NoError(t, err)
		x, _ := tensor.FromF64(append([]float64(nil), xs...), m, n, d)
		y, _ := tensor.FromF64(append([]float64(nil), ys...), m, n, d)
		dt, _ := tensor.FromF64(append([]float64(nil), den...), n, d)
		dst, _ := tensor.New(nil, tensor.F64, m, n, d)
		readY, readDen := am.Reads()
		if !readY {
			y = nil
		}
		if !readDen {
			dt = nil
		}
		require.NoError(t, Reference().AugmentedStep(dst, x, y, dt, nil, am, Draw{}))
		v, _ := dst.F64()
		return v
	}
	ints := func(k int, base float64) []float64 { // small integers: every sum is exact
		v := make([]float64, k)
		for i := range v {
			v[i] = base + float64(i%3) - 1
		}
		return v
	}
	full := AugmentedSpec{M: m, A: ints(m*m, 1), C: ints(m*m, 2), Phi: ints(m, 3), Bias: ints(m, 4), B: ints(m*m, 5)}
	all := run(full)
	for _, c := range []struct {
		name string
		drop func(s *AugmentedSpec)
		term func(a, e int) float64
	}{
		{"A", func(s *AugmentedSpec) { s.A = nil }, func(a, e int) float64 {
			v := 0.0
			for c := 0; c < m; c++ {
				v += full.A[a*m+c] * xs[c*plane+e]
			}
			return v
		}},
		{"C", func(s *AugmentedSpec) { s.C, s.Phi = nil, nil }, func(a, e int) float64 {
			v := 0.0
			for c := 0; c < m; c++ {
				v += full.C[a*m+c] * (xs[c*plane+e] - full.Phi[c]*den[e])
			}
			return v
		}},
		{"Bias", func(s *AugmentedSpec) { s.Bias = nil }, func(a, e int) float64 { return full.Bias[a] * den[e] }},
		{"B", func(s *AugmentedSpec) { s.B = nil }, func(a, e int) float64 {
			v := 0.0
			for c := 0; c < m; c++ {
				v += full.B[a*m+c] * ys[c*plane+e]
			}
			return v
		}},
	} {
		s := full
		c.drop(&s)
		part := run(s)
		for a := 0; a < m; a++ {
			for e := 0; e < plane; e++ {
				require.Equal(t, all[a*plane+e], part[a*plane+e]+c.term(a, e), "without %s: component %d coordinate %d", c.name, a, e)
			}
		}
	}
}

// dst may be x or y: the result equals the one written to a tensor of its own.
func TestAugmentedStepAliasing(t *testing.T) {
	const m, n, d = 4, 5, 3
	am, err := NewAugmentedMap(augSpec(m, m))
	require.NoError(t, err)
	vals := func(phase float64) []float64 {
		v := make([]float64, m*n*d)
		for i := range v {
			v[i] = math.Sin(0.4*float64(i) + phase)
		}
		return v
	}
	den, _ := tensor.FromF64(vals(1)[:n*d], n, d)
	draw := Draw{Seed: 3, Site: 1}
	x, _ := tensor.FromF64(vals(0), m, n, d)
	y, _ := tensor.FromF64(vals(2), m, n, d)
	dst, _ := tensor.New(nil, tensor.F64, m, n, d)
	u, _ := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, CPU().AugmentedStep(dst, x, y, den, u, am, draw))
	want, _ := dst.F64()
	wantU, _ := u.F64()
	for _, alias := range []string{"x", "y"} {
		x, _ := tensor.FromF64(vals(0), m, n, d)
		y, _ := tensor.FromF64(vals(2), m, n, d)
		u, _ := tensor.New(nil, tensor.F64, n, d)
		out := x
		if alias == "y" {
			out = y
		}
		require.NoError(t, CPU().AugmentedStep(out, x, y, den, u, am, draw))
		got, _ := out.F64()
		gotU, _ := u.F64()
		require.Equal(t, want, got, "dst = %s", alias)
		require.Equal(t, wantU, gotU, "dst = %s", alias)
	}
}

func TestAugmentedMapErrors(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name  string
		spec  func(s *AugmentedSpec)
		check string
	}{
		{"M=0", func(s *AugmentedSpec) { s.M = 0 }, "M = 0"},
		{"M too large", func(s *AugmentedSpec) { s.M = MaxAugmentedComponents + 1 }, "must be in [1, 6]"},
		{"R > M", func(s *AugmentedSpec) { s.R = 3 }, "R = 3"},
		{"R < 0", func(s *AugmentedSpec) { s.R = -1 }, "R = -1"},
		{"A length", func(s *AugmentedSpec) { s.A = []float64{1} }, "A has 1 entries, want 4"},
		{"NaN in B", func(s *AugmentedSpec) { s.B[3] = nan }, "B[3] = NaN"},
		{"Inf in L", func(s *AugmentedSpec) { s.L[0] = math.Inf(1) }, "L[0] = +Inf"},
		{"C without Phi", func(s *AugmentedSpec) { s.Phi = nil }, "Phi is required"},
		{"Phi without C", func(s *AugmentedSpec) { s.C = nil }, "Phi is given without C"},
		{"L missing", func(s *AugmentedSpec) { s.L = nil }, "L is required"},
		{"L without noise", func(s *AugmentedSpec) { s.R = 0 }, "L has 4 entries, want 0"},
		{"Q zero", func(s *AugmentedSpec) { s.Q = 0 }, "divisor"},
		{"Q NaN", func(s *AugmentedSpec) { s.Q = nan }, "divisor"},
	} {
		s := augSpec(2, 2)
		c.spec(&s)
		var err error
		require.NotPanics(t, func() { _, err = NewAugmentedMap(s) }, c.name)
		assert.ErrorContains(t, err, c.check, c.name)
	}
	// The map is a copy: changing the spec afterwards changes nothing.
	s := augSpec(2, 0)
	am, err := NewAugmentedMap(s)
	require.NoError(t, err)
	s.A[0] = 100
	packed, mask := am.Packed()
	require.NotEqual(t, 100.0, packed[0])
	require.Equal(t, int64(AugmentedHasA|AugmentedHasC|AugmentedHasBias|AugmentedHasB|AugmentedHasW), mask)
	require.Len(t, packed, 3*4+3*2)
}

func TestAugmentedStepErrors(t *testing.T) {
	am, err := NewAugmentedMap(augSpec(2, 1))
	require.NoError(t, err)
	noY, err := NewAugmentedMap(AugmentedSpec{M: 2, A: []float64{1, 0, 0, 1}})
	require.NoError(t, err)
	f64 := func(shape ...int) *tensor.Tensor { t, _ := tensor.New(nil, tensor.F64, shape...); return t }
	x, y, dst, den, u := f64(2, 3, 4), f64(2, 3, 4), f64(2, 3, 4), f64(3, 4), f64(3, 4)
	x32, _ := tensor.New(nil, tensor.F32, 2, 3, 4)
	closed := f64(2, 3, 4)
	require.NoError(t, closed.Close())
	for _, c := range []struct {
		name              string
		dst, x, y, den, u *tensor.Tensor
		m                 *AugmentedMap
		d                 Draw
		check             string
	}{
		{"nil map", dst, x, y, den, u, nil, Draw{}, "nil map"},
		{"dst rank", den, x, y, den, u, am, Draw{}, "dst must be an open (M = 2, N, d) tensor"},
		{"dst closed", closed, x, y, den, u, am, Draw{}, "dst must be"},
		{"x dtype", dst, x32, y, den, u, am, Draw{}, "x is f32"},
		{"x shape", dst, f64(2, 4, 3), y, den, u, am, Draw{}, "x has shape [2 4 3]"},
		{"y missing", dst, x, nil, den, u, am, Draw{}, "y is nil"},
		{"y without B", dst, x, y, nil, nil, noY, Draw{}, "no B term"},
		{"den shape", dst, x, y, f64(4, 3), u, am, Draw{}, "den has shape"},
		{"den without use", dst, x, nil, den, nil, noY, Draw{}, "no C or Bias"},
		{"u missing", dst, x, y, den, nil, am, Draw{}, "u is nil"},
		{"u without W", dst, x, nil, nil, u, noY, Draw{}, "no projection"},
		{"u aliases den", dst, x, y, den, den, am, Draw{}, "of its own"},
		{"chains", dst, x, y, den, u, am, Draw{FirstChain: MaxChains - 2}, "below 2^32"},
	} {
		var err error
		require.NotPanics(t, func() { err = Reference().AugmentedStep(c.dst, c.x, c.y, c.den, c.u, c.m, c.d) }, c.name)
		assert.ErrorContains(t, err, c.check, c.name)
	}
}
