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
	n := len(x) / d
	widths := map[string]int{"log p": 1, "score": d, "denoiser": d}
	if k > 0 {
		widths["responsibilities"] = k
	}
	run := func(be ops.Backend, guarded bool) (map[string][]float64, error) {
		dev := be.Device()
		hx, err := tensor.FromFloat64s(dt, x, n, d)
		if err != nil {
			return nil, err
		}
		xt, err := hx.CopyTo(dev)
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
			hl, err := tensor.FromFloat64s(dt, vals, n)
			if err != nil {
				return nil, err
			}
			lv, err := hl.CopyTo(dev)
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
	got, err := run(b, true)
	if err != nil {
		return err
	}
	ref, err := run(ops.CPU(), false)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	rtol := ScoreF64
	if dt == tensor.F32 {
		rtol = ScoreF32
	}
	for name, w := range widths {
		if err := CompareRows(got[name], ref[name], w, rtol); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
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
	return ops.NewGMM(spec)
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
