// Package solvers orchestrates ops into complete samplers: Langevin family, reverse transition
// kernels, diffusion ODE/SDE solvers, fractional and Lévy models, diagnostics.
//
// Solvers see only ops.Backend and tensor.Tensor: they never know which device runs them, so the
// same code runs on the CPU reference and on the GPU, and the same seed gives the same samples on
// both (within the ops' tolerances).
//
// # Samplers
//
//   - Langevin: ULA, MALA (optionally with dual-averaging step-size adaptation, shared or per
//     chain) and underdamped Langevin (ULD) on a target, noised or not (docs/math.md §2).
//   - RTK: reverse transition kernels, RTK-MALA and RTK-ULD (docs/math.md §3, Huang et al. 2024):
//     the OU diffusion reversed over a few long segments, each segment's exact conditional law
//     sampled by a short inner MALA or ULD run.
//   - DDPM: the exponential integrator of the reverse OU SDE, RTK's baseline.
//   - Diffusion: the diffusion-model samplers (docs/math.md §5.1, §5.2) — Euler, Heun, DPM-Solver-2,
//     DPM-Solver++(2M)/(3M), iPNDM, EDM's stochastic sampler, DDIM and ancestral DDPM — on one
//     Denoiser D(x; σ) = E[x0 | x0 + σξ = x] (TargetDenoiser for analytic and empirical targets; a
//     learned network implements the same interface), over a grid of noise levels (EDMSigmas,
//     LogSNRSigmas, TimeUniformSigmas or one given by hand). Every update is one
//     ops.Backend.Combine of the state and the recent denoiser outputs with coefficients computed
//     on the host, so the solvers run unchanged on any backend; the VP methods run through the
//     same denoiser by the exact map between the VP and VE parametrisations (VPFromSigma), and
//     the score, noise and flow-velocity forms are affine functions of D (ScoreFromDenoiser,
//     EpsFromDenoiser, VelocityFromDenoiser). With Trajectory the run keeps the sampling
//     trajectory x_i (Result.Trace), the denoising trajectory D(x_i; σ_i) (Result.Denoised) and
//     the grid (Result.Sigmas); DiffusionEncode runs a deterministic method up the grid (DDIM
//     inversion).
//   - RectifiedFlow: Euler on the flow x_t = (1 − t) x0 + t x1 with the closed-form velocity of a
//     mixture or data set (docs/math.md §5.3), on the uniform or the U-shaped LowDimGrid, and the
//     stochastic (stochastic-localisation) sampler.
//   - Constrained sampling (docs/math.md §5.4): MetropolisWalk (the forward walk that discretises
//     reflected Brownian motion), ConstrainedSample (the reverse sampler rejecting steps that
//     leave the domain), SampleUniform (exact uniform starts in a box or ball); domains are
//     ops.Domain or a Go predicate.
//   - GFDM: the forward process of generative fractional diffusion (docs/math.md §5.5),
//     GFDMProcess — an FVE or FVP base driven by the MA-fBM of ops.MAFBM, with the augmented
//     state Z = (x, y_1..y_K) per coordinate. Its mean map and covariance are integrated once
//     (RK4, float64) into a table at construction and evaluated at any t ∈ [0, 1] from it;
//     SampleForward draws Z_t given the data. The reverse samplers are not here yet.
//   - ReversibleHeun: Stratonovich SDE solves (diagonal or general noise) whose backward pass
//     rebuilds the states from the last one (docs/math.md §4.7, Kidger et al. 2021), the noise from
//     Brownian intervals; affine families (Ornstein–Uhlenbeck, geometric Brownian motion) also
//     run fused on a backend (SolveOn, ReconstructOn), GMMLangevin on the host.
//     Adjoint gives dL/dθ and dL/dx0 of a loss of the final state by the discrete adjoint
//     (docs/math.md §4.8): exact for the discretised solve, memory independent of the steps, for
//     a ParametricSDE (OUFamily, GBMFamily, GMMLangevinFamily with learnable means and logits).
//   - FPGD: gradient descent with fractional noise (docs/math.md §4.5) on a host-side Objective
//     (DoubleWell, Rastrigin, Quadratic), with escape-time recording.
//
// # The method registry
//
// Methods lists every sampler under the name the command takes (LookupMethod, MethodNames), with
// its family, help text, the options it takes and its defaults (the Default* constants): one
// MethodOptions value and a budget K of score evaluations per chain run any of them at equal cost
// (Method.Steps maps K to the method's steps), with the same defaults in a library call as on
// the command line. A new sampler is added there once.
//
// # Starts and progress
//
// The samplers that run from noise (RTK, DDPM, Diffusion) start by default from the exact law of
// the target noised to the start (InitExact; SampleNoised draws it, a NoisedSampler denoiser
// provides it): a Gaussian mixture noised is a mixture, a data set noised is a data point plus
// noise. InitPrior keeps the textbook Gaussian start, which ignores the data's mean and biases
// the samples when the modes lie far from the origin. Every config takes a Progress callback,
// called between steps with the work done and the total; setting it does not change the samples.
//
// Diagnostics: SampleGMM, SlicedWasserstein, ModeWeights, MixtureModeStats (mean
// responsibilities and responsibility-weighted radii, whose expectations under the mixture are
// exact), and the density-sensitive VarianceRatio, SampleMoments, GMMMoments and GaussianKL
// (diagnostics.go); the rectified-flow references RFGaussianFlow (the closed-form flow map of
// Gaussian data and the closed-form output of the Euler sampler on it) and RFReferenceRK4 (a
// fourth-order solve for any target) in rfref.go; and the trajectory geometry of the VE ODE
// (geometry.go): TrajectoryGeometry (deviation from the chord, length,
// turning angles), ConvergenceSteps, MeanShiftCheck (one Euler step to σ = 0 under the empirical
// denoiser is one mean-shift iteration) and Memorisation (distance of samples to the data).
//
// Each sampler's doc comment is its mathematics, including every default and why it was chosen.
// Configs are plain structs whose zero fields mean "default"; what has no sensible default
// (a method, a step count, a step size) must be given, and every invalid value is an error that
// names it.
//
// # Randomness
//
// Every random number is drawn through ops.Backend from the counter-based Philox stream at a draw
// site chosen by Site(step, purpose) = step·16 + purpose, with chains as rows: row i of a call is
// chain FirstChain + i. The numbers are therefore a pure function of (seed, chain, step, purpose,
// coordinate): a run split into batches of chains (each with its FirstChain) reproduces the
// single run exactly, on any backend.
//
// # Results
//
// A Result holds the samples (on the backend's device), an optional trace, acceptance rates
// (MALA), step sizes, evaluation counts and a NaN report:
//
//   - Evals counts target evaluations twice: ScoreEvals/LogPEvals per chain (N per batched call,
//     the unit of the papers and of the command's --steps budget) and ScoreCalls/LogPCalls per op
//     call (one per batched call, the unit of kernel launches).
//   - NaNReport lists the chains whose state became NaN or ±Inf, checked at every trace point and
//     at the end; adaptation skips such chains and nothing averages over them silently.
//
// Every tensor a sampler allocates is freed before it returns, except the Result's, which
// Result.Close frees.
//
// What may not live here: kernels or device code (ops/cuda), file formats, command-line handling.
package solvers
