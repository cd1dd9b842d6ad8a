package solvers

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// trajectoryOf builds a host (T, N, d) trajectory from per-chain paths (paths[i][k] = x_k of
// chain i).
func trajectoryOf(t *testing.T, dt tensor.DType, paths [][][]float64) *tensor.Tensor {
	t.Helper()
	n, T, d := len(paths), len(paths[0]), len(paths[0][0])
	v := make([]float64, T*n*d)
	for i, p := range paths {
		for k, x := range p {
			copy(v[(k*n+i)*d:(k*n+i+1)*d], x)
		}
	}
	tr, err := tensor.FromFloat64s(dt, v, T, n, d)
	require.NoError(t, err)
	return tr
}

// semicircle is x_k = R (cos(πk/n), sin(πk/n)) + c, k = 0 … n.
func semicircle(n int, r float64, c []float64) [][]float64 {
	p := make([][]float64, n+1)
	for k := range p {
		a := math.Pi * float64(k) / float64(n)
		p[k] = []float64{c[0] + r*math.Cos(a), c[1] + r*math.Sin(a)}
	}
	return p
}

// Closed forms: a straight path (at uneven speed) has no deviation and no turning, straightness
// 1; a semicircle of radius R sampled at n + 1 points has chord 2R, length 2Rn·sin(π/(2n)),
// deviations R·sin(πk/n) (max R, mean their average), and turns by π/n at every interior point;
// a right-angle path (0,0) → (1,0) → (1,1) deviates by 1/√2 and turns by π/2. A constant path
// (chord 0) and a path with a NaN are measured but left out of the averages.
func TestTrajectoryGeometryClosedForms(t *testing.T) {
	const n, R = 12, 2.0
	line := make([][]float64, n+1)
	for k := range line {
		s := math.Pow(float64(k)/n, 2)
		line[k] = []float64{1 + 3*s, -2 + 4*s}
	}
	arc := semicircle(n, R, []float64{0.5, -1})
	corner := make([][]float64, n+1)
	for k := range corner {
		switch {
		case k <= n/2:
			corner[k] = []float64{float64(k) / float64(n/2), 0}
		default:
			corner[k] = []float64{1, float64(k-n/2) / float64(n/2)}
		}
	}
	still := make([][]float64, n+1)
	bad := make([][]float64, n+1)
	for k := range still {
		still[k] = []float64{3, 3}
		bad[k] = []float64{float64(k), 0}
	}
	bad[5][1] = math.NaN()
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		tol := 1e-12
		if dt == tensor.F32 {
			tol = 1e-5
		}
		g, err := TrajectoryGeometry(trajectoryOf(t, dt, [][][]float64{line, arc, corner, still, bad}))
		require.NoError(t, err)
		require.Len(t, g.Paths, 5)
		l, a, c := g.Paths[0], g.Paths[1], g.Paths[2]

		assert.InDelta(t, 5, l.Chord, tol)
		assert.InDelta(t, 5, l.Length, tol)
		assert.InDelta(t, 0, l.MaxDeviation, tol)
		assert.InDelta(t, 0, l.TotalTurning, 1e-3) // acos near 1 amplifies rounding: √(2·ulp)
		assert.True(t, l.Finite)

		assert.InDelta(t, 2*R, a.Chord, tol)
		assert.InDelta(t, 2*R*n*math.Sin(math.Pi/(2*n)), a.Length, tol)
		assert.InDelta(t, R, a.MaxDeviation, tol)
		mean := 0.0
		for k := 0; k <= n; k++ {
			mean += R * math.Sin(math.Pi*float64(k)/n) / (n + 1)
		}
		assert.InDelta(t, mean, a.MeanDeviation, tol)
		assert.InDelta(t, math.Pi/n, a.MaxTurning, 1e-6)
		assert.InDelta(t, math.Pi*(n-1)/n, a.TotalTurning, 1e-5)

		assert.InDelta(t, math.Sqrt2, c.Chord, tol)
		assert.InDelta(t, 2, c.Length, tol)
		assert.InDelta(t, 1/math.Sqrt2, c.MaxDeviation, tol)
		assert.InDelta(t, math.Pi/2, c.MaxTurning, 1e-6)
		assert.InDelta(t, math.Pi/2, c.TotalTurning, 1e-3)

		assert.Equal(t, 0.0, g.Paths[3].Chord)
		assert.False(t, g.Paths[4].Finite)
		assert.True(t, math.IsNaN(g.Paths[4].Chord))
		assert.Equal(t, 3, g.Used)
		assert.Equal(t, 1, g.NonFinite)
		assert.InDelta(t, (0+R/(2*R)+(1/math.Sqrt2)/math.Sqrt2)/3, g.MaxDevOverChord, tol)
		assert.InDelta(t, (0+R/a.Length+(1/math.Sqrt2)/2)/3, g.MaxDevOverLength, tol)
		assert.InDelta(t, (1+2*R/a.Length+math.Sqrt2/2)/3, g.Straightness, tol)
		assert.InDelta(t, (0+mean/(2*R)+c.MeanDeviation/math.Sqrt2)/3, g.MeanDevOverChord, tol)
		require.Len(t, g.TurningAngle, n-1)
		for k, theta := range g.TurningAngle {
			want := math.Pi / n / 3 // the arc's angle; the line and the corner turn by 0 …
			if k+1 == n/2 {
				want += math.Pi / 2 / 3 // … except the corner at its vertex
			}
			assert.InDelta(t, want, theta, 1e-3, "angle at %d", k+1)
		}
	}
}

// Convergence index: for x_k = 2^{−k} e (n = 10), ‖x_k − x_n‖ = 2^{−k} − 2^{−10} drops to 0.1
// first at k = 4; a path that comes close, leaves and returns converges only after its last
// excursion; a NaN anywhere gives −1. DistanceToFinal is the profile, averaged over the finite
// chains.
func TestConvergenceSteps(t *testing.T) {
	const n = 10
	geo := make([][]float64, n+1)
	back := make([][]float64, n+1)
	bad := make([][]float64, n+1)
	for k := range geo {
		geo[k] = []float64{math.Pow(2, -float64(k)), 0, 0}
		back[k] = []float64{0, 0, 0}
		bad[k] = []float64{0, 0, 0}
	}
	back[0][2], back[7][2] = 5, 0.5 // far at the start and again at k = 7
	bad[3][0] = math.Inf(1)
	tr := trajectoryOf(t, tensor.F64, [][][]float64{geo, back, bad})
	got, err := ConvergenceSteps(tr, 0.05, 2)
	require.NoError(t, err)
	assert.Equal(t, []int{4, 8, -1}, got)
	got, err = ConvergenceSteps(tr, 1e-9, 1)
	require.NoError(t, err)
	assert.Equal(t, []int{n, 8, -1}, got, "a tolerance below every distance: the final index")
	prof, err := DistanceToFinal(tr)
	require.NoError(t, err)
	require.Len(t, prof, n+1)
	for k := range prof {
		want := (math.Pow(2, -float64(k)) - math.Pow(2, -n) + math.Abs(back[k][2])) / 2
		assert.InDelta(t, want, prof[k], 1e-15, "k = %d", k)
	}
}

// The identity of the geometric perspective: with the empirical optimal denoiser, one Euler step
// of the VE ODE from σ to 0 is one Gaussian mean-shift iteration. The step computed through the
// backend equals the host mean shift to rounding (8 ulp of the largest value in float64 — at
// large σ the step x − σ·(x − D)/σ cancels x —, 10⁻⁵ relative in float32), from starting points near and far from the data and at small and large σ. The
// mean shift itself has the limits of docs/math.md §1.2: one point gives that point, σ → ∞ the
// data mean, σ → 0 the nearest point.
func TestMeanShiftCheck(t *testing.T) {
	const m, d = 40, 3
	pts := make([]float64, m*d)
	for i := range pts {
		pts[i] = math.Sin(1.7*float64(i)+0.3) * 3
	}
	xs := []float64{0, 0, 0, 10, -4, 2, 1.5, 1.5, -1, 0.3, 2.9, 2.2}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		dataT, err := tensor.FromFloat64s(dt, pts, m, d)
		require.NoError(t, err)
		set, err := ops.NewEmpirical(dataT)
		require.NoError(t, err)
		x, err := tensor.FromFloat64s(dt, xs, 4, d)
		require.NoError(t, err)
		for _, sigma := range []float64{0.05, 0.5, 5, 80} {
			rep, err := MeanShiftCheck(ops.CPU(), set, x, sigma)
			require.NoError(t, err)
			tol := 8 * 2.2e-16 * rep.MaxAbs
			if dt == tensor.F32 {
				tol = 1e-5 * rep.MaxAbs
			}
			assert.LessOrEqual(t, rep.MaxAbsDiff, tol, "%v σ = %g", dt, sigma)
			assert.Greater(t, rep.MaxAbs, 0.1)
		}
	}

	dst := make([]float64, 3)
	require.NoError(t, MeanShift(dst, []float64{5, 5, 5}, []float64{1, 2, 3}, 3, 0.1))
	assert.Equal(t, []float64{1, 2, 3}, dst, "one data point")
	mean := make([]float64, d)
	for i := 0; i < m; i++ {
		for j := 0; j < d; j++ {
			mean[j] += pts[i*d+j] / m
		}
	}
	require.NoError(t, MeanShift(dst, []float64{0.1, 0.2, 0.3}, pts, d, 1e6))
	assert.InDeltaSlice(t, mean, dst, 1e-9, "σ → ∞: the mean")
	near := []float64{pts[7*d] + 0.01, pts[7*d+1], pts[7*d+2] - 0.01}
	require.NoError(t, MeanShift(dst, near, pts, d, 1e-3))
	assert.Equal(t, pts[7*d:8*d], dst, "σ → 0: the nearest point")
	require.NoError(t, MeanShift(dst, []float64{1e4, -1e4, 1e4}, pts, d, 1e-3), "far away, tiny σ: no 0/0")
	assert.False(t, math.IsNaN(dst[0]))
}

// Memorisation: samples placed 10⁻⁴ from data points are memorised (fraction 1 within 1% of the
// spacing); samples at the midpoints between neighbours of a unit grid are at half the spacing
// (fraction 0); the spacing of the unit grid is 1.
func TestMemorisation(t *testing.T) {
	var grid []float64
	for a := 0; a < 5; a++ {
		for b := 0; b < 4; b++ {
			grid = append(grid, float64(a), float64(b))
		}
	}
	var near, mid []float64
	for i := 0; i < 10; i++ {
		near = append(near, grid[2*i]+1e-4, grid[2*i+1])
		mid = append(mid, float64(i%4)+0.5, float64(i%3))
	}
	rep, err := Memorisation(near, grid, 2, 0.01)
	require.NoError(t, err)
	assert.Equal(t, 1.0, rep.MedianSpacing)
	for _, s := range rep.Spacing {
		assert.Equal(t, 1.0, s)
	}
	assert.InDelta(t, 1e-4, rep.MedianNearest, 1e-12)
	assert.Equal(t, 1.0, rep.Memorised)
	rep, err = Memorisation(mid, grid, 2, 0.01)
	require.NoError(t, err)
	assert.Equal(t, 0.5, rep.MedianNearest)
	assert.Equal(t, 0.0, rep.Memorised)
	rep, err = Memorisation(append([]float64{math.NaN(), 0}, near...), grid, 2, 0.01)
	require.NoError(t, err)
	assert.True(t, math.IsNaN(rep.Nearest[0]))
	assert.Equal(t, 1.0, rep.Memorised, "non-finite samples are left out")
	assert.InDelta(t, math.Sqrt(5), RMSRadius([]float64{0, 0, 1, 3, math.NaN(), 0, 2, 0, 1, -3}, 2), 1e-15)
}

func TestGeometryRejectsBadInput(t *testing.T) {
	good := trajectoryOf(t, tensor.F64, [][][]float64{{{0}, {1}}})
	flat, err := tensor.New(nil, tensor.F64, 2, 1)
	require.NoError(t, err)
	one := trajectoryOf(t, tensor.F64, [][][]float64{{{0}}})
	closed := trajectoryOf(t, tensor.F64, [][][]float64{{{0}, {1}}})
	require.NoError(t, closed.Close())
	for _, tc := range []struct {
		name string
		tr   *tensor.Tensor
		want string
	}{
		{"nil", nil, "trajectory is nil or closed"},
		{"closed", closed, "trajectory is nil or closed"},
		{"rank", flat, "trajectory has shape [2 1]: want (steps+1, chains, dim)"},
		{"one state", one, "trajectory has shape [1 1 1]: need at least 2 states"},
	} {
		_, err := TrajectoryGeometry(tc.tr)
		require.ErrorContains(t, err, "trajectory geometry: "+tc.want, tc.name)
	}
	_, err = ConvergenceSteps(good, 0, 1)
	require.ErrorContains(t, err, "convergence steps: eps = 0")
	_, err = ConvergenceSteps(good, 0.1, math.Inf(1))
	require.ErrorContains(t, err, "scale = +Inf")
	_, err = ConvergenceSteps(flat, 0.1, 1)
	require.ErrorContains(t, err, "want (steps+1, chains, dim)")
	_, err = DistanceToFinal(nil)
	require.ErrorContains(t, err, "distance to final: trajectory is nil")

	require.ErrorContains(t, MeanShift(make([]float64, 2), []float64{0, 0}, []float64{1, 2, 3}, 2, 1), "whole rows")
	require.ErrorContains(t, MeanShift(make([]float64, 2), []float64{0, 0}, []float64{1, 2}, 2, 0), "bandwidth σ = 0")
	set, err := ops.NewEmpirical(trajectoryRows(t, []float64{0, 0, 1, 1}, 2, 2))
	require.NoError(t, err)
	x := trajectoryRows(t, []float64{0, 0}, 1, 2)
	_, err = MeanShiftCheck(nil, set, x, 1)
	require.ErrorContains(t, err, "nil backend")
	_, err = MeanShiftCheck(ops.CPU(), nil, x, 1)
	require.ErrorContains(t, err, "nil data set")
	_, err = MeanShiftCheck(ops.CPU(), set, x, -1)
	require.ErrorContains(t, err, "σ = -1")
	_, err = MeanShiftCheck(ops.CPU(), set, trajectoryRows(t, []float64{0, 0, 0}, 1, 3), 1)
	require.ErrorContains(t, err, "x has dimension 3")
	mix, err := set.WithMixture([]float64{1, 1}, []float64{1, 4})
	require.NoError(t, err)
	_, err = MeanShiftCheck(ops.CPU(), mix, x, 1)
	require.ErrorContains(t, err, "scale mixture")

	_, err = Memorisation([]float64{0, 0}, []float64{0, 0}, 2, 0.01)
	require.ErrorContains(t, err, "≥ 2 data points")
	_, err = Memorisation([]float64{0, 0}, []float64{0, 0, 1, 1}, 2, 1)
	require.ErrorContains(t, err, "tol = 1")
	_, err = Memorisation([]float64{0, 0}, []float64{0, 0, 0, 0, 1, 1}, 2, 0.1)
	require.ErrorContains(t, err, "duplicated points")
	_, err = Memorisation([]float64{0, 0}, []float64{0, math.NaN(), 1, 1}, 2, 0.1)
	require.ErrorContains(t, err, "NaN")
}

func trajectoryRows(t *testing.T, v []float64, n, d int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromFloat64s(tensor.F64, v, n, d)
	require.NoError(t, err)
	return x
}

// BenchmarkTrajectoryGeometry times the trajectory diagnostics on a (36, 1000, d) trajectory.
func BenchmarkTrajectoryGeometry(b *testing.B) {
	for _, d := range []int{2, 64} {
		const T, n = 36, 1000
		v := make([]float64, T*n*d)
		for i := range v {
			v[i] = math.Sin(0.37 * float64(i))
		}
		tr, err := tensor.FromFloat64s(tensor.F64, v, T, n, d)
		require.NoError(b, err)
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			b.SetBytes(int64(8 * len(v)))
			for i := 0; i < b.N; i++ {
				if _, err := TrajectoryGeometry(tr); err != nil {
					b.Fatal(err)
				}
				if _, err := ConvergenceSteps(tr, 0.05, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
