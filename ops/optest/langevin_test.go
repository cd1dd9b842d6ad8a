package optest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The Langevin checks pass on the reference itself (two workers against all of them).
func TestCPULangevinConformance(t *testing.T) { RunLangevin(t, ops.CPUWorkers(2)) }

// brokenChains wraps the CPU backend and breaks GMMChains.
type brokenChains struct {
	ops.Backend
	perturb  float64 // relative change of the first state element after the run
	lastRow  bool    // leave the last chain where it started
	stepless bool    // run one step fewer than asked
	fusable  bool    // accept full covariances instead of reporting ErrNotFusable
}

func (b brokenChains) GMMChains(c ops.GMMChains) error {
	if b.fusable && c.Mixture != nil && c.Mixture.Kind() == ops.Full {
		return nil
	}
	if b.stepless && c.Steps > 1 {
		c.Steps--
		if c.Trace != nil {
			c.Trace, c.Thin = nil, 0
		}
	}
	n := 0
	if c.X != nil && c.X.Rank() == 2 {
		n = c.X.Dim(0)
	}
	var last []float64
	if b.lastRow && n > 0 {
		v, _ := c.X.Float64s()
		last = append(last, v[len(v)-c.X.Dim(1):]...)
	}
	if err := b.Backend.GMMChains(c); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if v, err := c.X.F32(); err == nil {
		if b.perturb != 0 {
			v[0] *= float32(1 + b.perturb)
		}
		for j, w := range last {
			v[len(v)-len(last)+j] = float32(w)
		}
	}
	if v, err := c.X.F64(); err == nil {
		if b.perturb != 0 {
			v[0] *= 1 + b.perturb
		}
		copy(v[len(v)-len(last):], last)
	}
	return nil
}

// Each breakage is caught: a state element off by a relative 1e-2 (f32 and f64) or 1e-8 (f64,
// above its 4e-10 tolerance), a chain left behind, a step skipped, a full covariance accepted.
func TestLangevinChecksCatchBrokenChains(t *testing.T) {
	cases := []ChainsCase{
		{Method: ops.ChainMALA, DType: tensor.F32, Rows: 33, K: 5, D: 3, Kind: ops.Isotropic, Noise: ops.AtSigma(0.5), Factor: true, Trace: true, Steps: 4, Seed: 1, First: 7},
		{Method: ops.ChainULD, DType: tensor.F64, Rows: 65, K: 5, D: 17, Kind: ops.Diagonal, Steps: 4, Seed: 2},
		{Method: ops.ChainULA, DType: tensor.F64, Rows: 9, K: 1, D: 64, Kind: ops.Isotropic, PerChain: true, Steps: 4, Seed: 3},
	}
	for _, c := range cases {
		require.NoError(t, CheckGMMChains(ops.CPU(), c), "%v", c)
		for _, b := range []brokenChains{{perturb: 1e-2}, {lastRow: true}, {stepless: true}} {
			err := CheckGMMChains(brokenChains{Backend: ops.CPU(), perturb: b.perturb, lastRow: b.lastRow, stepless: b.stepless}, c)
			assert.Error(t, err, "%v with %+v", c, b)
		}
		if c.DType == tensor.F64 {
			err := CheckGMMChains(brokenChains{Backend: ops.CPU(), perturb: 1e-8}, c)
			assert.ErrorContains(t, err, "X", "%v: a 1e-8 relative error in f64", c)
		}
	}
	assert.NoError(t, CheckChainsRejections(ops.CPU()))
	assert.ErrorContains(t, CheckChainsRejections(brokenChains{Backend: ops.CPU(), fusable: true}), "full covariances")
}

// brokenSteps perturbs the step ops of the CPU backend.
type brokenSteps struct {
	ops.Backend
	op string
}

func (b brokenSteps) Step(dst, x, score *tensor.Tensor, c ops.Coeffs, d ops.Draw) error {
	if b.op == "step" {
		c.Alpha *= 1 + 1e-3
	}
	return b.Backend.Step(dst, x, score, c, d)
}

func (b brokenSteps) ULDStep(x, v, score *tensor.Tensor, h float64, p ops.ULDParams, d ops.Draw) error {
	if b.op == "uld step" {
		d.Site += 2 // other normals
	}
	return b.Backend.ULDStep(x, v, score, h, p, d)
}

func (b brokenSteps) MALAAccept(cur, prop ops.MALAState, h float64, hs *tensor.Tensor, d ops.Draw, acc *tensor.Tensor) error {
	if b.op == "mala accept" {
		d.Site++ // another uniform: other decisions
	}
	return b.Backend.MALAAccept(cur, prop, h, hs, d, acc)
}

func (b brokenSteps) AddGaussianFactor(out ops.ScoreOutputs, x, center *tensor.Tensor, a, v float64) error {
	if b.op == "gaussian factor" {
		v *= 1 + 1e-3
	}
	return b.Backend.AddGaussianFactor(out, x, center, a, v)
}

func TestStepChecksCatchBrokenOps(t *testing.T) {
	require.NoError(t, CheckStepOps(ops.CPU()))
	for _, op := range []string{"step", "uld step", "mala accept", "gaussian factor"} {
		assert.ErrorContains(t, CheckStepOps(brokenSteps{Backend: ops.CPU(), op: op}), op)
	}
}

// The tolerance and the flip allowance follow the stated rules.
func TestChainsTolerances(t *testing.T) {
	assert.InDelta(t, 4*ScoreF32, ChainsRtol(tensor.F32, 4), 1e-15)
	assert.InDelta(t, 4*ScoreF64, ChainsRtol(tensor.F64, 4), 1e-20)
	assert.Equal(t, 0, ChainFlipsAllowed(tensor.F64, 20000, 10))
	assert.Equal(t, 3, ChainFlipsAllowed(tensor.F32, 33, 4))
	assert.Equal(t, 203, ChainFlipsAllowed(tensor.F32, 20000, 10))
}
