package optest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

func TestCPUMLPConformance(t *testing.T) { RunMLP(t, ops.CPUWorkers(2)) }

// perturbedMLP scales the last element of the requested outputs of the CPU reference by 1 + rel.
type perturbedMLP struct {
	ops.Backend
	rel float64
}

func (b perturbedMLP) MLPScore(out ops.ScoreOutputs, x *tensor.Tensor, m *ops.MLP, n ops.Noise) error {
	if err := b.Backend.MLPScore(out, x, m, n); err != nil {
		return err
	}
	for _, o := range []*tensor.Tensor{out.Score, out.Denoiser} {
		if o == nil || o.Len() == 0 {
			continue
		}
		if v, err := o.F32(); err == nil {
			v[len(v)-1] *= float32(1 + b.rel)
		}
		if v, err := o.F64(); err == nil {
			v[len(v)-1] *= 1 + b.rel
		}
	}
	return nil
}

func (b nanRowsUnwritten) MLPScore(out ops.ScoreOutputs, x *tensor.Tensor, m *ops.MLP, n ops.Noise) error {
	return b.copyValidRows(out, func(tmp ops.ScoreOutputs) error { return b.Backend.MLPScore(tmp, x, m, n) })
}

// The MLP checks catch an error of a few ulp times the width in float32 and of 1e-12 (≈ 4500
// ulp) in float64, rows with an invalid level left unwritten, and an error in either output.
func TestMLPChecksCatchBrokenBackends(t *testing.T) {
	cfg := MLPConfigs()[2]
	for _, c := range []struct {
		dt  tensor.DType
		rel float64
	}{{tensor.F32, 1e-3}, {tensor.F64, 1e-12}} {
		for _, outs := range [][2]bool{{true, false}, {false, true}} {
			k := MLPCase{Config: cfg, Seed: 3, Rows: 33, DType: c.dt, Noise: ops.AtSigma(0.5), Score: outs[0], Denoiser: outs[1]}
			used, err := CheckMLPScore(ops.CPU(), k)
			require.NoError(t, err, "%v", k)
			assert.Zero(t, used, "%v: the reference against itself", k)
			_, err = CheckMLPScore(perturbedMLP{ops.CPU(), c.rel}, k)
			assert.ErrorContains(t, err, "exceeds the bound", "%v perturbed by %g", k, c.rel)
		}
	}
	k := MLPCase{Config: cfg, Seed: 3, Rows: 33, DType: tensor.F64, Noise: ops.AtTime(0.5), PerRow: true, Score: true, Denoiser: true}
	_, err := CheckMLPScore(nanRowsUnwritten{ops.CPU()}, k)
	assert.ErrorContains(t, err, "not written")
}
