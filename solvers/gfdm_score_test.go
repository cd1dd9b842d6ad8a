package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// augmentedScore evaluates p.AugmentedScore on host float64 planes z ((K+1)·N·d values) and
// returns log p (N) and the score (planes as z).
func augmentedScore(t testing.TB, p *GFDMProcess, tg target.Target, z []float64, nr int, tt float64) (lp, score []float64) {
	t.Helper()
	d := tg.Dim()
	zt, err := tensor.FromFloat64s(tensor.F64, z, p.K()+1, nr, d)
	require.NoError(t, err)
	defer zt.Close()
	lpt, err := tensor.New(nil, tensor.F64, nr)
	require.NoError(t, err)
	defer lpt.Close()
	st, err := tensor.New(nil, tensor.F64, p.K()+1, nr, d)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, p.AugmentedScore(ops.CPU(), GFDMScoreOutputs{LogP: lpt, Score: st}, tg, zt, tt))
	lp, err = lpt.Float64s()
	require.NoError(t, err)
	score, err = st.Float64s()
	require.NoError(t, err)
	return lp, score
}

// denseAugmented is the law of Z_t for data from the mixture spec as one Gaussian mixture in
// dimension d(K+1), with the augmented coordinates ordered (j, c) ↦ j(K+1) + c and the full
// covariances S_k ⊗ φφᵀ + I ⊗ Σ written out entry by entry: the brute-force reference, evaluated
// by the mixture op's CPU reference on the noise-free (Clean) mixture.
func denseAugmented(t testing.TB, p *GFDMProcess, spec ops.GMMSpec, tt float64) *ops.GMM {
	t.Helper()
	phi, err := p.Mean(tt)
	require.NoError(t, err)
	sig, err := p.Covariance(tt)
	require.NoError(t, err)
	n, d := p.K()+1, len(spec.Means[0])
	dense := ops.GMMSpec{Weights: spec.Weights}
	for k := range spec.Weights {
		s := func(j, jj int) float64 {
			switch {
			case spec.Vars != nil:
				if j == jj {
					return spec.Vars[k]
				}
				return 0
			case spec.Diag != nil:
				if j == jj {
					return spec.Diag[k][j]
				}
				return 0
			}
			return spec.Covs[k][j][jj]
		}
		mean := make([]float64, d*n)
		cov := make([][]float64, d*n)
		for j := 0; j < d; j++ {
			for a := 0; a < n; a++ {
				mean[j*n+a] = spec.Means[k][j] * phi[a]
				row := make([]float64, d*n)
				for jj := 0; jj < d; jj++ {
					for b := 0; b < n; b++ {
						v := s(j, jj) * phi[a] * phi[b]
						if j == jj {
							v += 0.5 * (sig[a*n+b] + sig[b*n+a])
						}
						row[jj*n+b] = v
					}
				}
				cov[j*n+a] = row
			}
		}
		dense.Means = append(dense.Means, mean)
		dense.Covs = append(dense.Covs, cov)
	}
	g, err := ops.NewGMM(dense)
	require.NoError(t, err)
	return g
}

// gfdmTestPoints draws augmented states around the mixture's law at t: x0 from the mixture, then
// z = φ x0 + L ξ with L the Cholesky factor of Σ scaled by spread (spread > 1 reaches the tails).
func gfdmTestPoints(t testing.TB, p *GFDMProcess, tg target.GMM, nr int, tt, spread float64, seed uint64) []float64 {
	t.Helper()
	x0, err := SampleNoised(tg, nr, 1, 0, seed, 0)
	require.NoError(t, err)
	x0t, err := tensor.FromFloat64s(tensor.F64, x0, nr, tg.Dim())
	require.NoError(t, err)
	defer x0t.Close()
	z, err := p.SampleForward(ops.CPU(), x0t, tt, seed, 0, 0)
	require.NoError(t, err)
	defer z.Close()
	zv, err := z.Float64s()
	require.NoError(t, err)
	if spread != 1 { // widen around the mean x0 φ
		phi, _ := p.Mean(tt)
		plane := nr * tg.Dim()
		for c := 0; c <= p.K(); c++ {
			for e := 0; e < plane; e++ {
				m := x0[e] * phi[c]
				zv[c*plane+e] = m + spread*(zv[c*plane+e]-m)
			}
		}
	}
	return zv
}

// gfdmScoreSpecs are the mixtures of the score tests: isotropic 1-D, diagonal 2-D with unequal
// weights, full 2-D.
var gfdmScoreSpecs = []struct {
	name string
	spec ops.GMMSpec
}{
	{"iso-1d", ops.GMMSpec{Weights: []float64{0.3, 0.7}, Means: [][]float64{{-2}, {1.5}}, Vars: []float64{0.5, 0.1}}},
	{"diag-2d", ops.GMMSpec{Weights: []float64{0.2, 0.5, 0.3}, Means: [][]float64{{0, 0}, {3, 1}, {-2, 2.5}},
		Diag: [][]float64{{0.3, 0.8}, {0.05, 0.2}, {1, 0.4}}}},
	{"full-2d", ops.GMMSpec{Weights: []float64{0.6, 0.4}, Means: [][]float64{{1, -1}, {-1, 2}},
		Covs: [][][]float64{{{0.5, 0.3}, {0.3, 0.4}}, {{0.2, -0.05}, {-0.05, 0.1}}}}},
}

// TestGFDMAugmentedScoreDense compares the augmented score and log-density with the brute-force
// evaluation of the same law as a dense d(K+1)-dimensional Gaussian mixture (denseAugmented),
// for both bases, K ∈ {1, 2, 3, 5}, H ∈ {0.3, 0.7}, at small, middle and terminal times (those
// where Σ(t) is not refused as too close to singular). Both sides solve linear systems with Σ(t)
// (the dense one through the eigendecomposition of its d(K+1)-dimensional covariances), so they
// agree to about ε·cond(Σ) (the larger of the equilibrated and raw condition numbers, which the
// dense side inherits): the tolerance is 1e-10 + 1e-14·cond for log p, 1e-8 + 1e-13·cond for
// the score (relative to the row's largest entry; the dense eigendecomposition of S_k ⊗ φφᵀ + I ⊗ Σ
// loses a few more digits than Σ alone).
func TestGFDMAugmentedScoreDense(t *testing.T) {
	const nr = 40
	worstLP, worstS := 0.0, 0.0
	for _, base := range GFDMBases() {
		for _, k := range []int{1, 2, 3, 5} {
			for _, h := range []float64{0.3, 0.7} {
				p := newGFDM(t, GFDMConfig{Base: base, Hurst: h, K: k})
				for _, c := range gfdmScoreSpecs {
					tg := gmmTarget(t, c.spec)
					d := tg.Dim()
					for _, tt := range []float64{0.02, 0.1, 0.3, 1} {
						l, err := p.law(tt)
						if err != nil { // Σ(t) too close to singular: refused, as TestGFDMAugmentedScoreErrors checks
							continue
						}
						// both evaluations solve with Σ(t): they agree to about ε·cond(Σ), the dense
						// one with the unequilibrated Σ (x and y entries differ by up to 10⁵)
						sig, _ := p.Covariance(tt)
						tol := 1e-10 + 1e-14*math.Max(l.cond, mat.Cond(mat.NewDense(k+1, k+1, sig), 2))
						z := gfdmTestPoints(t, p, tg, nr, tt, 1.5, 7)
						lp, score := augmentedScore(t, p, tg, z, nr, tt)
						g := denseAugmented(t, p, c.spec, tt)
						n := k + 1
						plane := nr * d
						rows := make([]float64, nr*d*n)
						for i := 0; i < nr; i++ {
							for j := 0; j < d; j++ {
								for a := 0; a < n; a++ {
									rows[i*d*n+j*n+a] = z[a*plane+i*d+j]
								}
							}
						}
						x, err := tensor.FromFloat64s(tensor.F64, rows, nr, d*n)
						require.NoError(t, err)
						rlp, _ := tensor.New(nil, tensor.F64, nr)
						rs, _ := tensor.New(nil, tensor.F64, nr, d*n)
						require.NoError(t, ops.Reference().GMMScore(ops.ScoreOutputs{LogP: rlp, Score: rs}, x, g, ops.NoNoise))
						wantLP, _ := rlp.Float64s()
						wantS, _ := rs.Float64s()
						for i := 0; i < nr; i++ {
							e := math.Abs(lp[i]-wantLP[i]) / (1 + math.Abs(wantLP[i]))
							worstLP = math.Max(worstLP, e)
							require.Less(t, e, tol, "%s K=%d H=%g %s t=%g row %d: log p %g, dense %g", base, k, h, c.name, tt, i, lp[i], wantLP[i])
							// scale: the row's largest score entry (the score spans orders of magnitude
							// across the components of z at small t)
							scale := 0.0
							for _, v := range wantS[i*d*n : (i+1)*d*n] {
								scale = math.Max(scale, math.Abs(v))
							}
							for j := 0; j < d; j++ {
								for a := 0; a < n; a++ {
									got, want := score[a*plane+i*d+j], wantS[i*d*n+j*n+a]
									e := math.Abs(got-want) / (1 + scale)
									worstS = math.Max(worstS, e)
									require.Less(t, e, 1e-8+10*tol, "%s K=%d H=%g %s t=%g row %d coord %d comp %d: score %g, dense %g",
										base, k, h, c.name, tt, i, j, a, got, want)
								}
							}
						}
						x.Close()
						rlp.Close()
						rs.Close()
					}
				}
			}
		}
	}
	t.Logf("max error against the dense mixture: log p %.2g (relative to 1+|log p|), score %.2g (relative to 1+max|score| of the row)", worstLP, worstS)
}

// TestGFDMAugmentedScoreFiniteDifferences checks the score against central differences of the
// log-density the same op returns, at the times where the equilibrated Σ(t) has condition
// number ≤ 1e7 (below that, rounding of the quadratic form in log p swamps a difference quotient).
func TestGFDMAugmentedScoreFiniteDifferences(t *testing.T) {
	const nr = 6
	worst := 0.0
	for _, base := range GFDMBases() {
		for _, k := range []int{1, 3} {
			p := newGFDM(t, GFDMConfig{Base: base, Hurst: 0.3, K: k})
			for _, sc := range gfdmScoreSpecs {
				tg, name := gmmTarget(t, sc.spec), sc.name
				for _, tt := range []float64{0.05, 0.5, 1} {
					l, err := p.law(tt)
					if err != nil || l.cond > 1e7 { // where log p itself is accurate to a few ulp of its terms
						continue
					}
					z := gfdmTestPoints(t, p, tg, nr, tt, 1.2, 3)
					_, score := augmentedScore(t, p, tg, z, nr, tt)
					for e := range z {
						c := e / (nr * tg.Dim())
						// the step: 1e-4 of the smaller of the conditional spread of component c given
						// the others and the change of z_c that moves the statistic ũ by σ̃ (at small t
						// x_0 is nearly determined by z, and log p curves on that scale)
						sd := 1 / math.Sqrt(l.prec[c*(k+2)])
						h := 1e-4 * math.Min(sd, l.sigmaVE*l.q/math.Abs(l.psi[c]))
						zp := append([]float64(nil), z...)
						zm := append([]float64(nil), z...)
						zp[e] += h
						zm[e] -= h
						lpp, _ := augmentedScore(t, p, tg, zp, nr, tt)
						lpm, _ := augmentedScore(t, p, tg, zm, nr, tt)
						row := (e % (nr * tg.Dim())) / tg.Dim()
						fd := (lpp[row] - lpm[row]) / (2 * h)
						rel := math.Abs(fd-score[e]) / (math.Abs(score[e]) + 1/sd)
						worst = math.Max(worst, rel)
						require.Less(t, rel, 1e-6, "%s K=%d %s t=%g entry %d: score %g, finite difference %g", base, k, name, tt, e, score[e], fd)
					}
				}
			}
		}
	}
	t.Logf("max relative deviation of the score from central differences of log p: %.2g", worst)
}

// TestGFDMAugmentedScoreVELimit: with K = 1, γ = 0, ω = 1 the driver is Brownian motion, and the
// x-marginal of the augmented law must be the mixture noised as φ_x(t)·x_0 + √Σ_xx(t)·ξ (the
// VE model at σ² = Σ_xx for FVE, where φ_x = 1; the VP-type model for FVP). The augmented
// density exp(log p(x, y)) is integrated over y by the trapezoidal rule (the integrand is a
// mixture of Gaussians in y: on a grid of 4001 points over ±12 standard deviations the rule is
// exact to rounding) and compared with the mixture op's log-density at that (affine) noise.
func TestGFDMAugmentedScoreVELimit(t *testing.T) {
	spec := gfdmScoreSpecs[0].spec
	tg := gmmTarget(t, spec)
	worst := 0.0
	for _, base := range GFDMBases() {
		p := gfdmDriver(t, GFDMConfig{Base: base}, []float64{0}, []float64{1})
		for _, tt := range []float64{0.1, 0.5, 1} {
			sig, _ := p.Covariance(tt)
			phi, _ := p.Mean(tt)
			xs := []float64{-2.5, -0.3, 1.4, 2}
			sdY := math.Sqrt(sig[3])
			const m = 4001
			for _, x := range xs {
				// E[y | x] ranges over the components; centre the grid on 0 with a width covering
				// all of them.
				lo, hi := -12*sdY-5*math.Abs(sig[1])/math.Sqrt(sig[0]), 12*sdY+5*math.Abs(sig[1])/math.Sqrt(sig[0])
				z := make([]float64, 2*m)
				for i := 0; i < m; i++ {
					z[i] = x
					z[m+i] = lo + (hi-lo)*float64(i)/float64(m-1)
				}
				lp, _ := augmentedScore(t, p, tg, z, m, tt)
				sum := 0.0
				for i, v := range lp {
					w := 1.0
					if i == 0 || i == m-1 {
						w = 0.5
					}
					sum += w * math.Exp(v)
				}
				marg := math.Log(sum * (hi - lo) / float64(m-1))
				xt, _ := tensor.FromFloat64s(tensor.F64, []float64{x}, 1, 1)
				lt, _ := tensor.New(nil, tensor.F64, 1)
				require.NoError(t, tg.Evaluate(ops.CPU(), ops.ScoreOutputs{LogP: lt}, xt, ops.Noise{Kind: ops.Affine, Scale: phi[0], Var: sig[0]}))
				want, _ := lt.Float64s()
				worst = math.Max(worst, math.Abs(marg-want[0]))
				assert.InDelta(t, want[0], marg, 1e-9, "%s t=%g x=%g: ∫ p(x, y) dy", base, tt, x)
			}
		}
	}
	t.Logf("VE limit: max |log ∫ p(x, y) dy − log p_VE(x)| = %.2g", worst)
}

// TestGFDMAugmentedScoreEmpirical: a data set is the mixture of point masses at its points, so
// its augmented score (through the empirical op) must equal that of the Gaussian mixture of the
// same points with variances 1e-12 (far below every other variance involved at these times).
func TestGFDMAugmentedScoreEmpirical(t *testing.T) {
	pts := [][]float64{{0, 1}, {2, -1}, {-1.5, 0.5}}
	pt := fromRows(t, tensor.F64, pts)
	defer pt.Close()
	data, err := ops.NewEmpirical(pt)
	require.NoError(t, err)
	emp := target.Empirical{DataSet: data}
	mix := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 1, 1}, Means: pts, Vars: []float64{1e-12, 1e-12, 1e-12}})
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVP, Hurst: 0.7, K: 2})
	for _, tt := range []float64{0.1, 0.6} {
		z := gfdmTestPoints(t, p, mix, 20, tt, 1, 5)
		lpE, sE := augmentedScore(t, p, emp, z, 20, tt)
		lpM, sM := augmentedScore(t, p, mix, z, 20, tt)
		for i := range lpE {
			assert.InDelta(t, lpM[i], lpE[i], 1e-8*(1+math.Abs(lpM[i])), "t=%g row %d log p", tt, i)
		}
		for i := range sE {
			assert.InDelta(t, sM[i], sE[i], 1e-8*(1+math.Abs(sM[i])), "t=%g entry %d score", tt, i)
		}
	}
}

// TestGFDMAugmentedScoreErrors: bad arguments are errors, never panics.
func TestGFDMAugmentedScoreErrors(t *testing.T) {
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 2})
	tg := gmmTarget(t, gfdmScoreSpecs[1].spec)
	z, _ := tensor.New(nil, tensor.F64, 3, 4, 2)
	sc, _ := tensor.New(nil, tensor.F64, 3, 4, 2)
	bad, _ := tensor.New(nil, tensor.F64, 2, 4, 2)
	lp32, _ := tensor.New(nil, tensor.F32, 4)
	b := ops.CPU()
	p5 := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 5})
	z6, _ := tensor.New(nil, tensor.F64, 6, 4, 2)
	sc6, _ := tensor.New(nil, tensor.F64, 6, 4, 2)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"nil backend", p.AugmentedScore(nil, GFDMScoreOutputs{Score: sc}, tg, z, 0.5), "nil backend"},
		{"nil target", p.AugmentedScore(b, GFDMScoreOutputs{Score: sc}, nil, z, 0.5), "nil target"},
		{"no output", p.AugmentedScore(b, GFDMScoreOutputs{}, tg, z, 0.5), "no output"},
		{"shape", p.AugmentedScore(b, GFDMScoreOutputs{Score: sc}, tg, bad, 0.5), "(K+1, N, d)"},
		{"output shape", p.AugmentedScore(b, GFDMScoreOutputs{Score: bad}, tg, z, 0.5), "score output"},
		{"output dtype", p.AugmentedScore(b, GFDMScoreOutputs{LogP: lp32}, tg, z, 0.5), "log p output"},
		{"t = 0", p.AugmentedScore(b, GFDMScoreOutputs{Score: sc}, tg, z, 0), "t ∈ (0, 1]"},
		{"t > 1", p.AugmentedScore(b, GFDMScoreOutputs{Score: sc}, tg, z, 1.5), "[0, 1]"},
		{"t NaN", p.AugmentedScore(b, GFDMScoreOutputs{Score: sc}, tg, z, math.NaN()), "[0, 1]"},
		{"Σ singular", p5.AugmentedScore(b, GFDMScoreOutputs{Score: sc6}, tg, z6, 0.01), "too close to singular"},
	} {
		require.Error(t, c.err, c.name)
		assert.Contains(t, c.err.Error(), c.want, c.name)
	}
}
