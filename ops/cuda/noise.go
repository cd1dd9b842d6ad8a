//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Launchers of kernels/noise.cu: MA-fBM paths, α-stable variates and Brownian paths or bridges.
// Each validates its arguments with the ops.Check* function the CPU reference uses and returns
// nil without a launch when there is nothing to write. MAFBM and Brownian do not synchronise;
// Stable synchronises only when it counts clamped values (it must read the count back).

// maxKernelStates is the largest K the mafbm kernel holds in registers.
const maxKernelStates = 16

// mafbmTable returns the device table (float64) of the kernel for m and step h: decay[K],
// weights[K], then the lower factor L[K×K] row-major. Tables are cached per (m, h) in the table
// cache; the transition is computed only when the table is not there.
func (b *Backend) mafbmTable(m *ops.MAFBM, h float64) (*tensor.Tensor, error) {
	name := fmt.Sprintf("mafbm transition h=%016x", math.Float64bits(h))
	if e := b.table(paramKey{m, name, tensor.F64}); e != nil {
		return e.t, nil
	}
	decay, chol, err := m.Transition(h)
	if err != nil {
		return nil, err
	}
	data := append(append(decay, m.Weights()...), chol...)
	return b.upload(m, name, tensor.F64, data, len(data))
}

// MAFBM: see ops.Backend. One thread per path keeps the K ≤ 16 OU states in float64 registers and
// reads decays, weights and the factor from the cached table.
func (b *Backend) MAFBM(dst, y *tensor.Tensor, m *ops.MAFBM, h float64, d ops.Draw, stride uint64) error {
	defer b.enter()()
	if err := ops.CheckMAFBM(b.dev, dst, y, m, h, d, stride); err != nil {
		return err
	}
	if m.K() > maxKernelStates {
		return fmt.Errorf("ma-fbm: K = %d OU processes: the CUDA kernel holds at most %d per path", m.K(), maxKernelStates)
	}
	paths, steps := int64(dst.Dim(0)), int64(dst.Dim(1))
	if paths == 0 || steps == 0 {
		return nil
	}
	table, err := b.mafbmTable(m, h)
	if err != nil {
		return err
	}
	k, err := b.typedKernel("noise", "mafbm", dst.DType())
	if err != nil {
		return fmt.Errorf("ma-fbm: %w", err)
	}
	err = b.launch(k, pathGrid(b.sms(), paths), mafbmArgs{Dst: dst, Y: y, Table: table, Paths: paths, Steps: steps,
		K: int64(m.K()), Seed: d.Seed, Site: d.Site, Stride: stride, Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("ma-fbm (paths=%d, steps=%d, K=%d, %v): %w", paths, steps, m.K(), dst.DType(), err)
	}
	return nil
}

// Stable: see ops.Backend. Scalar kinds: one thread per Philox block (2 values in f32, 1 in f64);
// isotropic: one thread per block of normals (4 in f32, 2 in f64), the row's mixing variable
// computed once per warp and row. With a clamp, the count goes to an 8-byte device counter that
// is read back (a synchronising copy).
func (b *Backend) Stable(dst *tensor.Tensor, s ops.StableSpec, d ops.Draw) (int64, error) {
	defer b.enter()()
	if err := ops.CheckStable(b.dev, dst, s, d); err != nil {
		return 0, err
	}
	rows, dim := int64(dst.Dim(0)), int64(dst.Dim(1))
	if rows == 0 || dim == 0 {
		return 0, nil
	}
	var counter *tensor.Tensor
	if s.Clamp > 0 {
		var err error
		if counter, err = b.scratch.get("clamp counter", tensor.F64, 1); err != nil {
			return 0, fmt.Errorf("stable: %w", err)
		}
		if err := counter.Fill(0); err != nil {
			return 0, fmt.Errorf("stable: clamp counter: %w", err)
		}
	}
	c := s.Constants()
	f32 := dst.DType() == tensor.F32
	var err error
	if s.Kind == ops.StableIsotropic {
		k, kerr := b.typedKernel("noise", "stable_isotropic", dst.DType())
		if kerr != nil {
			return 0, fmt.Errorf("stable: %w", kerr)
		}
		per := int64(2)
		if f32 {
			per = 4
		}
		degenerate := int64(0)
		if c.Degenerate {
			degenerate = 1
		}
		err = b.launch(k, b.gridFor(rows*((dim+per-1)/per)), stableIsotropicArgs{Dst: dst, Rows: rows, Dim: dim,
			Alpha: c.Alpha, InvAlpha: c.InvAlpha, Degenerate: degenerate, Clamp: s.Clamp, Counter: counter,
			Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	} else {
		k, kerr := b.typedKernel("noise", "stable", dst.DType())
		if kerr != nil {
			return 0, fmt.Errorf("stable: %w", kerr)
		}
		per := int64(1)
		if f32 {
			per = 2
		}
		err = b.launch(k, b.gridFor(rows*((dim+per-1)/per)), stableArgs{Dst: dst, Rows: rows, Dim: dim, Alpha: c.Alpha,
			Beta: c.Beta, Shift: c.Shift, Scale: c.Scale, InvAlpha: c.InvAlpha, Clamp: s.Clamp, Counter: counter,
			Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	}
	if err != nil {
		return 0, fmt.Errorf("stable (%v, rows=%d, dim=%d, %v): %w", s.Kind, rows, dim, dst.DType(), err)
	}
	if counter == nil {
		return 0, nil
	}
	h, err := counter.CopyTo(nil)
	if err != nil {
		return 0, fmt.Errorf("stable: read the clamp count: %w", err)
	}
	v, _ := h.F64()
	return int64(math.Float64bits(v[0])), nil
}

// Brownian: see ops.Backend. One thread per path scans its normals in float64 (twice per epoch
// when bridging: once for the epoch's total, once for the values).
func (b *Backend) Brownian(dst *tensor.Tensor, s ops.BrownianSpec, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckBrownian(b.dev, dst, s, d); err != nil {
		return err
	}
	paths, n := int64(dst.Dim(0)), int64(dst.Dim(1))
	if paths == 0 {
		return nil
	}
	k, err := b.typedKernel("noise", "brownian", dst.DType())
	if err != nil {
		return fmt.Errorf("brownian: %w", err)
	}
	inc := int64(0)
	if s.Increments {
		inc = 1
	}
	sh := math.Sqrt(s.Horizon / float64(n))
	err = b.launch(k, pathGrid(b.sms(), paths), brownianArgs{Dst: dst, Paths: paths, N: n, Tau: int64(s.Epoch), SH: sh,
		Increments: inc, Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("brownian (paths=%d, n=%d, %v): %w", paths, n, dst.DType(), err)
	}
	return nil
}
