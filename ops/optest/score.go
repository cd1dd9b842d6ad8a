package optest

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// ScoreF32 and ScoreF64 bound a score op's error against the float64 reference, per element,
// relative to the output row's scale: |got − ref| ≤ Rtol·(|ref| + max_row |ref|). A float32 kernel
// sums d squared terms per component and a log-sum-exp over K components (or M·Q data terms)
// with error growing like a few hundred float32 ulp (≈ 1e-5 relative each step), and exp
// amplifies an absolute error of the logits into the same relative error of the weights, hence
// 2e-4; float64 kernels differ from the reference only in summation order and libm, 1e-10.
var (
	ScoreF32 = 2e-4
	ScoreF64 = 1e-10
)

// CompareRows compares (rows × width) outputs with ScoreF32/ScoreF64-style tolerance scaled by
// each row's largest |ref|. NaN must match NaN; an element still holding Sentinel on either side
// was not written.
func CompareRows(got, ref []float64, width int, rtol float64) error {
	if len(got) != len(ref) {
		return fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	for r := 0; r*width < len(ref); r++ {
		row := ref[r*width : (r+1)*width]
		scale := 0.0
		for _, v := range row {
			if !math.IsNaN(v) {
				scale = math.Max(scale, math.Abs(v))
			}
		}
		for j, want := range row {
			g := got[r*width+j]
			if err := notWritten(g, want, r, j); err != nil {
				return err
			}
			if math.IsNaN(want) != math.IsNaN(g) {
				return fmt.Errorf("row %d col %d: got %v, reference %v", r, j, g, want)
			}
			if math.IsNaN(want) {
				continue
			}
			if d := math.Abs(g - want); !(d <= rtol*(math.Abs(want)+scale)) {
				return fmt.Errorf("row %d col %d: got %v, reference %v (|diff| %.3g > %.3g)", r, j, g, want, d, rtol*(math.Abs(want)+scale))
			}
		}
	}
	return nil
}

// scoreCase evaluates one score op with every output (responsibilities when k > 0) on b inside
// guard bands, and on the CPU reference, every output buffer filled with Sentinel beforehand (so
// that an element either side leaves unwritten is seen), and compares them.
func scoreCase(b ops.Backend, dt tensor.DType, x []float64, d, k int, noise ops.Noise,
	eval func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor, ops.Noise) error) error {
	widths := map[string]int{"log p": 1, "score": d, "denoiser": d}
	if k > 0 {
		widths["responsibilities"] = k
	}
	_, err := againstReference(b, dt, x, d, widths, noise, eval)
	return err
}

// againstReference runs one score op on b (guarded outputs) and on the reference, compares every
// output at the score tolerance of dt, and returns the reference's outputs.
func againstReference(b ops.Backend, dt tensor.DType, x []float64, d int, widths map[string]int, noise ops.Noise,
	eval func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor, ops.Noise) error) (map[string][]float64, error) {
	got, err := runScore(b, dt, x, d, widths, noise, eval, true)
	if err != nil {
		return nil, err
	}
	ref, err := runScore(ops.Reference(), dt, x, d, widths, noise, eval, false)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	return ref, compareOutputs(got, ref, widths, dt)
}

// runScore evaluates one score op on be for the rows x (n × d, in dt) into fresh outputs of the
// given widths (guarded by Sentinel bands that must survive, when guarded is set) and returns
// them on the host.
func runScore(be ops.Backend, dt tensor.DType, x []float64, d int, widths map[string]int, noise ops.Noise,
	eval func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor, ops.Noise) error, guarded bool) (map[string][]float64, error) {
	n := len(x) / d
	dev := be.Device()
	xt, err := onDevice(dev, dt, x, n, d)
	if err != nil {
		return nil, err
	}
	defer xt.Close()
	nz := noise
	if noise.Levels != nil {
		vals, err := noise.Levels.Float64s()
		if err != nil {
			return nil, err
		}
		lv, err := onDevice(dev, dt, vals, n)
		if err != nil {
			return nil, err
		}
		defer lv.Close()
		nz.Levels = lv
	}
	bufs := map[string]*tensor.Tensor{}
	views := map[string]*tensor.Tensor{}
	for name, w := range widths {
		g := 0
		if guarded {
			g = guard
		}
		buf, err := tensor.New(dev, dt, g+n*w+g)
		if err != nil {
			return nil, err
		}
		defer buf.Close()
		if err := buf.Fill(Sentinel); err != nil {
			return nil, err
		}
		shape := []int{n, w}
		if name == "log p" {
			shape = []int{n}
		}
		v, err := buf.View(g, shape...)
		if err != nil {
			return nil, err
		}
		bufs[name], views[name] = buf, v
	}
	out := ops.ScoreOutputs{LogP: views["log p"], Score: views["score"], Denoiser: views["denoiser"], Resp: views["responsibilities"]}
	if err := eval(be, out, xt, nz); err != nil {
		return nil, err
	}
	if err := dev.Synchronize(); err != nil {
		return nil, err
	}
	res := map[string][]float64{}
	for name, buf := range bufs {
		all, err := hostValues(buf, false)
		if err != nil {
			return nil, err
		}
		if guarded {
			if err := CheckGuards(all, guard, name); err != nil {
				return nil, err
			}
			all = all[guard : len(all)-guard]
		}
		res[name] = all
	}
	return res, nil
}

// testInput returns n×d deterministic inputs spread over [-4, 4], with one NaN coordinate in row 1
// when n > 2 (it must poison that row only).
func testInput(n, d int) []float64 {
	x := make([]float64, n*d)
	for i := range x {
		x[i] = 4 * math.Sin(float64(i)*0.7+0.3)
	}
	if n > 2 {
		x[d] = math.NaN()
	}
	return x
}

// testGMM returns a K-component mixture in dimension d with the given covariance kind.
func testGMM(k, d int, kind ops.CovKind) (*ops.GMM, error) {
	return ops.NewGMM(testGMMSpec(k, d, kind))
}

// testGMMSpec is testGMM's specification.
func testGMMSpec(k, d int, kind ops.CovKind) ops.GMMSpec {
	spec := ops.GMMSpec{}
	for c := 0; c < k; c++ {
		spec.Weights = append(spec.Weights, 1+float64(c%3))
		mu := make([]float64, d)
		for j := range mu {
			mu[j] = 3 * math.Cos(float64(c*d+j))
		}
		spec.Means = append(spec.Means, mu)
		switch kind {
		case ops.Isotropic:
			spec.Vars = append(spec.Vars, 0.2+0.1*float64(c%4))
		case ops.Diagonal:
			row := make([]float64, d)
			for j := range row {
				row[j] = 0.1 + 0.05*float64((c+j)%5)
			}
			spec.Diag = append(spec.Diag, row)
		case ops.Full:
			// A = 0.3 I + 0.1·v vᵀ, SPD.
			cov := make([][]float64, d)
			for i := range cov {
				cov[i] = make([]float64, d)
				for j := range cov[i] {
					vi, vj := math.Sin(float64(c+i)), math.Sin(float64(c+j))
					cov[i][j] = 0.1 * vi * vj
					if i == j {
						cov[i][j] += 0.3
					}
				}
			}
			spec.Covs = append(spec.Covs, cov)
		}
	}
	return spec
}

// component is the one-component mixture of spec's component c.
func component(spec ops.GMMSpec, c int) ops.GMMSpec {
	one := ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{spec.Means[c]}}
	switch {
	case spec.Vars != nil:
		one.Vars = []float64{spec.Vars[c]}
	case spec.Diag != nil:
		one.Diag = [][]float64{spec.Diag[c]}
	default:
		one.Covs = [][][]float64{spec.Covs[c]}
	}
	return one
}

// scoreNoises are the noise settings the suite sweeps: VE, VP, affine and per-row VE levels with
// one invalid row.
func scoreNoises(n int) ([]ops.Noise, error) {
	levels := make([]float64, n)
	for i := range levels {
		levels[i] = 0.1 + float64(i%7)*0.3
	}
	if n > 3 {
		levels[3] = -1
	}
	lt, err := tensor.FromF64(levels, n)
	if err != nil {
		return nil, err
	}
	return []ops.Noise{ops.AtSigma(0.5), ops.AtTime(0.7), {Kind: ops.Affine, Scale: 0.9, Var: 0.3}, {Kind: ops.VE, Levels: lt}}, nil
}

// CheckGMMScore compares b's GMMScore with the reference for one (rows, K, d, kind) over every
// noise setting and both dtypes.
func CheckGMMScore(b ops.Backend, rows, k, d int, kind ops.CovKind) error {
	g, err := testGMM(k, d, kind)
	if err != nil {
		return err
	}
	return checkScoreOp(b, rows, d, k, func(be ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor, nz ops.Noise) error {
		return be.GMMScore(out, x, g, nz)
	})
}

// CheckEmpiricalScore compares b's EmpiricalScore with the reference for one (rows, M, d, Q).
//
// The data are the first rows of the queries (every query row sits on a data point), stored as
// float64 values that float32 represents exactly. A computation in float32 may use the data
// rounded to float32 (the CUDA backend uploads them so), the reference uses them as stored: with
// data that float32 does not represent, a query on a data point would be compared with a
// reference whose score is the data's rounding error over σ² (x − y ≠ 0 there, while the
// computation sees x = y and returns 0), not a property of the op. With representable data every
// backend and the reference see the same points in both dtypes (the upload still converts them).
func CheckEmpiricalScore(b ops.Backend, rows, m, d, q int) error {
	vals := rounded(tensor.F32, testInput(m, d)[:m*d])
	for i := range vals { // testInput puts a NaN in row 1; data must be finite
		if math.IsNaN(vals[i]) {
			vals[i] = 0.5
		}
	}
	data, err := tensor.FromF64(vals, m, d)
	if err != nil {
		return err
	}
	e, err := ops.NewEmpirical(data)
	if err != nil {
		return err
	}
	if q > 1 {
		w, s := make([]float64, q), make([]float64, q)
		for i := range w {
			w[i], s[i] = float64(i+1), 0.5+float64(i)
		}
		if e, err = e.WithMixture(w, s); err != nil {
			return err
		}
	}
	return checkScoreOp(b, rows, d, 0, func(be ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor, nz ops.Noise) error {
		return be.EmpiricalScore(out, x, e, nz)
	})
}

func checkScoreOp(b ops.Backend, rows, d, k int, eval func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor, ops.Noise) error) error {
	noises, err := scoreNoises(rows)
	if err != nil {
		return err
	}
	x := testInput(rows, d)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for i, nz := range noises {
			if err := scoreCase(b, dt, x, d, k, nz, eval); err != nil {
				return fmt.Errorf("%v, noise %d (%v): %w", dt, i, nz.Kind, err)
			}
		}
	}
	return nil
}

// farValue is a coordinate whose square overflows dt (so a quadratic form against a point near
// the origin is +∞ and its logit −∞), stored exactly in dt.
func farValue(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return float64(float32(1e30))
	}
	return 1e200
}

// CheckOverflowingLogits: terms whose quadratic form overflows (logit −∞) have weight 0, also when
// they come first (where a naive online log-sum-exp forms −∞ − (−∞) = NaN). For a mixture whose
// first and last components sit at farValue, b's outputs equal the reference's, and the
// reference's equal those of the middle component alone (log p plus the log of its weight;
// responsibilities (0, 1, 0)); for a data set whose first 70 points (more than one tile of
// points) sit at farValue, likewise with the remaining points alone (log p plus log(30/100)).
// Both dtypes, every covariance kind, dimensions served by the thread and the warp kernels, every
// noise setting of the suite.
func CheckOverflowingLogits(b ops.Backend) error {
	const rows = 37
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		far := farValue(dt)
		for _, d := range []int{2, 24} {
			x := testInput(rows, d)
			noises, err := scoreNoises(rows)
			if err != nil {
				return err
			}
			for _, kind := range []ops.CovKind{ops.Isotropic, ops.Diagonal, ops.Full} {
				spec := testGMMSpec(3, d, kind)
				for j := 0; j < d; j++ {
					spec.Means[0][j], spec.Means[2][j] = far, -far
				}
				w1 := spec.Weights[1] / (spec.Weights[0] + spec.Weights[1] + spec.Weights[2])
				mid := component(spec, 1)
				gFar, err := ops.NewGMM(spec)
				if err != nil {
					return err
				}
				gMid, err := ops.NewGMM(mid)
				if err != nil {
					return err
				}
				for i, nz := range noises {
					widths := map[string]int{"log p": 1, "score": d, "denoiser": d, "responsibilities": 3}
					far := func(be ops.Backend, out ops.ScoreOutputs, xt *tensor.Tensor, nz ops.Noise) error {
						return be.GMMScore(out, xt, gFar, nz)
					}
					ref, err := againstReference(b, dt, x, d, widths, nz, far)
					if err != nil {
						return fmt.Errorf("gmm with far components against the reference, %v d %d %v noise %d: %w", dt, d, kind, i, err)
					}
					want, err := runScore(ops.Reference(), dt, x, d, map[string]int{"log p": 1, "score": d, "denoiser": d, "responsibilities": 1}, nz,
						func(be ops.Backend, out ops.ScoreOutputs, xt *tensor.Tensor, nz ops.Noise) error {
							return be.GMMScore(out, xt, gMid, nz)
						}, false)
					if err != nil {
						return err
					}
					resp := make([]float64, 3*rows)
					for r := 0; r < rows; r++ {
						want["log p"][r] += math.Log(w1)
						resp[3*r+1] = want["responsibilities"][r] // 1, or NaN on an invalid row
						if math.IsNaN(resp[3*r+1]) {
							resp[3*r], resp[3*r+2] = math.NaN(), math.NaN()
						}
					}
					want["responsibilities"] = resp
					if err := compareOutputs(ref, want, widths, dt); err != nil {
						return fmt.Errorf("gmm with far components: the reference against the middle component alone, %v d %d %v noise %d: %w", dt, d, kind, i, err)
					}
				}
			}
			// A data set whose first 70 points are far.
			const m, nearM = 100, 30
			// Near points off the queries (a query on a data point has a score of 0 up to
			// cancellation, which is not what this checks).
			near := testInput(nearM, d)
			for i := range near {
				near[i] += 0.3
				if math.IsNaN(near[i]) { // testInput's NaN row; data must be finite
					near[i] = 0.5
				}
			}
			near = rounded(tensor.F32, near)
			vals := make([]float64, 0, m*d)
			for i := 0; i < m-nearM; i++ {
				for j := 0; j < d; j++ {
					vals = append(vals, far*float64(1-2*((i+j)%2)))
				}
			}
			vals = append(vals, near...)
			eFar, err := empiricalOf(vals, m, d)
			if err != nil {
				return err
			}
			eNear, err := empiricalOf(near, nearM, d)
			if err != nil {
				return err
			}
			widths := map[string]int{"log p": 1, "score": d, "denoiser": d}
			for i, nz := range noises {
				far := func(be ops.Backend, out ops.ScoreOutputs, xt *tensor.Tensor, nz ops.Noise) error {
					return be.EmpiricalScore(out, xt, eFar, nz)
				}
				ref, err := againstReference(b, dt, x, d, widths, nz, far)
				if err != nil {
					return fmt.Errorf("empirical with far points against the reference, %v d %d noise %d: %w", dt, d, i, err)
				}
				want, err := runScore(ops.Reference(), dt, x, d, widths, nz, func(be ops.Backend, out ops.ScoreOutputs, xt *tensor.Tensor, nz ops.Noise) error {
					return be.EmpiricalScore(out, xt, eNear, nz)
				}, false)
				if err != nil {
					return err
				}
				for r := range want["log p"] {
					want["log p"][r] += math.Log(float64(nearM) / m)
				}
				if err := compareOutputs(ref, want, widths, dt); err != nil {
					return fmt.Errorf("empirical with far points: the reference against the near points alone, %v d %d noise %d: %w", dt, d, i, err)
				}
			}
		}
	}
	return nil
}

// empiricalOf is the data set of the m × d values vals.
func empiricalOf(vals []float64, m, d int) (*ops.Empirical, error) {
	data, err := tensor.FromF64(vals, m, d)
	if err != nil {
		return nil, err
	}
	return ops.NewEmpirical(data)
}

// compareOutputs compares every output with CompareRows at the score tolerance of dt.
func compareOutputs(got, want map[string][]float64, widths map[string]int, dt tensor.DType) error {
	rtol := ScoreF64
	if dt == tensor.F32 {
		rtol = ScoreF32
	}
	for name, w := range widths {
		if err := CompareRows(got[name], want[name], w, rtol); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
