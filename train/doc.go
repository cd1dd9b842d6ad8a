// Package train fits ops.MLP denoisers by denoising score matching, with gorgonia.org/gorgonia
// on the CPU. It is the only scorekit package that imports gorgonia (which links Arrow and
// protobuf): programs that only sample never link it. It is not part of the CUDA build
// (`-tags cuda`): the tag also selects gorgonia's own CUDA backend, which needs cuDNN, a library
// scorekit does not require. Train with the default build; the checkpoints it writes sample on
// either.
//
// # Model and loss
//
// The graph computes exactly the forward pass of ops.MLP (see ops/mlp.go): EDM preconditioning,
// Fourier noise features from the fixed frequencies ops.FourierFrequencies(F), the residual blocks
// with branch multiplier β, the output multiplier γ, and SiLU written as z·sigmoid(z). The
// preconditioning coefficients and the embedding depend on no trained parameter; they are
// computed in float64 in Go and fed to the graph, which holds only the trained part. In float64
// (the default) the graph's D agrees with (*ops.MLP).DenoiseRow to ~1e-16 relative; Config.Float32
// builds a float32 graph (parameters and Adam's state stay float64).
//
// The loss is EDM denoising score matching. Per sample: x₀ from the Source, ln σ ~ N(P_mean,
// P_std²) (defaults −1.2, 1.2), n ~ N(0, I), and
//
//	loss = (1/B) Σ_b λ(σ_b) ‖D(x₀ + σ_b n; σ_b) − x₀‖² / d,   λ(σ) = (σ² + σd²)/(σ σd)²
//
// with σd the data's standard deviation (the RMS over coordinates of the centred data) and μ,
// the data mean, as the network's data.mean buffer. Neither μ, σd nor the frequencies are trained.
//
// # Initialisation and learning rates
//
// Every parametrization initialises the output layer (output.weight and output.bias) to zero, so
// the initial network is F = 0, D = μ + c_skip(σ)(x − μ): the optimal denoiser of the isotropic
// Gaussian N(μ, σd² I) fitted to the data. Biases start at zero; the input and hidden weights
// are N(0, 1/fan_in) (hidden: fan_in = W, so N(0, 1/W) in every parametrization).
//
// With η = Config.LR, L = Depth, W = Width, W₀ = Config.BaseWidth (default 64) and m = W/W₀,
// the multipliers and the Adam learning rates of each parameter group are:
//
//	                                standard   depth-mup          depth-mup-corrected
//	branch multiplier β             1          1/√L               1/√L
//	output multiplier γ             1          1/m                1/m
//	input.weight, input.bias        η          η                  η
//	blocks.*.*.weight               η          η/(m√L)            η/(m√L), first inner layer η/m
//	blocks.*.*.bias                 η          η/√L               η/√L,    first inner layer η
//	output.weight, output.bias      η          η                  η
//
// ("first inner layer": blocks.<l>.0 of two-layer blocks; with one-layer blocks depth-mup-corrected
// equals depth-mup.) The width part is μP for Adam (Yang et al., Tensor Programs V): hidden
// (matrix-like) weights have init variance 1/W and learning rate ∝ 1/W; the input layer and
// every bias are vector-like (learning rate independent of W); the output layer's product is
// multiplied by 1/m with an unscaled learning rate, so its effective update ∝ 1/W — the
// "MuReadout" form of the mup package. At W = W₀ the width factors are 1, so a learning rate
// tuned at W₀ transfers to other widths. The depth part is depth-μP for Adam (Yang et al.,
// Tensor Programs VI; Bordelon et al.): branches multiplied by 1/√L and the block parameters'
// Adam rates by 1/√L (Adam normalises gradients, so the rate — not a gradient scale — carries
// the factor). Config.Multipliers and Config.LRMultiplier return these numbers.
//
// # The correction for two-layer blocks
//
// In a block h ← h + (1/√L)(W₂ φ(z) + b₂), z = W₁ φ(h) + b₁, Adam moves every entry of W₁ by
// O(η/√L) per step (the update is normalised; the gradient's own 1/√L from β does not matter),
// so the inner feature's own change ΔW₁·φ(h) is O(η/√L) and vanishes as L grows: the first inner
// layer stops learning features (the collapse of the NFD paper). The second layer does not
// collapse: its update enters the stream through β as (1/√L)·ΔW₂ φ(z) = O(η/L) per block, and
// those updates are aligned with the loss gradient in every block, so the L blocks add
// coherently to an O(η) change of the output — the depth-μP balance. The inner layer's change
// instead reaches the stream through the block's own random W₂, as (1/√L)·W₂ Δφ(z); the W₂ of
// different blocks are independent at initialisation, so these contributions add incoherently
// (like a random walk, ∝ √L). Multiplying W₁'s rate by c gives Δz = O(cη/√L) and a total stream
// change O(√L · cη/L) = O(cη/√L) from the inner layers. The only c that keeps the inner feature
// update Θ(η) is c = √L, and then the inner layers' total effect on the stream is O(η) — as large
// as the rest of the network's, not larger, so the depth-μP limit stays stable. Hence
// depth-mup-corrected gives the first inner layer (weight and bias) the rate √L × its depth-μP
// rate: η/m for the weight, η for the bias (the depth factor cancels, the width factor stays).
//
// # Diagnostics
//
// FeatureUpdates compares two networks layer by layer on a fixed Probe: the RMS over units and
// probe points of each layer's feature change ‖Δh_l‖ (Total), and the part due to the layer's
// own parameters with its input held fixed (Own), which isolates the collapse above. Use
// Trainer.Initial and Trainer.Model after k steps.
//
// # Determinism, divergence, errors
//
// Everything random derives from Config.Seed through math/rand/v2 PCG streams (one for the
// initialisation, one for batches, σ and noise); data sets are visited in shuffled epochs. Same
// seed, same configuration and source → the same parameters bit for bit (the matrix products are
// gonum's, whose summation order does not depend on scheduling).
//
// A step whose loss, gradient or updated parameters are not finite returns an error wrapping
// ErrNonFinite and saying that training diverged; the trainer then rolls back so that
// Trainer.Model returns the last network whose loss was measured finite, and every later Step
// returns the same error. New and the Source constructors reject NaN or infinite data, ragged
// rows, width, depth or batch ≤ 0, learning rate ≤ 0 or not finite, and steps < 0, with messages
// naming the value.
//
// # gorgonia, and how the traps are avoided
//
// The gradients are symbolic (gorgonia.Grad) and recomputed by every run of the tape machine, so
// nothing accumulates between steps (BindDualValues, whose dual values add up across runs, is not
// used); each machine is Reset after each run; evaluation runs on a separate forward-only
// machine over the subgraph of D; biases are added with BroadcastAdd(h, b, nil, []byte{0});
// constants have the graph's dtype; weights are held transposed, (in, out), so a layer is a
// plain product without a transpose op; the parameter slice keeps the canonical order of
// ops.MLPParamNames, and Adam (β = (0.9, 0.999), ε = 1e-8, bias-corrected) is written here, over
// the gradient values, because gorgonia's solvers have a single learning rate.
package train
