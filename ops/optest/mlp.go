package optest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The learned denoiser (ops.Backend.MLPScore). A backend's outputs are compared with the float64
// reference element by element under a first-order forward error bound, computed in float64
// alongside the reference (MLPErrorBound). Every operation of the backend's precision injects a
// rounding error bounded by a few u times the local absolute-value forward pass — for a dense
// layer y = W a + b of K inputs ε_K·(|W| |a| + |b|), with the row's actual activations a — and
// every injected error reaches an output through the network's exact sensitivity (one backward
// pass per output coordinate, so the signed weights decide how errors grow with depth, not |W|,
// whose products overestimate it by a factor ≈ √(2K/π) per layer). The injections, with u the
// unit roundoff of the backend's dtype:
//
//	inputs   u·(|in| + c_in |μ|);  Fourier features u·(2 + 2π |f| |c_noise|)
//	dense    ε_K·(|W| |a| + |b|)   (the input layer, every hidden layer, the output layer's F)
//	SiLU     4u·|φ(z)|             (the division, the addition, and the exponential's ≤ 2 ulp)
//	residual 2u·|h|                (β·t and the sum)
//	D        4u·(|μ| + c_skip |x̃ − μ| + c_out |F|),  score: (a E_D + 4u·|x|) / s
//
// ε_K is the rounding of one dense layer of K inputs. In float32 it is the forward error of a
// K-term sum with weights rounded to float32: (K + 2)·u (γ_K for the sum, u for the weight, u for
// the bias). In float64 a backend that sums in the reference's order (index order, the bias last,
// no fused multiply-add, as the kernels do) differs from the reference only where a math library
// rounds exp (SiLU), log (c_noise), cos or sin differently (≤ 2 ulp in CUDA's, < 1 ulp in Go's)
// and in the roundings those perturbations flip, so ε = 8u per layer whatever K: the bound then
// grows with the depth (one injection per layer), not with the width. A float32 output is also
// compared after rounding the reference to float32, with one ulp more.

// MLPTolerance is the rounding model of a backend's precision.
type MLPTolerance struct {
	U     float64 // unit roundoff of the backend's precision
	Float bool    // the network runs in float32 (weights rounded to float32; ε_K grows with K)
}

// MLPToleranceOf returns the rounding model of dtype dt.
func MLPToleranceOf(dt tensor.DType) MLPTolerance {
	if dt == tensor.F32 {
		return MLPTolerance{U: 0x1p-24, Float: true}
	}
	return MLPTolerance{U: 0x1p-53}
}

// dense is ε_K.
func (t MLPTolerance) dense(k int) float64 {
	if t.Float {
		return float64(k+2) * t.U
	}
	return 8 * t.U
}

func mlpSilu(z float64) float64 { return z / (1 + math.Exp(-z)) }

// mlpSiluSlope is φ'(z) = σ(z)·(1 + z·(1 − σ(z))).
func mlpSiluSlope(z float64) float64 {
	sg := 1 / (1 + math.Exp(-z))
	return sg * (1 + z*(1-sg))
}

// mlpDense returns W a + b and |W| |a| + |b| for W of shape (len(b), len(a)).
func mlpDense(w, b, a []float64) (y, scale []float64) {
	k := len(a)
	y, scale = make([]float64, len(b)), make([]float64, len(b))
	for i := range b {
		s, m := 0.0, 0.0
		for j, v := range a {
			s += w[i*k+j] * v
			m += math.Abs(w[i*k+j] * v)
		}
		y[i], scale[i] = s+b[i], m+math.Abs(b[i])
	}
	return y, scale
}

// mlpBack returns Wᵀ g for W of shape (len(g), k).
func mlpBack(w, g []float64, k int) []float64 {
	out := make([]float64, k)
	for i, gi := range g {
		if gi == 0 {
			continue
		}
		row := w[i*k : (i+1)*k]
		for j := range out {
			out[j] += row[j] * gi
		}
	}
	return out
}

// mlpInject returns Σ_j |g_j|·e_j.
func mlpInject(g, e []float64, scale float64) float64 {
	s := 0.0
	for j := range g {
		s += math.Abs(g[j]) * e[j]
	}
	return scale * s
}

// MLPErrorBound returns the error bounds of the denoiser and the score of every row of x (rows
// × d, row-major) at the given noise (levels: per-row levels, or nil for noise.Level), for a
// backend with rounding model tol; rows whose level is invalid get +Inf (their outputs must be
// NaN), as does the score at σ = 0 ((a x̃ − x)/0).
func MLPErrorBound(m *ops.MLP, tol MLPTolerance, x []float64, rows int, noise ops.Noise, levels []float64) (denTol, scoreTol []float64) {
	c := m.Config()
	d, w, u := c.Dim, c.Width, tol.U
	param := func(name string) []float64 {
		o := m.Offset(name)
		n := 1
		for _, s := range ops.MLPParamShape(c, name) {
			n *= s
		}
		return m.Packed()[o : o+n]
	}
	mean, freq := param("data.mean"), param("embed.freq")
	wIn, bIn := param("input.weight"), param("input.bias")
	wOut, bOut := param("output.weight"), param("output.bias")
	type layer struct{ w, b []float64 }
	hidden := make([]layer, c.Layers())
	for i := range hidden {
		p := fmt.Sprintf("blocks.%d.%d", i/c.BlockLayers, i%c.BlockLayers)
		hidden[i] = layer{param(p + ".weight"), param(p + ".bias")}
	}
	scaled := func(v []float64, f float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = f * math.Abs(x)
		}
		return out
	}
	denTol, scoreTol = make([]float64, rows*d), make([]float64, rows*d)
	for r := 0; r < rows; r++ {
		level := noise.Level
		if levels != nil {
			level = levels[r]
		}
		a, s, ok := noise.ScaleVar(level)
		xr := x[r*d : (r+1)*d]
		sigma := math.Sqrt(s) / a
		if !ok || sigma == 0 {
			for j := 0; j < d; j++ {
				denTol[r*d+j], scoreTol[r*d+j] = math.Inf(1), math.Inf(1)
				if ok { // D = x/a: exact in double, rounded once in float
					denTol[r*d+j] = 2 * u * math.Abs(xr[j]/a)
				}
			}
			continue
		}
		cSkip, cOut, cIn, cNoise := c.Precond(sigma)
		// Forward: the values and the injected error bounds of every stage.
		in := make([]float64, c.Inputs())
		inErr := make([]float64, c.Inputs())
		for j := 0; j < d; j++ {
			in[j] = cIn * (xr[j]/a - mean[j])
			inErr[j] = u * (math.Abs(in[j]) + cIn*math.Abs(mean[j]))
		}
		for k, f := range freq {
			arg := 2 * math.Pi * f * cNoise
			in[d+k], in[d+c.Fourier+k] = math.Cos(arg), math.Sin(arg)
			inErr[d+k] = u * (2 + 2*math.Pi*math.Abs(f)*math.Abs(cNoise))
			inErr[d+c.Fourier+k] = inErr[d+k]
		}
		h, hScale := mlpDense(wIn, bIn, in)
		h0Err := scaled(hScale, tol.dense(len(in)))
		type stage struct {
			pre, preErr []float64 // a dense layer's output (before the residual sum) and its injected error
			act         []float64 // φ of the previous state, the dense layer's input
		}
		states := [][]float64{h} // h_0 … h_L
		blocks := make([][]stage, c.Depth)
		for l := 0; l < c.Depth; l++ {
			cur := h
			for j := 0; j < c.BlockLayers; j++ {
				act := make([]float64, w)
				for i, v := range cur {
					act[i] = mlpSilu(v)
				}
				ly := hidden[l*c.BlockLayers+j]
				pre, sc := mlpDense(ly.w, ly.b, act)
				blocks[l] = append(blocks[l], stage{pre, scaled(sc, tol.dense(w)), act})
				cur = pre
			}
			next := make([]float64, w)
			for i := range h {
				next[i] = h[i] + c.BranchMult*cur[i]
			}
			h = next
			states = append(states, h)
		}
		aL := make([]float64, w)
		for i, v := range h {
			aL[i] = mlpSilu(v)
		}
		fOut, fScale := mlpDense(wOut, make([]float64, d), aL)
		// Backward, one output coordinate at a time: g is ∂F_i/∂(the current quantity).
		for i := 0; i < d; i++ {
			f := c.OutMult*fOut[i] + bOut[i]
			eF := tol.dense(w) * (math.Abs(c.OutMult)*fScale[i] + math.Abs(bOut[i]))
			gA := make([]float64, w) // ∂F_i/∂a_L
			for j := range gA {
				gA[j] = c.OutMult * wOut[i*w+j]
			}
			eF += mlpInject(gA, aL, 4*u)
			g := make([]float64, w) // ∂F_i/∂h_L
			for j := range g {
				g[j] = gA[j] * mlpSiluSlope(h[j])
			}
			for l := c.Depth - 1; l >= 0; l-- {
				eF += mlpInject(g, states[l+1], 2*u) // the residual sum's rounding
				gt := make([]float64, w)
				for j := range gt {
					gt[j] = c.BranchMult * g[j]
				}
				for j := c.BlockLayers - 1; j >= 0; j-- {
					st := blocks[l][j]
					eF += mlpInject(gt, st.preErr, 1)
					ly := hidden[l*c.BlockLayers+j]
					ga := mlpBack(ly.w, gt, w) // ∂F_i/∂(the layer's input activation)
					eF += mlpInject(ga, st.act, 4*u)
					prev := states[l] // the activation's argument
					if j > 0 {
						prev = blocks[l][j-1].pre
					}
					for k := range ga {
						ga[k] *= mlpSiluSlope(prev[k])
					}
					gt = ga
				}
				for k := range g {
					g[k] += gt[k]
				}
			}
			eF += mlpInject(g, h0Err, 1)
			eF += mlpInject(mlpBack(wIn, g, len(in)), inErr, 1)
			xt := xr[i] / a
			dv := mean[i] + cSkip*(xt-mean[i]) + cOut*f
			eD := cOut*eF + 4*u*(math.Abs(mean[i])+cSkip*math.Abs(xt-mean[i])+cOut*math.Abs(f))
			denTol[r*d+i] = eD
			scoreTol[r*d+i] = (a*eD + 4*u*(a*math.Abs(dv)+math.Abs(xr[i]))) / s
		}
	}
	return denTol, scoreTol
}

// MLPCase is one evaluation CheckMLPScore runs.
type MLPCase struct {
	Config          ops.MLPConfig
	Seed            uint64 // of ops.RandomMLP
	Rows            int
	DType           tensor.DType
	Noise           ops.Noise // Levels is ignored: PerRow asks for per-row levels
	PerRow          bool      // per-row levels spread around Noise.Level, row 1 (when present) invalid
	Score, Denoiser bool      // which outputs to request
}

func (c MLPCase) String() string {
	var outs []string
	if c.Score {
		outs = append(outs, "score")
	}
	if c.Denoiser {
		outs = append(outs, "denoiser")
	}
	lv := ""
	if c.PerRow {
		lv = " per-row levels"
	}
	return fmt.Sprintf("%s, N = %d, %v, %v %g%s, %s", c.Config, c.Rows, c.DType, c.Noise.Kind, c.Noise.Level, lv, strings.Join(outs, "+"))
}

// MLPInputs returns the rows (rows × d) and, when perRow, the per-row levels of a check: points
// around the data mean at the scale a·x0 + √s·ξ of the level; level i spread over a factor of
// about 50 around level, row 1 given the invalid level −level.
func MLPInputs(m *ops.MLP, rows int, noise ops.Noise, perRow bool) (x, levels []float64) {
	c := m.Config()
	mean := m.Packed()[m.Offset("data.mean"):][:c.Dim]
	if perRow {
		levels = make([]float64, rows)
		for i := range levels {
			levels[i] = noise.Level * math.Exp(2*math.Sin(1.3*float64(i)+0.4))
		}
		if rows > 1 {
			levels[1] = -noise.Level
		}
	}
	x = make([]float64, rows*c.Dim)
	for i := 0; i < rows; i++ {
		level := noise.Level
		if perRow {
			level = math.Abs(levels[i])
		}
		a, s, _ := noise.ScaleVar(level)
		for j := 0; j < c.Dim; j++ {
			x0 := mean[j] + 0.8*math.Sin(0.7*float64(i)+1.9*float64(j)+0.3)
			xi := math.Cos(1.1*float64(i*c.Dim+j) + 0.2)
			x[i*c.Dim+j] = a*x0 + math.Sqrt(s)*1.5*xi
		}
	}
	return x, levels
}

// CheckMLPScore runs one case on b (outputs inside guard bands) and compares it with the float64
// reference under MLPErrorBound; rows with an invalid level must be NaN on both sides. It returns
// the largest |got − ref| / bound over the finite elements (the fraction of the bound used).
func CheckMLPScore(b ops.Backend, c MLPCase) (float64, error) {
	m, err := ops.RandomMLP(c.Config, c.Seed)
	if err != nil {
		return 0, err
	}
	dev := b.Device()
	d := c.Config.Dim
	xv, levels := MLPInputs(m, c.Rows, c.Noise, c.PerRow)
	noise := c.Noise
	noise.Levels = nil
	x, err := onDevice(dev, c.DType, xv, c.Rows, d)
	if err != nil {
		return 0, err
	}
	defer x.Close()
	hx, err := tensor.FromFloat64s(c.DType, xv, c.Rows, d)
	if err != nil {
		return 0, err
	}
	xr, err := hx.Float64s() // the rows as the backend sees them
	if err != nil {
		return 0, err
	}
	hnoise := noise
	var lr []float64
	if c.PerRow {
		lt, err := onDevice(dev, c.DType, levels, c.Rows)
		if err != nil {
			return 0, err
		}
		defer lt.Close()
		noise.Levels = lt
		hl, err := tensor.FromFloat64s(c.DType, levels, c.Rows)
		if err != nil {
			return 0, err
		}
		hnoise.Levels = hl
		if lr, err = hl.Float64s(); err != nil {
			return 0, err
		}
	}
	var gs, gd Guarded
	var out ops.ScoreOutputs
	if c.Score {
		if gs, err = NewGuarded(dev, guard, c.DType, nil, c.Rows, d); err != nil {
			return 0, err
		}
		defer gs.close()
		out.Score = gs.view
	}
	if c.Denoiser {
		if gd, err = NewGuarded(dev, guard, c.DType, nil, c.Rows, d); err != nil {
			return 0, err
		}
		defer gd.close()
		out.Denoiser = gd.view
	}
	if err := b.MLPScore(out, x, m, noise); err != nil {
		return 0, err
	}
	if err := dev.Synchronize(); err != nil {
		return 0, err
	}
	rs, err := tensor.New(nil, tensor.F64, c.Rows, d)
	if err != nil {
		return 0, err
	}
	rd, err := tensor.New(nil, tensor.F64, c.Rows, d)
	if err != nil {
		return 0, err
	}
	hx64, err := tensor.FromF64(xr, c.Rows, d)
	if err != nil {
		return 0, err
	}
	if hnoise.Levels != nil {
		if hnoise.Levels, err = tensor.FromF64(lr, c.Rows); err != nil {
			return 0, err
		}
	}
	if err := ops.Reference().MLPScore(ops.ScoreOutputs{Score: rs, Denoiser: rd}, hx64, m, hnoise); err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	denTol, scoreTol := MLPErrorBound(m, MLPToleranceOf(c.DType), xr, c.Rows, hnoise, lr)
	used := 0.0
	var errs []error
	for _, o := range []struct {
		name string
		on   bool
		g    Guarded
		ref  *tensor.Tensor
		tol  []float64
	}{{"score", c.Score, gs, rs, scoreTol}, {"denoiser", c.Denoiser, gd, rd, denTol}} {
		if !o.on {
			continue
		}
		got, err := o.g.values(o.name)
		if err != nil {
			return used, err
		}
		want, err := o.ref.Float64s()
		if err != nil {
			return used, err
		}
		if c.DType == tensor.F32 { // the reference's value as the backend must store it
			for i, v := range want {
				want[i] = float64(float32(v))
			}
		}
		for i := range want {
			g, r := got[i], want[i]
			if IsSentinel(g) {
				errs = append(errs, fmt.Errorf("%s row %d col %d: not written", o.name, i/d, i%d))
				break
			}
			if math.IsNaN(r) || math.IsNaN(g) {
				if !(math.IsNaN(r) && math.IsNaN(g)) {
					errs = append(errs, fmt.Errorf("%s row %d col %d: got %v, reference %v", o.name, i/d, i%d, g, r))
					break
				}
				continue
			}
			diff := math.Abs(g - r)
			bound := o.tol[i]
			if c.DType == tensor.F32 { // both sides rounded to float32: one ulp more
				bound += 0x1p-23 * math.Abs(r)
			}
			if math.IsInf(bound, 1) {
				if g != r {
					errs = append(errs, fmt.Errorf("%s row %d col %d: got %v, reference %v", o.name, i/d, i%d, g, r))
					break
				}
				continue
			}
			if diff > 0 {
				used = math.Max(used, diff/bound)
			}
			if !(diff <= bound) {
				errs = append(errs, fmt.Errorf("%s row %d col %d: got %v, reference %v: |error| %.3g exceeds the bound %.3g",
					o.name, i/d, i%d, g, r, diff, bound))
				break
			}
		}
	}
	return used, errors.Join(errs...)
}

// MLPConfigs are the architectures of the suite's checks: one- and two-layer blocks, a width
// that is not a multiple of 32, depth 1 and 4, d from 1 to 33, with and without Fourier features.
func MLPConfigs() []ops.MLPConfig {
	return []ops.MLPConfig{
		{Dim: 2, Width: 16, Depth: 2, BlockLayers: 1, Fourier: 4, SigmaData: 0.5, BranchMult: 0.7, OutMult: 1},
		{Dim: 1, Width: 5, Depth: 1, BlockLayers: 2, Fourier: 0, SigmaData: 1, BranchMult: 1, OutMult: 0.5},
		{Dim: 33, Width: 40, Depth: 4, BlockLayers: 2, Fourier: 3, SigmaData: 2, BranchMult: 0.5, OutMult: 2},
	}
}

// RunMLP runs the checks of MLPScore against b as subtests: MLPConfigs × both dtypes × edge row
// counts × VE, VP (shared and per-row levels, with an invalid row) and affine noise × the three
// output choices; then the rejections of bad input. It does not close b.
func RunMLP(t *testing.T, b ops.Backend) {
	t.Run("checks", func(t *testing.T) {
		for ci, cfg := range MLPConfigs() {
			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				for _, rows := range []int{0, 1, 33} {
					for _, nz := range []struct {
						noise  ops.Noise
						perRow bool
					}{{ops.AtSigma(0.3), false}, {ops.AtTime(0.8), true}, {ops.Noise{Kind: ops.Affine, Scale: 0.6, Var: 0.5}, false}} {
						for _, outs := range [][2]bool{{true, true}, {true, false}, {false, true}} {
							c := MLPCase{Config: cfg, Seed: uint64(ci + 1), Rows: rows, DType: dt, Noise: nz.noise,
								PerRow: nz.perRow, Score: outs[0], Denoiser: outs[1]}
							if _, err := CheckMLPScore(b, c); err != nil {
								t.Fatalf("%v: %v", c, err)
							}
						}
					}
				}
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if err := CheckMLPScoreRejections(b); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckMLPScoreRejections checks that b refuses what the CPU reference refuses: a nil network,
// a requested log-density or responsibilities, clean noise, a level that is not a finite number
// > 0, and rows whose width is not the network's.
func CheckMLPScoreRejections(b ops.Backend) error {
	dev := b.Device()
	m, err := ops.RandomMLP(MLPConfigs()[0], 1)
	if err != nil {
		return err
	}
	x, err := tensor.New(dev, tensor.F64, 3, 2)
	if err != nil {
		return err
	}
	defer x.Close()
	wide, err := tensor.New(dev, tensor.F64, 3, 3)
	if err != nil {
		return err
	}
	defer wide.Close()
	out, err := tensor.New(dev, tensor.F64, 3, 2)
	if err != nil {
		return err
	}
	defer out.Close()
	logp, err := tensor.New(dev, tensor.F64, 3)
	if err != nil {
		return err
	}
	defer logp.Close()
	s := ops.ScoreOutputs{Score: out}
	cases := []struct {
		name string
		err  error
	}{
		{"nil network", b.MLPScore(s, x, nil, ops.AtSigma(1))},
		{"log-density requested", b.MLPScore(ops.ScoreOutputs{Score: out, LogP: logp}, x, m, ops.AtSigma(1))},
		{"clean noise", b.MLPScore(s, x, m, ops.Noise{Kind: ops.Clean})},
		{"zero level", b.MLPScore(s, x, m, ops.AtSigma(0))},
		{"NaN level", b.MLPScore(s, x, m, ops.AtTime(math.NaN()))},
		{"rows of the wrong width", b.MLPScore(s, wide, m, ops.AtSigma(1))},
	}
	var errs []error
	for _, c := range cases {
		if c.err == nil {
			errs = append(errs, fmt.Errorf("mlp score: %s: accepted, want an error", c.name))
		}
	}
	return errors.Join(errs...)
}
