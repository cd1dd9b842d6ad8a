// Package ops holds scorekit's op contracts — the Backend interface and its argument types — the
// CPU reference implementation of every op, and the CPU backend users run.
//
// The reference (Reference()) is the specification: plain Go, computed in float64 whatever the
// tensor's dtype, its doc comment the math, parallel over rows (chains) with goroutines. The CPU
// backend (CPU()) is the reference with faster forms of the hot ops beside it (score_fast.go:
// the mixture and data-set scores with per-call constants, blocked distance sweeps and negligible
// terms skipped; the fused chains on top of them), the way math/big keeps its pure-Go code beside
// the assembly. The CPU backend and the CUDA backend (package ops/cuda) implement the same
// contract and are checked against the reference by the conformance suite in ops/optest.
//
// Randomness is counter-based (Philox4x32-10, see philox.go for the draw layout): every random
// number is a pure function of (seed, site, chain, coordinate), so results do not depend on the
// device, the batch size or the launch geometry. Ops draw at the site of the Draw their caller
// passes (package solvers assigns sites per step and purpose); a Brownian interval of depth
// D > 33 occupies the 2^(D−33) sites from it (BrownianIntervalSpec.Sites).
//
// What may not live here: anything device-specific (cgo, gorgonia.org/cu), samplers (package
// solvers), file formats (package tensor).
package ops
