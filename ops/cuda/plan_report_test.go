package cuda

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

func entries(ls []PlannedLaunch) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Entry)
	}
	return out
}

func TestPlannedLaunches(t *testing.T) {
	const sms = 132
	// d = 16: one thread per row (row16); the padded tile holds all 64 components
	// (64 × (16 + 16 + 1) × 4 B = 8,448 B); ⌈10^6 / 256⌉ blocks, under the cap of 32 per SM.
	g, err := PlanGMMScoreLaunch(sms, 1_000_000, 64, 16, ops.Diagonal, tensor.F32)
	require.NoError(t, err)
	assert.Equal(t, PlannedLaunch{Module: "gmm", Entry: "gmm_score_row16_f32", Threads: 256, Blocks: 3907,
		SharedMem: 8448, Count: 1, Plan: g.Plan}, g)
	g, err = PlanGMMScoreLaunch(sms, 1_000_000, 64, 17, ops.Diagonal, tensor.F32)
	require.NoError(t, err)
	assert.Equal(t, "gmm_score_warp1_f32", g.Entry, "d = 17: one warp per row")
	assert.Equal(t, 32*sms, g.Blocks, "the grid is capped at 32 blocks per SM")
	g, err = PlanGMMScoreLaunch(sms, 1_000_000, 64, 2, ops.Diagonal, tensor.F32)
	require.NoError(t, err)
	assert.Equal(t, "gmm_score_row4_f32", g.Entry)
	assert.Equal(t, 3907, g.Blocks, "⌈10^6 / 256⌉ rows per block")

	c := PlanChainsLaunch(sms, 100_000, 8, 16, ops.Isotropic, ops.ChainMALA, tensor.F32)
	assert.Equal(t, "chains_mala_row16_f32", c.Entry)
	assert.Equal(t, 391, c.Blocks)
	assert.Equal(t, 8*(1+1+16)*4, c.SharedMem)

	e, err := PlanEmpiricalLaunches(sms, 100_000, 100_000, 64, tensor.F32)
	require.NoError(t, err)
	assert.Equal(t, []string{"empirical_score_reg_f32"}, entries(e), "1,563 row tiles fill the device: no splits; one vector at d = 64: the accumulator in registers")
	assert.Equal(t, 1563, e[0].Blocks)
	e, err = PlanEmpiricalLaunches(sms, 1000, 100_000, 64, tensor.F32)
	require.NoError(t, err)
	assert.Equal(t, []string{"empirical_score_reg_f32", "empirical_finalize_f32"}, entries(e), "16 row tiles: split")
	e, err = PlanEmpiricalLaunches(sms, 100_000, 100_000, 65, tensor.F32)
	require.NoError(t, err)
	assert.Equal(t, []string{"empirical_score_f32"}, entries(e), "d = 65: the accumulators in global memory")
	e, err = PlanEmpiricalLaunches(sms, 100_000, 100_000, 16, tensor.F64)
	require.NoError(t, err)
	assert.Equal(t, []string{"empirical_score_f64"}, entries(e), "double has no register entry")

	// fGn n = 2^16: m = 2^17, two passes (9 + 8) over 512 pairs of paths, the last writing the
	// increments; all 1,024 paths in one 512 MiB chunk, 4,096 in two.
	f := PlanFGNLaunches(sms, 1024, 1<<16, 1<<16, tensor.F32, false)
	assert.Equal(t, []string{"fgn_r512_f32", "fft_r256_f32"}, entries(f), "the first pass generates the signal")
	for _, l := range f {
		assert.Equal(t, 1, l.Count)
	}
	f = PlanFGNLaunches(sms, 4096, 1<<16, 1<<16, tensor.F32, false)
	assert.Equal(t, 2, f[0].Count, "4,096 paths take two chunks")
	f = PlanFGNLaunches(sms, 1024, 1<<16, 1<<16, tensor.F64, false)
	assert.Equal(t, "fgn_increments_f64", f[len(f)-1].Entry, "double: a separate extraction")
	f = PlanFGNLaunches(sms, 3, 1000, 1024, tensor.F32, false)
	assert.Equal(t, []string{"fgn_spectrum_f32", "fft_r2048_f32", "fgn_increments_f32"}, entries(f), "one pass: a separate extraction")
	// The path form: the increments summed in place after the generating plan; one pass or
	// double: fgn_path reads the transform back.
	f = PlanFGNLaunches(sms, 1024, 1<<16, 1<<16, tensor.F32, true)
	assert.Equal(t, []string{"fgn_r512_f32", "fft_r256_f32", "fgn_cumsum_f32"}, entries(f), "path: summed in place")
	f = PlanFGNLaunches(sms, 3, 1000, 1024, tensor.F32, true)
	assert.Equal(t, []string{"fgn_spectrum_f32", "fft_r2048_f32", "fgn_path_f32"}, entries(f), "path, one pass")
	f = PlanFGNLaunches(sms, 1024, 1<<16, 1<<16, tensor.F64, true)
	assert.Equal(t, "fgn_path_f64", f[len(f)-1].Entry, "path, double")

	n := PlanNormalLaunch(sms, 1<<21, 128, tensor.F32)
	assert.Equal(t, "normal_f32", n.Entry)
	assert.Equal(t, 32*sms, n.Blocks)
}
