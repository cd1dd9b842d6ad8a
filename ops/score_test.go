package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/tensor"
)

type scoreResult struct{ logp, score, den, resp []float64 }

// evalGMM runs the CPU reference on rows x (N×d, f64) and returns every output.
func evalGMM(t *testing.T, g *GMM, x []float64, noise Noise) scoreResult {
	t.Helper()
	return evalGMMOn(t, CPU(), g, x, noise)
}

// evalGMMOn is evalGMM on backend b.
func evalGMMOn(t *testing.T, b Backend, g *GMM, x []float64, noise Noise) scoreResult {
	t.Helper()
	n := len(x) / g.Dim()
	xt, _ := tensor.FromF64(append([]float64(nil), x...), n, g.Dim())
	lp, _ := tensor.New(nil, tensor.F64, n)
	sc, _ := tensor.New(nil, tensor.F64, n, g.Dim())
	de, _ := tensor.New(nil, tensor.F64, n, g.Dim())
	re, _ := tensor.New(nil, tensor.F64, n, g.K())
	require.NoError(t, b.GMMScore(ScoreOutputs{LogP: lp, Score: sc, Denoiser: de, Resp: re}, xt, g, noise))
	f := func(t *tensor.Tensor) []float64 { v, _ := t.F64(); return v }
	return scoreResult{f(lp), f(sc), f(de), f(re)}
}

func evalEmpirical(t *testing.T, e *Empirical, x []float64, noise Noise) scoreResult {
	t.Helper()
	n := len(x) / e.Dim()
	xt, _ := tensor.FromF64(append([]float64(nil), x...), n, e.Dim())
	lp, _ := tensor.New(nil, tensor.F64, n)
	sc, _ := tensor.New(nil, tensor.F64, n, e.Dim())
	de, _ := tensor.New(nil, tensor.F64, n, e.Dim())
	require.NoError(t, CPU().EmpiricalScore(ScoreOutputs{LogP: lp, Score: sc, Denoiser: de}, xt, e, noise))
	f := func(t *tensor.Tensor) []float64 { v, _ := t.F64(); return v }
	return scoreResult{logp: f(lp), score: f(sc), den: f(de)}
}

// gaussianLogPdf is log N(x; m, C) and C⁻¹(x − m), by gonum's Cholesky.
func gaussianLogPdf(x, m []float64, c *mat.SymDense) (float64, []float64) {
	d := len(x)
	var ch mat.Cholesky
	if !ch.Factorize(c) {
		panic("not SPD")
	}
	diff := mat.NewVecDense(d, nil)
	for i := range x {
		diff.SetVec(i, x[i]-m[i])
	}
	var sol mat.VecDense
	if err := ch.SolveVecTo(&sol, diff); err != nil {
		panic(err)
	}
	return -0.5 * (float64(d)*math.Log(2*math.Pi) + ch.LogDet() + mat.Dot(diff, &sol)), sol.RawVector().Data
}

func testMixtures(t *testing.T) map[string]*GMM {
	t.Helper()
	iso, err := NewGMM(GMMSpec{Weights: []float64{1, 2, 3}, Means: [][]float64{{0, 0, 0}, {3, -1, 2}, {-2, 4, 1}},
		Vars: []float64{0.5, 1.5, 0.25}})
	require.NoError(t, err)
	diag, err := NewGMM(GMMSpec{Weights: []float64{0.2, 0.8}, Means: [][]float64{{1, 0, -1}, {-1, 2, 0.5}},
		Diag: [][]float64{{0.3, 1, 2}, {1.5, 0.2, 0.7}}})
	require.NoError(t, err)
	full, err := NewGMM(GMMSpec{Weights: []float64{0.5, 0.3, 0.2}, Means: [][]float64{{0, 1, 0}, {2, 2, -1}, {-1, 0, 3}},
		Covs: [][][]float64{
			{{1, 0.3, 0.1}, {0.3, 0.8, -0.2}, {0.1, -0.2, 0.6}},
			{{0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}},
			{{2, 0.9, 0.4}, {0.9, 1.2, 0.3}, {0.4, 0.3, 0.9}},
		}})
	require.NoError(t, err)
	return map[string]*GMM{"isotropic": iso, "diagonal": diag, "full": full}
}

var testNoises = map[string]Noise{
	"ve σ=0.7":       AtSigma(0.7),
	"vp t=0.3":       AtTime(0.3),
	"affine 0.8/0.5": {Kind: Affine, Scale: 0.8, Var: 0.5},
}

// One component: log p, score and denoiser against the Gaussian closed form
// N(x; a μ, a² Σ + s I), computed independently with gonum.
func TestGMMSingleGaussianClosedForm(t *testing.T) {
	cov := [][]float64{{1, 0.4, -0.2}, {0.4, 0.9, 0.1}, {-0.2, 0.1, 0.5}}
	mu := []float64{0.5, -1, 2}
	specs := map[string]GMMSpec{
		"isotropic": {Weights: []float64{3}, Means: [][]float64{mu}, Vars: []float64{0.7}},
		"diagonal":  {Weights: []float64{1}, Means: [][]float64{mu}, Diag: [][]float64{{0.7, 1.1, 0.3}}},
		"full":      {Weights: []float64{1}, Means: [][]float64{mu}, Covs: [][][]float64{cov}},
	}
	x := []float64{0.1, 0.2, 0.3, -2, 1, 5, 10, -7, 0}
	for name, spec := range specs {
		g, err := NewGMM(spec)
		require.NoError(t, err)
		for nname, noise := range testNoises {
			a, s, _ := noise.ScaleVar(noise.Level)
			c := mat.NewSymDense(3, nil)
			for i := 0; i < 3; i++ {
				for j := i; j < 3; j++ {
					var v float64
					switch name {
					case "isotropic":
						if i == j {
							v = 0.7
						}
					case "diagonal":
						if i == j {
							v = spec.Diag[0][i]
						}
					default:
						v = cov[i][j]
					}
					v *= a * a
					if i == j {
						v += s
					}
					c.SetSym(i, j, v)
				}
			}
			m := []float64{a * mu[0], a * mu[1], a * mu[2]}
			got := evalGMM(t, g, x, noise)
			for r := 0; r < 3; r++ {
				xr := x[3*r : 3*r+3]
				lp, sol := gaussianLogPdf(xr, m, c)
				assert.InDelta(t, lp, got.logp[r], 1e-12*(1+math.Abs(lp)), "%s %s log p row %d", name, nname, r)
				for j := 0; j < 3; j++ {
					assert.InDelta(t, -sol[j], got.score[3*r+j], 1e-11*(1+math.Abs(sol[j])), "%s %s score", name, nname)
					den := (xr[j] - s*sol[j]) / a
					assert.InDelta(t, den, got.den[3*r+j], 1e-11*(1+math.Abs(den)), "%s %s denoiser", name, nname)
				}
				assert.Equal(t, 1.0, got.resp[r])
			}
		}
	}
}

// The score is the gradient of log p: central differences with step 1e-5 (truncation error
// O(h²)·|∂³ log p| ≈ 1e-10, rounding ≈ 1e-16/h ≈ 1e-11).
func TestGMMScoreIsGradientOfLogP(t *testing.T) {
	x := []float64{0.3, 0.7, -0.4, 2.5, -1, 1.5, -1.2, 3, 0.9}
	const h = 1e-5
	for name, g := range testMixtures(t) {
		for nname, noise := range testNoises {
			base := evalGMM(t, g, x, noise)
			for r := 0; r < 3; r++ {
				for j := 0; j < 3; j++ {
					xp := append([]float64(nil), x...)
					xm := append([]float64(nil), x...)
					xp[3*r+j] += h
					xm[3*r+j] -= h
					fd := (evalGMM(t, g, xp, noise).logp[r] - evalGMM(t, g, xm, noise).logp[r]) / (2 * h)
					assert.InDelta(t, fd, base.score[3*r+j], 1e-7*(1+math.Abs(fd)), "%s %s row %d coord %d", name, nname, r, j)
				}
				sum := 0.0
				for c := 0; c < g.K(); c++ {
					sum += base.resp[r*g.K()+c]
				}
				assert.InDelta(t, 1, sum, 1e-12, "responsibilities sum to 1")
			}
		}
	}
}

// σ → ∞: the denoiser tends to the prior mean Σ w_k μ_k (error O(‖Σ‖ |x − m| / σ²)).
// Components much narrower than σ → 0: the denoiser tends to the nearest component's mean.
func TestGMMDenoiserLimits(t *testing.T) {
	g := testMixtures(t)["isotropic"]
	wmean := []float64{(2*3 + 3*-2) / 6.0, (2*-1 + 3*4) / 6.0, (2*2 + 3*1) / 6.0}
	got := evalGMM(t, g, []float64{5, -3, 2}, AtSigma(1e5))
	for j := range wmean {
		assert.InDelta(t, wmean[j], got.den[j], 1e-6, "σ → ∞")
	}
	narrow, err := NewGMM(GMMSpec{Weights: []float64{1, 1, 1}, Means: [][]float64{{0, 0}, {3, 1}, {-2, 4}},
		Vars: []float64{1e-14, 1e-14, 1e-14}}) // D − μ = v/(v+σ²)·(x − μ) ≈ 1e-8
	require.NoError(t, err)
	got = evalGMM(t, narrow, []float64{2.6, 0.7, -1.5, 3.2}, AtSigma(1e-3))
	assert.InDeltaSlice(t, []float64{3, 1, -2, 4}, got.den, 1e-6, "σ → 0: nearest mean")
}

// Translating the mixture by c and x by a·c leaves log p and the score unchanged and moves the
// denoiser by c.
func TestGMMTranslationEquivariance(t *testing.T) {
	c := []float64{10, -20, 5}
	x := []float64{0.3, 0.7, -0.4, 2.5, -1, 1.5}
	for name, g := range testMixtures(t) {
		p := g.Params()
		means := make([][]float64, p.K)
		for k := range means {
			means[k] = make([]float64, 3)
			for j := range means[k] {
				means[k][j] = p.Means[3*k+j] + c[j]
			}
		}
		spec := GMMSpec{Weights: expAll(p.LogWeights), Means: means}
		switch p.Kind {
		case Isotropic:
			spec.Vars = p.Lambda
		case Diagonal:
			spec.Diag = reshape(p.Lambda, 3)
		case Full:
			spec.Covs = fullCovs(p)
		}
		shifted, err := NewGMM(spec)
		require.NoError(t, err)
		for nname, noise := range testNoises {
			a, _, _ := noise.ScaleVar(noise.Level)
			xs := append([]float64(nil), x...)
			for i := range xs {
				xs[i] += a * c[i%3]
			}
			r0, r1 := evalGMM(t, g, x, noise), evalGMM(t, shifted, xs, noise)
			assert.InDeltaSlice(t, r0.logp, r1.logp, 1e-9, "%s %s log p", name, nname)
			assert.InDeltaSlice(t, r0.score, r1.score, 1e-9, "%s %s score", name, nname)
			for i := range r0.den {
				assert.InDelta(t, r0.den[i]+c[i%3], r1.den[i], 1e-8, "%s %s denoiser", name, nname)
			}
		}
	}
}

func expAll(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Exp(v)
	}
	return out
}

func reshape(x []float64, d int) [][]float64 {
	var out [][]float64
	for i := 0; i < len(x); i += d {
		out = append(out, x[i:i+d])
	}
	return out
}

func fullCovs(p GMMParams) [][][]float64 {
	d := p.D
	covs := make([][][]float64, p.K)
	for k := range covs {
		covs[k] = make([][]float64, d)
		for i := 0; i < d; i++ {
			covs[k][i] = make([]float64, d)
			for j := 0; j < d; j++ {
				for l := 0; l < d; l++ {
					covs[k][i][j] += p.U[k*d*d+i*d+l] * p.Lambda[k*d+l] * p.U[k*d*d+j*d+l]
				}
			}
		}
		for i := 0; i < d; i++ { // symmetrise rounding
			for j := 0; j < i; j++ {
				covs[k][i][j] = covs[k][j][i]
			}
		}
	}
	return covs
}

// Far from every mode, at a tiny noise level, the naive e^{r} underflows to 0/0; the online
// log-sum-exp stays finite and matches the dominant component's Gaussian.
func TestGMMFarAwayIsFinite(t *testing.T) {
	g, err := NewGMM(GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0, 0}, {1, 1}}, Vars: []float64{1e-4, 1e-4}})
	require.NoError(t, err)
	x := []float64{1e4, 1e4}
	got := evalGMM(t, g, x, AtSigma(1e-3))
	c := 1e-4 + 1e-6
	for j := 0; j < 2; j++ {
		want := -(x[j] - 1) / c
		assert.InDelta(t, want, got.score[j], 1e-9*math.Abs(want))
		assert.False(t, math.IsNaN(got.den[j]) || math.IsInf(got.den[j], 0))
	}
	q := 2 * (1e4 - 1) * (1e4 - 1) / c
	want := math.Log(0.5) - 0.5*(2*math.Log(2*math.Pi*c)+q)
	assert.InDelta(t, want, got.logp[0], 1e-12*math.Abs(want))
	assert.InDelta(t, 1, got.resp[1], 1e-12)
}

// A NaN coordinate or an invalid per-row level poisons only its own row; per-row levels equal
// separate evaluations at those levels (bit for bit in the reference, which evaluates both the
// same way).
func TestGMMRowIsolationAndPerRowLevels(t *testing.T) {
	g := testMixtures(t)["full"]
	x := []float64{0.3, 0.7, -0.4, math.NaN(), -1, 1.5, -1.2, 3, 0.9, 1, 1, 1}
	levels := []float64{0.5, 0.9, 2.0, -1}
	lt, _ := tensor.FromF64(levels, 4)
	for _, kind := range []NoiseKind{VE, VP} {
		got := evalGMMOn(t, Reference(), g, x, Noise{Kind: kind, Levels: lt})
		for r, l := range levels {
			rowNaN := r == 1 || r == 3
			for j := 0; j < 3; j++ {
				assert.Equal(t, rowNaN, math.IsNaN(got.score[3*r+j]), "%v row %d", kind, r)
			}
			assert.Equal(t, rowNaN, math.IsNaN(got.logp[r]))
			if rowNaN {
				continue
			}
			alone := evalGMMOn(t, Reference(), g, x[3*r:3*r+3], Noise{Kind: kind, Level: l})
			assert.Equal(t, alone.score, got.score[3*r:3*r+3])
			assert.Equal(t, alone.logp[0], got.logp[r])
		}
	}
}

// The float32 path computes in float64 and rounds once: within float32 rounding of the f64 result.
func TestGMMFloat32MatchesFloat64(t *testing.T) {
	g := testMixtures(t)["diagonal"]
	x64 := []float64{0.3, 0.7, -0.4, 2.5, -1, 1.5}
	want := evalGMM(t, g, x64, AtSigma(0.4))
	x32 := make([]float32, len(x64))
	for i, v := range x64 {
		x32[i] = float32(v)
	}
	xt, _ := tensor.FromF32(x32, 2, 3)
	sc, _ := tensor.New(nil, tensor.F32, 2, 3)
	require.NoError(t, CPU().GMMScore(ScoreOutputs{Score: sc}, xt, g, AtSigma(0.4)))
	got, _ := sc.Float64s()
	for i := range got {
		assert.InDelta(t, want.score[i], got[i], 1e-6*(1+math.Abs(want.score[i])))
	}
}

func TestGMMRejectsBadInput(t *testing.T) {
	good := GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0, 0}, {1, 1}}, Vars: []float64{1, 1}}
	bad := map[string]struct {
		mod  func(s *GMMSpec)
		want string
	}{
		"no components":  {func(s *GMMSpec) { s.Weights, s.Means, s.Vars = nil, nil, nil }, "K = 0"},
		"zero weight":    {func(s *GMMSpec) { s.Weights = []float64{1, 0} }, "weights[1]"},
		"NaN weight":     {func(s *GMMSpec) { s.Weights = []float64{math.NaN(), 1} }, "weights[0]"},
		"ragged means":   {func(s *GMMSpec) { s.Means = [][]float64{{0, 0}, {1}} }, "means[1]"},
		"negative var":   {func(s *GMMSpec) { s.Vars = []float64{1, -2} }, "vars[1]"},
		"two cov kinds":  {func(s *GMMSpec) { s.Diag = [][]float64{{1, 1}, {1, 1}} }, "exactly one"},
		"no cov":         {func(s *GMMSpec) { s.Vars = nil }, "exactly one"},
		"wrong var len":  {func(s *GMMSpec) { s.Vars = []float64{1} }, "vars"},
		"not symmetric":  {func(s *GMMSpec) { s.Vars, s.Covs = nil, [][][]float64{{{1, 0.5}, {0.2, 1}}, {{1, 0}, {0, 1}}} }, "not symmetric"},
		"not SPD":        {func(s *GMMSpec) { s.Vars, s.Covs = nil, [][][]float64{{{1, 2}, {2, 1}}, {{1, 0}, {0, 1}}} }, "covs[0]: not positive definite"},
		"bad diag shape": {func(s *GMMSpec) { s.Vars, s.Diag = nil, [][]float64{{1, 1}, {1}} }, "diag[1]"},
	}
	for name, c := range bad {
		spec := good
		c.mod(&spec)
		_, err := NewGMM(spec)
		assert.ErrorContains(t, err, c.want, name)
	}
	g, err := NewGMM(good)
	require.NoError(t, err)
	x, _ := tensor.New(nil, tensor.F64, 4, 2)
	x3, _ := tensor.New(nil, tensor.F64, 4, 3)
	sc, _ := tensor.New(nil, tensor.F64, 4, 2)
	sc32, _ := tensor.New(nil, tensor.F32, 4, 2)
	wrong, _ := tensor.New(nil, tensor.F64, 3, 2)
	lv, _ := tensor.New(nil, tensor.F64, 3)
	cases := map[string]struct {
		out   ScoreOutputs
		x     *tensor.Tensor
		noise Noise
		want  string
	}{
		"dim mismatch":   {ScoreOutputs{Score: sc}, x3, AtSigma(1), "x has dimension 3, the target has 2"},
		"no outputs":     {ScoreOutputs{}, x, AtSigma(1), "no output"},
		"σ = 0":          {ScoreOutputs{Score: sc}, x, AtSigma(0), "σ = 0"},
		"σ NaN":          {ScoreOutputs{Score: sc}, x, AtSigma(math.NaN()), "σ = NaN"},
		"t < 0":          {ScoreOutputs{Score: sc}, x, AtTime(-1), "t = -1"},
		"output shape":   {ScoreOutputs{Score: wrong}, x, AtSigma(1), "shape [3 2], want [4 2]"},
		"output dtype":   {ScoreOutputs{Score: sc32}, x, AtSigma(1), "f32"},
		"levels shape":   {ScoreOutputs{Score: sc}, x, Noise{Kind: VE, Levels: lv}, "per-row levels"},
		"unknown kind":   {ScoreOutputs{Score: sc}, x, Noise{Level: 1}, "unknown noise kind"},
		"affine bad":     {ScoreOutputs{Score: sc}, x, Noise{Kind: Affine, Scale: 1}, "affine"},
		"nil x":          {ScoreOutputs{Score: sc}, nil, AtSigma(1), "nil"},
		"resp shape (K)": {ScoreOutputs{Resp: sc32}, x, AtSigma(1), "responsibilities"},
	}
	for name, c := range cases {
		assert.ErrorContains(t, CPU().GMMScore(c.out, c.x, g, c.noise), c.want, name)
	}
	assert.ErrorContains(t, CPU().GMMScore(ScoreOutputs{Score: sc}, x, nil, AtSigma(1)), "nil mixture")
}

func empiricalFrom(t *testing.T, pts [][]float64) *Empirical {
	t.Helper()
	var flat []float64
	for _, p := range pts {
		flat = append(flat, p...)
	}
	data, _ := tensor.FromF64(flat, len(pts), len(pts[0]))
	e, err := NewEmpirical(data)
	require.NoError(t, err)
	return e
}

var testPoints = [][]float64{{0, 0, 1}, {2, -1, 0.5}, {-1, 3, 2}, {0.5, 0.5, -2}, {4, 1, 1}}

// The empirical target is the Gaussian mixture with equal weights, means at the data and zero
// variance: compare with a GMM of variance 1e-13 (relative effect ≈ 1e-13 / s).
func TestEmpiricalEqualsZeroVarianceGMM(t *testing.T) {
	e := empiricalFrom(t, testPoints)
	g, err := NewGMM(GMMSpec{Weights: []float64{1, 1, 1, 1, 1}, Means: testPoints, Vars: []float64{1e-13, 1e-13, 1e-13, 1e-13, 1e-13}})
	require.NoError(t, err)
	x := []float64{0.3, 0.7, -0.4, 2.5, -1, 1.5, -1.2, 3, 0.9}
	for nname, noise := range testNoises {
		ge, gg := evalEmpirical(t, e, x, noise), evalGMM(t, g, x, noise)
		assert.InDeltaSlice(t, gg.logp, ge.logp, 1e-9, nname)
		assert.InDeltaSlice(t, gg.score, ge.score, 1e-9, nname)
		assert.InDeltaSlice(t, gg.den, ge.den, 1e-9, nname)
	}
}

// A scale mixture Σ_q π_q N(x; y, s m_q I) under affine noise with a = 1 is the GMM with
// components (y_i, variance s (m_q − 1)) and weights π_q / M.
func TestEmpiricalScaleMixtureEqualsGMM(t *testing.T) {
	e, err := empiricalFrom(t, testPoints).WithMixture([]float64{1, 3}, []float64{1.5, 3})
	require.NoError(t, err)
	const s = 0.6
	var spec GMMSpec
	for _, q := range []struct{ w, m float64 }{{0.25, 1.5}, {0.75, 3}} {
		for _, p := range testPoints {
			spec.Weights = append(spec.Weights, q.w)
			spec.Means = append(spec.Means, p)
			spec.Vars = append(spec.Vars, s*(q.m-1))
		}
	}
	g, err := NewGMM(spec)
	require.NoError(t, err)
	x := []float64{0.3, 0.7, -0.4, 2.5, -1, 1.5}
	noise := Noise{Kind: Affine, Scale: 1, Var: s}
	ge, gg := evalEmpirical(t, e, x, noise), evalGMM(t, g, x, noise)
	assert.InDeltaSlice(t, gg.logp, ge.logp, 1e-12)
	assert.InDeltaSlice(t, gg.score, ge.score, 1e-12)
	// The denoiser is the posterior mean of the data point: the GMM's (x + s·score) form does not
	// apply to a scale mixture, so check it against the responsibilities instead.
	for r := 0; r < 2; r++ {
		for j := 0; j < 3; j++ {
			want := 0.0
			for c := 0; c < g.K(); c++ {
				want += gg.resp[r*g.K()+c] * spec.Means[c][j]
			}
			assert.InDelta(t, want, ge.den[3*r+j], 1e-12)
		}
	}
}

func TestEmpiricalLimitsAndGradient(t *testing.T) {
	e := empiricalFrom(t, testPoints)
	single := empiricalFrom(t, [][]float64{{1, 2, 3}})
	got := evalEmpirical(t, single, []float64{9, -9, 0, 0.1, 0.2, 0.3}, AtSigma(0.5))
	assert.Equal(t, []float64{1, 2, 3, 1, 2, 3}, got.den, "M = 1: D ≡ y_1")

	mean := []float64{5.5 / 5, 3.5 / 5, 2.5 / 5}
	got = evalEmpirical(t, e, []float64{3, 3, 3}, AtSigma(1e5))
	assert.InDeltaSlice(t, mean, got.den, 1e-8, "σ → ∞: data mean")
	got = evalEmpirical(t, e, []float64{1.8, -0.7, 0.6, 0.4, 0.6, -1.7}, AtSigma(1e-2))
	assert.InDeltaSlice(t, []float64{2, -1, 0.5, 0.5, 0.5, -2}, got.den, 1e-12, "σ → 0: nearest point")

	x := []float64{0.3, 0.7, -0.4}
	const h = 1e-5
	base := evalEmpirical(t, e, x, AtSigma(1.3))
	for j := 0; j < 3; j++ {
		xp := append([]float64(nil), x...)
		xm := append([]float64(nil), x...)
		xp[j] += h
		xm[j] -= h
		fd := (evalEmpirical(t, e, xp, AtSigma(1.3)).logp[0] - evalEmpirical(t, e, xm, AtSigma(1.3)).logp[0]) / (2 * h)
		assert.InDelta(t, fd, base.score[j], 1e-7*(1+math.Abs(fd)))
		assert.InDelta(t, x[j]+1.3*1.3*base.score[j], base.den[j], 1e-12, "Tweedie")
	}
	far := evalEmpirical(t, e, []float64{1e4, 1e4, 1e4}, AtSigma(1e-3))
	for j := 0; j < 3; j++ {
		assert.Equal(t, testPoints[4][j], far.den[j], "far away: the nearest point")
		assert.False(t, math.IsNaN(far.score[j]) || math.IsInf(far.score[j], 0))
	}
}

func TestEmpiricalRejectsBadInput(t *testing.T) {
	empty, _ := tensor.New(nil, tensor.F64, 0, 3)
	_, err := NewEmpirical(empty)
	assert.ErrorContains(t, err, "at least one point")
	nan, _ := tensor.FromF64([]float64{1, math.NaN()}, 1, 2)
	_, err = NewEmpirical(nan)
	assert.ErrorContains(t, err, "data[0][1]")
	_, err = NewEmpirical(nil)
	assert.Error(t, err)
	e := empiricalFrom(t, testPoints)
	_, err = e.WithMixture([]float64{1}, []float64{1, 2})
	assert.ErrorContains(t, err, "mixture")
	_, err = e.WithMixture([]float64{1, 1}, []float64{1, 0})
	assert.ErrorContains(t, err, "scales[1]")
	x, _ := tensor.New(nil, tensor.F64, 2, 3)
	r, _ := tensor.New(nil, tensor.F64, 2, 5)
	assert.ErrorContains(t, CPU().EmpiricalScore(ScoreOutputs{Resp: r}, x, e, AtSigma(1)), "not available for empirical")
	x2, _ := tensor.New(nil, tensor.F64, 2, 2)
	sc, _ := tensor.New(nil, tensor.F64, 2, 2)
	assert.ErrorContains(t, CPU().EmpiricalScore(ScoreOutputs{Score: sc}, x2, e, AtSigma(1)), "dimension 2, the target has 3")
}

// The fast data-set score reads float32 data in place: against the reference on the same data, for
// every noise kind and a scale mixture, at the score tolerance of the conformance suite (1e-10 of
// the row's largest value).
func TestFastEmpiricalFloat32Data(t *testing.T) {
	const m, d, n = 300, 7, 41
	vals := make([]float32, m*d)
	for i := range vals {
		vals[i] = float32(2 * math.Sin(float64(i)*1.3+0.2))
	}
	data, err := tensor.FromF32(vals, m, d)
	require.NoError(t, err)
	e, err := NewEmpirical(data)
	require.NoError(t, err)
	mix, err := e.WithMixture([]float64{1, 2}, []float64{0.5, 2})
	require.NoError(t, err)
	x := make([]float64, n*d)
	for i := range x {
		x[i] = 2.5 * math.Cos(float64(i)*0.7)
	}
	xt, err := tensor.FromF64(x, n, d)
	require.NoError(t, err)
	for _, set := range []*Empirical{e, mix} {
		for _, nz := range []Noise{AtSigma(0.4), AtTime(0.3), {Kind: Affine, Scale: 0.8, Var: 0.2}} {
			var got, want [3][]float64
			for i, b := range []Backend{CPU(), Reference()} {
				lp, _ := tensor.New(nil, tensor.F64, n)
				sc, _ := tensor.New(nil, tensor.F64, n, d)
				de, _ := tensor.New(nil, tensor.F64, n, d)
				require.NoError(t, b.EmpiricalScore(ScoreOutputs{LogP: lp, Score: sc, Denoiser: de}, xt, set, nz))
				out := [3][]float64{}
				for k, tt := range []*tensor.Tensor{lp, sc, de} {
					out[k], _ = tt.F64()
				}
				if i == 0 {
					got = out
				} else {
					want = out
				}
			}
			for k, w := range []int{1, d, d} {
				for r := 0; r < n; r++ {
					scale := 0.0
					for _, v := range want[k][r*w : (r+1)*w] {
						scale = math.Max(scale, math.Abs(v))
					}
					for j := r * w; j < (r+1)*w; j++ {
						require.InDelta(t, want[k][j], got[k][j], 1e-10*(scale+math.Abs(want[k][j])), "Q=%d %v output %d row %d", set.MixtureSize(), nz.Kind, k, r)
					}
				}
			}
		}
	}
}
