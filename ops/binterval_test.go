package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// bintervalBatch runs BrownianIncrements on the CPU for paths rows of the draw with the queries
// (s[j], t[j]) shared by every row, in f64.
func bintervalBatch(t *testing.T, b Backend, spec BrownianIntervalSpec, d Draw, paths int, s, u []float64) []float64 {
	t.Helper()
	dst, err := tensor.New(nil, tensor.F64, paths, len(s))
	require.NoError(t, err)
	st, err := tensor.FromF64(append([]float64(nil), s...), 1, len(s))
	require.NoError(t, err)
	ut, err := tensor.FromF64(append([]float64(nil), u...), 1, len(u))
	require.NoError(t, err)
	require.NoError(t, b.BrownianIncrements(dst, st, ut, spec, d))
	return vals(t, dst)
}

// mcMoment returns the sample mean of x and its Monte-Carlo standard error.
func mcMoment(x []float64) (mean, se float64) {
	n := float64(len(x))
	for _, v := range x {
		mean += v
	}
	mean /= n
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / (n - 1) / n)
}

// bintervalZ is the largest |z| a Monte-Carlo check may show: 5 standard errors (two-sided
// false-failure rate 5.7e-7 per comparison; about 1e-5 over the ~20 comparisons of the tests).
const bintervalZ = 5

// Cov(W(s), W(t)) = min(s, t) and E W(t) = 0 over 40000 paths (seed 7), at depth 24 on [0, 2.5],
// grid times and times off the grid (rounded to it by at most T·2^-25, far below the standard
// error). Each product's mean is compared with its Monte-Carlo standard error: |z| < 5. Power:
// the standard error of a variance is about √(2/40000) = 0.7% of it, so a bridge scale off by 5%
// at any level that the times use moves some covariance by > 5 standard errors.
func TestBrownianIntervalCovariance(t *testing.T) {
	const T, paths = 2.5, 40000
	spec := BrownianIntervalSpec{Horizon: T, Depth: 24}
	times := []float64{T / 8, T / 3, T / 2, 0.7 * T, 13 * T / 16, T, 1e-3}
	zeros := make([]float64, len(times))
	w := bintervalBatch(t, CPU(), spec, Draw{Seed: 7, Site: 3}, paths, zeros, times)
	q := len(times)
	col := func(j int) []float64 {
		c := make([]float64, paths)
		for i := range c {
			c[i] = w[i*q+j]
		}
		return c
	}
	worst := 0.0
	for i := range times {
		m, se := mcMoment(col(i))
		z := m / se
		worst = math.Max(worst, math.Abs(z))
		assert.Less(t, math.Abs(z), float64(bintervalZ), "E W(%g) = %g ± %g", times[i], m, se)
		for j := i; j < q; j++ {
			a, b := col(i), col(j)
			p := make([]float64, paths)
			for k := range p {
				p[k] = a[k] * b[k]
			}
			m, se := mcMoment(p)
			want := math.Min(times[i], times[j])
			z := (m - want) / se
			worst = math.Max(worst, math.Abs(z))
			assert.Less(t, math.Abs(z), float64(bintervalZ), "Cov(W(%g), W(%g)) = %g ± %g, want %g", times[i], times[j], m, se, want)
		}
	}
	t.Logf("largest |z| over %d means and %d covariances: %.2f", q, q*(q+1)/2, worst)
}

// The bridge law and independent increments, on intervals that are not nodes of the tree: given
// W(a) and W(b), M = W(m) − (W(a) + W(b))/2 at m = (a + b)/2 has variance (b − a)/4 and is
// uncorrelated with W(a), W(b) and W(T); increments of disjoint intervals are uncorrelated and
// Var W(s, t) = t − s, down to intervals of 4 grid cells (depth 22, the deepest levels). 40000
// paths, seed 11; |z| < 5 as above.
func TestBrownianIntervalBridgeLaw(t *testing.T) {
	const T, paths = 1.5, 40000
	spec := BrownianIntervalSpec{Horizon: T, Depth: 22}
	h := spec.Resolution()
	a, b := 3*T/16, 11*T/16
	m := (a + b) / 2
	c := 0.6 * T
	// Columns: W(a), W(m), W(b), W(T), W(0.1T, 0.35T), W(0.35T, 0.9T), W(c, c+4h), W(c+4h, c+8h).
	s := []float64{0, 0, 0, 0, 0.1 * T, 0.35 * T, c, c + 4*h}
	u := []float64{a, m, b, T, 0.35 * T, 0.9 * T, c + 4*h, c + 8*h}
	w := bintervalBatch(t, CPU(), spec, Draw{Seed: 11, Site: 9, FirstChain: 100}, paths, s, u)
	q := len(s)
	prod := func(f func(r []float64) float64) (float64, float64) {
		p := make([]float64, paths)
		for i := range p {
			p[i] = f(w[i*q : (i+1)*q])
		}
		return mcMoment(p)
	}
	bridge := func(r []float64) float64 { return r[1] - (r[0]+r[2])/2 }
	for _, c := range []struct {
		name string
		f    func(r []float64) float64
		want float64
	}{
		{"Var M", func(r []float64) float64 { return bridge(r) * bridge(r) }, (b - a) / 4},
		{"Cov(M, W(a))", func(r []float64) float64 { return bridge(r) * r[0] }, 0},
		{"Cov(M, W(b))", func(r []float64) float64 { return bridge(r) * r[2] }, 0},
		{"Cov(M, W(T))", func(r []float64) float64 { return bridge(r) * r[3] }, 0},
		{"Var W(0.1T, 0.35T)", func(r []float64) float64 { return r[4] * r[4] }, 0.25 * T},
		{"Cov of disjoint increments", func(r []float64) float64 { return r[4] * r[5] }, 0},
		{"Var W(c, c+4h)", func(r []float64) float64 { return r[6] * r[6] / h }, 4},
		{"Var W(c+4h, c+8h)", func(r []float64) float64 { return r[7] * r[7] / h }, 4},
		{"Cov of adjacent small increments", func(r []float64) float64 { return r[6] * r[7] / h }, 0},
	} {
		mean, se := prod(c.f)
		z := (mean - c.want) / se
		t.Logf("%s = %.5g ± %.2g (want %g, z = %.2f)", c.name, mean, se, c.want, z)
		assert.Less(t, math.Abs(z), float64(bintervalZ), c.name)
	}
}

// The node keying of ops/binterval.go, spelled out: B(1) = ξ_0 and the root's normal ξ_1 are the
// pair of Philox block 0; walking left, the node at level ℓ ≥ 1 on the way to grid index 1 is
// 2^ℓ, whose normal is element 0 of pair 2^(ℓ−1), drawn at site d.Site + (2^(ℓ−1) >> 32) (the
// second site from depth 34 on). W(T·2^-D) must equal √T times that recursion bit for bit.
func TestBrownianIntervalNodeKeying(t *testing.T) {
	for _, depth := range []int{0, 1, 2, 20, 33, 34, 40} {
		spec := BrownianIntervalSpec{Horizon: 3, Depth: depth}
		d := Draw{Seed: 0x1234567890, Site: 77, FirstChain: 5}
		const path = 2
		chain := uint32(d.FirstChain + path)
		z0, z1 := normalPair64(philoxBlock(d.Seed, d.Site, chain, 0))
		bl, bh, xi := 0.0, z0, z1
		for l := 0; l < depth; l++ {
			mid := math.FMA(math.Sqrt(math.Pow(2, float64(-l-2))), xi, 0.5*(bl+bh))
			bh = mid
			if l+1 < depth {
				p := uint64(1) << uint(l)
				xi, _ = normalPair64(philoxBlock(d.Seed, d.Site+p>>32, chain, uint32(p)))
			}
		}
		bi, err := NewBrownianInterval(spec, d, path)
		require.NoError(t, err)
		got, err := bi.At(spec.Resolution())
		require.NoError(t, err)
		want := math.Sqrt(3) * bh
		assert.Equal(t, math.Float64bits(want), math.Float64bits(got), "depth %d: W(T·2^-D) = %v, want %v", depth, got, want)
		// Nothing but the grid point decides: a time off the grid by less than half a cell gives
		// the same value.
		if depth > 0 {
			near, err := bi.At(spec.Resolution() * 1.4)
			require.NoError(t, err)
			assert.Equal(t, got, near, "depth %d", depth)
		}
	}
}

// Additivity: W(r, s) + W(s, t) = W(r, t) to round-off for random triples, and a chain of 1000
// increments telescopes to the increment over the whole span. Each increment √T·(B_t − B_s) of
// exactly computed values B carries a relative error ≤ 2ε (ε = 2^-53); the sums add ε per partial
// sum: the bound is 2ε·Σ|inc| + ε·Σ|partial sums| + 2ε|total|, doubled.
func TestBrownianIntervalAdditivity(t *testing.T) {
	const eps = 0x1p-53
	spec := BrownianIntervalSpec{Horizon: 4, Depth: 30}
	rng := rand.New(rand.NewPCG(1, 2))
	for path := uint64(0); path < 20; path++ {
		bi, err := NewBrownianInterval(spec, Draw{Seed: 5, Site: 1}, path)
		require.NoError(t, err)
		inc := func(a, b float64) float64 {
			v, err := bi.Increment(a, b)
			require.NoError(t, err)
			return v
		}
		for k := 0; k < 200; k++ {
			x := []float64{rng.Float64() * 4, rng.Float64() * 4, rng.Float64() * 4}
			r, s, u := min(x[0], x[1], x[2]), x[0]+x[1]+x[2]-min(x[0], x[1], x[2])-max(x[0], x[1], x[2]), max(x[0], x[1], x[2])
			if !(r < s && s < u) {
				continue
			}
			a, b, c := inc(r, s), inc(s, u), inc(r, u)
			tol := 2 * (2*eps*(math.Abs(a)+math.Abs(b)+math.Abs(c)) + eps*math.Abs(a+b))
			require.LessOrEqual(t, math.Abs(a+b-c), tol, "path %d: W(%g,%g)+W(%g,%g) = %g, W(%g,%g) = %g", path, r, s, s, u, a+b, r, u, c)
		}
		const n = 1000
		sum, absInc, absPart := 0.0, 0.0, 0.0
		for k := 0; k < n; k++ {
			v := inc(0.3+3.5*float64(k)/n, 0.3+3.5*float64(k+1)/n)
			sum += v
			absInc += math.Abs(v)
			absPart += math.Abs(sum)
		}
		total := inc(0.3, 3.8)
		tol := 2 * (2*eps*absInc + eps*absPart + 2*eps*math.Abs(total))
		require.LessOrEqual(t, math.Abs(sum-total), tol, "path %d: telescoped %g, whole %g", path, sum, total)
	}
}

// The values do not depend on the order or batching of the queries: a batch of random queries
// equals, bit for bit, the same queries permuted (un-permuted afterwards), a sub-batch of its rows
// run with FirstChain moved, and each query asked alone of a fresh BrownianInterval.
func TestBrownianIntervalOrderAndBatchIndependence(t *testing.T) {
	spec := BrownianIntervalSpec{Horizon: 2, Depth: 26}
	d := Draw{Seed: 99, Site: 4, FirstChain: 10}
	rng := rand.New(rand.NewPCG(3, 4))
	const paths, q = 13, 257
	s := make([]float64, paths*q)
	u := make([]float64, paths*q)
	for i := range s {
		a, b := rng.Float64()*2, rng.Float64()*2
		s[i], u[i] = min(a, b), max(a, b)
		if s[i] == u[i] {
			s[i], u[i] = 0, 2
		}
		if i%17 == 0 { // sequential runs inside the batch
			s[i], u[i] = 2*float64(i%q)/q, 2*float64(i%q+1)/q
		}
	}
	run := func(d Draw, rows int, s, u []float64) []float64 {
		dst, _ := tensor.New(nil, tensor.F64, rows, q)
		st, _ := tensor.FromF64(append([]float64(nil), s...), rows, q)
		ut, _ := tensor.FromF64(append([]float64(nil), u...), rows, q)
		require.NoError(t, CPU().BrownianIncrements(dst, st, ut, spec, d))
		return vals(t, dst)
	}
	ref := run(d, paths, s, u)
	perm := rng.Perm(q)
	ps, pu := make([]float64, len(s)), make([]float64, len(u))
	for i := 0; i < paths; i++ {
		for j, p := range perm {
			ps[i*q+j], pu[i*q+j] = s[i*q+p], u[i*q+p]
		}
	}
	permuted := run(d, paths, ps, pu)
	for i := 0; i < paths; i++ {
		for j, p := range perm {
			require.Equal(t, math.Float64bits(ref[i*q+p]), math.Float64bits(permuted[i*q+j]), "row %d query %d", i, p)
		}
	}
	sub := run(Draw{Seed: d.Seed, Site: d.Site, FirstChain: d.FirstChain + 5}, 4, s[5*q:9*q], u[5*q:9*q])
	for k := range sub {
		require.Equal(t, math.Float64bits(ref[5*q+k]), math.Float64bits(sub[k]), "sub-batch element %d", k)
	}
	for i := 0; i < paths; i += 4 {
		for j := 0; j < q; j += 7 {
			bi, err := NewBrownianInterval(spec, d, uint64(i))
			require.NoError(t, err)
			v, err := bi.Increment(s[i*q+j], u[i*q+j])
			require.NoError(t, err)
			require.Equal(t, math.Float64bits(ref[i*q+j]), math.Float64bits(v), "alone: row %d query %d", i, j)
		}
	}
	// f32 is the f64 value rounded once.
	dst32, _ := tensor.New(nil, tensor.F32, paths, q)
	st, _ := tensor.FromF64(s, paths, q)
	ut, _ := tensor.FromF64(u, paths, q)
	require.NoError(t, CPU().BrownianIncrements(dst32, st, ut, spec, d))
	for k, v := range vals(t, dst32) {
		require.Equal(t, float64(float32(ref[k])), v, "f32 element %d", k)
	}
}

// The cache of recent nodes changes no value (bit for bit, the same queries with the cache on and
// off: sequential on a dyadic grid, sequential with arbitrary steps, random), and makes
// sequential queries cheap at depth 30: walking [0, T] in 4096 dyadic steps draws at most 2
// Philox blocks per query on average with the cache (20 or more without); 4096 steps of 0.8/4096
// (about 2^17.7 cells, off the grid) at most log2(step/resolution) + 3 with it and 40 or more
// without (measured: 1.00 and 22.0 blocks per query, 14.8 and 50.8).
func TestBrownianIntervalCacheChangesNothing(t *testing.T) {
	spec := BrownianIntervalSpec{Horizon: 1, Depth: 30}
	d := Draw{Seed: 1, Site: 2}
	const n = 4096
	for _, walk := range []struct {
		name          string
		start, length float64
		maxOn, minOff float64
	}{
		{"dyadic steps", 0, 1, 2, 20},
		{"arbitrary steps", 0.1, 0.8, math.Log2(0.8/n/spec.Resolution()) + 3, 40},
	} {
		on, err := NewBrownianInterval(spec, d, 3)
		require.NoError(t, err)
		off, err := NewBrownianInterval(spec, d, 3)
		require.NoError(t, err)
		off.SetCache(false)
		for k := 0; k < n; k++ {
			a, b := walk.start+walk.length*float64(k)/n, walk.start+walk.length*float64(k+1)/n
			x, err := on.Increment(a, b)
			require.NoError(t, err)
			y, err := off.Increment(a, b)
			require.NoError(t, err)
			require.Equal(t, math.Float64bits(y), math.Float64bits(x), "%s: step %d", walk.name, k)
		}
		seqOn, seqOff := float64(on.Nodes())/n, float64(off.Nodes())/n
		t.Logf("%s: %.2f blocks per query with the cache, %.2f without", walk.name, seqOn, seqOff)
		assert.LessOrEqual(t, seqOn, walk.maxOn, walk.name)
		assert.GreaterOrEqual(t, seqOff, walk.minOff, walk.name)
	}
	on, err := NewBrownianInterval(spec, d, 3)
	require.NoError(t, err)
	off, err := NewBrownianInterval(spec, d, 3)
	require.NoError(t, err)
	off.SetCache(false)
	rng := rand.New(rand.NewPCG(5, 6))
	for k := 0; k < 2000; k++ {
		a, b := rng.Float64(), rng.Float64()
		if a == b {
			continue
		}
		a, b = min(a, b), max(a, b)
		if k%3 == 0 { // short hops near the last query, then jumps
			b = math.Min(1, a+1e-6)
		}
		x, err := on.Increment(a, b)
		require.NoError(t, err)
		y, err := off.Increment(a, b)
		require.NoError(t, err)
		require.Equal(t, math.Float64bits(y), math.Float64bits(x), "random query %d (%g, %g)", k, a, b)
	}
}

// Bad input is refused with an error naming the problem, never a panic or a silent value.
func TestBrownianIntervalRejectsBadInput(t *testing.T) {
	d := Draw{Seed: 1}
	for _, c := range []struct {
		spec BrownianIntervalSpec
		site uint64
		want string
	}{
		{BrownianIntervalSpec{Horizon: 0, Depth: 10}, 0, "horizon T = 0"},
		{BrownianIntervalSpec{Horizon: -1, Depth: 10}, 0, "horizon T = -1"},
		{BrownianIntervalSpec{Horizon: math.NaN(), Depth: 10}, 0, "horizon"},
		{BrownianIntervalSpec{Horizon: math.Inf(1), Depth: 10}, 0, "horizon"},
		{BrownianIntervalSpec{Horizon: 1, Depth: -1}, 0, "depth D = -1"},
		{BrownianIntervalSpec{Horizon: 1, Depth: 41}, 0, "depth D = 41: must be between 0 and 40"},
		{BrownianIntervalSpec{Horizon: 1e-300, Depth: 40}, 0, "below float64's smallest normal"},
		{BrownianIntervalSpec{Horizon: 1, Depth: 40}, math.MaxUint64 - 2, "uses 128 sites"},
	} {
		_, err := NewBrownianInterval(c.spec, Draw{Site: c.site}, 0)
		assert.ErrorContains(t, err, c.want, "%+v site %d", c.spec, c.site)
	}
	_, err := NewBrownianInterval(BrownianIntervalSpec{Horizon: 1, Depth: 40}, Draw{Site: math.MaxUint64 - 127}, 0)
	assert.NoError(t, err, "the last 128 sites")
	_, err = NewBrownianInterval(BrownianIntervalSpec{Horizon: 1, Depth: 3}, Draw{FirstChain: 1 << 32}, 0)
	assert.ErrorContains(t, err, "below 2^32")

	spec := BrownianIntervalSpec{Horizon: 2, Depth: 12}
	bi, err := NewBrownianInterval(spec, d, 0)
	require.NoError(t, err)
	for _, c := range []struct {
		s, t float64
		want string
	}{
		{-0.1, 1, "s = -0.1 is below 0"},
		{0.5, 2.5, "t = 2.5 is past the horizon T = 2"},
		{1, 1, "need s < t"},
		{1.5, 1, "need s < t"},
		{math.NaN(), 1, "s = NaN is not finite"},
		{0, math.Inf(1), "t = +Inf is not finite"},
		{math.Inf(-1), 1, "not finite"},
	} {
		_, err := bi.Increment(c.s, c.t)
		assert.ErrorContains(t, err, c.want, "(%g, %g)", c.s, c.t)
	}
	_, err = bi.At(-1)
	assert.ErrorContains(t, err, "below 0")

	// The batch op: the same errors, with the query's position; shapes, dtypes, nil tensors.
	dst, _ := tensor.New(nil, tensor.F64, 2, 3)
	good, _ := tensor.FromF64([]float64{0, 0.5, 1}, 1, 3)
	ends, _ := tensor.FromF64([]float64{0.5, 1, 2, 0.5, 1, 1.5}, 2, 3)
	require.NoError(t, CPU().BrownianIncrements(dst, good, ends, spec, d))
	bad, _ := tensor.FromF64([]float64{0.5, 1, 2, 0.5, 1, 0.5}, 2, 3)
	assert.ErrorContains(t, CPU().BrownianIncrements(dst, good, bad, spec, d), "query (row 1, column 2): s = 1, t = 0.5: need s < t")
	f32, _ := tensor.New(nil, tensor.F32, 1, 3)
	assert.ErrorContains(t, CPU().BrownianIncrements(dst, f32, ends, spec, d), "query times s are f32: want f64")
	wrong, _ := tensor.New(nil, tensor.F64, 3, 3)
	assert.ErrorContains(t, CPU().BrownianIncrements(dst, good, wrong, spec, d), "query times t have shape [3 3]: want (2, 3)")
	assert.ErrorContains(t, CPU().BrownianIncrements(dst, nil, ends, spec, d), "query times s: tensor is nil")
	assert.ErrorContains(t, CPU().BrownianIncrements(nil, good, ends, spec, d), "destination tensor is nil")
	assert.ErrorContains(t, CPU().BrownianIncrements(dst, good, ends, BrownianIntervalSpec{Horizon: 2, Depth: 99}, d), "brownian increments: brownian interval: depth D = 99")
}

// Any spec and query either is refused with an error or gives a finite value — never a panic —
// and the value is the same with the cache on and off, after a query that leaves the cache
// anywhere.
func FuzzBrownianInterval(f *testing.F) {
	f.Add(1.0, 20, 0.25, 0.5, 0.1, uint64(1), uint64(0))
	f.Add(2.5, 40, 0.0, 2.5, 1.0, uint64(7), uint64(1<<40))
	f.Add(1e-300, 40, 0.0, 1e-300, 0.0, uint64(0), uint64(0))
	f.Add(math.MaxFloat64, 0, 1.0, math.MaxFloat64, 3.0, uint64(2), uint64(math.MaxUint64))
	f.Add(1.0, 33, math.NaN(), 0.5, 0.2, uint64(3), uint64(5))
	f.Fuzz(func(t *testing.T, horizon float64, depth int, s, u, prev float64, seed, site uint64) {
		spec := BrownianIntervalSpec{Horizon: horizon, Depth: depth}
		on, err := NewBrownianInterval(spec, Draw{Seed: seed, Site: site}, 0)
		if err != nil {
			return
		}
		off, err := NewBrownianInterval(spec, Draw{Seed: seed, Site: site}, 0)
		require.NoError(t, err)
		off.SetCache(false)
		if prev >= 0 && prev < horizon {
			_, err := on.Increment(prev, horizon)
			require.NoError(t, err)
		}
		x, err := on.Increment(s, u)
		y, err2 := off.Increment(s, u)
		require.Equal(t, err == nil, err2 == nil)
		if err != nil {
			return
		}
		require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "W(%g, %g) = %v on %+v", s, u, x, spec)
		require.Equal(t, math.Float64bits(y), math.Float64bits(x))
	})
}
