//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// AugmentedStep: see ops.Backend. One thread per coordinate (kernels/augmented.cu, the entry of
// the map's M) reads its M components and the denoiser's value, draws its R normals and writes
// the new state and the projection, with the reference's operations in its order (fma where it
// uses math.FMA) and the Normal fill's normals: every value is the reference's bits. The packed
// map is kept on the device for the map (immutable) until ops.Release or Close. Nothing to do
// (N·d == 0): no launch.
func (b *Backend) AugmentedStep(dst, x, y, den, u *tensor.Tensor, m *ops.AugmentedMap, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckAugmentedStep(b.dev, dst, x, y, den, u, m, d); err != nil {
		return err
	}
	n, dim := int64(dst.Dim(1)), int64(dst.Dim(2))
	if n == 0 || dim == 0 {
		return nil
	}
	k, err := b.kernel("augmented", fmt.Sprintf("augmented_m%d", m.M()))
	if err != nil {
		return fmt.Errorf("augmented step: %w", err)
	}
	packed, mask := m.Packed()
	coef, err := b.upload(m, "augmented map", tensor.F64, packed, len(packed))
	if err != nil {
		return fmt.Errorf("augmented step: %w", err)
	}
	err = b.launch(k, b.gridFor(n*dim), augmentedArgs{Dst: dst, X: x, Y: y, Den: den, U: u, Coef: coef,
		N: n, D: dim, R: int64(m.R()), Mask: mask, Q: m.Q(), Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("augmented step (M=%d, N=%d, d=%d, R=%d): %w", m.M(), n, dim, m.R(), err)
	}
	return nil
}
