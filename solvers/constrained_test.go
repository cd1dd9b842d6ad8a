package solvers

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// constrainedDomains are the domains of the tests: a box, a 3-ball, a triangle and (as a
// predicate) a non-convex annulus, each with a point inside it.
func constrainedDomains(t *testing.T) []struct {
	name  string
	cfg   ConstrainedConfig
	start []float64
} {
	box, err := ops.NewBox([]float64{-1, 0}, []float64{2, 1})
	require.NoError(t, err)
	ball, err := ops.NewBall([]float64{1, -1, 0.5}, 0.5)
	require.NoError(t, err)
	tri, err := ops.NewPolytope([][]float64{{-1, 0}, {0, -1}, {1, 1}}, []float64{0, 0, 1})
	require.NoError(t, err)
	annulus := func(x []float64) bool {
		r := math.Hypot(x[0], x[1])
		return r >= 0.5 && r <= 1
	}
	return []struct {
		name  string
		cfg   ConstrainedConfig
		start []float64
	}{
		{"box", ConstrainedConfig{Domain: box}, []float64{0.5, 0.5}},
		{"ball", ConstrainedConfig{Domain: ball}, []float64{1, -1, 0.5}},
		{"polytope", ConstrainedConfig{Domain: tri}, []float64{0.2, 0.2}},
		{"predicate", ConstrainedConfig{Predicate: annulus}, []float64{0.75, 0}},
	}
}

func repeatRows(row []float64, n int) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = append([]float64(nil), row...)
	}
	return rows
}

// insideAll checks every row of every trace row against the domain.
func insideAll(t *testing.T, cfg ConstrainedConfig, trace *tensor.Tensor, what string) {
	t.Helper()
	v, err := trace.Float64s()
	require.NoError(t, err)
	d := trace.Dim(2)
	for i := 0; i+d <= len(v); i += d {
		require.True(t, cfg.inside(v[i:i+d]), "%s: state %v (trace element %d) left the domain", what, v[i:i+d], i/d)
	}
}

// Neither sampler ever leaves the domain: with steps of standard deviation 0.2 (as large as the
// domains), every state of 200 chains over 40 steps lies inside, while a large fraction of the
// proposals was rejected. The reverse sampler runs on a mixture with a mode outside the domain.
func TestConstrainedSamplersStayInside(t *testing.T) {
	for _, dc := range constrainedDomains(t) {
		for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			what := fmt.Sprintf("%s %v", dc.name, dt)
			cfg := dc.cfg
			cfg.Steps, cfg.Horizon, cfg.Thin, cfg.Seed = 40, 1.6, 1, 3
			x0 := fromRows(t, dt, repeatRows(dc.start, 200))
			res, err := MetropolisWalk(ops.CPU(), x0, cfg)
			require.NoError(t, err, what)
			insideAll(t, cfg, res.Trace, what+" walk")
			assert.Greater(t, res.RejectionRate(), 0.1, what)
			assert.Less(t, res.RejectionRate(), 0.95, what)
			assert.Equal(t, int64(200*40), res.Proposals)
			res.Close()

			d := len(dc.start)
			far := make([]float64, d)
			far[0] = 3
			tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{dc.start, far}, Vars: []float64{0.3, 0.1}})
			res, err = ConstrainedSample(ops.CPU(), tg, x0, cfg)
			require.NoError(t, err, what)
			insideAll(t, cfg, res.Trace, what+" reverse")
			assert.Greater(t, res.RejectedTotal, int64(0), what)
			assert.Equal(t, int64(200*40), res.ScoreEvals, what)
			res.Close()
		}
	}
}

// ksStatistic is the Kolmogorov–Smirnov distance between the empirical law of x and the CDF F.
func ksStatistic(x []float64, F func(float64) float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	n := float64(len(s))
	d := 0.0
	for i, v := range s {
		f := F(v)
		d = math.Max(d, math.Max(float64(i+1)/n-f, f-float64(i)/n))
	}
	return d
}

// The uniform law on M is invariant under the forward walk. 4000 exact uniform samples of a box
// and of a 3-ball (SampleUniform) walk 200 steps of standard deviation 0.1 (a total time of 2, a
// few squared diameters); each coordinate of the final states is compared with the exact
// marginal CDF (box: uniform on [lo_j, hi_j]; unit 3-ball: F(x) = (2 + 3x − x³)/4) by a
// Kolmogorov–Smirnov test at level 10⁻³ per coordinate (critical distance
// sqrt(ln(2/10⁻³)/2)/√n = 0.0308): with 5 coordinates, before and after the walk, the
// false-failure rate is below 10⁻². The test has power: the same walk with proposals clamped
// onto the box instead of rejected piles mass on the faces and fails it.
func TestMetropolisWalkKeepsUniformInvariant(t *testing.T) {
	const n = 4000
	crit := math.Sqrt(math.Log(2/1e-3)/2) / math.Sqrt(n)
	box, err := ops.NewBox([]float64{-1, 0}, []float64{2, 1})
	require.NoError(t, err)
	ball, err := ops.NewBall([]float64{0, 0, 0}, 1)
	require.NoError(t, err)
	boxCDF := func(lo, hi float64) func(float64) float64 {
		return func(x float64) float64 { return math.Min(1, math.Max(0, (x-lo)/(hi-lo))) }
	}
	ballCDF := func(x float64) float64 { return (2 + 3*x - x*x*x) / 4 }
	for _, tc := range []struct {
		name string
		dom  *ops.Domain
		cdf  []func(float64) float64
	}{
		{"box", box, []func(float64) float64{boxCDF(-1, 2), boxCDF(0, 1)}},
		{"ball", ball, []func(float64) float64{ballCDF, ballCDF, ballCDF}},
	} {
		d := tc.dom.Dim()
		u, err := SampleUniform(tc.dom, n, 11)
		require.NoError(t, err)
		x0, err := tensor.FromFloat64s(tensor.F64, u, n, d)
		require.NoError(t, err)
		res, err := MetropolisWalk(ops.CPU(), x0, ConstrainedConfig{Domain: tc.dom, Steps: 200, Horizon: 2, Seed: 12})
		require.NoError(t, err)
		x, err := res.Samples.Float64s()
		require.NoError(t, err)
		assert.Greater(t, res.RejectionRate(), 0.02, tc.name)
		for j := 0; j < d; j++ {
			col := func(v []float64) []float64 {
				c := make([]float64, n)
				for i := range c {
					c[i] = v[i*d+j]
				}
				return c
			}
			assert.Less(t, ksStatistic(col(u), tc.cdf[j]), crit, "%s: coordinate %d of the exact start", tc.name, j)
			assert.Less(t, ksStatistic(col(x), tc.cdf[j]), crit, "%s: coordinate %d after the walk", tc.name, j)
		}
		// moves happened: the chains are far from their starts
		moved := 0
		for i := range x {
			if math.Abs(x[i]-u[i]) > 0.1 {
				moved++
			}
		}
		assert.Greater(t, moved, len(x)/2, tc.name)
		res.Close()
	}

	// Power: clamp the same proposals onto the box.
	u, err := SampleUniform(box, n, 11)
	require.NoError(t, err)
	xi, err := tensor.New(nil, tensor.F64, n, 2)
	require.NoError(t, err)
	for s := 0; s < 200; s++ {
		require.NoError(t, ops.CPU().Normal(xi, drawAt(12, s, PurposeConstrained, 0)))
		z, _ := xi.F64()
		for i := range u {
			lo, hi := []float64{-1, 0}[i%2], []float64{2, 1}[i%2]
			u[i] = math.Min(hi, math.Max(lo, u[i]+0.1*z[i]))
		}
	}
	c := make([]float64, n)
	for i := range c {
		c[i] = u[2*i+1]
	}
	assert.Greater(t, ksStatistic(c, boxCDF(0, 1)), crit, "a clamped walk is not uniform")
}

// hostWalk recomputes a constrained run on the host from the same normals (Site(s,
// PurposeConstrained) of chains first…first+n): y' = y + h·score(y, τ_s) + √h ξ, kept when inside;
// score nil is the forward walk. It returns the final states and the per-chain rejection counts.
func hostWalk(t *testing.T, x0 [][]float64, cfg ConstrainedConfig, score func(y []float64, tau float64) []float64) ([][]float64, []int64) {
	n, d := len(x0), len(x0[0])
	h := cfg.Horizon / float64(cfg.Steps)
	x := make([][]float64, n)
	for i := range x {
		x[i] = slices.Clone(x0[i])
	}
	rej := make([]int64, n)
	xi, err := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, err)
	prop := make([]float64, d)
	for s := 0; s < cfg.Steps; s++ {
		require.NoError(t, ops.CPU().Normal(xi, drawAt(cfg.Seed, s, PurposeConstrained, cfg.FirstChain)))
		z, _ := xi.F64()
		tau := cfg.Horizon - float64(s)*h
		for i := range x {
			var g []float64
			if score != nil {
				g = score(x[i], tau)
			}
			for j := range prop {
				prop[j] = x[i][j]
				if g != nil {
					prop[j] += h * g[j]
				}
				prop[j] += math.Sqrt(h) * z[i*d+j]
			}
			if cfg.inside(prop) {
				copy(x[i], prop)
			} else {
				rej[i]++
			}
		}
	}
	return x, rej
}

// The rejection counts (and the states) match a recount on the host that regenerates the
// proposals from the documented draw sites — for the forward walk on every domain, and for the
// reverse sampler on a Gaussian, whose score −(y − μ)/(v + σ²) is computed here.
func TestConstrainedRejectionsMatchHostRecount(t *testing.T) {
	mu, v := []float64{0.3, 0.6}, 0.05
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{mu}, Vars: []float64{v}})
	gauss := func(y []float64, tau float64) []float64 {
		sig := math.Sqrt(tau)
		cv := v + sig*sig
		g := make([]float64, len(y))
		for j := range y {
			g[j] = -(y[j] - mu[j]) / cv
		}
		return g
	}
	for _, dc := range constrainedDomains(t) {
		cfg := dc.cfg
		cfg.Steps, cfg.Horizon, cfg.Seed, cfg.FirstChain = 30, 1.2, 21, 7
		rows := repeatRows(dc.start, 50)
		x0 := fromRows(t, tensor.F64, rows)
		res, err := MetropolisWalk(ops.CPU(), x0, cfg)
		require.NoError(t, err, dc.name)
		want, rej := hostWalk(t, rows, cfg, nil)
		assert.Equal(t, rej, res.Rejected, dc.name)
		assert.Equal(t, want, hostRows(t, res.Samples), dc.name)
		var total int64
		for _, r := range rej {
			total += r
		}
		assert.Equal(t, total, res.RejectedTotal, dc.name)
		assert.Greater(t, total, int64(0), dc.name)
		res.Close()

		if len(dc.start) != 2 {
			continue
		}
		res, err = ConstrainedSample(ops.CPU(), tg, x0, cfg)
		require.NoError(t, err, dc.name)
		want, rej = hostWalk(t, rows, cfg, gauss)
		assert.Equal(t, rej, res.Rejected, "%s reverse", dc.name)
		got := hostRows(t, res.Samples)
		for i := range want {
			assert.InDeltaSlice(t, want[i], got[i], 1e-12, "%s reverse: chain %d", dc.name, i)
		}
		res.Close()
	}
}

// Without rejections (a domain far larger than the target) the reverse sampler is the
// Euler–Maruyama discretisation of the reverse VE SDE, whose law on a Gaussian target N(μ, v I)
// is known: from y ~ N(μ, (v + T) I) the mean stays μ and the variance follows
// V' = (1 − h/(v + τ))² V + h. 4000 chains match the final mean and variance within zSE
// standard errors; with the domain cut through the target (the half-plane x₁ ≤ μ₁) the samples
// still match the target restricted to it on the other coordinate, and none crosses.
func TestConstrainedSampleFollowsReverseSDE(t *testing.T) {
	mu, v := []float64{1, -2}, 0.25
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{mu}, Vars: []float64{v}})
	big, err := ops.NewBox([]float64{-100, -100}, []float64{100, 100})
	require.NoError(t, err)
	const n, K, T = 4000, 100, 4.0
	cov := [][]float64{{v + T, 0}, {0, v + T}}
	x0 := fromRows(t, tensor.F64, exactGaussian(t, n, mu, cov, 8))
	res, err := ConstrainedSample(ops.CPU(), tg, x0, ConstrainedConfig{Domain: big, Steps: K, Horizon: T, Seed: 4})
	require.NoError(t, err)
	defer res.Close()
	assert.Zero(t, res.RejectedTotal)
	h, V := T/K, v+T
	for j := 0; j < K; j++ {
		tau := T - float64(j)*h
		c := 1 - h/(v+tau)
		V = c*c*V + h
	}
	assertMoments(t, hostRows(t, res.Samples), mu, [][]float64{{V, 0}, {0, V}}, 0, "reverse Euler–Maruyama")
	assert.InDelta(t, v, V, 0.15*v, "the discretised reverse SDE ends near the target's variance")

	half, err := ops.NewPolytope([][]float64{{1, 0}}, []float64{mu[0]})
	require.NoError(t, err)
	rows := exactGaussian(t, n, mu, cov, 9)
	for _, r := range rows {
		r[0] = math.Min(r[0], mu[0]) // start inside the half-plane
	}
	res2, err := ConstrainedSample(ops.CPU(), tg, fromRows(t, tensor.F64, rows), ConstrainedConfig{Domain: half, Steps: K, Horizon: T, Seed: 4})
	require.NoError(t, err)
	defer res2.Close()
	got := hostRows(t, res2.Samples)
	ys := make([][]float64, n)
	for i, r := range got {
		require.LessOrEqual(t, r[0], mu[0])
		ys[i] = r[1:]
	}
	assert.Greater(t, res2.RejectedTotal, int64(n))
	assertMoments(t, ys, mu[1:], [][]float64{{V}}, 0, "the coordinate along the boundary")
}

func TestConstrainedRejectsBadInput(t *testing.T) {
	box, err := ops.NewBox([]float64{0, 0}, []float64{1, 1})
	require.NoError(t, err)
	box3, err := ops.NewBox([]float64{0, 0, 0}, []float64{1, 1, 1})
	require.NoError(t, err)
	pred := func(x []float64) bool { return x[0] >= 0 }
	in := fromRows(t, tensor.F64, [][]float64{{0.5, 0.5}, {0.1, 0.9}})
	out := fromRows(t, tensor.F64, [][]float64{{0.5, 0.5}, {1.5, 0.9}, {2, 2}})
	closed := fromRows(t, tensor.F64, [][]float64{{0.5, 0.5}})
	require.NoError(t, closed.Close())
	good := ConstrainedConfig{Domain: box, Steps: 4, Horizon: 1}
	with := func(f func(*ConstrainedConfig)) ConstrainedConfig { c := good; f(&c); return c }
	for _, tc := range []struct {
		name string
		b    ops.Backend
		x0   *tensor.Tensor
		cfg  ConstrainedConfig
		want string
	}{
		{"nil backend", nil, in, good, "nil backend"},
		{"nil start", ops.CPU(), nil, good, "nil or closed"},
		{"closed start", ops.CPU(), closed, good, "nil or closed"},
		{"no domain", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Domain = nil }), "exactly one of a domain and a predicate"},
		{"both", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Predicate = pred }), "exactly one of a domain and a predicate"},
		{"dimension", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Domain = box3 }), "dimension 3, the states 2"},
		{"no steps", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Steps = 0 }), "steps = 0"},
		{"no horizon", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Horizon = 0 }), "horizon T = 0"},
		{"NaN horizon", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Horizon = math.NaN() }), "horizon T = NaN"},
		{"thin", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.Thin = 5 }), "thin = 5"},
		{"chains", ops.CPU(), in, with(func(c *ConstrainedConfig) { c.FirstChain = ops.MaxChains - 1 }), "below 2^32"},
		{"outside", ops.CPU(), out, good, "2 of 3 initial states lie outside the box (first: row 1 = [1.5 0.9])"},
		{"outside predicate", ops.CPU(), fromRows(t, tensor.F64, [][]float64{{-1, 0}}), with(func(c *ConstrainedConfig) { c.Domain, c.Predicate = nil, pred }), "outside the predicate's set"},
	} {
		res, err := MetropolisWalk(tc.b, tc.x0, tc.cfg)
		assert.Nil(t, res, tc.name)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
		assert.Contains(t, err.Error(), "metropolis walk", tc.name)
	}
	tg := gmmTarget(t, mixture2)
	_, err = ConstrainedSample(ops.CPU(), nil, in, good)
	require.ErrorContains(t, err, "constrained sample: nil target")
	_, err = ConstrainedSample(ops.CPU(), gmmTarget(t, mixture10), in, good)
	require.ErrorContains(t, err, "initial state has dimension 2, the target")
	_, err = ConstrainedSample(ops.CPU(), tg, out, good)
	require.ErrorContains(t, err, "constrained sample: 2 of 3 initial states lie outside")

	tri, err := ops.NewPolytope([][]float64{{-1, 0}, {0, -1}, {1, 1}}, []float64{0, 0, 1})
	require.NoError(t, err)
	_, err = SampleUniform(tri, 10, 1)
	require.ErrorContains(t, err, "no direct sampler for a polytope")
	_, err = SampleUniform(nil, 10, 1)
	require.ErrorContains(t, err, "nil domain")
	_, err = SampleUniform(box, 0, 1)
	require.ErrorContains(t, err, "need at least one chain")
	var nilRes *ConstrainedResult
	assert.True(t, math.IsNaN(nilRes.RejectionRate()))
	assert.NoError(t, nilRes.Close())
}

// BenchmarkMetropolisWalk times the forward walk (32 steps: one Combine and one MetropolisStep
// each) in a box and, on the host path, with the same box as a predicate.
func BenchmarkMetropolisWalk(b *testing.B) {
	for _, d := range []int{2, 32} {
		lo, hi := make([]float64, d), make([]float64, d)
		for j := range hi {
			hi[j] = 1
		}
		box, err := ops.NewBox(lo, hi)
		require.NoError(b, err)
		const n = 4096
		u, err := SampleUniform(box, n, 1)
		require.NoError(b, err)
		x0, err := tensor.FromFloat64s(tensor.F32, u, n, d)
		require.NoError(b, err)
		for _, host := range []bool{false, true} {
			cfg := ConstrainedConfig{Domain: box, Steps: 32, Horizon: 0.32}
			if host {
				cfg = ConstrainedConfig{Predicate: box.Contains, Steps: 32, Horizon: 0.32}
			}
			b.Run(fmt.Sprintf("d=%d/predicate=%v", d, host), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					res, err := MetropolisWalk(ops.CPU(), x0, cfg)
					if err != nil {
						b.Fatal(err)
					}
					res.Close()
				}
				b.ReportMetric(float64(n)*32*float64(b.N)/b.Elapsed().Seconds(), "proposals/s")
			})
		}
	}
}

// Far from the origin c + s·z loses ulp(|c|), far more than ulp(r): every uniform sample of a
// tiny ball there must still be inside it.
func TestSampleUniformTinyBallFarAway(t *testing.T) {
	ball, err := ops.NewBall([]float64{1e6, -1e6}, 1e-6)
	require.NoError(t, err)
	const n = 200000
	u, err := SampleUniform(ball, n, 3)
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		require.True(t, ball.Contains(u[2*i:2*i+2]), "sample %d %v outside", i, u[2*i:2*i+2])
	}
}

// SampleUniformFrom(first) is the batch of SampleUniform's rows from row first, for a box and a
// ball, and refuses chains beyond 2^32.
func TestSampleUniformFromIsABatch(t *testing.T) {
	box, err := ops.NewBox([]float64{-1, 0, 2}, []float64{1, 3, 2.5})
	require.NoError(t, err)
	ball, err := ops.NewBall([]float64{1, -1, 0}, 2)
	require.NoError(t, err)
	for _, dom := range []*ops.Domain{box, ball} {
		whole, err := SampleUniform(dom, 12, 5)
		require.NoError(t, err)
		part, err := SampleUniformFrom(dom, 7, 5, 5)
		require.NoError(t, err)
		assert.Equal(t, whole[5*3:], part, "%v", dom.Kind())
	}
	_, err = SampleUniformFrom(box, 2, 5, ops.MaxChains-1)
	assert.ErrorContains(t, err, "2^32")
}
