package solvers

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// twoModeFull is a 2-D mixture with full covariances: every conversion below is checked where the
// denoiser is far from linear (between the modes) as well as near them.
func twoModeFull(t testing.TB) target.GMM {
	return gmmTarget(t, ops.GMMSpec{
		Weights: []float64{0.4, 0.6},
		Means:   [][]float64{{-2, 0}, {3, 1}},
		Covs:    [][][]float64{{{1, 0.3}, {0.3, 0.5}}, {{0.4, -0.1}, {-0.1, 0.8}}},
	})
}

// normalRows returns n rows of d scaled standard normals (f64, host) from the Philox stream.
func normalRows(t testing.TB, n, d int, scale float64, seed uint64) *tensor.Tensor {
	t.Helper()
	x, err := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, err)
	require.NoError(t, ops.CPU().Normal(x, ops.Draw{Seed: seed, Site: 1 << 41}))
	require.NoError(t, ops.CPU().Combine(x, []ops.Term{{T: x, C: scale}}, 0, ops.Draw{}))
	return x
}

func newLike(t testing.TB, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	y, err := tensor.New(x.Device(), x.DType(), x.Shape()...)
	require.NoError(t, err)
	return y
}

// assertClose checks |got − want| ≤ tol·(1 + |want|) elementwise.
func assertClose(t testing.TB, want, got *tensor.Tensor, tol float64, msg string) {
	t.Helper()
	w, err := want.Float64s()
	require.NoError(t, err)
	g, err := got.Float64s()
	require.NoError(t, err)
	require.Len(t, g, len(w), msg)
	worst := 0.0
	for i := range w {
		worst = math.Max(worst, math.Abs(g[i]-w[i])/(1+math.Abs(w[i])))
	}
	assert.LessOrEqual(t, worst, tol, "%s: largest relative error", msg)
}

// The conversions between parametrisations are exact: the score, noise and denoiser computed from
// one another agree with the mixture's own closed-form outputs at the same VE level.
func TestDenoiserConversions(t *testing.T) {
	b := ops.CPU()
	tg := twoModeFull(t)
	den := TargetDenoiser(tg)
	require.Equal(t, 2, den.Dim())
	require.Contains(t, den.String(), "gmm")
	x := normalRows(t, 64, 2, 3, 1)
	for _, sigma := range []float64{0.05, 0.7, 4, 60} {
		d, score, got, eps := newLike(t, x), newLike(t, x), newLike(t, x), newLike(t, x)
		require.NoError(t, den.Denoise(b, d, x, sigma))
		require.NoError(t, tg.Evaluate(b, ops.ScoreOutputs{Score: score}, x, ops.AtSigma(sigma)))

		require.NoError(t, ScoreFromDenoiser(b, got, x, d, sigma))
		assertClose(t, score, got, 1e-12/math.Min(1, sigma*sigma), "score from denoiser")
		require.NoError(t, DenoiserFromScore(b, got, x, score, sigma))
		assertClose(t, d, got, 1e-12, "denoiser from score")
		// ε̂ = −σ ∇log pσ, and back.
		require.NoError(t, EpsFromDenoiser(b, eps, x, d, sigma))
		require.NoError(t, b.Combine(got, []ops.Term{{T: score, C: -sigma}}, 0, ops.Draw{}))
		assertClose(t, got, eps, 1e-12/math.Min(1, sigma), "eps from denoiser")
		require.NoError(t, DenoiserFromEps(b, got, x, eps, sigma))
		assertClose(t, d, got, 1e-12, "denoiser from eps")
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		y := newLike(t, x)
		assert.Error(t, ScoreFromDenoiser(b, y, x, x, bad), "sigma %g", bad)
		assert.Error(t, DenoiserFromScore(b, y, x, x, bad), "sigma %g", bad)
		assert.Error(t, EpsFromDenoiser(b, y, x, x, bad), "sigma %g", bad)
		assert.Error(t, DenoiserFromEps(b, y, x, x, bad), "sigma %g", bad)
	}
}

// D(x; 0) = x for every target (a data set included); negative or non-finite levels are errors.
func TestTargetDenoiserAtZeroAndBadLevels(t *testing.T) {
	b := ops.CPU()
	data, err := tensor.FromF64([]float64{0, 0, 1, 2, -3, 1}, 3, 2)
	require.NoError(t, err)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	x := normalRows(t, 5, 2, 2, 2)
	for _, tg := range []target.Target{twoModeFull(t), target.Empirical{DataSet: set}} {
		den := TargetDenoiser(tg)
		y := newLike(t, x)
		require.NoError(t, den.Denoise(b, y, x, 0), tg.String())
		assertClose(t, x, y, 0, tg.String()+" at sigma 0")
		for _, bad := range []float64{-0.1, math.NaN(), math.Inf(1)} {
			err := den.Denoise(b, y, x, bad)
			require.Error(t, err, "%s sigma %g", tg, bad)
			assert.Contains(t, err.Error(), "must be a finite number ≥ 0")
		}
		wrong, err := tensor.New(nil, tensor.F64, 5, 3)
		require.NoError(t, err)
		assert.Error(t, den.Denoise(b, wrong, x, 0), "%s: wrong output shape at sigma 0", tg)
		assert.Error(t, den.Denoise(b, wrong, x, 1), "%s: wrong output shape", tg)
	}
	// The data set's denoiser at small σ is the nearest data point (docs/math.md §1.2), not x.
	near, err := tensor.FromF64([]float64{0.9, 2.1}, 1, 2)
	require.NoError(t, err)
	y := newLike(t, near)
	require.NoError(t, TargetDenoiser(target.Empirical{DataSet: set}).Denoise(b, y, near, 0.05))
	v, err := y.Float64s()
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{1, 2}, v, 1e-9)
}

// The VP map: a VP state x_t at OU time t is the VE state x_t/α_t at σ = s_t/α_t, so DenoiseVP
// through the VE denoiser equals the mixture's own VP denoiser (ops.AtTime, a separate closed
// form: N(α μ_k, α² Σ_k + s² I)).
func TestVPMapping(t *testing.T) {
	for _, sigma := range []float64{0, 1e-3, 0.5, 1, 80} {
		a, s, tm := VPFromSigma(sigma)
		assert.InDelta(t, 1, a*a+s*s, 1e-15, "σ = %g: α² + s² = 1", sigma)
		assert.InDelta(t, sigma, s/a, 1e-12*(1+sigma), "σ = %g: s/α", sigma)
		assert.InDelta(t, a, math.Exp(-tm), 1e-15, "σ = %g: α = e^{−t}", sigma)
		assert.InDelta(t, sigma, SigmaFromVPTime(tm), 1e-9*(1+sigma), "σ = %g: round trip", sigma)
	}
	b := ops.CPU()
	tg := twoModeFull(t)
	den := TargetDenoiser(tg)
	x := normalRows(t, 64, 2, 1.5, 3)
	for _, tm := range []float64{0.01, 0.3, 2, 6} {
		want, got := newLike(t, x), newLike(t, x)
		require.NoError(t, tg.Evaluate(b, ops.ScoreOutputs{Denoiser: want}, x, ops.AtTime(tm)))
		require.NoError(t, DenoiseVP(b, den, got, x, tm))
		assertClose(t, want, got, 1e-11, fmt.Sprintf("VP denoiser at t = %g", tm))
	}
	y := newLike(t, x)
	assert.Error(t, DenoiseVP(b, den, y, x, 0))
	assert.Error(t, DenoiseVP(b, den, x, x, 1), "dst = x")
	assert.Error(t, DenoiseVP(b, nil, y, x, 1))
}

// The rectified-flow velocity from the denoiser equals the closed form for Gaussian data
// x1 ~ N(μ, s²) and noise x0 ~ N(0, 1): with x_t = (1 − t) x0 + t x1 and V = (1 − t)² + t² s²,
// E[x1 − x0 | x_t] = μ + (t s² − (1 − t))/V (x_t − t μ).
func TestVelocityFromDenoiser(t *testing.T) {
	const mu, s2 = 1.5, 0.49
	b := ops.CPU()
	den := TargetDenoiser(gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{mu}}, Vars: []float64{s2}}))
	x := normalRows(t, 16, 1, 2, 4)
	xs := hostRows(t, x)
	for _, tm := range []float64{0.02, 0.3, 0.5, 0.9, 0.999} {
		scale, sigma := RFFromTime(tm)
		scaled, d, v := newLike(t, x), newLike(t, x), newLike(t, x)
		require.NoError(t, b.Combine(scaled, []ops.Term{{T: x, C: 1 / scale}}, 0, ops.Draw{}))
		require.NoError(t, den.Denoise(b, d, scaled, sigma))
		require.NoError(t, VelocityFromDenoiser(b, v, x, d, tm))
		vs := hostRows(t, v)
		V := (1-tm)*(1-tm) + tm*tm*s2
		for i, r := range xs {
			want := mu + (tm*s2-(1-tm))/V*(r[0]-tm*mu)
			assert.InDelta(t, want, vs[i][0], 1e-9*(1+math.Abs(want))/(1-tm), "t = %g row %d", tm, i)
		}
	}
	for _, bad := range []float64{0, 1, -0.5, math.NaN()} {
		assert.Error(t, VelocityFromDenoiser(b, newLike(t, x), x, x, bad), "t = %g", bad)
	}
}
