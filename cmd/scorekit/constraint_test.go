package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Each kind parses into the domain it describes: membership of points inside, on the boundary
// and outside agrees with the closed form.
func TestParseConstraint(t *testing.T) {
	for _, c := range []struct {
		name    string
		json    string
		kind    ops.DomainKind
		dim     int
		in, out [][]float64
	}{
		{"box", `{"kind": "box", "lo": [-1, 0], "hi": [2, 0.5]}`, ops.Box, 2,
			[][]float64{{0, 0.25}, {-1, 0}, {2, 0.5}}, [][]float64{{2.001, 0.25}, {0, -1e-9}, {math.NaN(), 0}}},
		{"ball", ` {"radius": 2, "center": [1, 1, 1], "kind": "ball"} `, ops.Ball, 3,
			[][]float64{{1, 1, 1}, {3, 1, 1}, {2, 2, 1}}, [][]float64{{3.0001, 1, 1}, {2.5, 2.5, 1}}},
		{"polytope", `{"kind": "polytope", "a": [[1, 1], [-1, 0], [0, -1]], "b": [1, 0, 0]}`, ops.Polytope, 2,
			[][]float64{{0.2, 0.2}, {0, 0}, {0.5, 0.5}, {1, 0}}, [][]float64{{0.6, 0.6}, {-0.1, 0.5}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dom, err := parseConstraint([]byte(c.json))
			require.NoError(t, err)
			assert.Equal(t, c.kind, dom.Kind())
			assert.Equal(t, c.dim, dom.Dim())
			for _, x := range c.in {
				assert.True(t, dom.Contains(x), "%v inside", x)
			}
			for _, x := range c.out {
				assert.False(t, dom.Contains(x), "%v outside", x)
			}
		})
	}
}

func TestParseConstraintRefuses(t *testing.T) {
	for _, c := range []struct {
		json string
		want []string
	}{
		{``, []string{"empty"}},
		{`[1, 2]`, []string{"JSON object"}},
		{`{"kind": "box", "lo": [0], "hi": [1]`, []string{"invalid JSON", "unexpected end"}},
		{`{"kind": "box", "lo": [0], "hi": [1]} {}`, []string{"after the object"}},
		{"{\"kind\": \"box\",\n \"lo\": [0,], \"hi\": [1]}", []string{"invalid JSON", "line 2"}},
		{`{"lo": [0], "hi": [1]}`, []string{"kind: missing"}},
		{`{"kind": 3}`, []string{"kind", "string"}},
		{`{"kind": "Box", "lo": [0], "hi": [1]}`, []string{`unknown constraint kind "Box"`, `"box"`}},
		{`{"kind": "box", "lo": [0], "hi": [1], "Hi": [2]}`, []string{"box", `unknown field "Hi"`, "kind, lo, hi"}},
		{`{"kind": "ball", "center": [0], "radius": 1, "lo": [0]}`, []string{"ball", `unknown field "lo"`}},
		{`{"kind": "box", "lo": [0], "lo": [0], "hi": [1]}`, []string{`"lo" is given twice`}},
		{`{"kind": "box", "lo": [0]}`, []string{"box", "hi: missing"}},
		{`{"kind": "box", "lo": null, "hi": [1]}`, []string{"lo", "array of numbers"}},
		{`{"kind": "box", "lo": [], "hi": []}`, []string{"lo", "non-empty"}},
		{`{"kind": "box", "lo": ["0"], "hi": [1]}`, []string{"lo", "array of numbers"}},
		{`{"kind": "box", "lo": [0, 0], "hi": [1]}`, []string{"box", "lo has 2", "hi 1"}},
		{`{"kind": "box", "lo": [0, 1], "hi": [1, 1]}`, []string{"box", "coordinate 1"}},
		{`{"kind": "box", "lo": [0], "hi": [1e999]}`, []string{"hi", "array of numbers"}},
		{`{"kind": "ball", "center": [0, 0], "radius": 0}`, []string{"ball", "radius 0"}},
		{`{"kind": "ball", "center": [0, 0], "radius": [1]}`, []string{"radius", "number"}},
		{`{"kind": "polytope", "a": [[1, 0], [0]], "b": [1, 1]}`, []string{"polytope", "row 1"}},
		{`{"kind": "polytope", "a": [[0, 0]], "b": [1]}`, []string{"polytope", "row 0 of A is zero"}},
		{`{"kind": "polytope", "a": [[1, 0]], "b": [1, 2]}`, []string{"polytope", "1 rows", "b 2"}},
		{`{"kind": "polytope", "a": [null], "b": [1]}`, []string{"a[0]"}},
		{`{"kind": "polytope", "a": [], "b": []}`, []string{"a:", "non-empty"}},
	} {
		_, err := parseConstraint([]byte(c.json))
		require.Error(t, err, c.json)
		for _, w := range c.want {
			assert.Contains(t, err.Error(), w, c.json)
		}
		assert.NotContains(t, err.Error(), "\n", c.json)
	}
}

func TestCheckInside(t *testing.T) {
	box, err := ops.NewBox([]float64{0, 0}, []float64{1, 1})
	require.NoError(t, err)
	assert.NoError(t, checkInside("--init x", box, []float64{0, 0, 1, 1, 0.5, 0.5}, 2))
	err = checkInside("--init x", box, []float64{0, 0, 1, 2, 0.5, 0.5, math.NaN(), 0}, 2)
	require.Error(t, err)
	assert.ErrorAs(t, err, new(usageError))
	assert.Contains(t, err.Error(), "2 of 4 initial states")
	assert.Contains(t, err.Error(), "row 1 = [1 2]")
}

// roundInside keeps the uniform start inside the domain after rounding to float32, where the
// plain rounding of points drawn on the boundary of a box whose bounds float32 cannot represent
// leaves it; rows that were inside stay as rounding gives them.
func TestRoundInside(t *testing.T) {
	box, err := ops.NewBox([]float64{0.1, -0.3}, []float64{0.7, 0.9})
	require.NoError(t, err)
	ball, err := ops.NewBall([]float64{0.1, 0.2}, 0.3)
	require.NoError(t, err)
	// Points on the circle, pulled in until float64 says they are inside, and the centre.
	var onCircle []float64
	for k := 0; k < 16; k++ {
		a := 2 * math.Pi * float64(k) / 16
		x := []float64{0.1 + 0.3*math.Cos(a), 0.2 + 0.3*math.Sin(a)}
		for s := 1e-16; !ball.Contains(x); s *= 2 {
			x = []float64{0.1 + 0.3*(1-s)*math.Cos(a), 0.2 + 0.3*(1-s)*math.Sin(a)}
		}
		onCircle = append(onCircle, x...)
	}
	onCircle = append(onCircle, 0.1, 0.2)
	for _, c := range []struct {
		dom *ops.Domain
		x   []float64
	}{
		// float32(0.1) > 0.1 (rounds up), float32(0.7) < 0.7, float32(-0.3) < -0.3, …
		{box, []float64{0.1, -0.3, 0.7, 0.9, 0.4, 0.3}},
		{ball, onCircle},
	} {
		require.NoError(t, checkInside("x", c.dom, c.x, 2))
		plain := make([]float64, len(c.x))
		for i, v := range c.x {
			plain[i] = float64(float32(v))
		}
		assert.Error(t, checkInside("x", c.dom, plain, 2), "the test needs a point that rounding moves out")
		got := solvers.RoundInside(c.dom, c.x, 2, tensor.F32)
		assert.NoError(t, checkInside("x", c.dom, got, 2))
		for i := 0; i < len(got); i += 2 {
			assert.Equal(t, got[i], float64(float32(got[i])), "float32 values")
			assert.InDelta(t, c.x[i], got[i], 1e-6)
			if c.dom.Contains(plain[i : i+2]) {
				assert.Equal(t, plain[i:i+2], got[i:i+2])
			}
		}
		assert.Equal(t, c.x, solvers.RoundInside(c.dom, c.x, 2, tensor.F64), "float64: unchanged")
	}
	// The uniform start of a run is inside after rounding.
	u, err := solvers.SampleUniform(box, 1000, 7)
	require.NoError(t, err)
	assert.NoError(t, checkInside("x", box, solvers.RoundInside(box, u, 2, tensor.F32), 2))
}

func TestDefaultConstrainedHorizon(t *testing.T) {
	box, err := ops.NewBox([]float64{-7, -4}, []float64{6, 4})
	require.NoError(t, err)
	assert.InDelta(t, 0.6*(13*13+8*8), solvers.DefaultConstrainedHorizon(box), 1e-12)
	ball, err := ops.NewBall([]float64{0, 0, 0}, 2)
	require.NoError(t, err)
	assert.InDelta(t, 0.6*16, solvers.DefaultConstrainedHorizon(ball), 1e-12)
	tri, err := ops.NewPolytope([][]float64{{1, 0}}, []float64{1})
	require.NoError(t, err)
	assert.Equal(t, solvers.DefaultHorizon, solvers.DefaultConstrainedHorizon(tri))
}
