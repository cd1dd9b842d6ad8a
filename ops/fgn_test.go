package ops

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// Statistical tests below compare an estimate with its expectation within z standard errors,
// the standard error either exact (independent Gaussian samples) or estimated from the spread of
// independent batches. Each test states its false-failure rate: the probability, over seeds, that
// a correct implementation fails it (Bonferroni bound over the test's comparisons). The seeds are
// fixed, so a given build either passes or fails deterministically.

// fgnDraw runs FGN on the CPU backend and returns the values of dst (paths, p.N()).
func fgnDraw(t *testing.T, be Backend, dt tensor.DType, p *FGNPlan, paths int, form FGNForm, d Draw) []float64 {
	t.Helper()
	dst, err := tensor.New(nil, dt, paths, p.N())
	require.NoError(t, err)
	require.NoError(t, be.FGN(dst, p, form, d))
	v, err := dst.Float64s()
	require.NoError(t, err)
	return v
}

func fgnPlan(t *testing.T, hurst float64, n int) *FGNPlan {
	t.Helper()
	p, err := NewFGNPlan(hurst, n)
	require.NoError(t, err, "H=%g n=%d", hurst, n)
	return p
}

// fgnRho is the closed form of ρ(k), for checking fgnACF where it is accurate (small k).
func fgnRho(hurst float64, k int) float64 {
	a, x := 2*hurst, float64(k)
	return 0.5 * (math.Pow(x+1, a) - 2*math.Pow(x, a) + math.Pow(math.Abs(x-1), a))
}

// fgnACF agrees with the closed form at small lags (where the closed form loses at most a few bits)
// and, summed over 2^18 lags, with the telescoped closed form Σ_{k=1}^K ρ(k) = ½((K+1)^{2H} − K^{2H} − 1),
// evaluated without cancellation as ½(K^{2H} expm1(2H log1p(1/K)) − 1). The sum is dominated by the
// large lags for H > ½ (and is a 10^-3-sized remainder there for H < ½), so a series wrong by
// 10^-6 of its value at large k would fail; the closed form itself is off by up to 1% at k ≈ 10^6.
func TestFGNAutocovarianceFunction(t *testing.T) {
	for _, h := range []float64{0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99} {
		assert.Equal(t, 1.0, fgnACF(h, 0), "H=%g ρ(0)", h)
		for k := 1; k < 40; k++ {
			want := fgnRho(h, k)
			assert.InDelta(t, want, fgnACF(h, k), 1e-13*math.Pow(float64(k+1), 2*h), "H=%g k=%d", h, k)
		}
		const lags = 1 << 18
		sum, comp := 0.0, 0.0 // Kahan summation
		for k := 1; k <= lags; k++ {
			y := fgnACF(h, k) - comp
			s := sum + y
			comp = (s - sum) - y
			sum = s
		}
		K := float64(lags)
		want := 0.5 * (math.Pow(K, 2*h)*math.Expm1(2*h*math.Log1p(1/K)) - 1)
		assert.InDelta(t, want, sum, 1e-12*math.Max(1, math.Abs(want)), "H=%g: Σ ρ(k), k = 1..2^18", h)
	}
}

// The plan's spectrum is the eigenvalue vector of the circulant embedding, evaluated here as the
// cosine sums λ_j = Σ_k c_k cos(2π jk/m) term by term (c from fgnACF, tested above), within
// 4·m·ε·Σ|c_k| (the naive sum's rounding bound); the mean of the λ_j is c_0 = ρ(0) = 1; for H = ½
// the spectrum is flat (c = δ).
func TestFGNPlanSpectrum(t *testing.T) {
	for _, h := range []float64{0.1, 0.5, 0.75, 0.95} {
		for _, n := range []int{1, 2, 3, 64, 100} {
			p := fgnPlan(t, h, n)
			ne := p.EmbedSize()
			m := 2 * ne
			require.Equal(t, fgnEmbedSize(n), ne)
			require.GreaterOrEqual(t, ne, max(n, 2))
			require.Less(t, ne, 2*max(n, 2))
			require.Equal(t, ne&(ne-1), 0, "n_e = %d is a power of two", ne)
			s := p.SqrtEigenvalues()
			require.Len(t, s, ne+1)
			c := make([]float64, m)
			for k := 0; k <= ne; k++ {
				c[k] = fgnACF(h, k)
			}
			for k := 1; k < ne; k++ {
				c[m-k] = c[k]
			}
			absSum := 0.0
			for _, v := range c {
				absSum += math.Abs(v)
			}
			tol := 4 * float64(m) * 0x1p-53 * absSum
			mean := 0.0
			for j := 0; j <= ne; j++ {
				lambda := 0.0
				for k, ck := range c {
					lambda += ck * math.Cos(2*math.Pi*float64((j*k)%m)/float64(m))
				}
				got := s[j] * s[j] * float64(m)
				assert.InDelta(t, lambda, got, tol, "H=%g n=%d λ_%d", h, n, j)
				if h == 0.5 {
					assert.InDelta(t, 1/math.Sqrt(float64(m)), s[j], 1e-15, "H=½: flat spectrum")
				}
				w := 2.0
				if j == 0 || j == ne {
					w = 1
				}
				mean += w * lambda / float64(m)
			}
			assert.InDelta(t, 1, mean, tol, "H=%g n=%d: mean eigenvalue = ρ(0)", h, n)
		}
	}
}

// fgnDefinition evaluates the definition of fgn.go literally for path i: Z_k = s_0 ξ_0 +
// (−1)^k s_{n_e} ξ_1 + √2 Σ_{j=1}^{n_e−1} s_j (ξ_{2j} cos θ + ξ_{2j+1} sin θ), θ = 2π jk/m, then the
// form. It also returns, per output, the sum of the magnitudes of the terms that make it up (the
// scale of its rounding error).
func fgnDefinition(p *FGNPlan, form FGNForm, d Draw, i int, f32 bool) (out, mag []float64) {
	ne, n := p.EmbedSize(), p.N()
	m := 2 * ne
	s := p.SqrtEigenvalues()
	xi := make([]float64, m)
	normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), f32)
	sigma := form.Scale(p.Hurst(), n)
	out, mag = make([]float64, n), make([]float64, n)
	sum, sumMag := 0.0, 0.0
	for k := 0; k < n; k++ {
		sign := 1.0
		if k%2 == 1 {
			sign = -1
		}
		z := s[0]*xi[0] + sign*s[ne]*xi[1]
		a := math.Abs(s[0]*xi[0]) + math.Abs(s[ne]*xi[1])
		for j := 1; j < ne; j++ {
			theta := 2 * math.Pi * float64((j*k)%m) / float64(m)
			z += math.Sqrt2 * s[j] * (xi[2*j]*math.Cos(theta) + xi[2*j+1]*math.Sin(theta))
			a += math.Sqrt2 * s[j] * (math.Abs(xi[2*j]) + math.Abs(xi[2*j+1]))
		}
		out[k], mag[k] = sigma*z, sigma*a
		if form.Path {
			sum += out[k]
			sumMag += mag[k]
			out[k], mag[k] = sum, sumMag
		}
	}
	return out, mag
}

// FGN writes exactly the numbers its contract defines: the reference (an FFT) equals the literal
// real-form sum of fgn.go for every length class (n = 1, 2, 3, a power of two, neither), both
// dtypes, all three forms and a nonzero FirstChain. float64: within 1e-13 of the sum of term
// magnitudes (the naive sum's own rounding is ≤ m·ε ≈ 3e-14 of it for m ≤ 256); float32: in
// addition one rounding of the output, 2^-24 of its magnitude.
func TestFGNMatchesDefinition(t *testing.T) {
	forms := []FGNForm{{}, {Horizon: 2.5}, {Horizon: 3, Path: true}, {Path: true}}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		for _, h := range []float64{0.2, 0.5, 0.85} {
			for _, n := range []int{1, 2, 3, 16, 100} {
				p := fgnPlan(t, h, n)
				for fi, form := range forms {
					d := Draw{Seed: 99 + uint64(n), Site: 1<<32 + 5, FirstChain: 1<<32 - 7}
					const paths = 4
					got := fgnDraw(t, CPU(), dt, p, paths, form, d)
					for i := 0; i < paths; i++ {
						want, mag := fgnDefinition(p, form, d, i, dt == tensor.F32)
						for k := range want {
							tol := 1e-13 * mag[k]
							if dt == tensor.F32 {
								tol += 0x1p-24 * math.Abs(want[k])
							}
							require.InDelta(t, want[k], got[i*n+k], tol, "%v H=%g n=%d form %d path %d k=%d", dt, h, n, fi, i, k)
						}
					}
				}
			}
		}
	}
}

// batchStats returns the mean of the batch estimates and its standard error sd/√B.
func batchStats(est []float64) (mean, se float64) {
	for _, v := range est {
		mean += v
	}
	mean /= float64(len(est))
	ss := 0.0
	for _, v := range est {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(est)-1) / float64(len(est)))
}

// The sample autocovariance γ̂(k) = mean over paths and t of x_t x_{t+k} (the mean is known to be
// 0) is within Monte-Carlo error of ρ(k) at lags 0..10 for H ∈ {0.1, 0.3, 0.5, 0.7, 0.9}, on
// 1024 paths of length 1000 (not a power of two: n_e = 1024). The standard error is estimated
// from 64 independent batches of 16 paths; each batch estimate is a mean of ~16 000 products, close
// to Gaussian, so (γ̂ − ρ)/SE follows Student's t with 63 degrees of freedom: P(|t| > 5.5) = 7.4e-7
// per comparison, false-failure rate ≤ 55 × 7.4e-7 = 4e-5. Power: SE(0) is checked to stay below
// 0.02 (it is about 0.01 at H = 0.9, where long memory makes it largest, and 0.002 for H ≤ 0.7; the
// estimate's own relative spread is 1/√126 ≈ 9%), so a variance off by 11% fails at every H.
func TestFGNAutocovariance(t *testing.T) {
	const (
		n, paths, batches = 1000, 1024, 64
		lags              = 10
		z                 = 5.5
	)
	for hi, h := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
		p := fgnPlan(t, h, n)
		x := fgnDraw(t, CPU(), tensor.F64, p, paths, FGNForm{}, Draw{Seed: 2024 + uint64(hi), Site: 3})
		per := paths / batches
		for k := 0; k <= lags; k++ {
			est := make([]float64, batches)
			for b := range est {
				sum := 0.0
				for i := b * per; i < (b+1)*per; i++ {
					row := x[i*n : (i+1)*n]
					for s := 0; s+k < n; s++ {
						sum += row[s] * row[s+k]
					}
				}
				est[b] = sum / float64(per*(n-k))
			}
			mean, se := batchStats(est)
			want := fgnRho(h, k)
			assert.InDelta(t, want, mean, z*se, "H=%g lag %d: γ̂ = %.5f ± %.5f, ρ = %.5f", h, k, mean, se, want)
			if k == 0 {
				t.Logf("H=%g: γ̂(0) = %.4f, standard error %.4f", h, mean, se)
				assert.Less(t, se, 0.02, "H=%g: the test has the power to see an 11%% variance error", h)
			}
		}
	}
}

// Var B(t) = t^{2H} for the path form on [0, T], at t = T/4, T/2 and T, for T ∈ {0.5, 2, 10} and
// H ∈ {0.2, 0.8}, with n = 50 steps (n_e = 64). The paths are independent and B(t) ~ N(0, t^{2H}),
// so the mean of B(t)² over P paths has the exact standard error t^{2H} √(2/P) (P = 8192: 1.6%).
// z = 5: P(|N(0,1)| > 5) = 5.7e-7 per comparison, false-failure rate ≤ 18 × 5.7e-7 = 1e-5.
func TestFGNPathVariance(t *testing.T) {
	const n, paths, z = 50, 8192, 5.0
	for _, h := range []float64{0.2, 0.8} {
		p := fgnPlan(t, h, n)
		for ti, horizon := range []float64{0.5, 2, 10} {
			b := fgnDraw(t, CPU(), tensor.F64, p, paths, FGNForm{Horizon: horizon, Path: true},
				Draw{Seed: 77, Site: uint64(ti), FirstChain: 1000})
			for _, k := range []int{n / 4, n / 2, n} { // B(t_k) is column k−1
				tk := float64(k) * horizon / n
				sum := 0.0
				for i := 0; i < paths; i++ {
					v := b[i*n+k-1]
					sum += v * v
				}
				want := math.Pow(tk, 2*h)
				se := want * math.Sqrt(2.0/paths)
				assert.InDelta(t, want, sum/paths, z*se, "H=%g T=%g t=%g", h, horizon, tk)
			}
		}
	}
}

// For H = ½ fGn is white noise: the spectrum is flat, so Z is an orthogonal transform of the m
// independent normals and its values are independent N(0, 1). On 1024 paths of length 256 the
// products x_t x_{t+k}, k ≥ 1, are uncorrelated with variance 1, so γ̂(k) has the exact standard
// error 1/√(P(n−k)); γ̂(0) has √(2/(P n)). z = 5 over 11 lags, and again over the 8 × 8 sample
// covariance of the first 8 values (28 off-diagonal pairs, standard error 1/√P): false-failure
// rate ≤ 39 × 5.7e-7 = 2.2e-5.
func TestFGNHalfIsWhiteNoise(t *testing.T) {
	const n, paths, z = 256, 1024, 5.0
	p := fgnPlan(t, 0.5, n)
	x := fgnDraw(t, CPU(), tensor.F64, p, paths, FGNForm{}, Draw{Seed: 5, Site: 9})
	for k := 0; k <= 10; k++ {
		sum := 0.0
		for i := 0; i < paths; i++ {
			for s := 0; s+k < n; s++ {
				sum += x[i*n+s] * x[i*n+s+k]
			}
		}
		cnt := float64(paths * (n - k))
		want, se := 0.0, 1/math.Sqrt(cnt)
		if k == 0 {
			want, se = 1, math.Sqrt(2/cnt)
		}
		assert.InDelta(t, want, sum/cnt, z*se, "lag %d", k)
	}
	for a := 0; a < 8; a++ {
		for b := a + 1; b < 8; b++ {
			sum := 0.0
			for i := 0; i < paths; i++ {
				sum += x[i*n+a] * x[i*n+b]
			}
			assert.InDelta(t, 0, sum/paths, z/math.Sqrt(paths), "cov(x_%d, x_%d)", a, b)
		}
	}
}

// Davies–Harte and Cholesky draw the same law: on n = 16 (16 384 paths each, H ∈ {0.25, 0.75})
// both sample means are within Monte-Carlo error of 0 and both sample covariance matrices within
// Monte-Carlo error of the Toeplitz matrix Γ and of each other. For zero-mean Gaussians the
// covariance determines the law. Standard errors are exact: Var(x_k x_l) = Γ_kk Γ_ll + Γ_kl²
// (Isserlis), Var(x̄_k) = Γ_kk / P. z = 5 over 2 × (2·16 + 3·136) = 880 comparisons:
// false-failure rate ≤ 880 × 5.7e-7 = 5e-4.
func TestFGNDaviesHarteEqualsCholeskyInLaw(t *testing.T) {
	const n, paths, z = 16, 16384, 5.0
	for _, h := range []float64{0.25, 0.75} {
		p := fgnPlan(t, h, n)
		dh := fgnDraw(t, CPU(), tensor.F64, p, paths, FGNForm{}, Draw{Seed: 8, Site: 1})
		chT, err := tensor.New(nil, tensor.F64, paths, n)
		require.NoError(t, err)
		require.NoError(t, FGNCholesky(chT, h, FGNForm{}, Draw{Seed: 8, Site: 2}))
		ch, _ := chT.F64()
		gamma := func(k, l int) float64 { return fgnRho(h, int(math.Abs(float64(k-l)))) }
		moments := func(x []float64) (mean []float64, cov [][]float64) {
			mean = make([]float64, n)
			cov = make([][]float64, n)
			for k := range cov {
				cov[k] = make([]float64, n)
			}
			for i := 0; i < paths; i++ {
				row := x[i*n : (i+1)*n]
				for k := 0; k < n; k++ {
					mean[k] += row[k] / paths
					for l := k; l < n; l++ {
						cov[k][l] += row[k] * row[l] / paths
					}
				}
			}
			return mean, cov
		}
		mDH, cDH := moments(dh)
		mCh, cCh := moments(ch)
		for k := 0; k < n; k++ {
			assert.InDelta(t, 0, mDH[k], z/math.Sqrt(paths), "H=%g DH mean %d", h, k)
			assert.InDelta(t, 0, mCh[k], z/math.Sqrt(paths), "H=%g Cholesky mean %d", h, k)
			for l := k; l < n; l++ {
				g := gamma(k, l)
				se := math.Sqrt((gamma(k, k)*gamma(l, l) + g*g) / paths)
				assert.InDelta(t, g, cDH[k][l], z*se, "H=%g DH cov(%d, %d)", h, k, l)
				assert.InDelta(t, g, cCh[k][l], z*se, "H=%g Cholesky cov(%d, %d)", h, k, l)
				assert.InDelta(t, cCh[k][l], cDH[k][l], z*se*math.Sqrt2, "H=%g DH − Cholesky cov(%d, %d)", h, k, l)
			}
		}
	}
}

// FGNCholesky writes L ξ exactly as documented: its first value is ξ_0 (L_00 = 1), its path form is
// the running sum of its increments, and the horizon scales by (T/n)^H; x = Lξ is checked against
// the factor recomputed from the covariance (LLᵀ = Γ).
func TestFGNCholeskyDefinition(t *testing.T) {
	const n, paths, h = 12, 3, 0.35
	d := Draw{Seed: 4, Site: 2, FirstChain: 9}
	get := func(form FGNForm) []float64 {
		x, err := tensor.New(nil, tensor.F64, paths, n)
		require.NoError(t, err)
		require.NoError(t, FGNCholesky(x, h, form, d))
		v, _ := x.F64()
		return v
	}
	inc, path, scaled := get(FGNForm{}), get(FGNForm{Path: true}), get(FGNForm{Horizon: 7})
	u, err := fgnCholeskyFactor(h, n)
	require.NoError(t, err)
	for k := 0; k < n; k++ {
		for l := k; l < n; l++ {
			g := 0.0
			for j := 0; j <= k; j++ {
				g += u[j*n+k] * u[j*n+l]
			}
			assert.InDelta(t, fgnRho(h, l-k), g, 1e-14, "(UᵀU)_%d%d", k, l)
		}
	}
	sigma := math.Pow(7.0/n, h)
	for i := 0; i < paths; i++ {
		xi := make([]float64, n)
		normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), false)
		sum := 0.0
		for k := 0; k < n; k++ {
			want := 0.0
			for j := 0; j <= k; j++ {
				want += u[j*n+k] * xi[j]
			}
			v := inc[i*n+k]
			assert.InDelta(t, want, v, 1e-14, "x_%d", k)
			sum += v
			assert.InDelta(t, sum, path[i*n+k], 1e-13, "B_%d", k)
			assert.InDelta(t, sigma*v, scaled[i*n+k], 1e-14, "σ x_%d", k)
		}
		assert.Equal(t, xi[0], inc[i*n])
	}
}

// Lengths that are not powers of two (and the smallest ones) work in every form and dtype: the
// values are finite, and a length-n draw is the first n values of the length-n_e draw of the
// same seed (n_e the embedding size they share), so truncation is all that n changes.
func TestFGNOddLengths(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		for _, n := range []int{1, 3, 1000} {
			p := fgnPlan(t, 0.7, n)
			full := fgnPlan(t, 0.7, p.EmbedSize())
			require.Same(t, &p.SqrtEigenvalues()[0], &full.SqrtEigenvalues()[0], "n=%d and n_e share one spectrum", n)
			for _, form := range []FGNForm{{}, {Horizon: 1, Path: true}} {
				d := Draw{Seed: 12, Site: 4}
				const paths = 5
				x := fgnDraw(t, CPU(), dt, p, paths, form, d)
				ne := p.EmbedSize()
				formFull := form
				if form.Horizon > 0 { // same step: the horizon grows with the length
					formFull.Horizon = form.Horizon * float64(ne) / float64(n)
				}
				y := fgnDraw(t, CPU(), dt, full, paths, formFull, d)
				for i := 0; i < paths; i++ {
					for k := 0; k < n; k++ {
						v := x[i*n+k]
						require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%v n=%d", dt, n)
						assert.InDelta(t, y[i*ne+k], v, 1e-12*math.Max(1, math.Abs(v)), "%v n=%d %+v path %d k=%d", dt, n, form, i, k)
					}
				}
			}
		}
	}
}

// The path form is the running sum of the increments, and a horizon scales unit-step fGn by
// (T/n)^H — exactly in float64 (the same operations), within one float32 rounding per value
// plus the float32 rounding of the running sum's terms in float32.
func TestFGNForms(t *testing.T) {
	const n, paths, h, horizon = 77, 6, 0.65, 4.0
	p := fgnPlan(t, h, n)
	d := Draw{Seed: 31, Site: 8, FirstChain: 2}
	sigma := math.Pow(horizon/n, h)
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		unit := fgnDraw(t, CPU(), dt, p, paths, FGNForm{}, d)
		inc := fgnDraw(t, CPU(), dt, p, paths, FGNForm{Horizon: horizon}, d)
		path := fgnDraw(t, CPU(), dt, p, paths, FGNForm{Horizon: horizon, Path: true}, d)
		unitPath := fgnDraw(t, CPU(), dt, p, paths, FGNForm{Path: true}, d)
		ulp := 0.0
		if dt == tensor.F32 {
			ulp = 0x1p-23
		}
		for i := 0; i < paths; i++ {
			sum, sumUnit, mag := 0.0, 0.0, 0.0
			for k := 0; k < n; k++ {
				j := i*n + k
				assert.InDelta(t, sigma*unit[j], inc[j], ulp*math.Abs(inc[j]), "%v σ·unit", dt)
				sum += inc[j]
				sumUnit += unit[j]
				mag += math.Abs(inc[j])
				assert.InDelta(t, sum, path[j], ulp*mag, "%v path = running sum", dt)
				assert.InDelta(t, sumUnit, unitPath[j], ulp*mag/sigma, "%v unit path", dt)
			}
		}
	}
}

// Determinism and batch invariance: row i of a call is a function of (seed, site, FirstChain + i)
// only — a block of rows drawn by itself with the matching FirstChain is bit-identical, so is a
// run on one worker, and another site gives other numbers.
func TestFGNDeterministicAndSplittable(t *testing.T) {
	const n, paths = 300, 40
	p := fgnPlan(t, 0.3, n)
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		d := Draw{Seed: 1234, Site: 56, FirstChain: 100}
		form := FGNForm{Horizon: 2, Path: true}
		all := fgnDraw(t, CPU(), dt, p, paths, form, d)
		assert.Equal(t, all, fgnDraw(t, CPUWorkers(1), dt, p, paths, form, d), "%v: one worker", dt)
		for _, cut := range [][2]int{{0, 1}, {7, 23}, {39, 40}} {
			part := fgnDraw(t, CPU(), dt, p, cut[1]-cut[0], form,
				Draw{Seed: d.Seed, Site: d.Site, FirstChain: d.FirstChain + uint64(cut[0])})
			assert.Equal(t, all[cut[0]*n:cut[1]*n], part, "%v rows %v", dt, cut)
		}
		other := fgnDraw(t, CPU(), dt, p, paths, form, Draw{Seed: d.Seed, Site: d.Site + 1, FirstChain: d.FirstChain})
		assert.NotEqual(t, all[:n], other[:n], "%v: another site", dt)
	}
}

// Plans of one (H, n_e) share one cached spectrum; other H or n_e get their own; the cache stays
// within its bound when many distinct plans are made, and concurrent use is safe (run with -race).
func TestFGNPlanCache(t *testing.T) {
	a, b := fgnPlan(t, 0.6, 1000), fgnPlan(t, 0.6, 1000)
	assert.Same(t, a.spec, b.spec, "same (H, n)")
	assert.Same(t, a.spec, fgnPlan(t, 0.6, 1024).spec, "same (H, n_e)")
	assert.NotSame(t, a.spec, fgnPlan(t, 0.6, 1025).spec, "other n_e")
	assert.NotSame(t, a.spec, fgnPlan(t, 0.61, 1000).spec, "other H")
	assert.Equal(t, 0.6, a.Hurst())
	assert.Equal(t, 1000, a.N())
	assert.Equal(t, 1024, a.EmbedSize())

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2*fgnCacheEntries; i++ {
				p, err := NewFGNPlan(0.3+0.001*float64(i), 17+g)
				if assert.NoError(t, err) {
					assert.Len(t, p.SqrtEigenvalues(), 33)
				}
			}
		}()
	}
	wg.Wait()
	fgnCache.Lock()
	entries, bytes := len(fgnCache.items), fgnCache.bytes
	fgnCache.Unlock()
	assert.LessOrEqual(t, entries, fgnCacheEntries)
	assert.LessOrEqual(t, bytes, fgnCacheBytes)
	// A plan outlives its spectrum's eviction.
	assert.Len(t, a.SqrtEigenvalues(), 1025)
}

// A covariance without a nonnegative circulant embedding is reported, naming the eigenvalue:
// ρ = (1, ρ_1, 0, …) embeds with λ_j = 1 + 2ρ_1 cos(2πj/m), negative at j = n_e for ρ_1 > ½. At
// ρ_1 = ½ + 5e-15 the most negative eigenvalue, −1e-14 = −5e-15·max λ, lies inside the rounding
// allowance and is set to 0; at ρ_1 = ½ + 1e-9 it does not.
func TestFGNNegativeEigenvalue(t *testing.T) {
	acf := func(rho1 float64) func(int) float64 {
		return func(k int) float64 {
			switch k {
			case 0:
				return 1
			case 1:
				return rho1
			}
			return 0
		}
	}
	const ne = 8
	_, err := circulantSqrtSpectrum(acf(0.9), ne)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "eigenvalue λ_")
	assert.Contains(t, err.Error(), "negative")

	_, err = circulantSqrtSpectrum(acf(0.5+1e-9), ne)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("λ_%d", ne))

	s, err := circulantSqrtSpectrum(acf(0.5+5e-15), ne)
	require.NoError(t, err)
	assert.Equal(t, 0.0, s[ne])
	assert.InDelta(t, math.Sqrt(2/float64(2*ne)), s[0], 1e-14)
}

// Bad arguments are errors naming the op and the problem, never panics.
func TestFGNRejectsBadArguments(t *testing.T) {
	for _, c := range []struct {
		h    float64
		n    int
		want string
	}{
		{0, 10, "hurst 0: must be in (0, 1)"},
		{1, 10, "hurst 1: must be in (0, 1)"},
		{-0.2, 10, "hurst -0.2"},
		{1.5, 10, "hurst 1.5"},
		{math.NaN(), 10, "hurst NaN"},
		{math.Inf(1), 10, "hurst +Inf"},
		{0.5, 0, "length 0"},
		{0.5, -3, "length -3"},
		{0.5, MaxFGNLength + 1, "length"},
	} {
		p, err := NewFGNPlan(c.h, c.n)
		require.Error(t, err, "H=%g n=%d", c.h, c.n)
		assert.Nil(t, p)
		assert.Contains(t, err.Error(), "fgn plan: ")
		assert.Contains(t, err.Error(), c.want)
	}

	p := fgnPlan(t, 0.4, 10)
	ok, _ := tensor.New(nil, tensor.F64, 3, 10)
	closed, _ := tensor.New(nil, tensor.F64, 3, 10)
	closed.Close()
	wrongN, _ := tensor.New(nil, tensor.F32, 3, 11)
	rank1, _ := tensor.New(nil, tensor.F64, 10)
	d := Draw{Seed: 1}
	for _, c := range []struct {
		name string
		dst  *tensor.Tensor
		p    *FGNPlan
		form FGNForm
		d    Draw
		want string
	}{
		{"nil plan", ok, nil, FGNForm{}, d, "plan is nil"},
		{"nil dst", nil, p, FGNForm{}, d, "destination tensor is nil"},
		{"closed", closed, p, FGNForm{}, d, "closed"},
		{"wrong n", wrongN, p, FGNForm{}, d, "want (paths, 10)"},
		{"rank 1", rank1, p, FGNForm{}, d, "want (chains, dim)"},
		{"negative horizon", ok, p, FGNForm{Horizon: -1}, d, "horizon -1"},
		{"NaN horizon", ok, p, FGNForm{Horizon: math.NaN(), Path: true}, d, "horizon NaN"},
		{"infinite horizon", ok, p, FGNForm{Horizon: math.Inf(1)}, d, "horizon +Inf"},
		{"chains overflow", ok, p, FGNForm{}, Draw{FirstChain: MaxChains - 2}, "chain indices"},
	} {
		err := CPU().FGN(c.dst, c.p, c.form, c.d)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), "fgn: ", c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}

	big, _ := tensor.New(nil, tensor.F64, 1, MaxFGNCholeskyLength+1)
	for _, c := range []struct {
		name string
		dst  *tensor.Tensor
		h    float64
		form FGNForm
		want string
	}{
		{"too long", big, 0.5, FGNForm{}, "length 4097"},
		{"bad hurst", ok, 1.2, FGNForm{}, "hurst 1.2: must be in (0, 1)"},
		{"NaN hurst", ok, math.NaN(), FGNForm{}, "hurst NaN"},
		{"nil dst", nil, 0.5, FGNForm{}, "destination tensor is nil"},
		{"bad horizon", ok, 0.5, FGNForm{Horizon: -2}, "horizon -2"},
		{"rank 1", rank1, 0.5, FGNForm{}, "want (chains, dim)"},
	} {
		err := FGNCholesky(c.dst, c.h, c.form, d)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), "fgn cholesky: ", c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}

	// Zero paths: nothing to do, no error.
	empty, _ := tensor.New(nil, tensor.F64, 0, 10)
	assert.NoError(t, CPU().FGN(empty, p, FGNForm{}, d))
	assert.NoError(t, FGNCholesky(empty, 0.4, FGNForm{}, d))
}
