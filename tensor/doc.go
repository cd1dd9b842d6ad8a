// Package tensor holds scorekit's data: Tensor (float32 or float64, a shape, contiguous row-major
// storage in host or device memory) and Device (the CPU, and a CUDA GPU in builds with the `cuda`
// tag), with explicit copies between them, and NumPy .npy reading and writing. The bridge to
// gorgonia.org/tensor's *tensor.Dense is package tensor/dense, kept apart so that programs that do
// not use it do not link gorgonia.org/tensor (and the Apache Arrow and protobuf it brings).
//
// In builds with the `cudaemu` tag (and not `cuda`) CUDADevice is a host emulation of a GPU
// (cuda_emu.go): device memory is host memory, one guarded allocation per tensor, and Launch runs
// the host-compiled kernel of the same name (package kernels/hostexec) with the same arguments,
// grid, block and shared memory. Info().Emulated tells it apart; CUDAEmulated is true.
//
// This is the only package that touches device memory, cgo or unsafe pointers to device memory.
// Files that import gorgonia.org/cu carry `//go:build cuda`: that package exits the process at
// init when no GPU driver answers, so the default build is the CPU build and has no CUDA import.
// In a CPU build OpenCUDA returns ErrNoCUDA.
//
// Rules:
//   - A Tensor owns its memory; Close frees it (device memory immediately, host memory to the GC).
//     Using a closed tensor is an error, never a crash.
//   - Nothing moves between devices implicitly: CopyTo / CopyFrom are the only transfers.
//   - Errors say what was being done ("tensor: allocate 3.2 GiB on cuda:0: out of memory").
//
// What may not live here: ops, samplers, anything that imports another scorekit package.
package tensor
