package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// The Brownian interval (docs/math.md §4.6): W(s, t) = W(t) − W(s) of one Brownian path on
// [0, T] for any 0 ≤ s < t ≤ T, exact in law at the resolution T·2^−D, reproducible and
// independent of which queries are asked and in which order, without a stored tree.
//
// The path is W(t) = √T·B(t/T), B a standard Brownian motion on [0, 1] known on the dyadic grid
// u_k = k·2^−D, k = 0 … 2^D. Its values come from a binary tree of Brownian-bridge splits:
//
//	B(0) = 0,  B(1) = ξ_0;
//	node n = 2^ℓ + k (level ℓ = 0 … D−1, index k < 2^ℓ) covers [k·2^−ℓ, (k+1)·2^−ℓ] and sets
//	B(mid) = fma(σ_ℓ, ξ_n, ½·(B(left) + B(right))),  σ_ℓ = √(2^−ℓ−2)  (the bridge's sd √(len/4)),
//
// so every B(u_k) is, exactly in law, the Brownian motion at u_k (the bridge law: given its
// endpoints the midpoint is normal with their mean and a quarter of the length as variance), as
// exactly as the ξ are normal (the f64 normals of philox.go: 53-bit uniforms, |ξ| ≤ 8.57). A
// grid point k ≠ 0, 2^D is the midpoint of exactly one node, at level D − 1 − tz(k) (tz: trailing
// zeros), and its value needs the D − tz(k) nodes on the way from the root.
//
// Node keying. ξ_n is a pure function of (seed, site, chain, n): the f64 stream's normal pair
// (normalPair64) of the Philox block of pair p = n >> 1, element n & 1 (0: r·cos θ, 1: r·sin θ),
// the block with counter (lane uint32(p), chain, site') under the draw's key, where
// site' = d.Site + (p >> 32). The two children 2m, 2m+1 of node m share one block, and the
// endpoint ξ_0 shares the root's (n = 1). Pairs stay below 2^(D−1), so an interval of depth
// D ≤ 33 uses the one site d.Site and a deeper one the 2^(D−33) consecutive sites from d.Site
// (BrownianIntervalSpec.Sites); the caller reserves them. The f64 stream is used whatever the
// destination's dtype: an f32 output is the f64 value rounded once.
//
// Queries off the grid. A time t is placed on the grid by k(t) = roundToEven((t/T)·2^D) (one
// correctly rounded division, an exact scaling, round half to even): W(t) is the path's value at
// the grid point nearest to t, so W(s, t) is exactly in law the increment between the grid times
// nearest to s and t, and it is 0 when both round to the same grid point (an interval shorter
// than half the resolution). Choose D so that T·2^−D is well below the step sizes used.
//
// Increments. W(s, t) = √T·(B(u_{k(t)}) − B(u_{k(s)})) with both values from the tree: a sum of
// increments telescopes to round-off (additivity, a few ulp of √T·max|B|), and every value is the
// same whatever else is queried, in whichever order or batch (no state enters it).

// MaxBrownianIntervalDepth is the deepest tree of a Brownian interval: a resolution of T·2^−40,
// far coarser than float64's spacing of times near T (2^−52·T), so that every grid point is told
// apart by t/T, and at most 2^7 sites per interval.
const MaxBrownianIntervalDepth = 40

// brownianIntervalSiteDepth is the deepest tree whose pairs fit in the 32-bit lane of one site.
const brownianIntervalSiteDepth = 33

// BrownianIntervalSpec is the Brownian path a Brownian interval answers on: [0, Horizon], its
// tree Depth levels deep (resolution Horizon·2^−Depth).
type BrownianIntervalSpec struct {
	Horizon float64
	Depth   int
}

// Resolution is the grid spacing T·2^−D: query times are rounded to the nearest multiple.
func (s BrownianIntervalSpec) Resolution() float64 { return math.Ldexp(s.Horizon, -s.Depth) }

// Sites is the number of consecutive draw sites, from the draw's site, that the interval's
// normals occupy: 1 up to depth 33, 2^(D−33) beyond.
func (s BrownianIntervalSpec) Sites() uint64 {
	if s.Depth <= brownianIntervalSiteDepth {
		return 1
	}
	return 1 << uint(s.Depth-brownianIntervalSiteDepth)
}

// Check validates the spec and the draw site it is used at: a finite horizon T > 0, a depth
// 0 ≤ D ≤ MaxBrownianIntervalDepth, a resolution T·2^−D that float64 holds as a normal number,
// and sites d.Site … d.Site + Sites() − 1 within uint64.
func (s BrownianIntervalSpec) Check(site uint64) error {
	const op = "brownian interval"
	if !(s.Horizon > 0) || math.IsInf(s.Horizon, 0) {
		return fmt.Errorf("%s: horizon T = %g: must be a finite number > 0", op, s.Horizon)
	}
	if s.Depth < 0 || s.Depth > MaxBrownianIntervalDepth {
		return fmt.Errorf("%s: depth D = %d: must be between 0 and %d", op, s.Depth, MaxBrownianIntervalDepth)
	}
	if r := s.Resolution(); r < 0x1p-1022 {
		return fmt.Errorf("%s: resolution T·2^-D = %g·2^-%d = %g is below float64's smallest normal number: use a shallower tree",
			op, s.Horizon, s.Depth, r)
	}
	if n := s.Sites(); site > math.MaxUint64-(n-1) {
		return fmt.Errorf("%s: depth %d uses %d sites from site %d: past 2^64", op, s.Depth, n, site)
	}
	return nil
}

// checkQuery validates one query (s, t): finite, 0 ≤ s < t ≤ T.
func (s BrownianIntervalSpec) checkQuery(a, b float64) error {
	switch {
	case math.IsNaN(a) || math.IsInf(a, 0):
		return fmt.Errorf("s = %g is not finite", a)
	case math.IsNaN(b) || math.IsInf(b, 0):
		return fmt.Errorf("t = %g is not finite", b)
	case a < 0:
		return fmt.Errorf("s = %g is below 0", a)
	case b < 0:
		return fmt.Errorf("t = %g is below 0", b)
	case a > s.Horizon:
		return fmt.Errorf("s = %g is past the horizon T = %g", a, s.Horizon)
	case b > s.Horizon:
		return fmt.Errorf("t = %g is past the horizon T = %g", b, s.Horizon)
	case !(a < b):
		return fmt.Errorf("s = %g, t = %g: need s < t", a, b)
	}
	return nil
}

// gridIndex is k(t) = roundToEven((t/T)·2^D) ∈ [0, 2^D] for 0 ≤ t ≤ T (the product with the
// exact power of two 2^D is exact).
func (s BrownianIntervalSpec) gridIndex(t float64) uint64 {
	return uint64(math.RoundToEven(t / s.Horizon * s.gridScale()))
}

// gridScale is 2^D, exactly.
func (s BrownianIntervalSpec) gridScale() float64 {
	return math.Float64frombits(uint64(1023+s.Depth) << 52)
}

// GridScale is 2^D, the number of grid cells (the kernel's scale argument).
func (s BrownianIntervalSpec) GridScale() float64 { return s.gridScale() }

// bridgeScale is σ_ℓ = √(2^−ℓ−2), the standard deviation of a level-ℓ node's midpoint given its
// endpoints on [0, 1]: the square root of an exact power of two, correctly rounded.
func bridgeScale(level int) float64 {
	return math.Sqrt(math.Float64frombits(uint64(1023-2-level) << 52))
}

// brownianNodeBlock is the Philox block holding ξ_{2p} and ξ_{2p+1}.
func brownianNodeBlock(seed, site uint64, chain uint32, p uint64) [4]uint32 {
	return philoxBlock(seed, site+p>>32, chain, uint32(p))
}

// brownianLevel is one node on the way from the root to a grid point: at level ℓ it covers grid
// indices [lo, lo + 2^(D−ℓ)], its ends hold bl and bh, and xi is its own normal ξ_n.
type brownianLevel struct {
	lo         uint64
	bl, bh, xi float64
}

// BrownianInterval answers W(s, t) for one path (chain) of a draw (see the construction above).
//
// Cache. It keeps the nodes of its last descent (at most D of them, with their end values and
// normals): a grid point is resumed from the deepest kept node whose range still covers it
// instead of from the root. Without it a grid point costs D − tz(k) Philox blocks (up to D, and
// 2·D per query). With it, a query (s_k, s_{k+1}) that follows one ending at s_k finds s_k at the
// bottom of the stack (no block) and draws only the nodes below the smallest tree node holding
// both s_k and s_{k+1}: about log2((s_{k+1} − s_k)/resolution) + 1 blocks, whatever the depth —
// amortised O(1) (at most 2, measured 1.0) for steps of a dyadic grid T·2^−m, 14.8 for
// arbitrary steps of about 2^17.7 cells against 50.8 without it at D = 30
// (TestBrownianIntervalCacheChangesNothing). The kept nodes hold exactly the values a descent
// from the root computes, so the cache never changes a result. A BrownianInterval is not safe
// for concurrent use; make one per goroutine.
type BrownianInterval struct {
	spec   BrownianIntervalSpec
	seed   uint64
	site   uint64
	chain  uint32
	sqrtT  float64
	cache  bool
	stack  []brownianLevel // stack[ℓ]: the level-ℓ node of the last descent; len = levels kept
	scales []float64       // σ_ℓ
	nodes  int64           // nodes computed (Philox blocks drawn), for tests and benchmarks
}

// NewBrownianInterval returns the interval of chain d.FirstChain + path of the draw d.
func NewBrownianInterval(spec BrownianIntervalSpec, d Draw, path uint64) (*BrownianInterval, error) {
	if err := spec.Check(d.Site); err != nil {
		return nil, err
	}
	if d.FirstChain >= MaxChains || path >= MaxChains-d.FirstChain {
		return nil, fmt.Errorf("brownian interval: chain %d + path %d: chain indices must be below 2^32", d.FirstChain, path)
	}
	return newBrownianInterval(spec, d, path), nil
}

// newBrownianInterval is NewBrownianInterval for arguments already checked.
func newBrownianInterval(spec BrownianIntervalSpec, d Draw, path uint64) *BrownianInterval {
	bi := &BrownianInterval{spec: spec, seed: d.Seed, site: d.Site, chain: uint32(d.FirstChain + path),
		sqrtT: math.Sqrt(spec.Horizon), cache: true, scales: make([]float64, spec.Depth)}
	for l := range bi.scales {
		bi.scales[l] = bridgeScale(l)
	}
	return bi
}

// SetCache turns the cache of recent nodes on (the default) or off; results are the same.
func (bi *BrownianInterval) SetCache(on bool) {
	bi.cache = on
	bi.stack = bi.stack[:0]
}

// Nodes is the number of Philox blocks (tree nodes) drawn so far.
func (bi *BrownianInterval) Nodes() int64 { return bi.nodes }

// Spec is the interval's spec.
func (bi *BrownianInterval) Spec() BrownianIntervalSpec { return bi.spec }

// Increment returns W(s, t) = W(t) − W(s), 0 ≤ s < t ≤ T.
func (bi *BrownianInterval) Increment(s, t float64) (float64, error) {
	if err := bi.spec.checkQuery(s, t); err != nil {
		return 0, fmt.Errorf("brownian interval: %w", err)
	}
	return bi.increment(s, t), nil
}

// At returns W(t) = W(0, t), 0 ≤ t ≤ T (W(0) = 0).
func (bi *BrownianInterval) At(t float64) (float64, error) {
	if t == 0 {
		return 0, nil
	}
	return bi.Increment(0, t)
}

// increment is √T·(B(u_{k(t)}) − B(u_{k(s)})) for a valid query.
func (bi *BrownianInterval) increment(s, t float64) float64 {
	bs := bi.value(bi.spec.gridIndex(s))
	bt := bi.value(bi.spec.gridIndex(t))
	return bi.sqrtT * (bt - bs)
}

// value is B(u_k) on [0, 1], k ∈ [0, 2^D].
func (bi *BrownianInterval) value(k uint64) float64 {
	D := uint(bi.spec.Depth)
	if k == 0 {
		return 0
	}
	// Resume from the deepest kept node whose closed range covers k, else from the root.
	l := -1
	if bi.cache {
		for l = len(bi.stack) - 1; l >= 0; l-- {
			if lo := bi.stack[l].lo; k >= lo && k-lo <= uint64(1)<<(D-uint(l)) {
				break
			}
		}
	}
	if l < 0 {
		// Pair 0 holds ξ_0 (B(1)) and ξ_1 (the root's normal).
		z0, z1 := normalPair64(brownianNodeBlock(bi.seed, bi.site, bi.chain, 0))
		bi.nodes++
		bi.stack = append(bi.stack[:0], brownianLevel{lo: 0, bl: 0, bh: z0, xi: z1})
		l = 0
	}
	bi.stack = bi.stack[:l+1]
	for {
		n := bi.stack[l]
		width := uint64(1) << (D - uint(l))
		switch k {
		case n.lo:
			return n.bl
		case n.lo + width:
			return n.bh
		}
		half := width >> 1
		mid := math.FMA(bi.scales[l], n.xi, 0.5*(n.bl+n.bh))
		if k == n.lo+half {
			return mid
		}
		// The children 2m, 2m+1 of node m = 2^ℓ + lo/width draw their normals from pair m.
		m := uint64(1)<<uint(l) + n.lo>>(D-uint(l))
		z0, z1 := normalPair64(brownianNodeBlock(bi.seed, bi.site, bi.chain, m))
		bi.nodes++
		child := brownianLevel{lo: n.lo, bl: n.bl, bh: mid, xi: z0}
		if k > n.lo+half {
			child = brownianLevel{lo: n.lo + half, bl: mid, bh: n.bh, xi: z1}
		}
		bi.stack = append(bi.stack, child)
		l++
	}
}

// CheckBrownianIncrements validates BrownianIncrements' arguments except the query values: dst
// (paths, q) on dev; s and t float64 tensors on dev of shape (paths, q) or (1, q) (one row of
// times for every path); the spec (BrownianIntervalSpec.Check) and the chains of the draw.
func CheckBrownianIncrements(dev tensor.Device, dst, s, t *tensor.Tensor, spec BrownianIntervalSpec, d Draw) error {
	const op = "brownian increments"
	if err := checkFill(op, dev, dst, d); err != nil {
		return err
	}
	for _, x := range []struct {
		name string
		t    *tensor.Tensor
	}{{"s", s}, {"t", t}} {
		switch {
		case x.t == nil:
			return fmt.Errorf("%s: query times %s: tensor is nil", op, x.name)
		case x.t.Closed():
			return fmt.Errorf("%s: query times %s: %w", op, x.name, tensor.ErrClosed)
		case x.t.Device() != dev:
			return fmt.Errorf("%s: query times %s are on %s, backend runs on %s", op, x.name, x.t.Device().Name(), dev.Name())
		case x.t.DType() != tensor.F64:
			return fmt.Errorf("%s: query times %s are %v: want f64", op, x.name, x.t.DType())
		case x.t.Rank() != 2 || x.t.Dim(1) != dst.Dim(1) || (x.t.Dim(0) != dst.Dim(0) && x.t.Dim(0) != 1):
			return fmt.Errorf("%s: query times %s have shape %v: want (%d, %d) like the destination, or (1, %d)",
				op, x.name, x.t.Shape(), dst.Dim(0), dst.Dim(1), dst.Dim(1))
		}
	}
	if err := spec.Check(d.Site); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// CheckBrownianQueries validates the query values of host tensors s and t (shapes as
// CheckBrownianIncrements requires): every pair finite with 0 ≤ s < t ≤ T. The error names the
// first bad query by row and column.
func CheckBrownianQueries(s, t *tensor.Tensor, spec BrownianIntervalSpec) error {
	sv, err := s.F64()
	if err != nil {
		return fmt.Errorf("brownian increments: query times s: %w", err)
	}
	tv, err := t.F64()
	if err != nil {
		return fmt.Errorf("brownian increments: query times t: %w", err)
	}
	q := s.Dim(1)
	rows := max(s.Dim(0), t.Dim(0))
	for i := 0; i < rows; i++ {
		for j := 0; j < q; j++ {
			a, b := sv[min(i, s.Dim(0)-1)*q+j], tv[min(i, t.Dim(0)-1)*q+j]
			if err := spec.checkQuery(a, b); err != nil {
				return fmt.Errorf("brownian increments: query (row %d, column %d): %w", i, j, err)
			}
		}
	}
	return nil
}

// BrownianIncrements fills dst (paths, q) with increments of Brownian intervals: dst[i, j] =
// W_c(s[i, j], t[i, j]), W_c the path of chain c = d.FirstChain + i (see BrownianInterval: the
// tree of the spec keyed by (d.Seed, d.Site, c)); s and t are float64 of shape (paths, q), or
// (1, q) for times shared by every path. Each row is answered in column order by one
// BrownianInterval with its cache, which changes nothing but the cost: the values are those of a
// descent from the root for every query, the GPU's. Stored values are rounded once.
func (b cpuBackend) BrownianIncrements(dst, s, t *tensor.Tensor, spec BrownianIntervalSpec, d Draw) error {
	if err := CheckBrownianIncrements(tensor.CPU(), dst, s, t, spec, d); err != nil {
		return err
	}
	if err := CheckBrownianQueries(s, t, spec); err != nil {
		return err
	}
	paths, q := dst.Dim(0), dst.Dim(1)
	sv, _ := s.F64()
	tv, _ := t.F64()
	srow, trow := s.Dim(0) > 1, t.Dim(0) > 1
	rd := rowsOf(dst)
	b.parallelRows(paths, 8*q*(spec.Depth+1), func(lo, hi int) {
		out := make([]float64, q)
		for i := lo; i < hi; i++ {
			bi := newBrownianInterval(spec, d, uint64(i))
			si, ti := 0, 0
			if srow {
				si = i * q
			}
			if trow {
				ti = i * q
			}
			for j := range out {
				out[j] = bi.increment(sv[si+j], tv[ti+j])
			}
			rd.set(i, out)
		}
	})
	return nil
}
