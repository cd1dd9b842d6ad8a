package solvers

import (
	"math"

	"github.com/scorekit/scorekit/ops"
)

// Purpose tells apart the random draws a sampler makes within one step.
type Purpose uint64

// The purposes of the samplers in this package. A purpose is an offset below SitesPerStep.
const (
	// PurposeStep: the Gaussian increment of a ULA step, of a MALA proposal, or of a DDPM step.
	PurposeStep Purpose = 0
	// PurposeAccept: the uniform of a MALA accept/reject decision (column 0 of the f64 uniform).
	PurposeAccept Purpose = 1
	// PurposeULD: the two normals ξ1, ξ2 of an underdamped Langevin step; ops.Backend.ULDStep
	// reads sites Site(s, PurposeULD) and Site(s, PurposeULD)+1, so the offset PurposeULD+1 = 3 is
	// taken too.
	PurposeULD Purpose = 2
	// PurposeInit: the initial state x ~ N(0, I) of RTK and DDPM (step 0).
	PurposeInit Purpose = 4
	// PurposeVelocity: the initial velocity v ~ N(0, u I) of an underdamped Langevin run.
	PurposeVelocity Purpose = 5
	// PurposeSegmentInit: the normals of an RTK segment's DDPM-step initialisation.
	PurposeSegmentInit Purpose = 6
	// PurposeDiffusion: the fresh Gaussian noise of a stochastic diffusion step (EDM churn, DDIM
	// with η > 0, stochastic rectified flow, the ancestral step of the diffusion suite).
	PurposeDiffusion Purpose = 7
	// PurposeConstrained: the Gaussian proposal of a constrained Metropolis step.
	PurposeConstrained Purpose = 8
	// PurposeFractional: the fractional or heavy-tailed noise of a step (fPGD's fGn paths).
	PurposeFractional Purpose = 9
	// PurposeInitComponent: the uniforms that pick the mixture component (or data point and kernel
	// term) of an exact noised start (InitExact, step 0; its normals are PurposeInit's).
	PurposeInitComponent Purpose = 10
	// PurposeBrownian: the Brownian or epoched Brownian noise paths of SGDWOR.
	PurposeBrownian Purpose = 11
	// PurposeGFDM: the normals of a GFDM forward sample (GFDMProcess.SampleForward), K+1 per
	// coordinate.
	PurposeGFDM Purpose = 12
	// PurposeBrownianInterval: the Brownian interval of a reversible Heun solve (step 0). Its
	// tree is at most MaxRevHeunDepth = 33 levels deep, so that all its normals lie on this one
	// site: a deeper ops.BrownianInterval takes 2^(D−33) consecutive sites, which would run into
	// Site(0, 14), Site(0, 15), Site(1, PurposeStep), ….
	PurposeBrownianInterval Purpose = 13
	// PurposeGFDMSample: the Gaussian increments of a GFDM reverse-SDE step (GFDMSample), one per
	// coordinate.
	PurposeGFDMSample Purpose = 14
	// PurposeLIM: the isotropic α-stable noise of the Lévy–Itō model (LIM): the mixing variable
	// A of its exact start (Site(0, PurposeLIM), uniform columns 0 and 1) and the noise
	// S = √A·G of a stochastic step (ops.Backend.Stable, isotropic kind, which reads the normals
	// G at its site and A at the next one: step i draws at Site(i+1, PurposeLIM), so A lies at
	// Site(i+2, PurposeStep), a site LIM does not otherwise use).
	PurposeLIM Purpose = 15
)

// SitesPerStep is the number of draw sites reserved for one step: purposes 0..15, all of them used
// now; a later sampler takes sites of its own (a draw of its own, or a range it reserves).
const SitesPerStep = 16

// MaxSteps bounds the step index of Site so that Site(step, p) never overflows uint64.
const MaxSteps = math.MaxUint64/SitesPerStep - 1

// Site is the draw site of step s and purpose p:
//
//	site = s·16 + p
//
// Every random number a sampler uses is therefore the pure function
// (seed, chain, s, p, coordinate) ↦ Philox4x32-10 (ops/philox.go): reproducible, the same on
// every backend, independent across steps and purposes (distinct Philox counters), and
// independent of how many chains run in one call. Chains are rows: row i of a batch is chain
// FirstChain + i, where FirstChain is the caller's per-chain offset (the FirstChain field of every
// config here), so a run of N chains split into batches [0, n1) and [n1, N) — the second called
// with FirstChain = n1 — draws exactly the numbers of the single run.
//
// What "step" means per sampler:
//
//	Langevin (ula, mala, uld)   s = 0..Steps−1, the step index; the ULD initial velocity is
//	                            Site(0, PurposeVelocity)
//	RTK                         the start x_S (exact noised law or N(0, I): see Init) draws its
//	                            normals at Site(0, PurposeInit) and, exact, its components at
//	                            Site(0, PurposeInitComponent); segments are processed from
//	                            the top (j = 0 is [t_{S−1}, t_S]) and inner step i of the j-th
//	                            processed segment is s = j·InnerSteps + i; that segment's ULD
//	                            velocity is Site(j·InnerSteps, PurposeVelocity) and its InitDDPM
//	                            start Site(j·InnerSteps, PurposeSegmentInit)
//	DDPM                        the start x_T as RTK's; step j (from t_{K−j} to t_{K−j−1}) is s = j
//	Diffusion                   the start x_0 as RTK's (exact, or σ_0 ξ); the fresh noise of
//	                            step i (edm-sde, ddim with η > 0, ddpm) at Site(i, PurposeDiffusion)
//	RectifiedFlow               x_0 ~ N(0, I) at Site(0, PurposeInit); the noise of stochastic
//	                            step i at Site(i, PurposeDiffusion)
//	MetropolisWalk,             the Gaussian proposal of step i at Site(i, PurposeConstrained)
//	ConstrainedSample
//	FPGD                        the fGn path of coordinate j of chain c is chain c·d + j of the draw
//	                            at Site(0, PurposeFractional)
//	SGDWOR                      the (epoched) Brownian path of coordinate j of chain c is chain
//	                            c·d + j of the draw at Site(0, PurposeBrownian)
//	GFDMProcess.SampleForward   the caller's step s: Site(s, PurposeGFDM)
//	GFDMSample                  the terminal law: its statistic as the exact starts (Site(0,
//	                            PurposeInit), Site(0, PurposeInitComponent)) and its residual's
//	                            K+1 normals per coordinate at Site(0, PurposeGFDM); the SDE's
//	                            normals of step i at Site(i, PurposeGFDMSample)
//	LIM                         the exact start: components at Site(0, PurposeInitComponent),
//	                            normals at Site(0, PurposeInit), the mixing variable A at
//	                            Site(0, PurposeLIM); the prior start's α-stable noise at
//	                            Site(0, PurposeLIM); the noise of stochastic step i (from ρ_i to
//	                            ρ_{i+1}) at Site(i+1, PurposeLIM) (see PurposeLIM)
//	Bridge.Simulate             the normals of step i at Site(i, PurposeDiffusion)
//	ReversibleHeun              the Brownian motion of noise dimension k of chain c is path
//	                            c·m + k (m the noise dimension) of the Brownian interval at
//	                            Site(0, PurposeBrownianInterval), one site whatever the steps
//
// Callers validate step counts against MaxSteps first, so s·16 + p never wraps around.
func Site(s uint64, p Purpose) uint64 { return s*SitesPerStep + uint64(p) }

// drawAt is the draw of step s, purpose p for the batch starting at chain first.
func drawAt(seed uint64, s int, p Purpose, first uint64) ops.Draw {
	return ops.Draw{Seed: seed, Site: Site(uint64(s), p), FirstChain: first}
}
