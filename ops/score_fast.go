package ops

import (
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// fastBackend is the CPU backend users get from CPU(): the reference's ops (cpuBackend, the
// specification), with faster implementations of the hot ones beside them, as math/big keeps its
// pure-Go code beside the assembly. A fast op computes the same quantity in float64 from the same
// inputs; only the order and grouping of the arithmetic differ, and the conformance suite
// (ops/optest) checks it against Reference() at the tolerances every backend meets. Where a fast
// form does not apply (per-row noise levels), the reference runs.
type fastBackend struct{ cpuBackend }

func (fastBackend) Name() string { return "cpu" }

// gmmTable holds a mixture's per-component constants at one noise level (a, s), so that a row
// costs no logarithm and no division: am = a·μ_k, inv = 1/c_kj with c_kj = a² λ_kj + s, and
// cst_k = log w_k − ½ (d log 2π + Σ_j log c_kj).
type gmmTable struct {
	k, d int
	kind CovKind
	am   []float64 // K×d
	inv  []float64 // K (isotropic) or K×d
	cst  []float64 // K
	u    []float64 // full: the mixture's eigenvectors
}

func newGMMTable(g *GMM, a, s float64) *gmmTable {
	k, d := g.k, g.d
	t := &gmmTable{k: k, d: d, kind: g.kind, am: make([]float64, k*d), cst: make([]float64, k), u: g.u}
	for i, m := range g.means {
		t.am[i] = a * m
	}
	fd := float64(d)
	if g.kind == Isotropic {
		t.inv = make([]float64, k)
		for c := 0; c < k; c++ {
			cv := a*a*g.lambda[c] + s
			t.inv[c] = 1 / cv
			t.cst[c] = g.logW[c] - 0.5*fd*(log2Pi+math.Log(cv))
		}
		return t
	}
	t.inv = make([]float64, k*d)
	for c := 0; c < k; c++ {
		logdet := 0.0
		for j := 0; j < d; j++ {
			cv := a*a*g.lambda[c*d+j] + s
			t.inv[c*d+j] = 1 / cv
			logdet += math.Log(cv)
		}
		t.cst[c] = g.logW[c] - 0.5*(fd*log2Pi+logdet)
	}
	return t
}

// gmmNegligible: a component whose weight relative to the largest is below 2^-70 is left out of the
// score's sum. Its term changes the score by less than 2^-70 of its own gradient, far below the
// rounding of the sum; log p and the responsibilities still include it.
const gmmNegligible = 0x1p-70

// empLogNegligible: a data-set term whose logit is more than 80·log 2 below the row's largest has a
// weight below 2^-80 and is left out of every sum (its exponential is not formed). The sum of the
// weights is at least 1, so M such terms change it by less than M·2^-80 relative (below 10^-17 up
// to M = 10^7 points), less than its rounding.
const empLogNegligible = -80 * math.Ln2

// GMMScore: the reference's quantities (score_cpu.go) with the per-component constants of
// gmmTable computed once per call, the logits of a row computed first and exponentiated against
// their maximum (two passes over the components instead of the online rescaling), and the
// gradients of negligible components skipped. Per-row levels run the reference.
func (b fastBackend) GMMScore(out ScoreOutputs, x *tensor.Tensor, g *GMM, noise Noise) error {
	if noise.Levels != nil {
		return b.cpuBackend.GMMScore(out, x, g, noise)
	}
	if err := CheckGMMScore(tensor.CPU(), out, x, g, noise); err != nil {
		return err
	}
	a, s, ok := noise.ScaleVar(noise.Level)
	if !ok { // every row NaN: the reference's path
		return b.cpuBackend.GMMScore(out, x, g, noise)
	}
	t := newGMMTable(g, a, s)
	io := newRowIO(out, x, noise)
	d, k := g.d, g.k
	b.parallelRows(x.Dim(0), g.rowCost(), func(lo, hi int) {
		xr := make([]float64, d)
		score := make([]float64, d)
		den := make([]float64, d)
		rs := make([]float64, k)
		ps := make([]float64, k)
		var resp, diff, zc, gi []float64
		if io.resp.ok() {
			resp = make([]float64, k)
		}
		if g.kind == Full {
			diff, zc, gi = make([]float64, d), make([]float64, k*d), make([]float64, d)
		}
		for i := lo; i < hi; i++ {
			io.x.get(i, xr)
			lse := t.row(xr, rs, ps, score, diff, zc, gi)
			for c := range resp {
				resp[c] = math.Exp(rs[c] - lse)
			}
			tweedie(den, xr, score, a, s)
			io.store(i, lse, score, den, resp)
		}
	})
	return nil
}

// row evaluates one row x: the logits into rs, the weights e^{r − max} into ps, the score into
// score; it returns log p. diff, zc (K×d) and gi are scratch for full covariances.
func (t *gmmTable) row(x, rs, ps, score, diff, zc, gi []float64) float64 {
	d := t.d
	mx := math.Inf(-1)
	nan := false
	for c := 0; c < t.k; c++ {
		m := t.am[c*d : (c+1)*d]
		var r float64
		switch t.kind {
		case Isotropic:
			r = t.cst[c] - 0.5*t.inv[c]*sqDist(x, m)
		case Diagonal:
			r = t.cst[c] - 0.5*wSqDist(x, m, t.inv[c*d:(c+1)*d])
		case Full:
			for j := range diff {
				diff[j] = x[j] - m[j]
			}
			u := t.u[c*d*d : (c+1)*d*d]
			inv := t.inv[c*d : (c+1)*d]
			z := zc[c*d : (c+1)*d]
			q := 0.0
			for j := 0; j < d; j++ { // z_j = Σ_i U_ij diff_i
				zj := 0.0
				for i2 := 0; i2 < d; i2++ {
					zj += u[i2*d+j] * diff[i2]
				}
				q += zj * zj * inv[j]
				z[j] = zj * inv[j]
			}
			r = t.cst[c] - 0.5*q
		}
		rs[c] = r
		if r > mx {
			mx = r
		}
		if r != r {
			nan = true
		}
	}
	for j := range score {
		score[j] = 0
	}
	if nan || math.IsInf(mx, -1) {
		// A NaN coordinate, or every density zero: the reference's NaN row (its log p is −∞ in the
		// second case).
		for j := range score {
			score[j] = math.NaN()
		}
		if nan {
			return math.NaN()
		}
		return math.Inf(-1)
	}
	sum := 0.0
	for c, r := range rs {
		p := math.Exp(r - mx) // 0 for r = −∞
		ps[c] = p
		sum += p
	}
	for c, p := range ps {
		if p < gmmNegligible {
			continue
		}
		m := t.am[c*d : (c+1)*d]
		switch t.kind {
		case Isotropic:
			axpyDiff(score, p*t.inv[c], m, x)
		case Diagonal:
			inv := t.inv[c*d : (c+1)*d]
			for j := range score {
				score[j] += p * (m[j] - x[j]) * inv[j]
			}
		case Full: // ∇ = −U (z / c)
			u := t.u[c*d*d : (c+1)*d*d]
			z := zc[c*d : (c+1)*d]
			for i2 := 0; i2 < d; i2++ {
				s := 0.0
				row := u[i2*d : (i2+1)*d]
				for j, v := range row {
					s += v * z[j]
				}
				gi[i2] = s
			}
			for j := range score {
				score[j] -= p * gi[j]
			}
		}
	}
	for j := range score {
		score[j] /= sum
	}
	return mx + math.Log(sum)
}

// sqDist is ‖x − m‖², four partial sums for instruction-level parallelism.
func sqDist(x, m []float64) float64 {
	m = m[:len(x)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		e0, e1, e2, e3 := x[j]-m[j], x[j+1]-m[j+1], x[j+2]-m[j+2], x[j+3]-m[j+3]
		s0 += e0 * e0
		s1 += e1 * e1
		s2 += e2 * e2
		s3 += e3 * e3
	}
	for ; j < len(x); j++ {
		e := x[j] - m[j]
		s0 += e * e
	}
	return (s0 + s1) + (s2 + s3)
}

// wSqDist is Σ_j (x_j − m_j)² w_j, four partial sums.
func wSqDist(x, m, w []float64) float64 {
	m, w = m[:len(x)], w[:len(x)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		e0, e1, e2, e3 := x[j]-m[j], x[j+1]-m[j+1], x[j+2]-m[j+2], x[j+3]-m[j+3]
		s0 += e0 * e0 * w[j]
		s1 += e1 * e1 * w[j+1]
		s2 += e2 * e2 * w[j+2]
		s3 += e3 * e3 * w[j+3]
	}
	for ; j < len(x); j++ {
		e := x[j] - m[j]
		s0 += e * e * w[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyDiff adds alpha·(m − x) to y.
func axpyDiff(y []float64, alpha float64, m, x []float64) {
	m, x = m[:len(y)], x[:len(y)]
	for j := range y {
		y[j] += alpha * (m[j] - x[j])
	}
}

// empBlock is the number of query rows the fast empirical score evaluates together: each data
// point is loaded once per block, not once per row.
const empBlock = 4

// EmpiricalScore: the reference's quantities (score_cpu.go) for a shared noise level, with the
// data read in place (no copy, whatever its size), the per-term constants (log π_q − log M −
// d/2 log(2π s m_q), 1/(2 s m_q), 1/m_q) computed once, the squared distances of a block of
// empBlock rows to every point in one sweep over the data (direct differences, no expansion, so no
// cancellation far from the data), then the exponentials against the row's maximum and the
// weighted sums of the points, both over the terms whose relative weight is at least 2^-80
// (empLogNegligible). Per-row levels run the reference.
func (b fastBackend) EmpiricalScore(out ScoreOutputs, x *tensor.Tensor, e *Empirical, noise Noise) error {
	if noise.Levels != nil {
		return b.cpuBackend.EmpiricalScore(out, x, e, noise)
	}
	if err := CheckEmpiricalScore(tensor.CPU(), out, x, e, noise); err != nil {
		return err
	}
	a, s, ok := noise.ScaleVar(noise.Level)
	if !ok || !(s > 0) {
		return b.cpuBackend.EmpiricalScore(out, x, e, noise)
	}
	if f, err := e.data.F64(); err == nil {
		return empiricalScoreOf(b, out, x, e, noise, f, a, s)
	}
	f, err := e.data.F32()
	if err != nil {
		return err
	}
	return empiricalScoreOf(b, out, x, e, noise, f, a, s)
}

// empiricalScoreOf is EmpiricalScore on the data y (M×d, read in place, scaled by a as used).
func empiricalScoreOf[T float32 | float64](b fastBackend, out ScoreOutputs, x *tensor.Tensor, e *Empirical, noise Noise, y []T, a, s float64) error {
	d, m, nq := e.d, e.m, len(e.scales)
	logM := math.Log(float64(m))
	cq, hv, im := make([]float64, nq), make([]float64, nq), make([]float64, nq)
	for q := range cq {
		v := s * e.scales[q]
		cq[q] = e.logPi[q] - logM - 0.5*float64(d)*(log2Pi+math.Log(v))
		hv[q] = 1 / (2 * v)
		im[q] = 1 / e.scales[q]
	}
	io := newRowIO(out, x, noise)
	rows := x.Dim(0)
	blocks := (rows + empBlock - 1) / empBlock
	b.parallelRows(blocks, empBlock*m*nq*d, func(lo, hi int) {
		xb := make([]float64, empBlock*d)
		dist := make([]float64, empBlock*m)
		w1 := make([]float64, m) // Σ_q e^{r_pq − max}
		w2 := make([]float64, m) // Σ_q e^{r_pq − max} / m_q
		acc1, acc2 := make([]float64, d), make([]float64, d)
		score, den := make([]float64, d), make([]float64, d)
		for blk := lo; blk < hi; blk++ {
			r0 := blk * empBlock
			nb := min(empBlock, rows-r0)
			for r := 0; r < nb; r++ {
				io.x.get(r0+r, xb[r*d:(r+1)*d])
			}
			for r := nb; r < empBlock; r++ { // a partial block repeats its first row
				copy(xb[r*d:(r+1)*d], xb[:d])
			}
			sqDists4(dist, xb, y, a, d, m)
			for r := 0; r < nb; r++ {
				xr := xb[r*d : (r+1)*d]
				lse := empRow(dist[r*m:(r+1)*m], xr, y, cq, hv, im, a, s, w1, w2, acc1, acc2, score, den)
				io.store(r0+r, lse, score, den, nil)
			}
		}
	})
	return nil
}

// sqDists4 writes ‖x_r − a y_p‖² into dist[r·m + p] for the empBlock rows of xb and every point.
func sqDists4[T float32 | float64](dist, xb []float64, data []T, a float64, d, m int) {
	x0, x1, x2, x3 := xb[:d], xb[d:2*d], xb[2*d:3*d], xb[3*d:4*d]
	for p := 0; p < m; p++ {
		y := data[p*d : (p+1)*d]
		x0, x1, x2, x3 := x0[:len(y)], x1[:len(y)], x2[:len(y)], x3[:len(y)] // bounds checks hoisted
		var s0, s1, s2, s3 float64
		for j, yv := range y {
			v := a * float64(yv)
			e0, e1, e2, e3 := x0[j]-v, x1[j]-v, x2[j]-v, x3[j]-v
			s0 += e0 * e0
			s1 += e1 * e1
			s2 += e2 * e2
			s3 += e3 * e3
		}
		dist[p], dist[m+p], dist[2*m+p], dist[3*m+p] = s0, s1, s2, s3
	}
}

// empRow finishes one row from its squared distances: the denoiser into den, the score into
// score; it returns log p. w1, w2, acc1, acc2 are scratch.
func empRow[T float32 | float64](dist, x []float64, data []T, cq, hv, im []float64, a, s float64, w1, w2, acc1, acc2, score, den []float64) float64 {
	d := len(x)
	// The largest logit is that of the nearest point: r_pq = cq_q − dist_p·hv_q with hv_q > 0.
	dmin := math.Inf(1)
	nan := false
	for _, dd := range dist {
		if dd < dmin {
			dmin = dd
		}
		if dd != dd {
			nan = true
		}
	}
	mx := math.Inf(-1)
	for q := range cq {
		mx = max(mx, cq[q]-dmin*hv[q])
	}
	if nan || math.IsInf(mx, -1) { // a NaN coordinate, or every density zero: NaN outputs
		for j := range score {
			score[j], den[j] = math.NaN(), math.NaN()
		}
		if nan {
			return math.NaN()
		}
		return math.Inf(-1)
	}
	// A point farther than cut has every term below empLogNegligible.
	cut := math.Inf(-1)
	for q := range cq {
		cut = max(cut, (cq[q]-mx-empLogNegligible)/hv[q])
	}
	sum := 0.0
	for p, dd := range dist {
		w1[p] = 0
		if dd > cut {
			continue
		}
		v1, v2 := 0.0, 0.0
		for q := range cq {
			t := cq[q] - dd*hv[q] - mx
			if t < empLogNegligible {
				continue
			}
			w := math.Exp(t)
			v1 += w
			v2 += w * im[q]
		}
		w1[p], w2[p] = v1, v2
		sum += v1
	}
	for j := range acc1 {
		acc1[j], acc2[j] = 0, 0
	}
	acc3 := 0.0
	for p, v1 := range w1 {
		if v1 == 0 {
			continue
		}
		y := data[p*d : (p+1)*d]
		v2 := w2[p]
		for j, yv := range y {
			ay := a * float64(yv)
			acc1[j] += v1 * ay
			acc2[j] += v2 * ay
		}
		acc3 += v2
	}
	// acc hold Σ w a·y: the reference's sums of y times a.
	for j := range den {
		den[j] = acc1[j] / (a * sum)
		score[j] = (acc2[j] - x[j]*acc3) / (s * sum)
	}
	return mx + math.Log(sum)
}

// GMMChains runs the definition (StepByStepChains) on this backend, so every step's score takes
// the fast form.
func (b fastBackend) GMMChains(c GMMChains) error { return StepByStepChains(b, c) }
