package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

func TestDomainConstructorsRejectBadInput(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name string
		make func() (*Domain, error)
		want string
	}{
		{"box empty", func() (*Domain, error) { return NewBox(nil, nil) }, "box: lo has 0 coordinates, hi 0"},
		{"box lengths", func() (*Domain, error) { return NewBox([]float64{0, 0}, []float64{1}) }, "box: lo has 2 coordinates, hi 1"},
		{"box lo = hi", func() (*Domain, error) { return NewBox([]float64{0, 1}, []float64{1, 1}) }, "box: coordinate 1: need finite lo < hi, have [1, 1]"},
		{"box lo > hi", func() (*Domain, error) { return NewBox([]float64{2}, []float64{1}) }, "coordinate 0: need finite lo < hi"},
		{"box NaN", func() (*Domain, error) { return NewBox([]float64{nan}, []float64{1}) }, "coordinate 0: need finite lo < hi, have [NaN, 1]"},
		{"box Inf", func() (*Domain, error) { return NewBox([]float64{0}, []float64{inf}) }, "have [0, +Inf]"},
		{"ball empty", func() (*Domain, error) { return NewBall(nil, 1) }, "ball: empty center"},
		{"ball NaN center", func() (*Domain, error) { return NewBall([]float64{0, nan}, 1) }, "ball: center coordinate 1 = NaN"},
		{"ball zero radius", func() (*Domain, error) { return NewBall([]float64{0}, 0) }, "ball: radius 0: must be a finite number > 0"},
		{"ball negative radius", func() (*Domain, error) { return NewBall([]float64{0}, -1) }, "radius -1"},
		{"ball NaN radius", func() (*Domain, error) { return NewBall([]float64{0}, nan) }, "radius NaN"},
		{"ball Inf radius", func() (*Domain, error) { return NewBall([]float64{0}, inf) }, "radius +Inf"},
		{"polytope empty", func() (*Domain, error) { return NewPolytope(nil, nil) }, "polytope: A has 0 rows, b 0 entries"},
		{"polytope b", func() (*Domain, error) { return NewPolytope([][]float64{{1, 0}}, []float64{1, 2}) }, "A has 1 rows, b 2 entries"},
		{"polytope no columns", func() (*Domain, error) { return NewPolytope([][]float64{{}}, []float64{1}) }, "polytope: A has no columns"},
		{"polytope ragged", func() (*Domain, error) { return NewPolytope([][]float64{{1, 0}, {1}}, []float64{1, 1}) }, "row 1 of A has 1 entries, row 0 has 2"},
		{"polytope zero row", func() (*Domain, error) { return NewPolytope([][]float64{{1, 0}, {0, 0}}, []float64{1, 1}) }, "row 1 of A is zero"},
		{"polytope NaN A", func() (*Domain, error) { return NewPolytope([][]float64{{1, nan}}, []float64{1}) }, "A[0][1] = NaN: must be finite"},
		{"polytope Inf b", func() (*Domain, error) { return NewPolytope([][]float64{{1, 0}}, []float64{-inf}) }, "b[0] = -Inf: must be finite"},
	} {
		dom, err := tc.make()
		assert.Nil(t, dom, tc.name)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}

// domainCases are a box, a ball and a polytope whose boundaries hold exactly representable points.
func domainCases(t *testing.T) (box, ball, tri *Domain) {
	t.Helper()
	var err error
	box, err = NewBox([]float64{-1, 0, 2}, []float64{1, 0.5, 3})
	require.NoError(t, err)
	ball, err = NewBall([]float64{1, -1}, 5) // (1, −1) + (3, 4) is on the sphere: 9 + 16 = 25 exactly
	require.NoError(t, err)
	tri, err = NewPolytope([][]float64{{-1, 0}, {0, -1}, {1, 1}}, []float64{0, 0, 1}) // x, y ≥ 0, x + y ≤ 1
	require.NoError(t, err)
	return box, ball, tri
}

func TestDomainDescribesItself(t *testing.T) {
	box, ball, tri := domainCases(t)
	for _, tc := range []struct {
		dom  *Domain
		kind DomainKind
		name string
		d, m int
	}{{box, Box, "box", 3, 0}, {ball, Ball, "ball", 2, 0}, {tri, Polytope, "polytope", 2, 3}} {
		assert.Equal(t, tc.kind, tc.dom.Kind())
		assert.Equal(t, tc.name, tc.dom.Kind().String())
		assert.Equal(t, tc.d, tc.dom.Dim())
		assert.Equal(t, tc.m, tc.dom.Constraints())
	}
	assert.Equal(t, "DomainKind(9)", DomainKind(9).String())

	// Constructors and Params copy: the caller's slices and the returned parameters are the
	// caller's to change.
	lo, hi := []float64{0, 0}, []float64{1, 1}
	b, err := NewBox(lo, hi)
	require.NoError(t, err)
	hi[0] = -5
	assert.True(t, b.Contains([]float64{0.5, 0.5}))
	p := b.Params()
	p.Hi[0] = -5
	assert.Equal(t, []float64{1, 1}, b.Params().Hi)
	a := [][]float64{{1, 0}}
	pol, err := NewPolytope(a, []float64{1})
	require.NoError(t, err)
	a[0][0] = -1
	assert.False(t, pol.Contains([]float64{2, 0}))
	pp := pol.Params()
	assert.Equal(t, []float64{1, 0}, pp.A)
	assert.Equal(t, 1, pp.M)
	assert.Equal(t, 5.0, ball.Params().Radius)
}

// Contains: boundary points belong to the domain, points one ulp beyond do not, and a NaN or
// infinite coordinate is never inside. A polytope's test is on the float64 value of A x: a point
// whose exact sum exceeds b by less than half an ulp of b rounds onto the facet and is inside.
func TestDomainContains(t *testing.T) {
	box, ball, tri := domainCases(t)
	up := func(v float64) float64 { return math.Nextafter(v, math.Inf(1)) }
	down := func(v float64) float64 { return math.Nextafter(v, math.Inf(-1)) }
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name string
		dom  *Domain
		x    []float64
		want bool
	}{
		{"box inside", box, []float64{0, 0.25, 2.5}, true},
		{"box corner lo", box, []float64{-1, 0, 2}, true},
		{"box corner hi", box, []float64{1, 0.5, 3}, true},
		{"box face", box, []float64{0.3, 0.5, 2.1}, true},
		{"box beyond hi by an ulp", box, []float64{0, up(0.5), 2.5}, false},
		{"box beyond lo by an ulp", box, []float64{down(-1), 0.2, 2.5}, false},
		{"box far", box, []float64{0, 0.2, 10}, false},
		{"box NaN", box, []float64{0, nan, 2.5}, false},
		{"box Inf", box, []float64{inf, 0.2, 2.5}, false},
		{"ball center", ball, []float64{1, -1}, true},
		{"ball inside", ball, []float64{3, 1}, true},
		{"ball sphere", ball, []float64{4, 3}, true},
		{"ball sphere (axis)", ball, []float64{-4, -1}, true},
		{"ball beyond by an ulp", ball, []float64{up(4), 3}, false},
		{"ball outside", ball, []float64{5, 3}, false},
		{"ball NaN", ball, []float64{nan, 0}, false},
		{"ball -Inf", ball, []float64{1, -inf}, false},
		{"triangle inside", tri, []float64{0.25, 0.25}, true},
		{"triangle vertex", tri, []float64{0, 1}, true},
		{"triangle hypotenuse", tri, []float64{0.5, 0.5}, true},
		{"triangle leg", tri, []float64{0, 0.3}, true},
		{"triangle beyond hypotenuse by an ulp", tri, []float64{0, up(1)}, false},
		{"triangle sum rounds onto the hypotenuse", tri, []float64{0.5, up(0.5)}, true}, // 1 + 2⁻⁵³ rounds to 1
		{"triangle negative", tri, []float64{-1e-300, 0.5}, false},
		{"triangle NaN", tri, []float64{nan, 0.1}, false},
		{"triangle Inf", tri, []float64{0.1, inf}, false},
		{"box, too few coordinates", box, []float64{0, 0.25}, false},
		{"box, no coordinates", box, nil, false},
		{"ball, too many coordinates", ball, []float64{1, -1, 0}, false},
		{"triangle, too few coordinates", tri, []float64{0.25}, false},
	} {
		assert.Equal(t, tc.want, tc.dom.Contains(tc.x), tc.name)
	}
}

// domainHost returns a host (n, d) tensor of dtype dt holding values.
func domainHost(t *testing.T, dt tensor.DType, values []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromFloat64s(dt, values, shape...)
	require.NoError(t, err)
	return x
}

// MetropolisStep moves exactly the rows whose proposal lies in the domain (boundary included),
// leaves the others bit for bit and adds one to their count (earlier counts kept); a NaN
// proposal is rejected. Membership is decided on the stored values: in float32 a proposal 10⁻⁹
// above the box's upper face rounds onto it and is accepted.
func TestMetropolisStepMovesAndCounts(t *testing.T) {
	box, ball, tri := domainCases(t)
	b := CPU()
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		for _, tc := range []struct {
			name   string
			dom    *Domain
			x      [][]float64
			prop   [][]float64
			accept []bool
		}{
			{"box", box,
				[][]float64{{0, 0.25, 2.5}, {0, 0.25, 2.5}, {0.5, 0.125, 2.25}, {0, 0, 2}},
				[][]float64{{1, 0.5, 3}, {0, 0.75, 2.5}, {math.NaN(), 0.25, 2.5}, {-0.5, 0.375, 2.75}},
				[]bool{true, false, false, true}},
			{"ball", ball,
				[][]float64{{1, -1}, {2, 0}, {0, 0}},
				[][]float64{{4, 3}, {6.5, 0}, {1, 1}},
				[]bool{true, false, true}},
			{"polytope", tri,
				[][]float64{{0.25, 0.25}, {0.25, 0.25}, {0.125, 0.5}},
				[][]float64{{0.5, 0.5}, {0.75, 0.5}, {-0.25, 0.5}},
				[]bool{true, false, false}},
		} {
			n, d := len(tc.x), len(tc.x[0])
			flat := func(rows [][]float64) []float64 {
				var v []float64
				for _, r := range rows {
					v = append(v, r...)
				}
				return v
			}
			x := domainHost(t, dt, flat(tc.x), n, d)
			prop := domainHost(t, dt, flat(tc.prop), n, d)
			prior := make([]float64, n)
			for i := range prior {
				prior[i] = float64(3 * i)
			}
			rej := domainHost(t, tensor.F64, prior, n)
			require.NoError(t, b.MetropolisStep(x, prop, tc.dom, rej), tc.name)
			got, err := x.Float64s()
			require.NoError(t, err)
			counts, err := rej.Float64s()
			require.NoError(t, err)
			for i := 0; i < n; i++ {
				want, c := tc.x[i], prior[i]+1
				if tc.accept[i] {
					want, c = tc.prop[i], prior[i]
				}
				assert.Equal(t, want, got[i*d:(i+1)*d], "%s %v: row %d", tc.name, dt, i)
				assert.Equal(t, c, counts[i], "%s %v: count of row %d", tc.name, dt, i)
			}
			// prop is not changed
			pv, err := prop.Float64s()
			require.NoError(t, err)
			assert.Equal(t, math.IsNaN(pv[2*d]), tc.name == "box")
		}
	}

	unit, err := NewBox([]float64{0}, []float64{1})
	require.NoError(t, err)
	for _, tc := range []struct {
		dt     tensor.DType
		accept bool
	}{{tensor.F32, true}, {tensor.F64, false}} {
		x := domainHost(t, tc.dt, []float64{0.5}, 1, 1)
		prop := domainHost(t, tc.dt, []float64{1 + 1e-9}, 1, 1)
		rej := domainHost(t, tensor.F64, []float64{0}, 1)
		require.NoError(t, b.MetropolisStep(x, prop, unit, rej))
		v, _ := rej.Float64s()
		assert.Equal(t, tc.accept, v[0] == 0, "%v", tc.dt)
	}
}

// Over many rows (the parallel path) every row follows the rule independently: a band pattern
// of proposals inside and outside the ball, checked row by row, and an empty batch is a no-op.
func TestMetropolisStepManyRows(t *testing.T) {
	_, ball, _ := domainCases(t)
	for _, n := range []int{0, 1, 3, 31, 1025, 5000} {
		xv, pv := make([]float64, 2*n), make([]float64, 2*n)
		for i := 0; i < n; i++ {
			xv[2*i], xv[2*i+1] = 1, -1
			r := float64(i%11) * 0.625 // 0 … 6.25: rows with i%11 ≤ 8 are inside the radius 5
			pv[2*i], pv[2*i+1] = 1+r, -1
		}
		x := domainHost(t, tensor.F64, xv, n, 2)
		prop := domainHost(t, tensor.F64, pv, n, 2)
		rej := domainHost(t, tensor.F64, make([]float64, n), n)
		require.NoError(t, CPU().MetropolisStep(x, prop, ball, rej), "n = %d", n)
		got, _ := x.Float64s()
		counts, _ := rej.Float64s()
		for i := 0; i < n; i++ {
			in := i%11 <= 8
			if in {
				require.Equal(t, pv[2*i:2*i+2], got[2*i:2*i+2], "n = %d row %d", n, i)
				require.Zero(t, counts[i])
			} else {
				require.Equal(t, xv[2*i:2*i+2], got[2*i:2*i+2], "n = %d row %d", n, i)
				require.Equal(t, 1.0, counts[i])
			}
		}
	}
}

func TestMetropolisStepRejectsBadInput(t *testing.T) {
	box, _, _ := domainCases(t)
	x := domainHost(t, tensor.F64, make([]float64, 6), 2, 3)
	prop := domainHost(t, tensor.F64, make([]float64, 6), 2, 3)
	rej := domainHost(t, tensor.F64, make([]float64, 2), 2)
	closed := domainHost(t, tensor.F64, make([]float64, 6), 2, 3)
	require.NoError(t, closed.Close())
	for _, tc := range []struct {
		name              string
		x, prop, rejected *tensor.Tensor
		dom               *Domain
		want              string
	}{
		{"nil domain", x, prop, rej, nil, "nil domain"},
		{"nil x", nil, prop, rej, box, "x must be an open (N, d) tensor"},
		{"closed x", closed, prop, rej, box, "x must be an open (N, d) tensor"},
		{"x rank", domainHost(t, tensor.F64, make([]float64, 6), 6), prop, rej, box, "x must be an open (N, d) tensor"},
		{"dimension", domainHost(t, tensor.F64, make([]float64, 4), 2, 2), prop, rej, box, "x has dimension 2, the box domain 3"},
		{"nil proposal", x, nil, rej, box, "proposal is nil or closed"},
		{"proposal shape", x, domainHost(t, tensor.F64, make([]float64, 9), 3, 3), rej, box, "proposal has shape [3 3], want [2 3]"},
		{"proposal dtype", x, domainHost(t, tensor.F32, make([]float64, 6), 2, 3), rej, box, "proposal is f32"},
		{"counts dtype", x, prop, domainHost(t, tensor.F32, make([]float64, 2), 2), box, "rejection counts is f32"},
		{"counts shape", x, prop, domainHost(t, tensor.F64, make([]float64, 3), 3), box, "rejection counts has shape [3], want [2]"},
		{"nil counts", x, prop, nil, box, "rejection counts is nil or closed"},
	} {
		err := CPU().MetropolisStep(tc.x, tc.prop, tc.dom, tc.rejected)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), "metropolis step: ", tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}
