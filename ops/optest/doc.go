// Package optest is the conformance suite every ops.Backend must pass (after gonum's testblas):
// one set of checks, run against the CPU reference here and against the CUDA backend (on a GPU,
// or on the host emulation of the cudaemu build), where every output is compared with the CPU
// reference's for the same inputs.
//
// What it checks for each op: the sizes that catch edge bugs (0, 1, 3, 31, 32, 33, 1023, 1025 and
// one large, smaller on a host-emulated device: see Emulated), guard bands around every output and
// outputs filled beforehand with Sentinel, a finite value no op writes (so that an out-of-bounds
// write, even of NaN, and an element left unwritten, even where the reference expects NaN, are
// caught), agreement with the reference within the op's stated tolerance (random words and
// uniforms exactly), determinism, the same rejections of bad input as the reference, and — where
// the device counts its allocations — that nothing leaks.
//
// The checks return errors describing the first mismatch instead of failing the test themselves,
// so that the suite's own tests can prove it catches a broken backend.
package optest
