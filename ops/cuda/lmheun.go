//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// lmTables returns the device copies of the mixture's arrays (kept until ops.Release or Close;
// the accessors' copies are made only on the first upload).
func (b *Backend) lmTables(m *ops.LangevinMixture) (means, logits, vars, lognorm *tensor.Tensor, err error) {
	k := m.K()
	if means, err = b.uploadFrom(m, "langevin mixture means", tensor.F64, m.Means, k*m.Dim()); err != nil {
		return
	}
	if logits, err = b.uploadFrom(m, "langevin mixture logits", tensor.F64, m.Logits, k); err != nil {
		return
	}
	if vars, err = b.uploadFrom(m, "langevin mixture variances", tensor.F64, m.Vars, k); err != nil {
		return
	}
	lognorm, err = b.uploadFrom(m, "langevin mixture log normalisers", tensor.F64, m.LogNorms, k)
	return
}

// LangevinMixtureHeun: see ops.Backend. One thread per chain (kernels/lmheun.cu) carries its
// (y, z) and its drift values in float64 through the q steps in a work array of (4d + K, N)
// doubles, with the reference's operations (fma where it uses math.FMA): the values are the CPU
// reference's to a few ulp of float64 per step (the device's exp), rounded once to the dtype.
// Nothing to do (N == 0 or q == 0): no launch.
func (b *Backend) LangevinMixtureHeun(y, z, dw *tensor.Tensor, m *ops.LangevinMixture, h float64, dir ops.HeunDirection) error {
	defer b.enter()()
	if err := ops.CheckLangevinMixtureHeun(b.dev, y, z, dw, m, h, dir); err != nil {
		return err
	}
	n, d, q := int64(y.Dim(0)), int64(y.Dim(1)), int64(dw.Dim(1))
	if n == 0 || q == 0 {
		return nil
	}
	const op = "langevin mixture heun"
	means, logits, vars, lognorm, err := b.lmTables(m)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	work, err := b.scratch.get("langevin mixture heun state", tensor.F64, int(n)*(4*int(d)+m.K()))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	k, err := b.typedKernel("lmheun", "lmheun", y.DType())
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var inverse int64
	if dir == ops.HeunInverse {
		inverse = 1
	}
	err = b.launch(k, b.gridFor(n), lmheunArgs{Y: y, Z: z, Work: work, DW: dw, Means: means, Logits: logits,
		Vars: vars, LogNorm: lognorm, N: n, D: d, K: int64(m.K()), Q: q, H: h, Inverse: inverse})
	if err != nil {
		return fmt.Errorf("%s (N=%d, d=%d, K=%d, q=%d, %v, %v): %w", op, n, d, m.K(), q, y.DType(), dir, err)
	}
	return nil
}

// LangevinMixtureHeunAdjoint: see ops.Backend. One thread per chain (kernels/lmheun.cu,
// lmheun_adjoint) carries its state, drift values and cotangent work vectors in a work array of
// (7d + 2K, N) doubles and adds its parameter cotangents into its column of grad, with the
// reference's operations: the values are the reference's to a few ulp of float64 per step.
// Nothing to do (N == 0 or q == 0): no launch.
func (b *Backend) LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, m *ops.LangevinMixture, h float64) error {
	defer b.enter()()
	if err := ops.CheckLangevinMixtureHeunAdjoint(b.dev, y, z, ay, az, grad, dw, m, h); err != nil {
		return err
	}
	n, d, q := int64(y.Dim(0)), int64(y.Dim(1)), int64(dw.Dim(1))
	if n == 0 || q == 0 {
		return nil
	}
	const op = "langevin mixture heun adjoint"
	means, logits, vars, lognorm, err := b.lmTables(m)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	work, err := b.scratch.get("langevin mixture heun state", tensor.F64, int(n)*(7*int(d)+2*m.K()))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	k, err := b.typedKernel("lmheun", "lmheun_adjoint", y.DType())
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err = b.launch(k, b.gridFor(n), lmheunAdjointArgs{Y: y, Z: z, AY: ay, AZ: az, Grad: grad, Work: work, DW: dw,
		Means: means, Logits: logits, Vars: vars, LogNorm: lognorm, N: n, D: d, K: int64(m.K()), Q: q, H: h})
	if err != nil {
		return fmt.Errorf("%s (N=%d, d=%d, K=%d, q=%d, %v): %w", op, n, d, m.K(), q, y.DType(), err)
	}
	return nil
}
