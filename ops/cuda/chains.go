//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
)

// The launcher of kernels/chains.cu (see its header comment for the algorithm): one launch runs
// every step of a GMMChains request, reading the mixture's per-component constants for the
// request's noise level from the mixture's "gmm/consts" table, the table GMMScore uses (written by
// gmm_prep when it holds another level, see gmmLevel).
//
// Kernel variant by d (entries chains_<ula|mala|uld>_<variant>_<f32|f64>):
//
//	d ≤ 2 row2, ≤ 4 row4, ≤ 8 row8, ≤ 16 row16    one thread per chain, 256 per block
//	d ≤ 32·P warp<P>, P ∈ {1, 2, 4, 8}             one warp per chain, 8 per block (d ≤ 256)

// GMMChains: see ops.Backend. One gmm_prep launch and one chains launch; nothing is
// synchronised (the results are ready once the device's stream is).
func (b *Backend) GMMChains(c ops.GMMChains) error {
	defer b.enter()()
	if err := ops.CheckGMMChains(b.dev, c); err != nil {
		return err
	}
	n := c.X.Dim(0)
	if n == 0 {
		return nil
	}
	op := "gmm chains " + c.Method.String()
	if c.FirstChain >= ops.MaxChains || uint64(n) > ops.MaxChains-c.FirstChain {
		return fmt.Errorf("%s: chains %d..%d out of range: chain indices must be below 2^32",
			op, c.FirstChain, c.FirstChain+uint64(n))
	}
	dt, g := c.X.DType(), c.Mixture
	k, d, kind := g.K(), g.Dim(), g.Kind()
	plan := planChains(k, d, kind, dt)
	noise := c.Noise
	if noise.Kind == 0 {
		noise = ops.NoNoise
	}
	a, s, ok := noise.ScaleVar(noise.Level)
	if !ok { // CheckGMMChains already refused this
		return fmt.Errorf("%s: invalid noise level %g", op, noise.Level)
	}
	kern, err := b.typedKernel("chains", "chains_"+c.Method.String()+"_"+plan.variant, dt)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	params, err := b.gmmParams(g, dt)
	if err != nil {
		return fmt.Errorf("%s: upload the mixture (K = %d, d = %d, %v): %w", op, k, d, kind, err)
	}

	// Step coefficients exactly as the step ops receive them.
	coeffs := ops.ULA(c.H)
	if c.HS != nil {
		coeffs = ops.ULAPerChain(c.HS)
	}
	si := c.Sites
	args := chainsArgs{X: c.X, HS: c.HS, N: int64(n), D: int64(d), K: int64(k), Cov: int64(kind),
		Tile: plan.tile, Steps: int64(c.Steps), Group: langevinGroup(d), H: c.H, Beta: coeffs.Beta,
		Gamma: coeffs.Gamma, FV: 1, Seed: c.Seed, First: si.First, Stride: si.Stride, PStep: si.Step,
		PAccept: si.Accept, PULD: si.ULD, Chain0: c.FirstChain}
	if c.Method == ops.ChainULD {
		args.E, args.CV, args.CX, args.CXG, args.L11, args.L21, args.L22 = ops.ULDCoefficients(c.H, c.ULD)
	}
	if f := c.Factor; f != nil {
		args.Center, args.FA, args.FV = f.Center, f.A, f.V
	}
	switch c.Method {
	case ops.ChainMALA:
		args.LogP, args.Score, args.Accepted = c.LogP, c.Score, c.Accepted
	case ops.ChainULD:
		args.V = c.V
	}
	if c.Trace != nil {
		args.Trace, args.Thin = c.Trace, int64(c.Thin)
	}

	consts, err := b.gmmLevel(g, dt, params, a, s)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	cfg := b.gmmBlocks(int64(n), plan.rowsPer, chainsBlock)
	cfg.SharedMem = plan.sharedMem
	args.Consts = consts
	err = b.launch(kern, cfg, args)
	if err != nil {
		return fmt.Errorf("%s: N = %d, K = %d, d = %d, %d steps: %w", op, n, k, d, c.Steps, err)
	}
	return nil
}
