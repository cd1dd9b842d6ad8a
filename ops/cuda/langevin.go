//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Launchers of kernels/langevin.cu. Each validates its arguments with the ops.Check* function the
// CPU reference uses, returns nil without a launch when there is nothing to change (N == 0, or
// d == 0 except for MALAAccept, whose decision then rests on log p alone), passes a null
// pointer for each absent optional tensor, and does not synchronise: results are ordered on the
// device's stream like every other launch.

// Step: see ops.Backend. One thread per Philox block of a row (4 coordinates in f32, 2 in f64).
func (b *Backend) Step(dst, x, score *tensor.Tensor, c ops.Coeffs, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckStep(b.dev, dst, x, score, c, d); err != nil {
		return err
	}
	n, dim := int64(x.Dim(0)), int64(x.Dim(1))
	if n == 0 || dim == 0 {
		return nil
	}
	k, err := b.typedKernel("langevin", "step", x.DType())
	if err != nil {
		return fmt.Errorf("step: %w", err)
	}
	var s *tensor.Tensor // β = 0: the kernel never reads the score
	if c.Beta != 0 {
		s = score
	}
	lanes := (dim + normalLanes(x.DType()) - 1) / normalLanes(x.DType())
	err = b.launch(k, b.gridFor(n*lanes), stepArgs{Dst: dst, X: x, Score: s, H: c.H, N: n, D: dim,
		Alpha: c.Alpha, Beta: c.Beta, Gamma: c.Gamma, Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("step (N=%d, d=%d, %v): %w", n, dim, x.DType(), err)
	}
	return nil
}

// MALAAccept: see ops.Backend. A group of lanes (langevinGroup) per chain reduces the two proposal
// log-densities in float64 and takes the decision. Rows of width 0 are still decided (on the
// log-densities alone), as the reference does, so only N == 0 skips the launch.
func (b *Backend) MALAAccept(cur, prop ops.MALAState, h float64, hs *tensor.Tensor, d ops.Draw, accepted *tensor.Tensor) error {
	defer b.enter()()
	if err := ops.CheckMALAAccept(b.dev, cur, prop, h, hs, d, accepted); err != nil {
		return err
	}
	n, dim := int64(cur.X.Dim(0)), int64(cur.X.Dim(1))
	if n == 0 {
		return nil
	}
	k, err := b.typedKernel("langevin", "mala_accept", cur.X.DType())
	if err != nil {
		return fmt.Errorf("mala accept: %w", err)
	}
	g := langevinGroup(int(dim))
	err = b.launch(k, b.gridFor(n*g), malaAcceptArgs{X: cur.X, LogP: cur.LogP, Score: cur.Score, Y: prop.X,
		LogPY: prop.LogP, ScoreY: prop.Score, HS: hs, H: h, Accepted: accepted, N: n, D: dim, Group: g,
		Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("mala accept (N=%d, d=%d, %v): %w", n, dim, cur.X.DType(), err)
	}
	return nil
}

// ULDStep: see ops.Backend. The step's coefficients come from ops.ULDCoefficients on the host; one
// thread per Philox block of a row draws ξ1 (site) and ξ2 (site+1).
func (b *Backend) ULDStep(x, v, score *tensor.Tensor, h float64, p ops.ULDParams, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckULDStep(b.dev, x, v, score, h, p, d); err != nil {
		return err
	}
	n, dim := int64(x.Dim(0)), int64(x.Dim(1))
	if n == 0 || dim == 0 {
		return nil
	}
	k, err := b.typedKernel("langevin", "uld_step", x.DType())
	if err != nil {
		return fmt.Errorf("uld step: %w", err)
	}
	args := uldStepArgs{X: x, V: v, Score: score, N: n, D: dim, Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain}
	args.E, args.CV, args.CX, args.CXG, args.L11, args.L21, args.L22 = ops.ULDCoefficients(h, p)
	lanes := (dim + normalLanes(x.DType()) - 1) / normalLanes(x.DType())
	err = b.launch(k, b.gridFor(n*lanes), args)
	if err != nil {
		return fmt.Errorf("uld step (N=%d, d=%d, %v): %w", n, dim, x.DType(), err)
	}
	return nil
}

// AddGaussianFactor: see ops.Backend. A group of lanes (langevinGroup) per row.
func (b *Backend) AddGaussianFactor(out ops.ScoreOutputs, x, center *tensor.Tensor, a, v float64) error {
	defer b.enter()()
	if err := ops.CheckGaussianFactor(b.dev, out, x, center, a, v); err != nil {
		return err
	}
	n, dim := int64(x.Dim(0)), int64(x.Dim(1))
	if n == 0 || dim == 0 {
		return nil
	}
	k, err := b.typedKernel("langevin", "gaussian_factor", x.DType())
	if err != nil {
		return fmt.Errorf("gaussian factor: %w", err)
	}
	g := langevinGroup(int(dim))
	err = b.launch(k, b.gridFor(n*g), gaussianFactorArgs{LogP: out.LogP, Score: out.Score, X: x, Center: center,
		N: n, D: dim, Group: g, A: a, Var: v})
	if err != nil {
		return fmt.Errorf("gaussian factor (N=%d, d=%d, %v): %w", n, dim, x.DType(), err)
	}
	return nil
}
