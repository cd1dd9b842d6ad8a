package optest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// TestCPUConformance (optest_test.go) runs RunReversibleHeun on the CPU backend with two workers.

// brokenHeun wraps the CPU backend and breaks ReversibleHeun in one way, to prove the checks
// notice.
type brokenHeun struct {
	ops.Backend
	stepRel  float64 // scale the step size by 1 + stepRel
	skipLast bool    // leave the last coordinate of y as it was (its z is still updated)
	accept   bool    // accept a step that is not > 0
}

func (b brokenHeun) ReversibleHeun(y, z, dw *tensor.Tensor, s ops.AffineSDE, h float64, dir ops.HeunDirection) error {
	if b.accept && !(h > 0) {
		return nil
	}
	var keep float64
	var last []float64
	if b.skipLast && y != nil && y.Len() > 0 {
		last, _ = y.F64()
		keep = last[len(last)-1]
	}
	if err := b.Backend.ReversibleHeun(y, z, dw, s, h*(1+b.stepRel), dir); err != nil {
		return err
	}
	if last != nil {
		last[len(last)-1] = keep
	}
	return nil
}

func TestReversibleHeunChecksCatchBrokenBackends(t *testing.T) {
	cpu := ops.CPU()
	for _, fam := range RevHeunSDEs() {
		for _, dir := range []ops.HeunDirection{ops.HeunForward, ops.HeunInverse} {
			// A step off by a relative 1e-12 (float64) is caught: the op must be exact.
			require.NoError(t, CheckReversibleHeun(cpu, tensor.F64, fam.SDE, 33, 3, 7, 0.01, dir), "%s %v", fam.Name, dir)
			err := CheckReversibleHeun(brokenHeun{Backend: cpu, stepRel: 1e-12}, tensor.F64, fam.SDE, 33, 3, 7, 0.01, dir)
			assert.ErrorContains(t, err, "y: row 0 col 0", "%s %v", fam.Name, dir)
			// The last coordinate of y left as it was is caught, with one step or many.
			for _, q := range []int{1, 64} {
				err = CheckReversibleHeun(brokenHeun{Backend: cpu, skipLast: true}, tensor.F64, fam.SDE, 31, 1, q, 0.01, dir)
				assert.ErrorContains(t, err, "y: row 30 col 0", "%s %v q %d", fam.Name, dir, q)
			}
		}
	}
	require.NoError(t, CheckReversibleHeunRejections(cpu))
	err := CheckReversibleHeunRejections(brokenHeun{Backend: cpu, accept: true})
	for _, name := range []string{"zero step", "negative step", "NaN step"} {
		assert.ErrorContains(t, err, "reversible heun: "+name+": accepted")
	}
	assert.NotContains(t, err.Error(), "infinite step", "an infinite step was not accepted by the broken backend")
}

// brokenLMHeun wraps the CPU backend and breaks the Langevin mixture Heun ops in one way.
type brokenLMHeun struct {
	ops.Backend
	stepRel float64 // scale the step size by 1 + stepRel
}

func (b brokenLMHeun) LangevinMixtureHeun(y, z, dw *tensor.Tensor, m *ops.LangevinMixture, h float64, dir ops.HeunDirection) error {
	return b.Backend.LangevinMixtureHeun(y, z, dw, m, h*(1+b.stepRel), dir)
}

func (b brokenLMHeun) LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, m *ops.LangevinMixture, h float64) error {
	return b.Backend.LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw, m, h*(1+b.stepRel))
}

// The checks of the Langevin mixture ops notice a step size off by a relative 1e-9 (forward,
// inverse and adjoint) while passing the unbroken backend.
func TestLangevinMixtureHeunChecksCatchBrokenBackends(t *testing.T) {
	cpu := ops.CPU()
	broken := brokenLMHeun{Backend: cpu, stepRel: 1e-9}
	for _, mix := range LMHeunMixtures() {
		for _, dir := range []ops.HeunDirection{ops.HeunForward, ops.HeunInverse} {
			require.NoError(t, CheckLangevinMixtureHeun(cpu, tensor.F64, mix.M, 33, 7, 0.01, dir), "%s %v", mix.Name, dir)
			assert.ErrorContains(t, CheckLangevinMixtureHeun(broken, tensor.F64, mix.M, 33, 7, 0.01, dir), "y: row", "%s %v", mix.Name, dir)
		}
		require.NoError(t, CheckLangevinMixtureHeunAdjoint(cpu, tensor.F64, mix.M, 33, 7, 0.01), mix.Name)
		assert.Error(t, CheckLangevinMixtureHeunAdjoint(broken, tensor.F64, mix.M, 33, 7, 0.01), mix.Name)
	}
	require.NoError(t, CheckLangevinMixtureHeunRejections(cpu))
}
