package ops

import (
	"errors"
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// ChainMethod is the Langevin-family method of a fused chain run (GMMChains).
type ChainMethod int

// The methods of GMMChains, with the meaning of the step ops they fuse (docs/math.md §2).
const (
	ChainULA  ChainMethod = iota + 1 // Step with ULA(h) after a score evaluation
	ChainMALA                        // Step (proposal), log p and score of the proposal, MALAAccept
	ChainULD                         // score evaluation, then ULDStep
)

func (m ChainMethod) String() string {
	switch m {
	case ChainULA:
		return "ula"
	case ChainMALA:
		return "mala"
	case ChainULD:
		return "uld"
	}
	return fmt.Sprintf("ChainMethod(%d)", int(m))
}

// ChainSites lays out the draw sites of a fused run: step s of the call (s = 0..Steps−1) draws
// its purpose-p numbers at site (First + s)·Stride + p, where p is Step (the Gaussian increment
// of ULA or of a MALA proposal), Accept (the MALA uniform) or ULD (ULDStep's two sites ULD and
// ULD+1). A sampler passes its own layout (solvers.Site: Stride 16) so that a fused run draws
// exactly the numbers of its step-by-step twin.
type ChainSites struct {
	First, Stride     uint64
	Step, Accept, ULD uint64
}

// Site is the draw site of step s, purpose p.
func (c ChainSites) Site(s int, p uint64) uint64 { return (c.First+uint64(s))*c.Stride + p }

// GaussianFactor is the reverse-transition-kernel factor exp(−‖Center − A x‖² / (2V)) that RTK
// multiplies its sub-target by (see AddGaussianFactor): Center is (N, d) with x's dtype on the
// backend's device, A > 0, V > 0.
type GaussianFactor struct {
	Center *tensor.Tensor
	A, V   float64
}

// FusedMaxDim is the largest dimension GMMChains accepts: the fused kernels keep a chain's state
// in registers (one thread per chain for d ≤ 16, one warp per chain above).
const FusedMaxDim = 256

// ErrNotFusable marks a GMMChains request outside what the fused kernels do (full covariances,
// per-row noise levels, d > FusedMaxDim). Samplers test for it and fall back to one launch per op.
var ErrNotFusable = errors.New("not fusable")

// GMMChains runs Steps steps of one Langevin-family method on a Gaussian mixture (noised at one
// shared level, optionally times a GaussianFactor) for N chains in one call — on the GPU in one
// launch, each chain's state held by its thread(s) between steps. It is defined as, and the CPU
// reference computes it as, the step-by-step sequence, for s = 0..Steps−1:
//
//	ULA   score ← ∇log p(X) (+ factor);  X ← Step(X, score, ULA(h), site(s, Step))
//	MALA  Y ← Step(X, Score, ULA(h), site(s, Step));  log p, score of Y (+ factor);
//	      MALAAccept(cur = (X, LogP, Score), prop = Y, h, site(s, Accept), Accepted)
//	ULD   score ← ∇log p(X) (+ factor);  ULDStep(X, V, score, h, ULD, site(s, ULD))
//
// with per-chain step sizes HS instead of H when given (ULA and MALA). State is updated in place.
// After every Thin steps the state is copied to the next row of Trace when Trace is set.
type GMMChains struct {
	Method  ChainMethod
	Mixture *GMM
	Noise   Noise           // a shared level (Levels must be nil); the zero value means NoNoise
	Factor  *GaussianFactor // optional
	Steps   int             // ≥ 1
	H       float64         // step size > 0, unless HS is given
	HS      *tensor.Tensor  // optional per-chain step sizes (N), x's dtype (ULA and MALA)
	ULD     ULDParams       // friction and inverse mass (ULD)
	Seed    uint64
	// FirstChain is the chain index of row 0 (as in Draw).
	FirstChain uint64
	Sites      ChainSites
	// X (N, d) is the state; V (N, d) the ULD velocity. LogP (N) and Score (N, d) are MALA's log
	// density and score of X: valid on entry (as after a GMMScore of X, plus the factor) and kept
	// valid. Accepted (f64, (N)) counts MALA acceptances; it is incremented, not reset.
	X, V, LogP, Score, Accepted *tensor.Tensor
	// Trace (Steps/Thin, N, d), when set, receives the state after Thin, 2·Thin, … steps.
	Trace *tensor.Tensor
	Thin  int
}

// CheckGMMChains validates GMMChains' arguments; every backend calls it first. Requests that are
// valid but outside the fused kernels (see ErrNotFusable) are rejected by every backend alike, so
// the reference and the kernels agree on what a fused run is.
func CheckGMMChains(dev tensor.Device, c GMMChains) error {
	op := "gmm chains"
	if c.Method != 0 {
		op = "gmm chains " + c.Method.String()
	}
	switch c.Method {
	case ChainULA, ChainMALA, ChainULD:
	default:
		return fmt.Errorf("%s: unknown method %v (want ChainULA, ChainMALA or ChainULD)", op, c.Method)
	}
	g := c.Mixture
	if g == nil {
		return fmt.Errorf("%s: nil mixture", op)
	}
	if g.kind != Isotropic && g.kind != Diagonal {
		return fmt.Errorf("%s: %v covariances: %w (isotropic and diagonal only)", op, g.kind, ErrNotFusable)
	}
	if g.d > FusedMaxDim {
		return fmt.Errorf("%s: dimension %d > %d: %w", op, g.d, FusedMaxDim, ErrNotFusable)
	}
	if c.Noise.Levels != nil {
		return fmt.Errorf("%s: per-row noise levels: %w (one shared level only)", op, ErrNotFusable)
	}
	x := c.X
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: X must be an open (N, d) tensor", op)
	}
	n, dim, dt := x.Dim(0), x.Dim(1), x.DType()
	if err := checkSame(op, "X", x, dev, dt, n, g.d); err != nil {
		return err
	}
	if c.FirstChain >= MaxChains || uint64(n) > MaxChains-c.FirstChain {
		return fmt.Errorf("%s: chains %d..%d out of range: chain indices must be below 2^32",
			op, c.FirstChain, c.FirstChain+uint64(n))
	}
	if c.Steps < 1 {
		return fmt.Errorf("%s: steps = %d: need at least one step", op, c.Steps)
	}
	if c.HS != nil {
		if c.Method == ChainULD {
			return fmt.Errorf("%s: per-chain step sizes are for ULA and MALA", op)
		}
		if err := checkSame(op, "per-chain step sizes", c.HS, dev, dt, n); err != nil {
			return err
		}
	} else if !(c.H > 0) || !finite(c.H) {
		return fmt.Errorf("%s: step size h = %g: must be a finite number > 0", op, c.H)
	}
	switch c.Method {
	case ChainMALA:
		if err := checkSame(op, "log p", c.LogP, dev, dt, n); err != nil {
			return err
		}
		if err := checkSame(op, "score", c.Score, dev, dt, n, dim); err != nil {
			return err
		}
		if err := checkSame(op, "acceptance counts", c.Accepted, dev, tensor.F64, n); err != nil {
			return err
		}
	case ChainULD:
		if err := checkSame(op, "V", c.V, dev, dt, n, dim); err != nil {
			return err
		}
		if !(c.ULD.Gamma > 0) || !finite(c.ULD.Gamma) {
			return fmt.Errorf("%s: friction γ = %g: must be a finite number > 0", op, c.ULD.Gamma)
		}
		if !(c.ULD.InvMass > 0) || !finite(c.ULD.InvMass) {
			return fmt.Errorf("%s: inverse mass u = %g: must be a finite number > 0", op, c.ULD.InvMass)
		}
	}
	if f := c.Factor; f != nil {
		if err := checkSame(op, "factor center", f.Center, dev, dt, n, dim); err != nil {
			return err
		}
		if !(f.A > 0) || !finite(f.A) || !(f.V > 0) || !finite(f.V) {
			return fmt.Errorf("%s: factor scale a = %g and variance v = %g must be finite and > 0", op, f.A, f.V)
		}
	}
	if c.Trace != nil {
		if c.Thin < 1 || c.Thin > c.Steps {
			return fmt.Errorf("%s: thin = %d: must be in [1, steps = %d] with a trace", op, c.Thin, c.Steps)
		}
		if err := checkSame(op, "trace", c.Trace, dev, dt, c.Steps/c.Thin, n, dim); err != nil {
			return err
		}
	}
	s := c.Sites
	maxP := max(s.Step, s.Accept, s.ULD+1)
	if s.Stride <= maxP {
		return fmt.Errorf("%s: site stride %d must exceed every purpose offset (%d)", op, s.Stride, maxP)
	}
	// The largest step index (First + Steps − 1) times Stride plus the largest purpose must fit.
	if lim := (math.MaxUint64 - maxP) / s.Stride; uint64(c.Steps-1) > lim || s.First > lim-uint64(c.Steps-1) {
		return fmt.Errorf("%s: sites of steps %d..%d (stride %d) overflow 64 bits", op, s.First, s.First+uint64(c.Steps)-1, s.Stride)
	}
	noise := c.Noise
	if noise.Kind == 0 {
		noise = NoNoise
	}
	// The score op's own checks (noise level, dtype) with the outputs the method needs.
	if err := CheckGMMScore(dev, ScoreOutputs{Score: x}, x, g, noise); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// GMMChains is the reference of the fused chains: literally the step-by-step sequence of the
// backend's own ops (see the GMMChains type), with scratch tensors for the proposal and the score.
func (b cpuBackend) GMMChains(c GMMChains) error {
	return StepByStepChains(b, c)
}

// StepByStepChains runs c on b one op at a time: the definition of GMMChains, usable on any
// backend (the CUDA parity tests compare its result with the fused kernel's). It validates c
// with CheckGMMChains first.
func StepByStepChains(b Backend, c GMMChains) error {
	if err := CheckGMMChains(b.Device(), c); err != nil {
		return err
	}
	op := "gmm chains " + c.Method.String()
	dev, dt, n, dim := b.Device(), c.X.DType(), c.X.Dim(0), c.X.Dim(1)
	noise := c.Noise
	if noise.Kind == 0 {
		noise = NoNoise
	}
	var scratch []*tensor.Tensor
	defer func() {
		for _, t := range scratch {
			t.Close()
		}
	}()
	alloc := func(shape ...int) (*tensor.Tensor, error) {
		t, err := tensor.New(dev, dt, shape...)
		if err != nil {
			return nil, fmt.Errorf("%s: allocate %v: %w", op, shape, err)
		}
		scratch = append(scratch, t)
		return t, nil
	}
	eval := func(out ScoreOutputs, x *tensor.Tensor) error {
		if err := b.GMMScore(out, x, c.Mixture, noise); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if f := c.Factor; f != nil {
			if err := b.AddGaussianFactor(out, x, f.Center, f.A, f.V); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		return nil
	}
	coeffs := ULA(c.H)
	if c.HS != nil {
		coeffs = ULAPerChain(c.HS)
	}
	draw := func(s int, p uint64) Draw {
		return Draw{Seed: c.Seed, Site: c.Sites.Site(s, p), FirstChain: c.FirstChain}
	}
	score, err := alloc(n, dim)
	if err != nil {
		return err
	}
	var prop MALAState
	if c.Method == ChainMALA {
		if prop.X, err = alloc(n, dim); err != nil {
			return err
		}
		if prop.LogP, err = alloc(n); err != nil {
			return err
		}
		prop.Score = score
	}
	for s := 0; s < c.Steps; s++ {
		switch c.Method {
		case ChainULA:
			if err := eval(ScoreOutputs{Score: score}, c.X); err != nil {
				return err
			}
			if err := b.Step(c.X, c.X, score, coeffs, draw(s, c.Sites.Step)); err != nil {
				return fmt.Errorf("%s: step %d: %w", op, s, err)
			}
		case ChainMALA:
			if err := b.Step(prop.X, c.X, c.Score, coeffs, draw(s, c.Sites.Step)); err != nil {
				return fmt.Errorf("%s: step %d: propose: %w", op, s, err)
			}
			if err := eval(ScoreOutputs{LogP: prop.LogP, Score: prop.Score}, prop.X); err != nil {
				return err
			}
			cur := MALAState{X: c.X, LogP: c.LogP, Score: c.Score}
			if err := b.MALAAccept(cur, prop, c.H, c.HS, draw(s, c.Sites.Accept), c.Accepted); err != nil {
				return fmt.Errorf("%s: step %d: accept: %w", op, s, err)
			}
		case ChainULD:
			if err := eval(ScoreOutputs{Score: score}, c.X); err != nil {
				return err
			}
			if err := b.ULDStep(c.X, c.V, score, c.H, c.ULD, draw(s, c.Sites.ULD)); err != nil {
				return fmt.Errorf("%s: step %d: %w", op, s, err)
			}
		}
		if c.Trace != nil && (s+1)%c.Thin == 0 {
			row := (s+1)/c.Thin - 1
			dst, err := c.Trace.View(row*n*dim, n, dim)
			if err != nil {
				return fmt.Errorf("%s: trace row %d: %w", op, row, err)
			}
			if err := dst.CopyFrom(c.X); err != nil {
				return fmt.Errorf("%s: trace row %d: %w", op, row, err)
			}
		}
	}
	return nil
}
