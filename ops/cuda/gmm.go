//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The launcher of kernels/gmm.cu (see its header comment for the algorithm).
//
// Tables per mixture and dtype, uploaded on first use and kept in the backend's table cache:
//
//	"gmm/params" = [log w (K) | λ (K·l1) | μ (K·d) | U (K·d·d, full only)], l1 = 1 (isotropic) or d
//	"gmm/consts" = [cst (K) | 1/c (K·l1) | a μ (K·d)], written by gmm_prep_<dt> for a shared level
//	               (a, s) and read by the score and chains kernels; rewritten only when a call
//	               wants another level than the one it holds
//
// Kernel variant by covariance kind and d (the benchmark tables name them):
//
//	isotropic, diagonal: d ≤ 4 row4, d ≤ 8 row8, d ≤ 16 row16 (a thread per row); d ≤ 32·P
//	                     warp<P> for P = 1, 2, 4, 8, 16 (a warp per row, P coordinates per lane);
//	                     d > 512 wide
//	full:                d ≤ 4 rowfull4, d ≤ 8 rowfull8; d > 8 full (a warp per row)
//
// with the suffix "lv" for per-row levels: gmm_score_<variant>[lv]_<f32|f64>.

// GMMScore: see ops.Backend. One launch of a score kernel (preceded, at a shared noise level, by
// gmm_prep, which turns the mixture into per-component constants of that level). Nothing is
// synchronised: the results are ready once the device's stream is (callers synchronise).
func (b *Backend) GMMScore(out ops.ScoreOutputs, x *tensor.Tensor, g *ops.GMM, noise ops.Noise) error {
	defer b.enter()()
	if err := ops.CheckGMMScore(b.dev, out, x, g, noise); err != nil {
		return err
	}
	n := x.Dim(0)
	if n == 0 {
		return nil
	}
	dt := x.DType()
	k, d, kind := g.K(), g.Dim(), g.Kind()
	plan, err := planGMM(k, d, kind, dt)
	if err != nil {
		return err
	}
	params, err := b.gmmParams(g, dt)
	if err != nil {
		return fmt.Errorf("gmm score: upload the mixture (K = %d, d = %d, %v): %w", k, d, kind, err)
	}
	lv := ""
	var levels, consts *tensor.Tensor
	a, s := 1.0, 0.0
	if noise.Levels != nil {
		lv, levels = "lv", noise.Levels
	} else {
		var ok bool
		if a, s, ok = noise.ScaleVar(noise.Level); !ok { // CheckGMMScore already refused this
			return fmt.Errorf("gmm score: invalid noise level %g", noise.Level)
		}
		c, err := b.gmmLevel(g, dt, params, a, s)
		if err != nil {
			return fmt.Errorf("gmm score: %w", err)
		}
		consts = c
	}
	kern, err := b.typedKernel("gmm", "gmm_score_"+plan.variant+lv, dt)
	if err != nil {
		return fmt.Errorf("gmm score: %w", err)
	}
	cfg := b.gmmBlocks(int64(n), plan.rowsPer, plan.threads)
	cfg.SharedMem = plan.sharedMem
	err = b.launch(kern, cfg, gmmScoreArgs{LogP: out.LogP, Score: out.Score, Den: out.Denoiser, Resp: out.Resp,
		X: x, N: int64(n), D: int64(d), K: int64(k), Cov: int64(kind), Params: params, Consts: consts,
		Noise: int64(noise.Kind), Levels: levels, A: a, S: s, Tile: plan.tile})
	if err != nil {
		return fmt.Errorf("gmm score: N = %d, K = %d, d = %d, %v: %w", n, k, d, kind, err)
	}
	return nil
}

// gmmBlocks is gmmGrid on this device.
func (b *Backend) gmmBlocks(items int64, perBlock, threads int) tensor.LaunchConfig {
	return gmmGrid(b.sms(), items, perBlock, threads)
}

// gmmParams returns the mixture's parameter table on the device (see the file comment), uploading
// it on first use.
func (b *Backend) gmmParams(g *ops.GMM, dt tensor.DType) (*tensor.Tensor, error) {
	const name = "gmm/params"
	if e := b.table(paramKey{g, name, dt}); e != nil {
		return e.t, nil
	}
	p := g.Params()
	data := make([]float64, 0, len(p.LogWeights)+len(p.Lambda)+len(p.Means)+len(p.U))
	data = append(data, p.LogWeights...)
	data = append(data, p.Lambda...)
	data = append(data, p.Means...)
	data = append(data, p.U...)
	return b.upload(g, name, dt, data, len(data))
}

// gmmLevel returns the mixture's per-level table for the shared level (a, s): the cached one when
// it already holds that level, else the table rewritten by one gmm_prep launch (allocated on first
// use). params is the mixture's parameter table.
func (b *Backend) gmmLevel(g *ops.GMM, dt tensor.DType, params *tensor.Tensor, a, s float64) (*tensor.Tensor, error) {
	k, d, kind := g.K(), g.Dim(), g.Kind()
	key := paramKey{g, "gmm/consts", dt}
	e := b.table(key)
	if e != nil && e.leveled && e.level == [2]float64{a, s} {
		return e.t, nil
	}
	if e == nil {
		l1 := d
		if kind == ops.Isotropic {
			l1 = 1
		}
		size := k + k*l1 + k*d
		if err := b.tables.makeRoom(int64(size) * int64(dt.Size())); err != nil {
			return nil, err
		}
		t, err := tensor.Empty(b.dev, dt, size)
		if err != nil {
			return nil, fmt.Errorf("allocate the per-level table (K = %d, d = %d): %w", k, d, err)
		}
		if e, err = b.tables.put(key, t); err != nil {
			t.Close()
			return nil, err
		}
	}
	prep, err := b.typedKernel("gmm", "gmm_prep", dt)
	if err != nil {
		return nil, err
	}
	e.leveled = false // until the launch is queued
	if err := b.launch(prep, b.gmmBlocks(int64(k), gmmBlockThreads/gmmWarpSize, gmmBlockThreads),
		gmmPrepArgs{Consts: e.t, Params: params, D: int64(d), K: int64(k), Cov: int64(kind), A: a, S: s}); err != nil {
		return nil, err
	}
	e.level, e.leveled = [2]float64{a, s}, true
	return e.t, nil
}
