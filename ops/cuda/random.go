//go:build cuda || cudaemu

package cuda

import (
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// fill launches one of the fill kernels of kernels/random.cu: (dst, chains, dim, seed, site,
// chain0), one thread per Philox block (lanesPerRow blocks per chain).
func (b *Backend) fill(name string, dst *tensor.Tensor, d ops.Draw, perBlock int) error {
	chains, dim := int64(dst.Dim(0)), int64(dst.Dim(1))
	if chains == 0 || dim == 0 {
		return nil
	}
	k, err := b.kernel("random", name)
	if err != nil {
		return err
	}
	lanes := (dim + int64(perBlock) - 1) / int64(perBlock)
	return b.launch(k, b.gridFor(chains*lanes), fillArgs{Dst: dst, Chains: chains, Dim: dim,
		Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
}

// PhiloxBits: see ops.Backend.
func (b *Backend) PhiloxBits(dst *tensor.Tensor, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckPhiloxBits(b.dev, dst, d); err != nil {
		return err
	}
	return b.fill("philox_bits_f32", dst, d, 4)
}

// Uniform: see ops.Backend.
func (b *Backend) Uniform(dst *tensor.Tensor, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckUniform(b.dev, dst, d); err != nil {
		return err
	}
	if dst.DType() == tensor.F32 {
		return b.fill("uniform_f32", dst, d, 4)
	}
	return b.fill("uniform_f64", dst, d, 2)
}

// Normal: see ops.Backend.
func (b *Backend) Normal(dst *tensor.Tensor, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckNormal(b.dev, dst, d); err != nil {
		return err
	}
	if dst.DType() == tensor.F32 {
		return b.fill("normal_f32", dst, d, 4)
	}
	return b.fill("normal_f64", dst, d, 2)
}
