//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Parity of GMMScore with the float64 CPU reference (ops/score_cpu.go).
//
// Tolerance model. Everything the kernel computes is weighted by γ_k = e^{r_k − log p}, so an
// absolute error δr_k of a logit becomes the same relative error of γ_k, of log p, and of every
// γ-weighted sum. δr_k is a few units of roundoff u (2^-24 for float32, 2^-53 for float64) times
// the magnitude of what r_k is summed from:
//
//	ρ_k = K + d (1 + ½ log 2π) + ½ Σ_j |log c_kj| + |log w_k| + |log p| + |log γ_k| + P_k
//
// K for the sum of K weights in the log-sum-exp, the constant and log-determinant terms, and the
// quadratic form (½ q_k = cst_k − r_k ≤ |cst_k| + |log p| + |log γ_k|); P_k = ‖e_k‖ (‖x‖ + ‖a μ_k‖)
// / min_j c_kj bounds how far the rounding of e_k = x − a μ_k (and, in float32, of the uploaded
// μ, λ, U) moves the quadratic form, plus 2√d ‖e_k‖² / min c for the d-term products with U_k of
// full covariances. Per row, with g_k = −C_k⁻¹ e_k bounded by ‖e_k‖ / min_j c_kj:
//
//	L = Σ_k γ_k ρ_k,   Gn = Σ_k γ_k ‖e_k‖/min c,   G = Σ_k γ_k ρ_k ‖e_k‖/min c,
//	H = Σ_k γ_k (‖x‖ + ‖a μ_k‖ + ‖e_k‖)/min c   (× (1 + √d) for full covariances)
//
//	log p:   |Δ| ≤ base·(1 + |ref|) + slope·L
//	γ_k:     |Δ| ≤ (base + slope·(ρ_k + L))·γ_k + tiny
//	score_j: |Δ| ≤ base·(|ref| + H) + slope·(G + L·Gn)      (H: rounding of g_k itself)
//	D_j:     |Δ| ≤ (base·(|x_j| + s |score_j|) + s·tol(score_j)) / a + base·|ref|
//
// with slope = 16u (the first-order bound of a length-n sum is n·u, but the sums here are blocked
// — at most 16 terms per lane, then a 5-level tree — so a few u is typical; 16u leaves a margin)
// and base = 64u for the final operations (division by Σ e^{r − m}, exp and log within 2 ulp, the
// conversions to the output dtype). tiny = 4 × the smallest normal number (underflowing weights).
// Each case logs the largest |Δ|/bound it saw per output, so these constants can be tightened
// from measurements. Inputs sit near the mixture (|log p| of order d), where the bound is a few
// 1e-5 relative in float32 at d = 512 and about 1e-12 in float64. Far from the mixture the model
// is vacuous (|log p| ≈ 1e8 d); TestGMMScoreFarAway checks that regime on its own terms.

const gmmGuard = 37 // optest.Sentinel elements on each side of every output

// Output selections.
const (
	gmmLogP = 1 << iota
	gmmScore
	gmmDen
	gmmResp
	gmmAll = gmmLogP | gmmScore | gmmDen | gmmResp
)

// Noise settings: shared VE σ = 0.5, VP t = 0.7, affine (a, s) = (0.9, 0.3), and per-row VE or VP
// levels in [0.05, 2] with invalid levels (−1, 0, NaN, +Inf) in rows 3, 5, 7 and 11.
type gmmNoise int

const (
	gmmVE gmmNoise = iota
	gmmVP
	gmmAffine
	gmmVELevels
	gmmVPLevels
)

var gmmNoises = []gmmNoise{gmmVE, gmmVP, gmmAffine, gmmVELevels, gmmVPLevels}

func (n gmmNoise) String() string {
	return [...]string{"ve", "vp", "affine", "ve-levels", "vp-levels"}[n]
}

type gmmCase struct {
	rows, k, d int
	kind       ops.CovKind
	noise      gmmNoise
	outputs    int
	dt         tensor.DType
}

func (c gmmCase) String() string {
	return fmt.Sprintf("%v/N=%d/K=%d/d=%d/%v/%v/out=%b", c.dt, c.rows, c.k, c.d, c.kind, c.noise, c.outputs)
}

var (
	gmmMixturesMu sync.Mutex
	gmmMixtures   = map[[3]int]*ops.GMM{}
)

// gmmMixture returns a deterministic K-component mixture in dimension d. Means are N(0, 1.5²/d)
// per coordinate, so that component distances stay of order one standard deviation whatever d is
// (soft responsibilities); variances are in [0.05, 0.8]; full covariances are diag(v) + 0.6 B Bᵀ
// with B (d × min(d, 3)) of N(0, 1/d) entries.
func gmmMixture(t testing.TB, k, d int, kind ops.CovKind) *ops.GMM {
	t.Helper()
	key := [3]int{k, d, int(kind)}
	gmmMixturesMu.Lock()
	defer gmmMixturesMu.Unlock()
	if g, ok := gmmMixtures[key]; ok {
		return g
	}
	rng := rand.New(rand.NewSource(int64(1000003*k + 1009*d + int(kind))))
	spec := ops.GMMSpec{}
	for c := 0; c < k; c++ {
		spec.Weights = append(spec.Weights, 0.2+rng.Float64())
		mu := make([]float64, d)
		for j := range mu {
			mu[j] = 1.5 / math.Sqrt(float64(d)) * rng.NormFloat64()
		}
		spec.Means = append(spec.Means, mu)
		switch kind {
		case ops.Isotropic:
			spec.Vars = append(spec.Vars, 0.1+0.5*rng.Float64())
		case ops.Diagonal:
			v := make([]float64, d)
			for j := range v {
				v[j] = 0.05 + 0.75*rng.Float64()
			}
			spec.Diag = append(spec.Diag, v)
		case ops.Full:
			r := min(d, 3)
			bm := make([]float64, d*r)
			for i := range bm {
				bm[i] = rng.NormFloat64() / math.Sqrt(float64(d))
			}
			cov := make([][]float64, d)
			for i := range cov {
				cov[i] = make([]float64, d)
				for j := range cov[i] {
					sum := 0.0
					for q := 0; q < r; q++ {
						sum += bm[i*r+q] * bm[j*r+q] // the same order for (i, j) and (j, i): symmetric
					}
					cov[i][j] = 0.6 * sum
					if i == j {
						cov[i][j] += 0.05 + 0.4*rng.Float64()
					}
				}
			}
			spec.Covs = append(spec.Covs, cov)
		}
	}
	g, err := ops.NewGMM(spec)
	require.NoError(t, err)
	gmmMixtures[key] = g
	return g
}

// gmmHost returns a host tensor of dtype dt holding vals (rounded to float32 for F32).
func gmmHost(t testing.TB, dt tensor.DType, vals []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	if dt == tensor.F64 {
		h, err := tensor.FromF64(append([]float64(nil), vals...), shape...)
		require.NoError(t, err)
		return h
	}
	f := make([]float32, len(vals))
	for i, v := range vals {
		f[i] = float32(v)
	}
	h, err := tensor.FromF32(f, shape...)
	require.NoError(t, err)
	return h
}

// gmmInputs returns the case's inputs on the host: rows drawn near the noised mixture (a component
// sample, every fifth row halfway between two components), row 1 with a NaN coordinate when
// rows > 2, and the noise (per-row levels as a host tensor).
func gmmInputs(t testing.TB, g *ops.GMM, c gmmCase) (*tensor.Tensor, ops.Noise) {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(c.rows*7919 + c.d*104729 + c.k*13 + int(c.noise))))
	var noise ops.Noise
	levels := make([]float64, c.rows)
	switch c.noise {
	case gmmVE:
		noise = ops.AtSigma(0.5)
	case gmmVP:
		noise = ops.AtTime(0.7)
	case gmmAffine:
		noise = ops.Noise{Kind: ops.Affine, Scale: 0.9, Var: 0.3}
	case gmmVELevels, gmmVPLevels:
		noise = ops.Noise{Kind: ops.VE}
		if c.noise == gmmVPLevels {
			noise.Kind = ops.VP
		}
		for i := range levels {
			levels[i] = 0.05 + 1.95*rng.Float64()
		}
		for i, bad := range map[int]float64{3: -1, 5: 0, 7: math.NaN(), 11: math.Inf(1)} {
			if i < c.rows {
				levels[i] = bad
			}
		}
		noise.Levels = gmmHost(t, c.dt, levels, c.rows)
	}
	p := g.Params()
	k, d := p.K, p.D
	x := make([]float64, c.rows*d)
	for i := 0; i < c.rows; i++ {
		level := noise.Level
		if noise.Levels != nil {
			level = levels[i]
		}
		a, s, ok := noise.ScaleVar(level)
		if !ok {
			a, s = 1, 1
		}
		c1, c2 := rng.Intn(k), rng.Intn(k)
		lam := p.Lambda[c1]
		if g.Kind() != ops.Isotropic {
			lam = p.Lambda[c1*d]
		}
		spread := math.Sqrt(a*a*lam + s)
		for j := 0; j < d; j++ {
			m := a * p.Means[c1*d+j]
			if i%5 == 4 {
				m = 0.5 * a * (p.Means[c1*d+j] + p.Means[c2*d+j])
			}
			x[i*d+j] = m + spread*rng.NormFloat64()
		}
	}
	if c.rows > 2 {
		x[d+d/2] = math.NaN()
	}
	return gmmHost(t, c.dt, x, c.rows, d), noise
}

// gmmResult holds the outputs of one evaluation on the host (nil: not requested).
type gmmResult struct {
	logp, score, den, resp []float64
}

// gmmReference evaluates every output with the CPU reference.
func gmmReference(t testing.TB, g *ops.GMM, x *tensor.Tensor, noise ops.Noise) gmmResult {
	t.Helper()
	n, d, k, dt := x.Dim(0), x.Dim(1), g.K(), x.DType()
	alloc := func(shape ...int) *tensor.Tensor {
		o, err := tensor.New(nil, dt, shape...)
		require.NoError(t, err)
		return o
	}
	out := ops.ScoreOutputs{LogP: alloc(n), Score: alloc(n, d), Denoiser: alloc(n, d), Resp: alloc(n, k)}
	require.NoError(t, ops.Reference().GMMScore(out, x, g, noise))
	vals := func(o *tensor.Tensor) []float64 {
		v, err := o.Float64s()
		require.NoError(t, err)
		return v
	}
	return gmmResult{vals(out.LogP), vals(out.Score), vals(out.Denoiser), vals(out.Resp)}
}

// gmmOnDevice copies x (and per-row levels) to b's device, evaluates the selected outputs into
// buffers filled with optest.Sentinel with gmmGuard elements on each side, synchronises, checks
// that the guard bands are untouched (bit for bit) and returns the outputs.
func gmmOnDevice(t testing.TB, b ops.Backend, g *ops.GMM, xh *tensor.Tensor, noise ops.Noise, outputs int) gmmResult {
	t.Helper()
	dev := b.Device()
	n, d, k, dt := xh.Dim(0), xh.Dim(1), g.K(), xh.DType()
	x, err := xh.CopyTo(dev)
	require.NoError(t, err)
	defer x.Close()
	if noise.Levels != nil {
		lv, err := noise.Levels.CopyTo(dev)
		require.NoError(t, err)
		defer lv.Close()
		noise.Levels = lv
	}
	type buffer struct {
		buf, view *tensor.Tensor
	}
	bufs := map[int]buffer{}
	var out ops.ScoreOutputs
	for _, o := range []struct {
		sel   int
		shape []int
		dst   **tensor.Tensor
	}{
		{gmmLogP, []int{n}, &out.LogP},
		{gmmScore, []int{n, d}, &out.Score},
		{gmmDen, []int{n, d}, &out.Denoiser},
		{gmmResp, []int{n, k}, &out.Resp},
	} {
		if outputs&o.sel == 0 {
			continue
		}
		size := 1
		for _, s := range o.shape {
			size *= s
		}
		buf, err := tensor.New(dev, dt, gmmGuard+size+gmmGuard)
		require.NoError(t, err)
		defer buf.Close()
		require.NoError(t, buf.Fill(optest.Sentinel))
		view, err := buf.View(gmmGuard, o.shape...)
		require.NoError(t, err)
		bufs[o.sel] = buffer{buf, view}
		*o.dst = view
	}
	require.NoError(t, b.GMMScore(out, x, g, noise))
	require.NoError(t, dev.Synchronize())
	host := func(sel int) []float64 {
		bb, ok := bufs[sel]
		if !ok {
			return nil
		}
		h, err := bb.buf.CopyTo(nil)
		require.NoError(t, err)
		all, err := h.Float64s()
		require.NoError(t, err)
		require.NoError(t, optest.CheckGuards(all, gmmGuard, fmt.Sprintf("output %b", sel)))
		return all[gmmGuard : len(all)-gmmGuard]
	}
	return gmmResult{host(gmmLogP), host(gmmScore), host(gmmDen), host(gmmResp)}
}

// gmmUsage is, per output (log p, score, denoiser, responsibilities), the largest |Δ| / bound
// (≤ 1 passes), the largest |Δ|, and the largest |Δ| / (|ref| + max_row |ref|), the measure of the
// conformance suite's optest.ScoreF32 / ScoreF64.
type gmmUsage struct {
	usage, maxAbs, rowRel [4]float64
}

func (u gmmUsage) String() string {
	return fmt.Sprintf("max |Δ|/bound %.2g %.2g %.2g %.2g; max |Δ| %.2g %.2g %.2g %.2g; max row-relative %.2g %.2g %.2g %.2g (log p, score, denoiser, resp)",
		u.usage[0], u.usage[1], u.usage[2], u.usage[3], u.maxAbs[0], u.maxAbs[1], u.maxAbs[2], u.maxAbs[3],
		u.rowRel[0], u.rowRel[1], u.rowRel[2], u.rowRel[3])
}

// gmmCheck compares got with ref under the tolerance model above and returns how much of the
// bound was used. NaN must match NaN exactly (invalid levels, NaN inputs); every requested element
// must have been written.
func gmmCheck(t testing.TB, g *ops.GMM, xh *tensor.Tensor, noise ops.Noise, ref, got gmmResult) gmmUsage {
	t.Helper()
	p := g.Params()
	n, d, k := xh.Dim(0), p.D, p.K
	u := 0x1p-53
	tiny := 4 * 0x1p-1022
	if xh.DType() == tensor.F32 {
		u, tiny = 0x1p-24, 4*0x1p-126
	}
	slope, base := 16*u, 64*u
	x, err := xh.Float64s()
	require.NoError(t, err)
	var levels []float64
	if noise.Levels != nil {
		levels, err = noise.Levels.Float64s()
		require.NoError(t, err)
	}
	var use gmmUsage
	var rowMax [4]float64 // max |ref| over the current row, per output
	record := func(o int, i int, what string, gotv, refv, bound float64) {
		if optest.IsSentinel(gotv) || optest.IsSentinel(refv) {
			t.Fatalf("%s row %d: got %v, reference %v: not written (the fill value is %v)", what, i, gotv, refv, optest.Sentinel)
		}
		if math.IsNaN(refv) || math.IsNaN(gotv) {
			if math.IsNaN(refv) != math.IsNaN(gotv) {
				t.Fatalf("%s row %d: got %v, reference %v (NaN must match)", what, i, gotv, refv)
			}
			return
		}
		diff := math.Abs(gotv - refv)
		use.maxAbs[o] = math.Max(use.maxAbs[o], diff)
		use.usage[o] = math.Max(use.usage[o], diff/bound)
		if scale := math.Abs(refv) + rowMax[o]; scale > 0 {
			use.rowRel[o] = math.Max(use.rowRel[o], diff/scale)
		}
		if !(diff <= bound) {
			t.Fatalf("%s row %d: got %v, reference %v, |Δ| %.3g > bound %.3g", what, i, gotv, refv, diff, bound)
		}
	}
	rho := make([]float64, k)
	e := make([]float64, d)
	for i := 0; i < n; i++ {
		level := noise.Level
		if levels != nil {
			level = levels[i]
		}
		a, s, ok := noise.ScaleVar(level)
		xi := x[i*d : (i+1)*d]
		if !ok || math.IsNaN(ref.logp[i]) {
			// The whole row must be NaN in the reference and on the device.
			a, s = 1, 0
		}
		xn := 0.0
		for _, v := range xi {
			xn += v * v
		}
		xn = math.Sqrt(xn)
		var L, Gn, G, H float64
		logp := ref.logp[i]
		rowMax = [4]float64{math.Abs(logp), gmmMaxAbs(ref.score[i*d : (i+1)*d]),
			gmmMaxAbs(ref.den[i*d : (i+1)*d]), gmmMaxAbs(ref.resp[i*k : (i+1)*k])}
		for c := 0; c < k; c++ {
			gamma := ref.resp[i*k+c]
			rho[c] = 0
			if !(gamma > 0) {
				continue
			}
			cmin, sumLog := math.Inf(1), 0.0
			for j := 0; j < d; j++ {
				lam := p.Lambda[c]
				if g.Kind() != ops.Isotropic {
					lam = p.Lambda[c*d+j]
				}
				cv := a*a*lam + s
				cmin = math.Min(cmin, cv)
				sumLog += math.Abs(math.Log(cv))
			}
			en, mn := 0.0, 0.0
			for j := 0; j < d; j++ {
				m := a * p.Means[c*d+j]
				e[j] = xi[j] - m
				en += e[j] * e[j]
				mn += m * m
			}
			en, mn = math.Sqrt(en), math.Sqrt(mn)
			pk := en * (xn + mn) / cmin
			hk := (xn + mn + en) / cmin
			if g.Kind() == ops.Full {
				pk += 2 * math.Sqrt(float64(d)) * en * en / cmin
				hk *= 1 + math.Sqrt(float64(d))
			}
			rho[c] = float64(k) + float64(d)*(1+0.5*math.Log(2*math.Pi)) + 0.5*sumLog +
				math.Abs(p.LogWeights[c]) + math.Abs(logp) + math.Abs(math.Log(gamma)) + pk
			L += gamma * rho[c]
			Gn += gamma * en / cmin
			G += gamma * rho[c] * en / cmin
			H += gamma * hk
		}
		if got.logp != nil {
			record(0, i, "log p", got.logp[i], logp, base*(1+math.Abs(logp))+slope*L)
		}
		for j := 0; j < d; j++ {
			sref := ref.score[i*d+j]
			tolScore := base*(math.Abs(sref)+H) + slope*(G+L*Gn)
			if got.score != nil {
				record(1, i, fmt.Sprintf("score[%d]", j), got.score[i*d+j], sref, tolScore)
			}
			if got.den != nil {
				dref := ref.den[i*d+j]
				bound := (base*(math.Abs(xi[j])+s*math.Abs(sref))+s*tolScore)/a + base*math.Abs(dref)
				record(2, i, fmt.Sprintf("denoiser[%d]", j), got.den[i*d+j], dref, bound)
			}
		}
		if got.resp != nil {
			for c := 0; c < k; c++ {
				gamma := ref.resp[i*k+c]
				record(3, i, fmt.Sprintf("resp[%d]", c), got.resp[i*k+c], gamma, (base+slope*(rho[c]+L))*gamma+tiny)
			}
		}
	}
	return use
}

// gmmMaxAbs is max |v| over the non-NaN elements of v.
func gmmMaxAbs(v []float64) float64 {
	m := 0.0
	for _, e := range v {
		if !math.IsNaN(e) {
			m = math.Max(m, math.Abs(e))
		}
	}
	return m
}

// gmmRunCase runs one case on b and checks it against the reference.
func gmmRunCase(t testing.TB, b ops.Backend, c gmmCase) gmmUsage {
	t.Helper()
	g := gmmMixture(t, c.k, c.d, c.kind)
	xh, noise := gmmInputs(t, g, c)
	ref := gmmReference(t, g, xh, noise)
	got := gmmOnDevice(t, b, g, xh, noise, c.outputs)
	return gmmCheck(t, g, xh, noise, ref, got)
}

func gmmBackend(t testing.TB) ops.Backend {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		trackLaunches(tt)
	}
	b, err := New(gpu)
	require.NoError(t, err)
	return b
}

var gmmKinds = []ops.CovKind{ops.Isotropic, ops.Diagonal, ops.Full}

// Every kernel variant (d ≤ 4, ≤ 8, ≤ 16 — full covariances ≤ 8 —: a thread per row; ≤ 32, 64,
// 128, 256, 512: a warp per row with 1 … 16 coordinates per lane; > 512; full covariances) at and beside its thresholds, every
// covariance kind, every noise kind, both dtypes. On the emulated device 33 rows per case and two
// noise settings per width, a shared level and per-row levels (so that every variant still runs
// in both forms), the kinds rotating with the width; the full covariance of d = 700 (7 warps per
// block in float64, where the other widths get 8) over 9 rows and one noise setting.
func TestGMMScoreVariants(t *testing.T) {
	b := gmmBackend(t)
	defer b.Close()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, kind := range gmmKinds {
			dims := []int{1, 2, 3, 4, 5, 8, 9, 12, 16, 17, 32, 33, 64, 65, 128, 129, 256, 257, 512, 513}
			if kind == ops.Full {
				dims = []int{1, 2, 3, 4, 5, 8, 9, 32, 33, 65, 128, 129, 700}
			}
			for i, d := range dims {
				noises := sized(gmmNoises, []gmmNoise{[]gmmNoise{gmmVE, gmmVP, gmmAffine}[i%3], []gmmNoise{gmmVELevels, gmmVPLevels}[i%2]})
				rows := sized(65, 33)
				if emulated && d == 700 {
					rows, noises = 9, noises[dt.Size()/8:][:1]
				}
				for _, nz := range noises {
					c := gmmCase{rows: rows, k: 3, d: d, kind: kind, noise: nz, outputs: gmmAll, dt: dt}
					t.Run(c.String(), func(t *testing.T) { t.Log(gmmRunCase(t, b, c)) })
				}
			}
		}
	}
}

// Mixture sizes K ∈ {1, 3, 8, 64, 512} at small and warp dimensions, up to the hot case's upper
// end (K = 512, d = 512). On the emulated device 33 rows per case, K = 512 only at d = 2 and 9
// (at d = 128 and 512, K = 64 already spans several shared-memory tiles), and full covariances
// above d = 8 only up to K = 8 (that kernel streams every component's factor through shared
// memory whatever K is: more components are more of the same iterations).
func TestGMMScoreComponents(t *testing.T) {
	b := gmmBackend(t)
	defer b.Close()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, kind := range gmmKinds {
			for _, d := range []int{2, 9, 128, 512} {
				for i, k := range []int{1, 3, 8, 64, 512} {
					if kind == ops.Full && (d == 512 || d == 128 && k > 64) {
						continue // hundreds of large eigendecompositions in the CPU setup: slow, nothing new
					}
					if emulated && (k == 512 && d >= 128 || kind == ops.Full && d > 8 && k > 8) {
						continue
					}
					nz := []gmmNoise{gmmVE, gmmVPLevels}[i%2]
					c := gmmCase{rows: sized(129, 33), k: k, d: d, kind: kind, noise: nz, outputs: gmmAll, dt: dt}
					t.Run(c.String(), func(t *testing.T) { t.Log(gmmRunCase(t, b, c)) })
				}
			}
		}
	}
}

// Row counts that catch partial warps and blocks, empty input and one large batch. On the
// emulated device the large batch (largeRows) runs the thread-per-row variants only: they need
// more than 16384 rows (2 SMs × 32 blocks × 256 rows) to turn the grid-stride loop, the
// warp-per-row ones (8 rows per block) do that from 513 rows on, at 1023 and 1025.
func TestGMMScoreRows(t *testing.T) {
	b := gmmBackend(t)
	defer b.Close()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, rows := range append(append([]int(nil), optest.Rows...), largeRows()) {
			for _, cfg := range []struct {
				k, d int
				kind ops.CovKind
			}{{8, 2, ops.Isotropic}, {6, 16, ops.Diagonal}, {8, 33, ops.Diagonal}, {3, 9, ops.Full}, {5, 3, ops.Full}} {
				if emulated && rows == largeRows() && (cfg.d > 16 || cfg.kind == ops.Full && cfg.d > 8) {
					continue
				}
				nz := gmmVELevels
				if rows%2 == 1 {
					nz = gmmVP
				}
				c := gmmCase{rows: rows, k: cfg.k, d: cfg.d, kind: cfg.kind, noise: nz, outputs: gmmAll, dt: dt}
				t.Run(c.String(), func(t *testing.T) { t.Log(gmmRunCase(t, b, c)) })
			}
		}
	}
}

// Each output alone (the kernels skip the gradient when neither score nor denoiser is asked for).
func TestGMMScoreOutputSubsets(t *testing.T) {
	b := gmmBackend(t)
	defer b.Close()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, cfg := range []struct {
			k, d int
			kind ops.CovKind
		}{{4, 2, ops.Isotropic}, {4, 3, ops.Full}, {6, 7, ops.Diagonal}, {5, 13, ops.Diagonal},
			{5, 33, ops.Diagonal}, {5, 128, ops.Isotropic}, {3, 513, ops.Diagonal}, {3, 33, ops.Full}} {
			for _, outputs := range []int{gmmLogP, gmmScore, gmmDen, gmmResp, gmmScore | gmmResp} {
				for _, nz := range []gmmNoise{gmmVE, gmmVPLevels} {
					c := gmmCase{rows: 33, k: cfg.k, d: cfg.d, kind: cfg.kind, noise: nz, outputs: outputs, dt: dt}
					t.Run(c.String(), func(t *testing.T) { t.Log(gmmRunCase(t, b, c)) })
				}
			}
		}
	}
}

// Far from the mixture (|x| ≈ 1e4, σ = 1e-3) the naive e^{r} is 0/0; the online log-sum-exp keeps
// everything finite. One component takes all the weight there (the logit gaps, ≈ 1e4·|Δμ| / c,
// exceed any rounding of the logits, ≈ u·1e8 d), so the responsibilities are exactly 0 and 1 in
// both backends and the score is that component's −C⁻¹(x − m): a few roundings of x − m, which
// does not cancel (|x| ≫ |m|). Bounds: score and log p within 1e-5 (float32) / 1e-12 (float64)
// relative (log p ≈ −q/2 sums d positive terms; the score relative to the largest element of its
// row, since a full covariance's −U (z / c) may cancel in one coordinate); the denoiser (x +
// s·score)/a within the same relative bound of its row's largest |x|; responsibilities within
// 1e-6 / 1e-12 absolute.
func TestGMMScoreFarAway(t *testing.T) {
	b := gmmBackend(t)
	defer b.Close()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		rtol, atol := 1e-12, 1e-12
		if dt == tensor.F32 {
			rtol, atol = 1e-5, 1e-6
		}
		for _, cfg := range []struct {
			k, d int
			kind ops.CovKind
		}{{3, 2, ops.Isotropic}, {8, 33, ops.Diagonal}, {4, 512, ops.Diagonal}, {5, 700, ops.Isotropic},
			{3, 3, ops.Full}, {3, 33, ops.Full}} {
			name := fmt.Sprintf("%v/K=%d/d=%d/%v", dt, cfg.k, cfg.d, cfg.kind)
			t.Run(name, func(t *testing.T) {
				g := gmmMixture(t, cfg.k, cfg.d, cfg.kind)
				rng := rand.New(rand.NewSource(int64(cfg.d)))
				const rows = 33
				x := make([]float64, rows*cfg.d)
				for i := 0; i < rows; i++ {
					norm := 0.0
					row := x[i*cfg.d : (i+1)*cfg.d]
					for j := range row {
						row[j] = rng.NormFloat64()
						norm += row[j] * row[j]
					}
					for j := range row {
						row[j] *= 1e4 / math.Sqrt(norm)
					}
				}
				xh := gmmHost(t, dt, x, rows, cfg.d)
				noise := ops.AtSigma(1e-3)
				ref := gmmReference(t, g, xh, noise)
				got := gmmOnDevice(t, b, g, xh, noise, gmmAll)
				xs, err := xh.Float64s()
				require.NoError(t, err)
				for _, v := range append(append(append([]float64(nil), got.logp...), got.score...), append(got.den, got.resp...)...) {
					require.False(t, math.IsNaN(v) || math.IsInf(v, 0) || optest.IsSentinel(v), "non-finite or unwritten output far from the mixture")
				}
				m, err := optest.Compare(got.logp, ref.logp, optest.Tolerance{Rtol: rtol})
				t.Logf("log p: max abs %.3g, max rel %.3g", m.MaxAbs, m.MaxRel)
				assert.NoError(t, err, "log p")
				// The score relative to the largest element of its own row; the denoiser relative
				// to the row's largest |x| (x and s·score cancel down to about m).
				assert.NoError(t, optest.CompareRows(got.score, ref.score, cfg.d, rtol), "score")
				scale := make([]float64, rows)
				for i := range scale {
					scale[i] = gmmMaxAbs(xs[i*cfg.d:(i+1)*cfg.d]) + gmmMaxAbs(ref.den[i*cfg.d:(i+1)*cfg.d])
				}
				worst, err := optest.CompareRowsScaled(got.den, ref.den, scale, cfg.d, rtol)
				t.Logf("denoiser: max |Δ| / (max_row |x| + max_row |ref|) %.3g", worst)
				assert.NoError(t, err, "denoiser")
				m, err = optest.Compare(got.resp, ref.resp, optest.Tolerance{Atol: atol})
				t.Logf("resp: max abs %.3g", m.MaxAbs)
				assert.NoError(t, err, "resp")
			})
		}
	}
}

// Consecutive calls at different shared levels on the same mixture, with no synchronisation in
// between, each see their own level (the per-level table is rewritten in stream order), and
// concurrent callers do not disturb each other (8 callers, 20 calls each; 3 on the emulated
// device).
func TestGMMScoreLevelSequence(t *testing.T) {
	b := gmmBackend(t)
	defer b.Close()
	for _, kind := range gmmKinds {
		g := gmmMixture(t, 5, 9, kind)
		c := gmmCase{rows: 257, k: 5, d: 9, kind: kind, noise: gmmVE, dt: tensor.F64}
		xh, _ := gmmInputs(t, g, c)
		x, err := xh.CopyTo(gpu)
		require.NoError(t, err)
		sigmas := []float64{0.05, 0.5, 2, 0.5, 0.05}
		outs := make([]*tensor.Tensor, len(sigmas))
		for i, sigma := range sigmas {
			outs[i], err = tensor.New(gpu, tensor.F64, c.rows, c.d)
			require.NoError(t, err)
			require.NoError(t, b.GMMScore(ops.ScoreOutputs{Score: outs[i]}, x, g, ops.AtSigma(sigma)))
		}
		require.NoError(t, gpu.Synchronize())
		for i, sigma := range sigmas {
			ref := gmmReference(t, g, xh, ops.AtSigma(sigma))
			h, err := outs[i].CopyTo(nil)
			require.NoError(t, err)
			gotv, err := h.Float64s()
			require.NoError(t, err)
			gmmCheck(t, g, xh, ops.AtSigma(sigma), ref, gmmResult{score: gotv})
			outs[i].Close()
		}

		var wg sync.WaitGroup
		errs := make([]error, 8)
		results := make([]*tensor.Tensor, 8)
		for w := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := tensor.New(gpu, tensor.F64, c.rows)
				if err != nil {
					errs[w] = err
					return
				}
				results[w] = out
				for rep := 0; rep < sized(20, 3) && errs[w] == nil; rep++ {
					errs[w] = b.GMMScore(ops.ScoreOutputs{LogP: out}, x, g, ops.AtSigma(0.1*float64(w+1)))
				}
			}()
		}
		wg.Wait()
		require.NoError(t, gpu.Synchronize())
		for w, err := range errs {
			require.NoError(t, err)
			ref := gmmReference(t, g, xh, ops.AtSigma(0.1*float64(w+1)))
			h, err := results[w].CopyTo(nil)
			require.NoError(t, err)
			gotv, err := h.Float64s()
			require.NoError(t, err)
			gmmCheck(t, g, xh, ops.AtSigma(0.1*float64(w+1)), ref, gmmResult{logp: gotv})
			results[w].Close()
		}
		x.Close()
	}
}

// Every byte the backend allocates for mixtures (parameter and per-level tables, several mixtures
// and dtypes) is freed by Close; N = 0 launches nothing and succeeds.
func TestGMMScoreNoLeak(t *testing.T) {
	before := gpu.Allocated()
	b := gmmBackend(t)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, kind := range gmmKinds {
			for _, nz := range []gmmNoise{gmmVE, gmmVELevels} {
				gmmRunCase(t, b, gmmCase{rows: 33, k: 4, d: 17, kind: kind, noise: nz, outputs: gmmAll, dt: dt})
				n := launchesDuring(func() {
					gmmRunCase(t, b, gmmCase{rows: 0, k: 4, d: 17, kind: kind, noise: nz, outputs: gmmAll, dt: dt})
				})
				assert.Zero(t, n, "%v %v %v: kernel launches for N = 0", dt, kind, nz)
			}
		}
	}
	assert.Greater(t, gpu.Allocated(), before, "the backend keeps the mixture tables until Close")
	require.NoError(t, b.Close())
	assert.Equal(t, before, gpu.Allocated(), "device bytes after Close")
}
