package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// scaleMixRows are n rows in d dimensions spread over the mixtures below.
func scaleMixRows(n, d int) []float64 {
	x := make([]float64, n*d)
	for i := range x {
		x[i] = 3 * math.Sin(0.83*float64(i)+0.3)
	}
	return x
}

func scaleMixDenoise(t *testing.T, b Backend, g *GMM, m *ScaleMixture, v float64, x []float64, n, d int, dt tensor.DType) []float64 {
	t.Helper()
	xt, err := tensor.FromFloat64s(dt, x, n, d)
	require.NoError(t, err)
	dst, err := tensor.New(nil, dt, n, d)
	require.NoError(t, err)
	require.NoError(t, b.GMMScaleMixtureDenoise(dst, xt, g, m, v))
	out, err := dst.Float64s()
	require.NoError(t, err)
	return out
}

// One node (Q = 1, A = 1) is plain Gaussian noise of variance v: the op equals the mixture's
// VE denoiser at σ = √v (GMMScore, an independent implementation), to round-off (1e-12
// relative), for isotropic, diagonal and full covariances.
func TestScaleMixtureOneNodeIsTheVEDenoiser(t *testing.T) {
	const n, d, v = 40, 3, 0.7
	for name, spec := range map[string]GMMSpec{
		"isotropic": {Weights: []float64{1, 2, 1.5}, Means: [][]float64{{-2, 0, 1}, {2, 1, -1}, {0, -2, 0.5}}, Vars: []float64{0.5, 1.2, 0.3}},
		"diagonal": {Weights: []float64{1, 2}, Means: [][]float64{{-2, 0, 1}, {2, 1, -1}},
			Diag: [][]float64{{0.5, 1, 2}, {0.2, 0.7, 0.4}}},
		"full": {Weights: []float64{1, 2}, Means: [][]float64{{-2, 0, 1}, {2, 1, -1}},
			Covs: [][][]float64{{{1, 0.3, 0}, {0.3, 0.8, 0.1}, {0, 0.1, 0.5}}, {{0.6, -0.2, 0.1}, {-0.2, 1.1, 0}, {0.1, 0, 0.9}}}},
	} {
		g, err := NewGMM(spec)
		require.NoError(t, err)
		m, err := NewScaleMixture([]float64{1}, []float64{1})
		require.NoError(t, err)
		x := scaleMixRows(n, d)
		got := scaleMixDenoise(t, Reference(), g, m, v, x, n, d, tensor.F64)
		xt, _ := tensor.FromF64(append([]float64(nil), x...), n, d)
		den, _ := tensor.New(nil, tensor.F64, n, d)
		require.NoError(t, Reference().GMMScore(ScoreOutputs{Denoiser: den}, xt, g, AtSigma(math.Sqrt(v))))
		want, _ := den.F64()
		for i := range want {
			assert.InDelta(t, want[i], got[i], 1e-12*(1+math.Abs(want[i])), "%s [%d]", name, i)
		}
	}
}

// Several nodes, a 2-D full-covariance mixture: the op against the posterior mean written out
// with explicit 2×2 inverses and determinants over every (component, node) pair, in another
// order (1e-12 relative); and at v = 0 the denoiser is the identity.
func TestScaleMixtureAgainstExplicitPosterior(t *testing.T) {
	const n, d, v = 30, 2, 0.9
	covs := [][][]float64{{{1, 0.4}, {0.4, 0.7}}, {{0.3, -0.1}, {-0.1, 0.5}}, {{2, 0}, {0, 0.2}}}
	spec := GMMSpec{Weights: []float64{0.5, 0.3, 0.2}, Means: [][]float64{{-2, 1}, {2, 0}, {0, -2}}, Covs: covs}
	g, err := NewGMM(spec)
	require.NoError(t, err)
	pi, mult := []float64{0.2, 0.5, 0.3}, []float64{0.3, 1, 4.5}
	m, err := NewScaleMixture(pi, mult)
	require.NoError(t, err)
	x := scaleMixRows(n, d)
	got := scaleMixDenoise(t, Reference(), g, m, v, x, n, d, tensor.F64)
	for i := 0; i < n; i++ {
		xi := x[i*d : (i+1)*d]
		var num [2]float64
		den := 0.0
		for k, c := range covs {
			for q := range pi {
				s := v * mult[q]
				a, bb, cc := c[0][0]+s, c[0][1], c[1][1]+s // Σ_k + s I
				det := a*cc - bb*bb
				z0, z1 := xi[0]-spec.Means[k][0], xi[1]-spec.Means[k][1]
				quad := (cc*z0*z0 - 2*bb*z0*z1 + a*z1*z1) / det
				w := spec.Weights[k] * pi[q] * math.Exp(-0.5*quad) / math.Sqrt(det)
				// μ + Σ (Σ + sI)^{-1} z
				i0, i1 := (cc*z0-bb*z1)/det, (-bb*z0+a*z1)/det
				num[0] += w * (spec.Means[k][0] + c[0][0]*i0 + c[0][1]*i1)
				num[1] += w * (spec.Means[k][1] + c[1][0]*i0 + c[1][1]*i1)
				den += w
			}
		}
		for j := 0; j < d; j++ {
			want := num[j] / den
			assert.InDelta(t, want, got[i*d+j], 1e-12*(1+math.Abs(want)), "row %d coordinate %d", i, j)
		}
	}
	id := scaleMixDenoise(t, Reference(), g, m, 0, x, n, d, tensor.F64)
	for i := range x {
		assert.InDelta(t, x[i], id[i], 1e-12*(1+math.Abs(x[i])), "v = 0: D(x) = x")
	}
}

func TestScaleMixtureErrors(t *testing.T) {
	for _, c := range []struct {
		w, a  []float64
		check string
	}{
		{nil, nil, "need the same number ≥ 1"},
		{[]float64{1, 2}, []float64{1}, "2 weights and 1 multipliers"},
		{[]float64{1, -1}, []float64{1, 1}, "weights[1] = -1"},
		{[]float64{1, math.NaN()}, []float64{1, 1}, "weights[1] = NaN"},
		{[]float64{1}, []float64{0}, "multipliers[0] = 0"},
		{[]float64{1}, []float64{math.Inf(1)}, "multipliers[0] = +Inf"},
	} {
		_, err := NewScaleMixture(c.w, c.a)
		assert.ErrorContains(t, err, c.check)
	}
	g, err := NewGMM(GMMSpec{Weights: []float64{1}, Means: [][]float64{{0, 0}}, Vars: []float64{1}})
	require.NoError(t, err)
	m, err := NewScaleMixture([]float64{1}, []float64{1})
	require.NoError(t, err)
	x, _ := tensor.New(nil, tensor.F64, 3, 2)
	dst, _ := tensor.New(nil, tensor.F64, 3, 2)
	x3, _ := tensor.New(nil, tensor.F64, 3, 3)
	x32, _ := tensor.New(nil, tensor.F32, 3, 2)
	for _, c := range []struct {
		name   string
		dst, x *tensor.Tensor
		g      *GMM
		m      *ScaleMixture
		v      float64
		check  string
	}{
		{"nil mixture", dst, x, nil, m, 1, "nil mixture"},
		{"nil scale mixture", dst, x, g, nil, 1, "nil scale mixture"},
		{"dimension", x3, x3, g, m, 1, "dimension 3, the mixture 2"},
		{"dtype", x32, x, g, m, 1, "dst is f32"},
		{"aliased", x, x, g, m, 1, "the same tensor"},
		{"negative level", dst, x, g, m, -1, "level v = -1"},
		{"NaN level", dst, x, g, m, math.NaN(), "level v = NaN"},
	} {
		var err error
		require.NotPanics(t, func() { err = Reference().GMMScaleMixtureDenoise(c.dst, c.x, c.g, c.m, c.v) }, c.name)
		assert.ErrorContains(t, err, c.check, c.name)
	}
}
