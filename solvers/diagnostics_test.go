package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
)

// Tolerances below are ≥ 4 Monte-Carlo standard errors (false-failure rate < 10⁻⁴ per assertion;
// the seeds are fixed, so the tests are deterministic).

func TestSampleGMMMoments(t *testing.T) {
	const n = 40000
	for _, c := range []struct {
		name string
		spec ops.GMMSpec
	}{
		{"isotropic", ops.GMMSpec{Weights: []float64{1, 3}, Means: [][]float64{{-4, 0}, {4, 2}}, Vars: []float64{0.5, 2}}},
		{"diagonal", ops.GMMSpec{Weights: []float64{1, 3}, Means: [][]float64{{-4, 0}, {4, 2}}, Diag: [][]float64{{0.5, 1}, {2, 0.25}}}},
		{"full", ops.GMMSpec{Weights: []float64{1, 3}, Means: [][]float64{{-4, 0}, {4, 2}},
			Covs: [][][]float64{{{1, 0.6}, {0.6, 1}}, {{2, -0.5}, {-0.5, 0.5}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := gmmTarget(t, c.spec).Mixture
			x, err := SampleGMM(g, n, 7)
			require.NoError(t, err)
			require.Len(t, x, n*2)
			// Component 1 (weight 3/4): split by nearest mean, check its mean and covariance.
			rows := make([][]float64, n)
			for i := range rows {
				rows[i] = x[2*i : 2*i+2]
			}
			parts := byNearestMean(rows, c.spec.Means)
			frac := float64(len(parts[1])) / n
			assert.InDelta(t, 0.75, frac, 4*math.Sqrt(0.75*0.25/n))
			m, cov := meanCov(parts[1])
			var want [][]float64
			switch {
			case c.spec.Vars != nil:
				want = [][]float64{{2, 0}, {0, 2}}
			case c.spec.Diag != nil:
				want = [][]float64{{2, 0}, {0, 0.25}}
			default:
				want = c.spec.Covs[1]
			}
			n1 := float64(len(parts[1]))
			for i := 0; i < 2; i++ {
				assert.InDelta(t, c.spec.Means[1][i], m[i], 4*math.Sqrt(want[i][i]/n1), "mean %d", i)
				for j := 0; j < 2; j++ {
					se := math.Sqrt((want[i][i]*want[j][j] + want[i][j]*want[i][j]) / n1)
					assert.InDelta(t, want[i][j], cov[i][j], 4*se, "cov %d %d", i, j)
				}
			}
		})
	}
	// Sample i is a function of (seed, i) only.
	g := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0}, {5}}, Vars: []float64{1, 1}}).Mixture
	a, err := SampleGMM(g, 10, 3)
	require.NoError(t, err)
	b, err := SampleGMM(g, 100, 3)
	require.NoError(t, err)
	assert.Equal(t, a, b[:10])
	c, err := SampleGMM(g, 10, 4)
	require.NoError(t, err)
	assert.NotEqual(t, a, c)
	_, err = SampleGMM(g, 0, 3)
	assert.Error(t, err)
	_, err = SampleGMM(nil, 3, 3)
	assert.Error(t, err)
}

func TestSlicedWasserstein(t *testing.T) {
	std := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0}}, Vars: []float64{1}}).Mixture
	shifted := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{3}}, Vars: []float64{1}}).Mixture
	const n = 20000
	a, err := SampleGMM(std, n, 1)
	require.NoError(t, err)
	b, err := SampleGMM(shifted, n, 2)
	require.NoError(t, err)
	// 1-D: W2(N(0,1), N(3,1)) = |shift| = 3; sampling error of the empirical W2 ≈ 0.02 at n = 2·10⁴.
	assert.InDelta(t, 3, SlicedWasserstein(a, b, 1, 8, 0), 0.05)
	// Unequal sizes go through quantile interpolation: still ≈ 3.
	assert.InDelta(t, 3, SlicedWasserstein(a[:n/3], b, 1, 8, 0), 0.08)
	// Same law (independent seeds): ≈ 0 within the Monte-Carlo floor, and far below the shift.
	c, err := SampleGMM(std, n, 9)
	require.NoError(t, err)
	same := SlicedWasserstein(a, c, 1, 8, 0)
	assert.Less(t, same, 0.05)
	assert.Equal(t, 0.0, SlicedWasserstein(a, a, 1, 4, 0))

	// 2-D mixture: two independent exact samples are close; a sample with the weights swapped is
	// far (the weight of 1/4 of the mass moves by ≈ 8).
	spec := ops.GMMSpec{Weights: []float64{1, 3}, Means: [][]float64{{-4, 0}, {4, 0}}, Vars: []float64{0.5, 0.5}}
	swapped := spec
	swapped.Weights = []float64{3, 1}
	g := gmmTarget(t, spec).Mixture
	x1, err := SampleGMM(g, 5000, 11)
	require.NoError(t, err)
	x2, err := SampleGMM(g, 5000, 12)
	require.NoError(t, err)
	x3, err := SampleGMM(gmmTarget(t, swapped).Mixture, 5000, 13)
	require.NoError(t, err)
	near := SlicedWasserstein(x1, x2, 2, 64, 5)
	far := SlicedWasserstein(x1, x3, 2, 64, 5)
	assert.Less(t, near, 0.25) // dominated by the binomial fluctuation of the weights (± 0.006, moved by 8)
	assert.Greater(t, far, 1.5)

	// NaN rows are dropped, not averaged in.
	withNaN := append([]float64{math.NaN(), 0}, x2...)
	assert.InDelta(t, near, SlicedWasserstein(x1, withNaN, 2, 64, 5), 0.02)
	assert.True(t, math.IsNaN(SlicedWasserstein([]float64{math.NaN(), 1}, x1, 2, 4, 0)))
	assert.True(t, math.IsNaN(SlicedWasserstein(x1, x2, 2, 0, 0)))
}

func TestModeWeights(t *testing.T) {
	spec := ops.GMMSpec{Weights: []float64{0.5, 0.3, 0.2}, Means: [][]float64{{-6, 0}, {6, 0}, {0, 8}},
		Vars: []float64{0.5, 1, 0.25}}
	g := gmmTarget(t, spec).Mixture
	const n = 20000
	x, err := SampleGMM(g, n, 21)
	require.NoError(t, err)
	w := ModeWeights(x, 2, g)
	for k, want := range spec.Weights {
		assert.InDelta(t, want, w[k], 4*math.Sqrt(want*(1-want)/n), "mode %d", k)
	}
	assert.InDelta(t, 1, w[0]+w[1]+w[2], 1e-12)
	tv := ModeWeightError(x, 2, g)
	assert.Less(t, tv, 0.02) // MC size ≈ 0.005 at n = 2·10⁴

	// Every chain in mode 0: ŵ = (1, 0, 0), TV = ½(0.5 + 0.3 + 0.2) = 0.5.
	all0 := make([]float64, 2*100)
	for i := 0; i < 100; i++ {
		all0[2*i] = -6
	}
	assert.InDelta(t, 0.5, ModeWeightError(all0, 2, g), 1e-12)
	// NaN rows are excluded from numerator and denominator.
	all0 = append(all0, math.NaN(), math.Inf(1))
	assert.Equal(t, []float64{1, 0, 0}, ModeWeights(all0, 2, g))
	assert.True(t, math.IsNaN(ModeWeightError([]float64{math.NaN(), 0}, 2, g)))
}

// modeStatsSpecs are mixtures on which MixtureModeStats is checked: isotropic with overlapping
// components (the expectations are exact whatever the overlap) and diagonal.
func modeStatsSpecs() map[string]ops.GMMSpec {
	return map[string]ops.GMMSpec{
		"isotropic-overlapping": {Weights: []float64{0.4, 0.3, 0.2, 0.1},
			Means: [][]float64{{0, 0, 0}, {2, 0, 0}, {0, 2, 1}, {-1, -1, 3}}, Vars: []float64{1, 0.5, 0.7, 0.3}},
		"diagonal": {Weights: []float64{0.6, 0.4}, Means: [][]float64{{-2, 0, 1}, {2, 1, 0}},
			Diag: [][]float64{{0.5, 1, 2}, {2, 0.25, 1}}},
	}
}

// On exact samples every mean responsibility is within 4.5 standard errors of w_k and every
// responsibility-weighted radius within 4.5 standard errors of tr Σ_k, over five seeds (80
// assertions at ≈ 7·10⁻⁶ each: false-failure rate ≈ 5·10⁻⁴).
func TestMixtureModeStatsExactExpectations(t *testing.T) {
	const n = 20000
	for name, spec := range modeStatsSpecs() {
		g := gmmTarget(t, spec).Mixture
		for seed := uint64(1); seed <= 5; seed++ {
			x, err := SampleGMM(g, n, seed)
			require.NoError(t, err)
			s, err := MixtureModeStats(nil, x, 3, g)
			require.NoError(t, err)
			require.Equal(t, n, s.N)
			for k, w := range s.TrueWeights {
				assert.InDelta(t, w, s.Weights[k], 4.5*s.WeightSE[k], "%s seed %d: weight %d", name, seed, k)
				assert.InDelta(t, s.ExpectedRadius[k], s.Radius[k], 4.5*s.RadiusSE[k], "%s seed %d: radius %d", name, seed, k)
			}
		}
	}
	// The exact radius of an isotropic component is d σ_k², of a diagonal one Σ_j σ_kj².
	s, err := MixtureModeStats(nil, []float64{0, 0, 0}, 3, gmmTarget(t, modeStatsSpecs()["isotropic-overlapping"]).Mixture)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{3, 1.5, 2.1, 0.9}, s.ExpectedRadius, 1e-12)
	s, err = MixtureModeStats(nil, []float64{0, 0, 0}, 3, gmmTarget(t, modeStatsSpecs()["diagonal"]).Mixture)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{3.5, 3.25}, s.ExpectedRadius, 1e-12)
}

// The floors stated in RadiusError's and WeightError's docs hold for exact samples of separated
// isotropic components, and both errors see a deliberately biased sample set: deviations from
// the component means scaled by 1.1 (radius ×1.21) or weights moved by 0.1 in total variation.
func TestMixtureModeStatsDetectsBias(t *testing.T) {
	const n, d = 20000, 10
	w := []float64{0.4, 0.3, 0.2, 0.1}
	means := make([][]float64, 4)
	for k := range means {
		means[k] = make([]float64, d)
		means[k][k] = 8 // pairwise 11.3 apart
	}
	vars := []float64{1, 0.5, 0.7, 0.3}
	exactG := gmmTarget(t, ops.GMMSpec{Weights: w, Means: means, Vars: vars}).Mixture
	scaled := make([]float64, 4)
	for k, v := range vars {
		scaled[k] = 1.21 * v
	}
	scaledG := gmmTarget(t, ops.GMMSpec{Weights: w, Means: means, Vars: scaled}).Mixture
	wrongG := gmmTarget(t, ops.GMMSpec{Weights: []float64{0.3, 0.3, 0.3, 0.1}, Means: means, Vars: vars}).Mixture
	radiusFloor := 2 / math.Sqrt(math.Pi) * (math.Sqrt(0.4) + math.Sqrt(0.3) + math.Sqrt(0.2) + math.Sqrt(0.1)) / math.Sqrt(n*d)
	weightFloor := 0.0
	for _, wk := range w {
		weightFloor += 0.5 * math.Sqrt(2*wk*(1-wk)/(math.Pi*n))
	}
	for seed := uint64(1); seed <= 3; seed++ {
		x, err := SampleGMM(exactG, n, seed)
		require.NoError(t, err)
		s, err := MixtureModeStats(nil, x, d, exactG)
		require.NoError(t, err)
		// A weighted sum of |N(0, σ_k²)| terms is above 4× its expectation (the floor) with
		// probability < 2·10⁻³ (one term: P(|Z| > 3.2) = 1.4·10⁻³; a sum concentrates more).
		assert.Less(t, s.RadiusError(), 4*radiusFloor, "seed %d: exact radius error", seed)
		assert.Less(t, s.WeightError(), 4*weightFloor, "seed %d: exact weight error", seed)

		x, err = SampleGMM(scaledG, n, seed)
		require.NoError(t, err)
		s, err = MixtureModeStats(nil, x, d, exactG)
		require.NoError(t, err)
		assert.InDelta(t, 0.21, s.RadiusError(), 0.02, "seed %d: radius error of ×1.1 samples", seed)
		for k := range w {
			assert.Greater(t, math.Abs(s.Radius[k]-s.ExpectedRadius[k]), 4.5*s.RadiusSE[k], "seed %d: ×1.1 radius %d", seed, k)
		}
		assert.Less(t, s.WeightError(), 4*weightFloor, "seed %d: ×1.1 samples keep the weights", seed)

		x, err = SampleGMM(wrongG, n, seed)
		require.NoError(t, err)
		s, err = MixtureModeStats(nil, x, d, exactG)
		require.NoError(t, err)
		assert.InDelta(t, 0.1, s.WeightError(), 4*weightFloor, "seed %d: weight error of moved weights", seed)
		for _, k := range []int{0, 2} {
			assert.Greater(t, math.Abs(s.Weights[k]-w[k]), 4.5*s.WeightSE[k], "seed %d: moved weight %d", seed, k)
		}
		assert.Less(t, s.RadiusError(), 4*radiusFloor, "seed %d: moved weights keep the radii", seed)
	}
}

func TestMixtureModeStatsRowsAndErrors(t *testing.T) {
	g := gmmTarget(t, modeStatsSpecs()["diagonal"]).Mixture
	x, err := SampleGMM(g, 100, 3)
	require.NoError(t, err)
	want, err := MixtureModeStats(nil, x, 3, g)
	require.NoError(t, err)
	// A NaN row and an Inf row are dropped, not averaged in.
	withBad := append(append(append([]float64(nil), x...), math.NaN(), 0, 0), 0, math.Inf(1), 0)
	got, err := MixtureModeStats(ops.CPU(), withBad, 3, g)
	require.NoError(t, err)
	assert.Equal(t, 100, got.N)
	assert.InDeltaSlice(t, want.Radius, got.Radius, 1e-12)
	assert.InDeltaSlice(t, want.Weights, got.Weights, 1e-12)
	_, err = MixtureModeStats(nil, x, 2, g)
	assert.ErrorContains(t, err, "dimension 2")
	_, err = MixtureModeStats(nil, []float64{math.NaN(), 0, 0}, 3, g)
	assert.ErrorContains(t, err, "no finite row")
	_, err = MixtureModeStats(nil, x, 3, nil)
	assert.ErrorContains(t, err, "nil mixture")
}

// VarianceRatio is 1 on exact samples within 4 of its standard errors sqrt(2/(m(n − 1))), and a
// spread 5% too wide (variance ×1.1025) is ≥ 8 standard errors away; bad arguments give NaN.
func TestVarianceRatio(t *testing.T) {
	const n, d, k, eps = 4000, 12, 2, 1e-4
	diag := make([]float64, d)
	for j := range diag {
		diag[j] = eps * eps
		if j < k {
			diag[j] = 1
		}
	}
	g := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{make([]float64, d)}, Diag: [][]float64{diag}}).Mixture
	x, err := SampleGMM(g, n, 11)
	require.NoError(t, err)
	off := []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	se := math.Sqrt(2 / float64(len(off)*(n-1)))
	r := VarianceRatio(x, d, off, eps*eps)
	assert.InDelta(t, 1, r, 4*se)
	wide := append([]float64(nil), x...)
	for i := range wide {
		wide[i] *= 1.05
	}
	rw := VarianceRatio(wide, d, off, eps*eps)
	assert.InDelta(t, 1.1025, rw, 4*se*1.1025)
	assert.Greater(t, math.Abs(rw-1), 8*se)
	assert.True(t, math.IsNaN(VarianceRatio(x, d, off, 0)))
	assert.True(t, math.IsNaN(VarianceRatio(x, d, []int{12}, 1)))
	assert.True(t, math.IsNaN(VarianceRatio(x[:d], d, off, 1)))
}

// GaussianKL: the 1-D closed form, 0 between equal laws, additivity over independent blocks,
// invariance under a common rotation; fitted to n exact samples it stays below 4 times its
// expected floor (m + m(m+1)/2)/(2n) (≈ 6 standard deviations above it), and a 10% wider spread
// gives ½ m (r − 1 − log r), r = 1.21, within 4 standard deviations, far above that floor.
func TestGaussianKL(t *testing.T) {
	kl, err := GaussianKL([]float64{0.3}, []float64{0.5}, []float64{-0.2}, []float64{2})
	require.NoError(t, err)
	r := 0.25
	assert.InDelta(t, 0.5*(r-1-math.Log(r)+0.25/2), kl, 1e-14)
	kl, err = GaussianKL([]float64{1, 2}, []float64{2, 0.3, 0.3, 1}, []float64{1, 2}, []float64{2, 0.3, 0.3, 1})
	require.NoError(t, err)
	assert.InDelta(t, 0, kl, 1e-14)
	// Block diagonal = sum of the blocks; rotated together = unchanged.
	a, _ := GaussianKL([]float64{0}, []float64{0.5}, []float64{1}, []float64{1})
	b, _ := GaussianKL([]float64{2}, []float64{3}, []float64{0}, []float64{1.5})
	both, err := GaussianKL([]float64{0, 2}, []float64{0.5, 0, 0, 3}, []float64{1, 0}, []float64{1, 0, 0, 1.5})
	require.NoError(t, err)
	assert.InDelta(t, a+b, both, 1e-13)
	c, s := math.Cos(0.4), math.Sin(0.4)
	rot := func(v []float64) []float64 { return []float64{c*v[0] - s*v[1], s*v[0] + c*v[1]} }
	rotCov := func(d0, d1 float64) []float64 {
		return []float64{c*c*d0 + s*s*d1, c * s * (d0 - d1), c * s * (d0 - d1), s*s*d0 + c*c*d1}
	}
	rotated, err := GaussianKL(rot([]float64{0, 2}), rotCov(0.5, 3), rot([]float64{1, 0}), rotCov(1, 1.5))
	require.NoError(t, err)
	assert.InDelta(t, both, rotated, 1e-12)
	_, err = GaussianKL([]float64{0}, []float64{-1}, []float64{0}, []float64{1})
	assert.Error(t, err)
	_, err = GaussianKL([]float64{0, 1}, []float64{1}, []float64{0}, []float64{1})
	assert.Error(t, err)

	const n, m = 4000, 3
	g := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{1, 0, -1}}, Covs: [][][]float64{{{1, 0.5, 0}, {0.5, 1, 0.2}, {0, 0.2, 0.5}}}}).Mixture
	x, err := SampleGMM(g, n, 12)
	require.NoError(t, err)
	mean, cov, err := GMMMoments(g)
	require.NoError(t, err)
	coords := []int{0, 1, 2}
	fm, fc := SampleMoments(x, m, coords)
	floor := float64(m+m*(m+1)/2) / (2 * n)
	kl, err = GaussianKL(fm, fc, mean, cov)
	require.NoError(t, err)
	assert.Less(t, kl, 4*floor)
	for i := range x {
		x[i] = mean[i%m] + 1.1*(x[i]-mean[i%m])
	}
	fm, fc = SampleMoments(x, m, coords)
	kl, err = GaussianKL(fm, fc, mean, cov)
	require.NoError(t, err)
	// Expected ½ m (r − 1 − log r) with r = 1.21, plus the floor; its standard deviation from the
	// fitted variances is sqrt(m) · ½ (1 − 1/r) · r sqrt(2/n).
	r = 1.21
	sd := math.Sqrt(m) * 0.5 * (1 - 1/r) * r * math.Sqrt(2.0/n)
	assert.Greater(t, kl, 10*floor)
	assert.InDelta(t, 0.5*m*(r-1-math.Log(r))+floor, kl, 4*sd+floor)
}

// GMMMoments: a two-component 1-D mixture by hand, and a single full Gaussian returns its own
// mean and covariance.
func TestGMMMoments(t *testing.T) {
	g := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 3}, Means: [][]float64{{-1}, {1}}, Vars: []float64{0.5, 2}}).Mixture
	mean, cov, err := GMMMoments(g)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, mean[0], 1e-15)
	assert.InDelta(t, 0.25*(0.5+1)+0.75*(2+1)-0.25, cov[0], 1e-14)
	full := [][]float64{{1, 0.5}, {0.5, 2}}
	g = gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{3, -1}}, Covs: [][][]float64{full}}).Mixture
	mean, cov, err = GMMMoments(g)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{3, -1}, mean, 1e-14)
	assert.InDeltaSlice(t, []float64{1, 0.5, 0.5, 2}, cov, 1e-13)
	g = gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0, 0}, {2, 0}}, Diag: [][]float64{{1, 2}, {3, 4}}}).Mixture
	mean, cov, err = GMMMoments(g)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{1, 0}, mean, 1e-14)
	assert.InDeltaSlice(t, []float64{3, 0, 0, 3}, cov, 1e-13)
	_, _, err = GMMMoments(nil)
	assert.Error(t, err)
}
