package ops

import (
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// PhiloxBits: dst[i, j] = bits of block(seed, site, FirstChain+i, lane j/4)[j%4].
func (b cpuBackend) PhiloxBits(dst *tensor.Tensor, d Draw) error {
	if err := CheckPhiloxBits(tensor.CPU(), dst, d); err != nil {
		return err
	}
	out, _ := dst.F32()
	dim := dst.Dim(1)
	b.parallelRows(dst.Dim(0), dim, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := out[i*dim : (i+1)*dim]
			chain := uint32(d.FirstChain + uint64(i))
			for l := 0; 4*l < dim; l++ {
				blk := philoxBlock(d.Seed, d.Site, chain, uint32(l))
				for k := 0; k < 4 && 4*l+k < dim; k++ {
					row[4*l+k] = math.Float32frombits(blk[k])
				}
			}
		}
	})
	return nil
}

// Uniform: f32 dst[i, j] = U32(block(lane j/4)[j%4]); f64 dst[i, j] = U64(block(lane j/2)[2q],
// block[2q+1]), q = j%2 (see philox.go).
func (b cpuBackend) Uniform(dst *tensor.Tensor, d Draw) error {
	if err := CheckUniform(tensor.CPU(), dst, d); err != nil {
		return err
	}
	dim := dst.Dim(1)
	if dst.DType() == tensor.F32 {
		out, _ := dst.F32()
		b.parallelRows(dst.Dim(0), dim, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				chain := uint32(d.FirstChain + uint64(i))
				row := out[i*dim : (i+1)*dim]
				for l := 0; 4*l < dim; l++ {
					blk := philoxBlock(d.Seed, d.Site, chain, uint32(l))
					for k := 0; k < 4 && 4*l+k < dim; k++ {
						row[4*l+k] = Uniform32(blk[k])
					}
				}
			}
		})
		return nil
	}
	out, _ := dst.F64()
	b.parallelRows(dst.Dim(0), dim, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			chain := uint32(d.FirstChain + uint64(i))
			row := out[i*dim : (i+1)*dim]
			for l := 0; 2*l < dim; l++ {
				blk := philoxBlock(d.Seed, d.Site, chain, uint32(l))
				row[2*l] = Uniform64(blk[0], blk[1])
				if 2*l+1 < dim {
					row[2*l+1] = Uniform64(blk[2], blk[3])
				}
			}
		}
	})
	return nil
}

// Normal: Box–Muller on the words of the draw layout (philox.go), the f32 stream in float32 and
// the f64 stream in float64, each with the kernels' exact sequence of operations (normalPair32,
// normalPair64): bit-identical with the kernels.
func (b cpuBackend) Normal(dst *tensor.Tensor, d Draw) error {
	if err := CheckNormal(tensor.CPU(), dst, d); err != nil {
		return err
	}
	dim := dst.Dim(1)
	f32 := dst.DType() == tensor.F32
	b.parallelRows(dst.Dim(0), 8*dim, func(lo, hi int) {
		row := make([]float64, dim)
		for i := lo; i < hi; i++ {
			normalRow(row, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), f32)
			if f32 {
				out, _ := dst.F32()
				for j, v := range row {
					out[i*dim+j] = float32(v)
				}
			} else {
				out, _ := dst.F64()
				copy(out[i*dim:(i+1)*dim], row)
			}
		}
	})
	return nil
}

// normalRow fills row with chain's standard normals at (seed, site): the float32 stream (float32
// values, widened exactly) when f32 is set, else the float64 stream.
func normalRow(row []float64, seed, site uint64, chain uint32, f32 bool) {
	dim := len(row)
	if f32 {
		for l := 0; 4*l < dim; l++ {
			blk := philoxBlock(seed, site, chain, uint32(l))
			for p := 0; p < 2 && 4*l+2*p < dim; p++ {
				z0, z1 := normalPair32(blk[2*p], blk[2*p+1])
				row[4*l+2*p] = z0
				if j := 4*l + 2*p + 1; j < dim {
					row[j] = z1
				}
			}
		}
		return
	}
	for l := 0; 2*l < dim; l++ {
		blk := philoxBlock(seed, site, chain, uint32(l))
		z0, z1 := normalPair64(blk)
		row[2*l] = z0
		if 2*l+1 < dim {
			row[2*l+1] = z1
		}
	}
}

// uniform64 is chain's first float64 uniform at (seed, site): column 0 of the f64 Uniform fill.
func uniform64(seed, site uint64, chain uint32) float64 {
	blk := philoxBlock(seed, site, chain, 0)
	return Uniform64(blk[0], blk[1])
}
