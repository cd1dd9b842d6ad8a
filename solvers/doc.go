// Package solvers orchestrates ops into complete samplers: Langevin family, reverse transition
// kernels, diffusion ODE/SDE solvers, fractional and Lévy models, diagnostics.
//
// Solvers see only ops.Backend and tensor.Tensor: they never know which device runs them, so the
// same code runs on the CPU reference and on the GPU, and the same seed gives the same samples on
// both (within the ops' tolerances).
//
// What may not live here: kernels or device code (ops/cuda), file formats, command-line handling.
package solvers
