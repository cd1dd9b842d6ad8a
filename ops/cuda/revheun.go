//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// ReversibleHeun: see ops.Backend. One thread per coordinate (kernels/revheun.cu) carries its
// (y, z) in float64 through the q steps, reading its row of increments, with the reference's
// operations (fma where it uses math.FMA), so the values are the CPU reference's bits in both
// dtypes. Nothing to do (N·d == 0 or q == 0): no launch.
func (b *Backend) ReversibleHeun(y, z, dw *tensor.Tensor, s ops.AffineSDE, h float64, dir ops.HeunDirection) error {
	defer b.enter()()
	if err := ops.CheckReversibleHeun(b.dev, y, z, dw, s, h, dir); err != nil {
		return err
	}
	n, dim, q := int64(y.Dim(0)), int64(y.Dim(1)), int64(dw.Dim(1))
	if n == 0 || dim == 0 || q == 0 {
		return nil
	}
	k, err := b.typedKernel("revheun", "revheun", y.DType())
	if err != nil {
		return fmt.Errorf("reversible heun: %w", err)
	}
	var inverse int64
	if dir == ops.HeunInverse {
		inverse = 1
	}
	err = b.launch(k, b.gridFor(n*dim), revheunArgs{Y: y, Z: z, DW: dw, N: n, D: dim, Q: q,
		A: s.A, B: s.B, C: s.C, E: s.E, H: h, Inverse: inverse})
	if err != nil {
		return fmt.Errorf("reversible heun (N=%d, d=%d, q=%d, %v, %v): %w", n, dim, q, y.DType(), dir, err)
	}
	return nil
}

// ReversibleHeunAdjoint: see ops.Backend. One thread per coordinate (kernels/revheun.cu,
// revheun_adjoint) carries its state, cotangents and coefficient cotangents in float64 through
// the q backward steps with the reference's operations (fma where it uses math.FMA): every value
// is the CPU reference's bits in both dtypes. Nothing to do (N·d == 0 or q == 0): no launch.
func (b *Backend) ReversibleHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, s ops.AffineSDE, h float64) error {
	defer b.enter()()
	if err := ops.CheckReversibleHeunAdjoint(b.dev, y, z, ay, az, grad, dw, s, h); err != nil {
		return err
	}
	n, dim, q := int64(y.Dim(0)), int64(y.Dim(1)), int64(dw.Dim(1))
	if n == 0 || dim == 0 || q == 0 {
		return nil
	}
	k, err := b.typedKernel("revheun", "revheun_adjoint", y.DType())
	if err != nil {
		return fmt.Errorf("reversible heun adjoint: %w", err)
	}
	err = b.launch(k, b.gridFor(n*dim), revheunAdjointArgs{Y: y, Z: z, AY: ay, AZ: az, Grad: grad, DW: dw,
		N: n, D: dim, Q: q, A: s.A, B: s.B, C: s.C, E: s.E, H: h})
	if err != nil {
		return fmt.Errorf("reversible heun adjoint (N=%d, d=%d, q=%d, %v): %w", n, dim, q, y.DType(), err)
	}
	return nil
}
