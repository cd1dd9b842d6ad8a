package optest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The reference with two workers must equal the reference with all of them.
func TestCPUConformance(t *testing.T) { Run(t, ops.CPUWorkers(2)) }

// broken wraps the CPU backend and breaks one thing, to prove the suite notices.
type broken struct {
	ops.Backend
	skipLast bool // leave the last element of the output unwritten
	perturb  bool // change one normal by 1e-4 relative
	accept   bool // accept bad input
}

func (b broken) Normal(dst *tensor.Tensor, d ops.Draw) error {
	if b.accept && (dst == nil || dst.Rank() != 2) {
		return nil
	}
	if err := b.Backend.Normal(dst, d); err != nil {
		return err
	}
	if dst.Len() == 0 {
		return nil
	}
	v, _ := dst.F64()
	switch {
	case b.skipLast:
		v[len(v)-1] = math.NaN()
	case b.perturb:
		v[len(v)/2] *= 1 + 1e-4
	}
	return nil
}

func TestSuiteCatchesBrokenBackends(t *testing.T) {
	d := ops.Draw{Seed: 1}
	require.NoError(t, CheckFill(ops.CPU(), "normal", tensor.F64, 33, 5, d))
	err := CheckFill(broken{Backend: ops.CPU(), skipLast: true}, "normal", tensor.F64, 33, 5, d)
	assert.ErrorContains(t, err, "not written")
	err = CheckFill(broken{Backend: ops.CPU(), perturb: true}, "normal", tensor.F64, 33, 5, d)
	assert.ErrorContains(t, err, "against the CPU reference")
	assert.Error(t, CheckRejections(broken{Backend: ops.CPU(), accept: true}))
	assert.NoError(t, CheckRejections(ops.CPU()))
}

func TestCompare(t *testing.T) {
	_, err := Compare([]float64{1, 2}, []float64{1, 2}, Exact)
	assert.NoError(t, err)
	m, err := Compare([]float64{1, 2.001}, []float64{1, 2}, Tolerance{Rtol: 1e-3})
	assert.NoError(t, err)
	assert.InDelta(t, 5e-4, m.MaxRel, 1e-9)
	_, err = Compare([]float64{1, 2.01}, []float64{1, 2}, Tolerance{Rtol: 1e-3})
	assert.ErrorContains(t, err, "element 1")
	_, err = Compare([]float64{math.NaN()}, []float64{0}, Tolerance{Atol: 1})
	assert.Error(t, err, "NaN never passes")
	_, err = Compare([]float64{1}, []float64{1, 2}, Exact)
	assert.ErrorContains(t, err, "length")
}

// brokenScore perturbs one score element of the CPU reference by 1e-3 relative.
type brokenScore struct{ ops.Backend }

func (b brokenScore) GMMScore(out ops.ScoreOutputs, x *tensor.Tensor, g *ops.GMM, n ops.Noise) error {
	if err := b.Backend.GMMScore(out, x, g, n); err != nil {
		return err
	}
	if out.Score != nil && out.Score.Len() > 0 {
		if v, err := out.Score.F32(); err == nil {
			v[len(v)-1] *= 1.001
		}
		if v, err := out.Score.F64(); err == nil {
			v[len(v)-1] *= 1.001
		}
	}
	return nil
}

func TestScoreSuiteCatchesErrors(t *testing.T) {
	require.NoError(t, CheckGMMScore(ops.CPU(), 33, 3, 2, ops.Diagonal))
	assert.ErrorContains(t, CheckGMMScore(brokenScore{ops.CPU()}, 33, 3, 2, ops.Diagonal), "score")
	assert.Error(t, CompareRows([]float64{1, math.NaN()}, []float64{1, 2}, 2, 1e-3), "NaN where the reference is finite")
	assert.NoError(t, CompareRows([]float64{1, 1e-9}, []float64{1, 0}, 2, 1e-6), "tolerance scales with the row")
}
