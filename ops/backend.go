package ops

import (
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

// Backend runs ops on one device. Implementations: CPU() here, and cuda.New in ops/cuda.
// Tensors passed to a Backend must live on its Device; methods never move data between devices.
// Every method validates its arguments and returns an error naming the op and the problem; none
// panics on bad input.
type Backend interface {
	// Name is "cpu" or "cuda:<ordinal>".
	Name() string
	// Device is where the backend's tensors live.
	Device() tensor.Device

	// PhiloxBits fills dst (float32, shape (chains, dim)) with raw Philox words: element (i, j)
	// holds the bit pattern of word j%4 of lane j/4 for chain d.FirstChain+i (see philox.go).
	// It exists so that two backends can be compared word for word.
	PhiloxBits(dst *tensor.Tensor, d Draw) error
	// Uniform fills dst (shape (chains, dim)) with uniforms in [0, 1) for the draw d.
	Uniform(dst *tensor.Tensor, d Draw) error
	// Normal fills dst (shape (chains, dim)) with standard normals for the draw d.
	Normal(dst *tensor.Tensor, d Draw) error

	// GMMScore evaluates the Gaussian mixture g, noised by noise, at every row of x (N, d) in one
	// fused pass, writing the requested outputs (see ScoreOutputs and the reference in score_cpu.go).
	GMMScore(out ScoreOutputs, x *tensor.Tensor, g *GMM, noise Noise) error
	// EmpiricalScore evaluates the optimal denoiser of the data set e (and its log-density and
	// score) at every row of x, streaming over the data with an online softmax.
	EmpiricalScore(out ScoreOutputs, x *tensor.Tensor, e *Empirical, noise Noise) error
	// GMMScaleMixtureDenoise writes the posterior mean of x_0 ~ g given every row of x = x_0 + ε,
	// ε a Gaussian scale mixture (node q with probability π_q: N(0, v A_q I)), into dst: the exact
	// denoiser of the Lévy–Itō model's mixture targets (see ScaleMixture).
	GMMScaleMixtureDenoise(dst, x *tensor.Tensor, g *GMM, m *ScaleMixture, v float64) error
	// MLPScore evaluates the learned denoiser m (and the score it implies by Tweedie) at every row
	// of x, noised by noise; on the GPU one fused launch runs the whole network (see mlp.go).
	MLPScore(out ScoreOutputs, x *tensor.Tensor, m *MLP, noise Noise) error

	// Step is the fused linear update dst = α x + β score + γ ξ of Langevin, MALA-proposal and
	// exponential-integrator steps (see Coeffs); dst may be x.
	Step(dst, x, score *tensor.Tensor, c Coeffs, d Draw) error
	// MALAAccept applies the Metropolis–Hastings correction to a batch of MALA proposals, in place
	// on cur, counting acceptances per chain in accepted (f64, (N)). Step sizes: h, or per chain hs.
	MALAAccept(cur, prop MALAState, h float64, hs *tensor.Tensor, d Draw, accepted *tensor.Tensor) error
	// ULDStep advances underdamped Langevin dynamics (x, v) by one frozen-gradient step, in place;
	// it uses the normals of sites d.Site and d.Site+1.
	ULDStep(x, v, score *tensor.Tensor, h float64, p ULDParams, d Draw) error
	// AddGaussianFactor adds the reverse-transition-kernel factor −‖c − a x‖²/(2v) to log p and its
	// gradient a (c − a x)/v to the score, in place.
	AddGaussianFactor(out ScoreOutputs, x, center *tensor.Tensor, a, v float64) error
	// GMMChains runs many steps of ULA, MALA or ULD on a Gaussian mixture in one call (on the GPU
	// in one launch); it equals the step-by-step sequence of the ops above (see GMMChains).
	GMMChains(c GMMChains) error

	// FFT computes the discrete Fourier transform of every signal in src into dst (both
	// (batch, n, 2): complex values as interleaved real and imaginary parts; dst may be src), n a
	// power of two. Forward: X_k = Σ_j x_j e^{−2πi jk/n}; inverse: x_j = (1/n) Σ_k X_k e^{+2πi jk/n}.
	FFT(dst, src *tensor.Tensor, inverse bool) error
	// FGN fills dst (paths, n) with fractional Gaussian noise (or fBM paths, see FGNForm) of the
	// plan's Hurst index by the Davies–Harte method (docs/math.md §4.1), row i from chain
	// d.FirstChain+i of the draw.
	FGN(dst *tensor.Tensor, p *FGNPlan, form FGNForm, d Draw) error
	// MAFBM advances the Markov approximation of fBM (docs/math.md §4.2) for every path: y (paths, K)
	// holds the OU states (in and out), dst (paths, S) receives B̂ after each of S steps of size h.
	// Step s draws K normals at site d.Site + s·stride.
	MAFBM(dst, y *tensor.Tensor, m *MAFBM, h float64, d Draw, stride uint64) error
	// Stable fills dst with α-stable variates (docs/math.md §4.3) of the spec and returns how many
	// values were clamped (0 unless s.Clamp > 0).
	Stable(dst *tensor.Tensor, s StableSpec, d Draw) (clamped int64, err error)
	// Brownian fills dst (paths, n) with Brownian paths or increments on [0, T], plain or restarted
	// as a bridge every epoch (docs/math.md §4.4).
	Brownian(dst *tensor.Tensor, s BrownianSpec, d Draw) error
	// BrownianIncrements fills dst (paths, q) with W(s, t) of Brownian intervals (docs/math.md
	// §4.6): dst[i, j] = W(s[i, j], t[i, j]) of the path of chain d.FirstChain+i, exact in law at
	// the spec's resolution and independent of the order and batching of queries; s and t are f64,
	// (paths, q) or (1, q) for times shared by every path.
	BrownianIncrements(dst, s, t *tensor.Tensor, spec BrownianIntervalSpec, d Draw) error
	// ReversibleHeun advances (y, z) (N, d) in place by q reversible Heun steps of size h of the
	// affine Stratonovich SDE s (docs/math.md §4.7), coordinate j of chain c driven by the
	// increments dw[c·d + j, 0 … q−1] (f64, (N·d, q)); HeunInverse undoes HeunForward to round-off.
	ReversibleHeun(y, z, dw *tensor.Tensor, s AffineSDE, h float64, dir HeunDirection) error
	// ReversibleHeunAdjoint walks q reversible Heun steps of s backward (the discrete adjoint,
	// docs/math.md §4.8): (y, z) are reconstructed as by HeunInverse, the cotangents ay, az (f64,
	// (N, d)) carried back, and grad (f64, (N·d, 4)) gains each coordinate's cotangents of the
	// coefficients (A, B, C, E).
	ReversibleHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, s AffineSDE, h float64) error
	// LangevinMixtureHeun advances (y, z) (N, d) in place by q reversible Heun steps of size h of
	// the Langevin SDE of the mixture m (docs/math.md §4.8), coordinate j of chain c driven by
	// dw[c·d + j, 0 … q−1] (f64, (N·d, q)); HeunInverse undoes HeunForward to round-off.
	LangevinMixtureHeun(y, z, dw *tensor.Tensor, m *LangevinMixture, h float64, dir HeunDirection) error
	// LangevinMixtureHeunAdjoint walks q reversible Heun steps of m backward (the discrete
	// adjoint): (y, z) are reconstructed as by HeunInverse, the cotangents ay, az (f64, (N, d))
	// carried back, and column c of grad (f64, (K·d + K, N)) gains chain c's cotangent of the
	// means and logits.
	LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, m *LangevinMixture, h float64) error
	// AugmentedStep applies the per-coordinate affine map m of the augmented state of generative
	// fractional diffusion (docs/math.md §5.5) to every coordinate of x (M, N, d) into dst, with
	// the second state y, the denoiser's values den (N, d), R normals per coordinate from the draw,
	// and writes the projection u (N, d) of the result when m has one (see AugmentedSpec).
	AugmentedStep(dst, x, y, den, u *tensor.Tensor, m *AugmentedMap, d Draw) error

	// Combine is the fused multi-term update dst = Σ_k C_k T_k + noise·ξ (ξ ~ N(0, I) from the
	// draw when noise ≠ 0) of the diffusion solvers (docs/math.md §5); dst may be any of the terms.
	Combine(dst *tensor.Tensor, terms []Term, noise float64, d Draw) error
	// MetropolisStep moves each row of x to the matching row of prop when prop's row lies in the
	// domain, and otherwise keeps it and adds 1 to rejected[i] (f64, (N)) (docs/math.md §5.4).
	MetropolisStep(x, prop *tensor.Tensor, dom *Domain, rejected *tensor.Tensor) error

	// Close releases what the backend holds (not the device, not the caller's tensors).
	Close() error
}

// Releaser is implemented by backends that keep device copies of targets between calls (the
// CUDA backend keeps mixtures, data sets, fGn weights, MA-fBM transitions, domains and networks
// under a byte budget): Release frees what is kept for target (a *GMM, *Empirical, *MAFBM,
// *FGNPlan, *Domain or *MLP) now, for callers that go through many targets and know when one is
// done.
type Releaser interface {
	Release(target any) error
}

// Release frees what b keeps for target when b is a Releaser; on other backends (the CPU) it does
// nothing.
func Release(b Backend, target any) error {
	if r, ok := b.(Releaser); ok {
		return r.Release(target)
	}
	return nil
}

// Draw names one set of random numbers: row i of the destination belongs to chain FirstChain+i,
// and Site tells apart the draws one chain makes (a sampler uses one site per step and purpose).
type Draw struct {
	Seed       uint64
	Site       uint64
	FirstChain uint64
}

// MaxChains is the number of distinct chain indices of one seed (chains are 32-bit in the counter).
const MaxChains = 1 << 32

// checkFill validates the destination of a fill op and the draw: a 2-D tensor on dev, with
// FirstChain+chains within MaxChains.
func checkFill(op string, dev tensor.Device, dst *tensor.Tensor, d Draw) error {
	if dst == nil {
		return fmt.Errorf("%s: destination tensor is nil", op)
	}
	if dst.Closed() {
		return fmt.Errorf("%s: %w", op, tensor.ErrClosed)
	}
	if dst.Device() != dev {
		return fmt.Errorf("%s: destination is on %s, backend runs on %s", op, dst.Device().Name(), dev.Name())
	}
	if dst.Rank() != 2 {
		return fmt.Errorf("%s: destination shape %v: want (chains, dim)", op, dst.Shape())
	}
	chains := uint64(dst.Dim(0))
	if d.FirstChain >= MaxChains || chains > MaxChains-d.FirstChain {
		return fmt.Errorf("%s: chains %d..%d out of range: chain indices must be below 2^32",
			op, d.FirstChain, d.FirstChain+chains)
	}
	return nil
}

// CheckPhiloxBits, CheckUniform and CheckNormal validate a fill op's arguments; every Backend
// calls them first so that all backends reject the same inputs with the same errors.
func CheckPhiloxBits(dev tensor.Device, dst *tensor.Tensor, d Draw) error {
	if err := checkFill("philox bits", dev, dst, d); err != nil {
		return err
	}
	if dst.DType() != tensor.F32 {
		return fmt.Errorf("philox bits: destination is %v, want f32 (raw 32-bit words)", dst.DType())
	}
	return nil
}

// CheckUniform validates Uniform's arguments.
func CheckUniform(dev tensor.Device, dst *tensor.Tensor, d Draw) error {
	return checkFill("uniform", dev, dst, d)
}

// CheckNormal validates Normal's arguments.
func CheckNormal(dev tensor.Device, dst *tensor.Tensor, d Draw) error {
	return checkFill("normal", dev, dst, d)
}
