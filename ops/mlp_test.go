package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

func testMLPConfig(blocks int) MLPConfig {
	return MLPConfig{Dim: 3, Width: 8, Depth: 3, BlockLayers: blocks, Fourier: 4, SigmaData: 0.7,
		BranchMult: 1 / math.Sqrt(3), OutMult: 0.5}
}

// withParams returns a copy of m with the named parameters replaced by fn's output.
func withParams(t *testing.T, m *MLP, fn func(p *MLPParam)) *MLP {
	t.Helper()
	ps := m.Params()
	for i := range ps {
		fn(&ps[i])
	}
	out, err := NewMLP(m.Config(), ps)
	require.NoError(t, err)
	return out
}

// With a zero output layer the network is its preconditioning's skip path,
// D = μ + σd²/(σ² + σd²)(x − μ): the exact denoiser of N(μ, σd² I). The mixture op computes that
// Gaussian's denoiser and score independently, at VE, VP and per-row noise levels.
func TestMLPZeroOutputIsTheGaussianDenoiser(t *testing.T) {
	for _, blocks := range []int{1, 2} {
		c := testMLPConfig(blocks)
		m0, err := RandomMLP(c, 1)
		require.NoError(t, err)
		m := withParams(t, m0, func(p *MLPParam) {
			if p.Name == "output.weight" || p.Name == "output.bias" {
				clear(p.Data)
			}
		})
		mean := m.Params()[0].Data
		g, err := NewGMM(GMMSpec{Weights: []float64{1}, Means: [][]float64{mean}, Vars: []float64{c.SigmaData * c.SigmaData}})
		require.NoError(t, err)
		x, err := FromRows([][]float64{{0.3, -1, 2}, {4, 0, -0.5}, {-2, 2, 1}, {0, 0, 0}})
		require.NoError(t, err)
		levels, err := tensor.FromF64([]float64{0.01, 0.5, 3, 40}, 4)
		require.NoError(t, err)
		for _, noise := range []Noise{AtSigma(0.02), AtSigma(1.3), AtSigma(70), AtTime(0.05), AtTime(2),
			{Kind: VE, Levels: levels}, {Kind: Affine, Scale: 0.6, Var: 0.3}} {
			want := scoreOutputs(t, CPU().GMMScore, g, x, noise)
			got := scoreOutputs(t, func(o ScoreOutputs, x *tensor.Tensor, _ *GMM, n Noise) error {
				return CPU().MLPScore(o, x, m, n)
			}, g, x, noise)
			for i := range want.den {
				assert.InDelta(t, want.den[i], got.den[i], 1e-13*(1+math.Abs(want.den[i])), "denoiser %d, %+v", i, noise)
				assert.InDelta(t, want.score[i], got.score[i], 1e-12*(1+math.Abs(want.score[i])), "score %d, %+v", i, noise)
			}
		}
	}
}

type denScore struct{ den, score []float64 }

func scoreOutputs(t *testing.T, eval func(ScoreOutputs, *tensor.Tensor, *GMM, Noise) error, g *GMM, x *tensor.Tensor, noise Noise) denScore {
	t.Helper()
	den, err := tensor.New(tensor.CPU(), tensor.F64, x.Shape()...)
	require.NoError(t, err)
	score, err := tensor.New(tensor.CPU(), tensor.F64, x.Shape()...)
	require.NoError(t, err)
	require.NoError(t, eval(ScoreOutputs{Denoiser: den, Score: score}, x, g, noise))
	d, _ := den.F64()
	s, _ := score.F64()
	return denScore{d, s}
}

// FromRows builds an (N, d) float64 tensor.
func FromRows(rows [][]float64) (*tensor.Tensor, error) {
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return tensor.FromF64(flat, len(rows), len(rows[0]))
}

// A one-unit network written out by hand: d = 1, W = 1, one block of one or two layers, one
// frequency.
func TestMLPHandComputed(t *testing.T) {
	silu := func(z float64) float64 { return z / (1 + math.Exp(-z)) }
	for _, blocks := range []int{1, 2} {
		c := MLPConfig{Dim: 1, Width: 1, Depth: 1, BlockLayers: blocks, Fourier: 1, SigmaData: 0.5, BranchMult: 0.8, OutMult: 1.5}
		const mu, f, wx, wc, ws, bin, w1, b1, w2, b2, wo, bo = 0.2, 0.7, 1.1, -0.4, 0.9, 0.05, -1.3, 0.2, 0.6, -0.1, 0.75, 0.3
		ps := []MLPParam{
			{"data.mean", []int{1}, []float64{mu}}, {"embed.freq", []int{1}, []float64{f}},
			{"input.weight", []int{1, 3}, []float64{wx, wc, ws}}, {"input.bias", []int{1}, []float64{bin}},
			{"blocks.0.0.weight", []int{1, 1}, []float64{w1}}, {"blocks.0.0.bias", []int{1}, []float64{b1}},
			{"output.weight", []int{1, 1}, []float64{wo}}, {"output.bias", []int{1}, []float64{bo}},
		}
		if blocks == 2 {
			ps = append(ps, MLPParam{"blocks.0.1.weight", []int{1, 1}, []float64{w2}}, MLPParam{"blocks.0.1.bias", []int{1}, []float64{b2}})
		}
		m, err := NewMLP(c, ps)
		require.NoError(t, err)
		for _, x := range []float64{-2, 0.2, 1.7} {
			for _, sigma := range []float64{0.01, 0.5, 9} {
				sd := 0.5
				cSkip := sd * sd / (sigma*sigma + sd*sd)
				cOut := sigma * sd / math.Sqrt(sigma*sigma+sd*sd)
				cIn := 1 / math.Sqrt(sigma*sigma+sd*sd)
				cNoise := math.Log(sigma) / 4
				h := wx*cIn*(x-mu) + wc*math.Cos(2*math.Pi*f*cNoise) + ws*math.Sin(2*math.Pi*f*cNoise) + bin
				branch := w1*silu(h) + b1
				if blocks == 2 {
					branch = w2*silu(branch) + b2
				}
				h += 0.8 * branch
				want := mu + cSkip*(x-mu) + cOut*(1.5*wo*silu(h)+bo)
				got := make([]float64, 1)
				m.DenoiseRow(got, []float64{x}, sigma)
				assert.InDelta(t, want, got[0], 1e-14, "blocks %d, x = %g, σ = %g", blocks, x, sigma)
			}
		}
		got := make([]float64, 1)
		m.DenoiseRow(got, []float64{1.25}, 0)
		assert.Equal(t, 1.25, got[0], "σ = 0 gives x")
	}
}

// Per-row levels equal one call per level; a bad level gives a NaN row and leaves the others;
// float32 outputs are the float64 ones rounded once.
func TestMLPRowsAndDTypes(t *testing.T) {
	m, err := RandomMLP(testMLPConfig(2), 7)
	require.NoError(t, err)
	xs := [][]float64{{0.3, -1, 2}, {4, 0, -0.5}, {-2, 2, 1}}
	x, err := FromRows(xs)
	require.NoError(t, err)
	lv := []float64{0.1, -1, 5}
	levels, err := tensor.FromF64(lv, 3)
	require.NoError(t, err)
	all := scoreOutputs(t, func(o ScoreOutputs, x *tensor.Tensor, _ *GMM, n Noise) error { return CPU().MLPScore(o, x, m, n) }, nil, x, Noise{Kind: VP, Levels: levels})
	for i, l := range lv {
		row, err := FromRows(xs[i : i+1])
		require.NoError(t, err)
		if l <= 0 {
			for j := 0; j < 3; j++ {
				assert.True(t, math.IsNaN(all.den[3*i+j]) && math.IsNaN(all.score[3*i+j]), "row %d", i)
			}
			continue
		}
		one := scoreOutputs(t, func(o ScoreOutputs, x *tensor.Tensor, _ *GMM, n Noise) error { return CPU().MLPScore(o, x, m, n) }, nil, row, AtTime(l))
		assert.Equal(t, one.den, all.den[3*i:3*i+3], "row %d", i)
		assert.Equal(t, one.score, all.score[3*i:3*i+3], "row %d", i)
	}

	x32, err := tensor.FromFloat64s(tensor.F32, []float64{0.3, -1, 2, 4, 0, -0.5}, 2, 3)
	require.NoError(t, err)
	x64, err := x32.Float64s()
	require.NoError(t, err)
	d32, err := tensor.New(tensor.CPU(), tensor.F32, 2, 3)
	require.NoError(t, err)
	require.NoError(t, CPU().MLPScore(ScoreOutputs{Denoiser: d32}, x32, m, AtSigma(0.4)))
	got, _ := d32.F32()
	for r := 0; r < 2; r++ {
		want := make([]float64, 3)
		m.DenoiseRow(want, x64[3*r:3*r+3], 0.4)
		for j := range want {
			assert.Equal(t, float32(want[j]), got[3*r+j])
		}
	}
}

func TestMLPBadInput(t *testing.T) {
	good := testMLPConfig(1)
	for _, tc := range []struct {
		edit func(*MLPConfig)
		msg  string
	}{
		{func(c *MLPConfig) { c.Dim = 0 }, "dim = 0"},
		{func(c *MLPConfig) { c.Width = 257 }, "width = 257"},
		{func(c *MLPConfig) { c.Depth = 0 }, "depth = 0"},
		{func(c *MLPConfig) { c.Depth = 17 }, "depth = 17"},
		{func(c *MLPConfig) { c.BlockLayers = 3 }, "block layers = 3"},
		{func(c *MLPConfig) { c.Fourier = -1 }, "fourier = -1"},
		{func(c *MLPConfig) { c.SigmaData = 0 }, "sigma_data = 0"},
		{func(c *MLPConfig) { c.SigmaData = math.NaN() }, "sigma_data = NaN"},
		{func(c *MLPConfig) { c.BranchMult = math.Inf(1) }, "branch multiplier"},
		{func(c *MLPConfig) { c.OutMult = math.NaN() }, "output multiplier"},
	} {
		c := good
		tc.edit(&c)
		_, err := RandomMLP(c, 1)
		assert.ErrorContains(t, err, tc.msg)
	}

	m, err := RandomMLP(good, 1)
	require.NoError(t, err)
	params := m.Params()
	edit := func(fn func([]MLPParam) []MLPParam) error {
		ps := m.Params()
		_, err := NewMLP(good, fn(ps))
		return err
	}
	assert.ErrorContains(t, edit(func(ps []MLPParam) []MLPParam { return ps[1:] }), `"data.mean": missing`)
	assert.ErrorContains(t, edit(func(ps []MLPParam) []MLPParam { return append(ps, ps[3]) }), `"input.bias": given twice`)
	assert.ErrorContains(t, edit(func(ps []MLPParam) []MLPParam {
		return append(ps, MLPParam{Name: "blocks.3.0.weight", Shape: []int{8, 8}, Data: make([]float64, 64)})
	}), `"blocks.3.0.weight": not part of the architecture`)
	assert.ErrorContains(t, edit(func(ps []MLPParam) []MLPParam { ps[2].Shape = []int{8, 10}; return ps }), `"input.weight" has shape [8 10]`)
	assert.ErrorContains(t, edit(func(ps []MLPParam) []MLPParam { ps[3].Data = ps[3].Data[:7]; return ps }), `"input.bias" has 7 values`)
	assert.ErrorContains(t, edit(func(ps []MLPParam) []MLPParam { ps[5].Data[2] = math.NaN(); return ps }), "entry 2 = NaN")
	assert.Equal(t, params, m.Params(), "Params returns copies")
	assert.Equal(t, len(m.Packed()), m.Offset("output.bias")+3)
	assert.Equal(t, -1, m.Offset("nope"))

	x, err := FromRows([][]float64{{1, 2, 3}})
	require.NoError(t, err)
	y, err := tensor.New(tensor.CPU(), tensor.F64, 1, 3)
	require.NoError(t, err)
	lp, err := tensor.New(tensor.CPU(), tensor.F64, 1)
	require.NoError(t, err)
	x2, err := FromRows([][]float64{{1, 2}})
	require.NoError(t, err)
	assert.ErrorContains(t, CPU().MLPScore(ScoreOutputs{LogP: lp}, x, m, AtSigma(1)), "no log-density")
	assert.ErrorContains(t, CPU().MLPScore(ScoreOutputs{Score: y}, x, m, NoNoise), "no noise-free score")
	assert.ErrorContains(t, CPU().MLPScore(ScoreOutputs{Score: y}, x2, m, AtSigma(1)), "dimension 2, the target has 3")
	assert.ErrorContains(t, CPU().MLPScore(ScoreOutputs{Score: y}, x, nil, AtSigma(1)), "nil network")
	assert.ErrorContains(t, CPU().MLPScore(ScoreOutputs{Score: y}, x, m, AtSigma(-1)), "σ = -1")
}

// The CPU op advances rows in blocks that share each weight row; every row's outputs are the bits
// of DenoiseRow on that row alone (full blocks, a partial block, σ = 0 rows inside a block).
func TestMLPBlocksEqualRows(t *testing.T) {
	for _, blocks := range []int{1, 2} {
		m, err := RandomMLP(testMLPConfig(blocks), 9)
		require.NoError(t, err)
		const n = 11
		xs := make([]float64, 3*n)
		lv := make([]float64, n)
		for i := range xs {
			xs[i] = math.Sin(float64(7*i + 1))
		}
		for i := range lv {
			lv[i] = math.Exp(float64(i%5) - 2)
		}
		x, err := tensor.FromF64(append([]float64(nil), xs...), n, 3)
		require.NoError(t, err)
		levels, err := tensor.FromF64(lv, n)
		require.NoError(t, err)
		got := scoreOutputs(t, func(o ScoreOutputs, x *tensor.Tensor, _ *GMM, nz Noise) error { return CPU().MLPScore(o, x, m, nz) },
			nil, x, Noise{Kind: VE, Levels: levels})
		for i := 0; i < n; i++ {
			want := make([]float64, 3)
			m.DenoiseRow(want, xs[3*i:3*i+3], lv[i])
			assert.Equal(t, want, got.den[3*i:3*i+3], "row %d", i)
		}
		dst := [][]float64{make([]float64, 3), make([]float64, 3), make([]float64, 3)}
		m.denoiseBlock(dst, [][]float64{xs[0:3], xs[3:6], xs[6:9]}, []float64{0.5, 0, 2}, newMLPScratch(m.Config()))
		assert.Equal(t, xs[3:6], dst[1], "σ = 0 inside a block gives x")
		for r, sg := range []float64{0.5, 0, 2} {
			want := make([]float64, 3)
			m.DenoiseRow(want, xs[3*r:3*r+3], sg)
			assert.Equal(t, want, dst[r])
		}
	}
}
