//go:build cuda || cudaemu

package cuda

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// mlpParityConfigs cover the kernel's edges: widths 5 (one partial warp of units), 64, 200 (not a
// multiple of 32) and 256 (eight units per thread, the bound); depths 1 and 16 with one- and
// two-layer blocks; d = 1, 2, 3 and 64 (two output units per thread); d + 2F from 1 to 192 (more
// inputs than units at W = 64, several K-slices everywhere).
var mlpParityConfigs = []ops.MLPConfig{
	{Dim: 1, Width: 5, Depth: 1, BlockLayers: 1, Fourier: 0, SigmaData: 1, BranchMult: 1, OutMult: 1},
	{Dim: 2, Width: 64, Depth: 16, BlockLayers: 1, Fourier: 8, SigmaData: 0.5, BranchMult: 0.25, OutMult: 1},
	{Dim: 3, Width: 200, Depth: 1, BlockLayers: 2, Fourier: 16, SigmaData: 1.5, BranchMult: 1, OutMult: 0.5},
	{Dim: 64, Width: 64, Depth: 4, BlockLayers: 2, Fourier: 64, SigmaData: 0.8, BranchMult: 0.5, OutMult: 2},
	{Dim: 2, Width: 256, Depth: 16, BlockLayers: 2, Fourier: 4, SigmaData: 0.5, BranchMult: 0.25, OutMult: 1},
	{Dim: 3, Width: 256, Depth: 1, BlockLayers: 1, Fourier: 2, SigmaData: 1, BranchMult: 1, OutMult: 1},
	{Dim: 64, Width: 256, Depth: 2, BlockLayers: 1, Fourier: 1, SigmaData: 2, BranchMult: 0.7, OutMult: 1},
}

// Parity of kernels/mlp.cu with the float64 reference under optest.MLPErrorBound (a first-order
// forward error bound: the rounding of every operation, scaled by the absolute-value forward pass
// of its layer, carried to the outputs by the network's sensitivities; ε = (K + 2)·u per dense
// layer in float32, 8u per layer in float64, whose kernel sums in the reference's order): every
// architecture above in both dtypes, N = 45 and 1 (not multiples of the 32- and 16-row tiles),
// one larger N for the smaller networks (several tiles per block), VE at a shared level, VP with
// per-row levels (row 1 invalid: NaN), affine noise, score-only and denoiser-only outputs, inside
// guard bands. The fraction of the bound used is logged per dtype. With -short there is no
// larger N, and the networks of more than 64²·16 hidden weights run N = 33 at two noises only.
func TestMLPScoreParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	used := map[tensor.DType]float64{}
	noises := []struct {
		noise  ops.Noise
		perRow bool
	}{
		{ops.AtSigma(0.7), false},
		{ops.AtTime(0.4), true},
		{ops.Noise{Kind: ops.Affine, Scale: 0.8, Var: 0.09}, false},
		{ops.AtSigma(30), true},
	}
	outputs := [][2]bool{{true, true}, {true, false}, {false, true}}
	for ci, cfg := range mlpParityConfigs {
		heavy := cfg.Width*cfg.Width*cfg.Layers() > 64*64*16
		rowsList := []int{45, 1}
		switch {
		case testing.Short() && heavy:
			rowsList = []int{33}
		case !heavy && !testing.Short():
			rowsList = append(rowsList, sized(4099, 333))
		}
		for _, dt := range noiseDTypes {
			for ri, rows := range rowsList {
				for ni, nz := range noises {
					if (rows == 1 || rows > 45) && ni%2 == 1 {
						continue
					}
					// -short (the AddressSanitizer run): the large networks at one shared and one
					// per-row level, N = 33.
					if testing.Short() && heavy && ni >= 2 {
						continue
					}
					c := optest.MLPCase{Config: cfg, Seed: uint64(100 + ci), Rows: rows, DType: dt, Noise: nz.noise,
						PerRow: nz.perRow, Score: outputs[(ni+ri)%3][0], Denoiser: outputs[(ni+ri)%3][1]}
					u, err := optest.CheckMLPScore(b, c)
					require.NoError(t, err, "%v", c)
					used[dt] = max(used[dt], u)
				}
			}
		}
	}
	for dt, u := range used {
		t.Logf("%v: largest |error| / bound %.3g", dt, u)
	}
}

// The network's table is uploaded once per dtype, reused by later calls, and freed by Release;
// N = 0 launches nothing.
func TestMLPScoreTableAndEmpty(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t).(*Backend)
	m, err := ops.RandomMLP(mlpParityConfigs[1], 7)
	require.NoError(t, err)
	x := lvDevice(t, tensor.F32, make([]float64, 3*2), 3, 2)
	defer x.Close()
	out := lvDevice(t, tensor.F32, make([]float64, 3*2), 3, 2)
	defer out.Close()
	empty := lvDevice(t, tensor.F32, nil, 0, 2)
	defer empty.Close()
	emptyOut := lvDevice(t, tensor.F32, nil, 0, 2)
	defer emptyOut.Close()
	assert.Zero(t, launchesDuring(func() {
		require.NoError(t, b.MLPScore(ops.ScoreOutputs{Score: emptyOut}, empty, m, ops.AtSigma(1)))
	}), "N = 0")
	used0, _ := b.TableBytes()
	require.NoError(t, b.MLPScore(ops.ScoreOutputs{Score: out}, x, m, ops.AtSigma(1)))
	used1, _ := b.TableBytes()
	params := len(m.Packed())
	assert.Equal(t, int64(4*params), used1-used0, "one float32 table of %d parameters", params)
	assert.Equal(t, int64(1), launchesDuring(func() {
		require.NoError(t, b.MLPScore(ops.ScoreOutputs{Score: out}, x, m, ops.AtTime(0.5)))
	}), "a second call reuses the table: one launch")
	used2, _ := b.TableBytes()
	assert.Equal(t, used1, used2)
	require.NoError(t, b.Release(m))
	used3, _ := b.TableBytes()
	assert.Equal(t, used0, used3, "Release frees the network's table")
	require.NoError(t, gpu.Synchronize())
}
