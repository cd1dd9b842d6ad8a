// Package hostexectest holds kernels that are wrong on purpose — a missing __syncthreads, a
// shuffle in a divergent branch, an off-by-one store, a shuffle that reads an exited lane, a
// divergent barrier, an overrun of dynamic shared memory — and correct ones that pin the
// execution model's semantics (shuffle rules with widths, indices of 3-D launches, atomics,
// launch limits), compiled with the host execution of kernels (package kernels/hostexec, build
// tag cudaemu). Its tests prove that the layer catches each kind of GPU bug the parity suites rely
// on it to catch. Nothing outside the tests uses it.
package hostexectest
