// Package ops holds scorekit's op contracts — the Backend interface and its argument types — and
// the CPU reference implementation of every op.
//
// The reference is the specification: plain Go, computed in float64 whatever the tensor's dtype,
// its doc comment the math. It is also the CPU backend users run, parallel over rows (chains) with
// goroutines. The CUDA backend (package ops/cuda) implements the same contract and is checked
// against this one by the conformance suite in ops/optest.
//
// Randomness is counter-based (Philox4x32-10, see philox.go for the draw layout): every random
// number is a pure function of (seed, site, chain, coordinate), so results do not depend on the
// device, the batch size or the launch geometry.
//
// What may not live here: anything device-specific (cgo, gorgonia.org/cu), samplers (package
// solvers), file formats (package tensor).
package ops
