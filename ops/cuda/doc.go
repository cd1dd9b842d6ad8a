// Package cuda is the CUDA implementation of ops.Backend: launchers that validate arguments with
// the same checks as the CPU reference, pick a launch geometry and run the kernels of package
// kernels (embedded PTX) on a tensor.CUDADevice.
//
// Every file that touches the GPU carries `//go:build cuda` (gorgonia.org/cu exits the process at
// init without a driver). In a CPU build the package still exists so that callers compile in both
// builds: New then returns tensor.ErrNoCUDA.
//
// Launchers pass only 8-byte kernel parameters (tensor.CUDADevice.Launch enforces it). They never
// move a caller's inputs or outputs between host and device (callers do that with tensor's
// copies); what they do move is target parameters — uploaded once per target and dtype and kept
// until Backend.Close — and empirical data sets too large for the device, streamed in chunks.
//
// What may not live here: math (the kernels and the CPU reference in ops own it), samplers.
package cuda
