package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

func f64Tensor(t *testing.T, v []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromF64(append([]float64(nil), v...), shape...)
	require.NoError(t, err)
	return x
}

func vals(t *testing.T, x *tensor.Tensor) []float64 {
	t.Helper()
	v, err := x.Float64s()
	require.NoError(t, err)
	return v
}

// Step equals α x + β s + γ ξ with ξ exactly the numbers Normal draws, shared and per chain.
func TestStepIsTheFusedLinearUpdate(t *testing.T) {
	const n, d = 5, 3
	xs := make([]float64, n*d)
	ss := make([]float64, n*d)
	for i := range xs {
		xs[i], ss[i] = math.Sin(float64(i)), math.Cos(float64(i))
	}
	draw := Draw{Seed: 9, Site: 4, FirstChain: 2}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		x, _ := tensor.New(nil, dt, n, d)
		s, _ := tensor.New(nil, dt, n, d)
		xi, _ := tensor.New(nil, dt, n, d)
		require.NoError(t, x.CopyFrom(mustHost(t, dt, xs, n, d)))
		require.NoError(t, s.CopyFrom(mustHost(t, dt, ss, n, d)))
		require.NoError(t, CPU().Normal(xi, draw))
		hs := mustHost(t, dt, []float64{0.1, 0.2, 0.3, 0.4, 0.5}, n)
		for _, c := range []Coeffs{ULA(0.01), {Alpha: 0.9, Beta: -2, Gamma: 0}, ULAPerChain(hs)} {
			dst, _ := tensor.New(nil, dt, n, d)
			require.NoError(t, CPU().Step(dst, x, s, c, draw))
			got, xv, sv, zv := vals(t, dst), vals(t, x), vals(t, s), vals(t, xi)
			for i := range got {
				beta, gamma := c.Beta, c.Gamma
				if c.H != nil {
					h := vals(t, c.H)[i/d]
					beta, gamma = beta*h, gamma*math.Sqrt(h)
				}
				want := c.Alpha*xv[i] + beta*sv[i] + gamma*zv[i]
				tol := 1e-15
				if dt == tensor.F32 {
					tol = 1e-6
				}
				assert.InDelta(t, want, got[i], tol*(1+math.Abs(want)), "%v %+v element %d", dt, c, i)
			}
		}
		// In place.
		before := vals(t, x)
		require.NoError(t, CPU().Step(x, x, s, ULA(0.5), draw))
		assert.NotEqual(t, before, vals(t, x))
	}
}

func mustHost(t *testing.T, dt tensor.DType, v []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromFloat64s(dt, v, shape...)
	require.NoError(t, err)
	return x
}

// With a zero gradient one ULD step from (0, 0) leaves (x', v') jointly Gaussian with the
// covariance of docs/math.md §2. Over 2·10^5 draws × 2 coordinates the sample (co)variances have
// relative standard error ≈ sqrt(2/n) ≈ 2.2e-3; tolerance 6 SE (false-failure rate ≈ 2e-9 each).
func TestULDOneStepCovariance(t *testing.T) {
	const n, d = 100000, 4
	for _, p := range []struct {
		h float64
		u ULDParams
	}{{0.1, ULDParams{Gamma: 2, InvMass: 1}}, {0.5, ULDParams{Gamma: 0.7, InvMass: 2}}, {0.01, ULDParams{Gamma: 0.5, InvMass: 1}}} {
		x, _ := tensor.New(nil, tensor.F64, n, d)
		v, _ := tensor.New(nil, tensor.F64, n, d)
		s, _ := tensor.New(nil, tensor.F64, n, d)
		require.NoError(t, CPU().ULDStep(x, v, s, p.h, p.u, Draw{Seed: 77, Site: 10}))
		xv, vv := vals(t, x), vals(t, v)
		var sxx, svv, sxv float64
		for i := range xv {
			sxx += xv[i] * xv[i]
			svv += vv[i] * vv[i]
			sxv += xv[i] * vv[i]
		}
		m := float64(len(xv))
		g, u, h := p.u.Gamma, p.u.InvMass, p.h
		E := math.Exp(-g * h)
		wantVV := u * (1 - E*E)
		wantXX := 2 * u / g * (h - 2*(1-E)/g + (1-E*E)/(2*g))
		wantXV := u / g * (1 - 2*E + E*E)
		se := 6 * math.Sqrt(2/m)
		assert.InDelta(t, 1, sxx/m/wantXX, se, "Var W_x, h=%g", h)
		assert.InDelta(t, 1, svv/m/wantVV, se, "Var W_v, h=%g", h)
		// Cov estimate SE ≈ sqrt((σx²σv² + c²)/m).
		assert.InDelta(t, wantXV, sxv/m, 6*math.Sqrt((wantXX*wantVV+wantXV*wantXV)/m), "Cov, h=%g", h)
	}
}

// The small-γh series of Var W_x agrees with the closed form where both are accurate, and the
// drift coefficients are the §2 formulas.
func TestULDCoefficients(t *testing.T) {
	for _, gh := range []float64{0.0099, 0.0101, 0.05} {
		p := ULDParams{Gamma: 1, InvMass: 1.5}
		_, _, _, _, l11, _, _ := ULDCoefficients(gh, p)
		direct := 2 * 1.5 * (gh - 2*(-math.Expm1(-gh)) + (-math.Expm1(-2*gh))/2)
		assert.InDelta(t, 1, l11*l11/direct, 1e-6, "γh = %g", gh)
	}
	e, cv, cx, cxg, _, _, _ := ULDCoefficients(0.3, ULDParams{Gamma: 2, InvMass: 0.5})
	E := math.Exp(-0.6)
	assert.InDelta(t, E, e, 1e-15)
	assert.InDelta(t, 0.5/2*(1-E), cv, 1e-15)
	assert.InDelta(t, (1-E)/2, cx, 1e-15)
	assert.InDelta(t, 0.5/2*(0.3-(1-E)/2), cxg, 1e-15)
}

// MALAAccept against a hand computation of log α and the chain's uniform, including a NaN
// proposal (rejected, never counted).
func TestMALAAcceptDecisions(t *testing.T) {
	const n, d, h = 6, 2, 0.3
	x := []float64{0, 0, 1, 1, -1, 2, 0.5, 0.5, 3, -3, 0, 1}
	y := []float64{0.1, -0.2, 1.5, 0.8, -1, 2.1, 5, 5, 3.1, -2.9, math.NaN(), 1}
	sx := []float64{0, 0, -1, -1, 1, -2, -0.5, -0.5, -3, 3, 0, -1}
	sy := []float64{-0.1, 0.2, -1.5, -0.8, 1, -2.1, -5, -5, -3.1, 2.9, 0, -1}
	lx := []float64{-1, -2, -2.5, -1.25, -9, -1.5}
	ly := []float64{-1.025, -2.39, -2.605, -25, -9.01, math.NaN()}
	cur := MALAState{X: f64Tensor(t, x, n, d), LogP: f64Tensor(t, lx, n), Score: f64Tensor(t, sx, n, d)}
	prop := MALAState{X: f64Tensor(t, y, n, d), LogP: f64Tensor(t, ly, n), Score: f64Tensor(t, sy, n, d)}
	acc := f64Tensor(t, make([]float64, n), n)
	draw := Draw{Seed: 5, Site: 8}
	require.NoError(t, CPU().MALAAccept(cur, prop, h, nil, draw, acc))
	got := vals(t, cur.X)
	for i := 0; i < n; i++ {
		fwd, bwd := 0.0, 0.0
		for j := 0; j < d; j++ {
			f := y[i*d+j] - x[i*d+j] - h*sx[i*d+j]
			r := x[i*d+j] - y[i*d+j] - h*sy[i*d+j]
			fwd += f * f
			bwd += r * r
		}
		la := ly[i] - lx[i] + (fwd-bwd)/(4*h)
		want := math.Log(uniform64(5, 8, uint32(i))) < la
		assert.Equal(t, want, vals(t, acc)[i] == 1, "chain %d log α %g", i, la)
		if want {
			assert.Equal(t, y[i*d:(i+1)*d], got[i*d:(i+1)*d])
			assert.Equal(t, ly[i], vals(t, cur.LogP)[i])
		} else {
			assert.Equal(t, x[i*d:(i+1)*d], got[i*d:(i+1)*d])
		}
	}
	assert.Zero(t, vals(t, acc)[3], "a proposal 24 nats less likely is rejected")
	assert.Zero(t, vals(t, acc)[5], "NaN proposal rejected")
	assert.Equal(t, 1.0, vals(t, acc)[0], "a nearly neutral move with this uniform is accepted")

	bad := f64Tensor(t, make([]float64, n), n)
	assert.ErrorContains(t, CPU().MALAAccept(cur, prop, 0, nil, draw, bad), "h = 0")
	f32acc, _ := tensor.New(nil, tensor.F32, n)
	assert.ErrorContains(t, CPU().MALAAccept(cur, prop, h, nil, draw, f32acc), "acceptance counts")
}

// The Gaussian factor's score is the gradient of its log term.
func TestGaussianFactorGradient(t *testing.T) {
	x := []float64{0.3, -0.2, 1.1}
	c := []float64{0.5, 0.1, -0.7}
	const a, v, h = 0.8, 0.36, 1e-6
	term := func(x []float64) float64 {
		lp := f64Tensor(t, []float64{2}, 1)
		require.NoError(t, CPU().AddGaussianFactor(ScoreOutputs{LogP: lp}, f64Tensor(t, x, 1, 3), f64Tensor(t, c, 1, 3), a, v))
		return vals(t, lp)[0] - 2
	}
	sc := f64Tensor(t, []float64{1, 1, 1}, 1, 3)
	require.NoError(t, CPU().AddGaussianFactor(ScoreOutputs{Score: sc}, f64Tensor(t, x, 1, 3), f64Tensor(t, c, 1, 3), a, v))
	for j := range x {
		xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
		xp[j] += h
		xm[j] -= h
		fd := (term(xp) - term(xm)) / (2 * h)
		assert.InDelta(t, 1+fd, vals(t, sc)[j], 1e-8)
	}
	assert.ErrorContains(t, CPU().AddGaussianFactor(ScoreOutputs{}, f64Tensor(t, x, 1, 3), f64Tensor(t, c, 1, 3), a, v), "nothing to update")
	assert.ErrorContains(t, CPU().AddGaussianFactor(ScoreOutputs{Score: sc}, f64Tensor(t, x, 1, 3), f64Tensor(t, c, 1, 3), a, -1), "variance")
}

func TestStepAndULDRejectBadInput(t *testing.T) {
	x := f64Tensor(t, make([]float64, 6), 3, 2)
	s := f64Tensor(t, make([]float64, 6), 3, 2)
	v := f64Tensor(t, make([]float64, 6), 3, 2)
	wrong := f64Tensor(t, make([]float64, 4), 2, 2)
	assert.ErrorContains(t, CPU().Step(wrong, x, s, ULA(0.1), Draw{}), "dst")
	assert.ErrorContains(t, CPU().Step(x, x, s, Coeffs{Alpha: 1, Beta: math.NaN()}, Draw{}), "finite")
	assert.ErrorContains(t, CPU().Step(x, x, s, Coeffs{Alpha: 1, Gamma: -1}, Draw{}), "≥ 0")
	assert.ErrorContains(t, CPU().ULDStep(x, v, s, 0, ULDParams{Gamma: 1, InvMass: 1}, Draw{}), "h = 0")
	assert.ErrorContains(t, CPU().ULDStep(x, v, s, 0.1, ULDParams{Gamma: 0, InvMass: 1}, Draw{}), "friction")
	assert.ErrorContains(t, CPU().ULDStep(x, v, s, 0.1, ULDParams{Gamma: 1}, Draw{}), "inverse mass")
	assert.ErrorContains(t, CPU().ULDStep(x, wrong, s, 0.1, ULDParams{Gamma: 1, InvMass: 1}, Draw{}), "v has shape")
}
