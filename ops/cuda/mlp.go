//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The launcher of kernels/mlp.cu (see its header comment for the algorithm).
//
// Table per network and dtype, uploaded on first use and kept in the backend's table cache (an
// *ops.MLP is immutable, so it is the key; Release frees it):
//
//	"mlp/params" = [μ (d) | f (F) | W_inᵀ (d+2F × W) | b_in (W) | per hidden layer W_lᵀ (W × W), b_l (W) |
//	               W_outᵀ (W × d) | b_out (d)]
//
// the network's Packed order with every weight transposed, converted to the dtype once (the f32
// kernel runs the network on float weights).

// MLPScore: see ops.Backend. One launch of mlp_score_<dt>, which runs the whole network for a
// tile of rows per block (32 rows in float, 16 in double; 256 threads, each owning several
// (row, unit) outputs of every layer, the residual stream in registers, the layer's weights
// staged through shared memory in K-slices). Nothing is synchronised: the results are ready once
// the device's stream is (callers synchronise). N == 0: no launch.
func (b *Backend) MLPScore(out ops.ScoreOutputs, x *tensor.Tensor, m *ops.MLP, noise ops.Noise) error {
	defer b.enter()()
	if err := ops.CheckMLPScore(b.dev, out, x, m, noise); err != nil {
		return err
	}
	n := x.Dim(0)
	if n == 0 {
		return nil
	}
	dt := x.DType()
	c := m.Config()
	params, err := b.mlpParams(m, dt)
	if err != nil {
		return fmt.Errorf("mlp score: upload the network (%s, %v): %w", c, dt, err)
	}
	a, s := 1.0, 1.0
	if noise.Levels == nil {
		var ok bool
		if a, s, ok = noise.ScaleVar(noise.Level); !ok { // CheckMLPScore already refused this
			return fmt.Errorf("mlp score: invalid noise level %g", noise.Level)
		}
	}
	kern, err := b.typedKernel("mlp", "mlp_score", dt)
	if err != nil {
		return fmt.Errorf("mlp score: %w", err)
	}
	cfg := cappedGrid(b.sms(), int64(n), mlpRows(dt), mlpThreads, mlpBlocksPerSM)
	cfg.SharedMem = mlpSharedMem(c, dt)
	err = b.launch(kern, cfg, mlpScoreArgs{Score: out.Score, Den: out.Denoiser, X: x, N: int64(n),
		D: int64(c.Dim), Width: int64(c.Width), Depth: int64(c.Depth), BlockLayers: int64(c.BlockLayers),
		Fourier: int64(c.Fourier), Params: params, SigmaData: c.SigmaData, Branch: c.BranchMult,
		OutMult: c.OutMult, Noise: int64(noise.Kind), Levels: noise.Levels, A: a, S: s})
	if err != nil {
		return fmt.Errorf("mlp score: N = %d, %s, %v: %w", n, c, dt, err)
	}
	return nil
}

// mlpParams returns the network's parameter table on the device (see the file comment),
// uploading it on first use.
func (b *Backend) mlpParams(m *ops.MLP, dt tensor.DType) (*tensor.Tensor, error) {
	const name = "mlp/params"
	if e := b.table(paramKey{m, name, dt}); e != nil {
		return e.t, nil
	}
	data := mlpTable(m)
	return b.upload(m, name, dt, data, len(data))
}

// mlpTable lays the network's parameters out as the kernel reads them: Packed order, every weight
// (out, in) stored transposed as (in, out).
func mlpTable(m *ops.MLP) []float64 {
	c := m.Config()
	packed := m.Packed()
	out := make([]float64, 0, len(packed))
	for _, name := range ops.MLPParamNames(c) {
		shape := ops.MLPParamShape(c, name)
		o := m.Offset(name)
		if len(shape) == 1 {
			out = append(out, packed[o:o+shape[0]]...)
			continue
		}
		rows, cols := shape[0], shape[1]
		for j := 0; j < cols; j++ {
			for i := 0; i < rows; i++ {
				out = append(out, packed[o+i*cols+j])
			}
		}
	}
	return out
}
