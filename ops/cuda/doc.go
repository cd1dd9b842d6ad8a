// Package cuda is the CUDA implementation of ops.Backend: launchers that validate arguments with
// the same checks as the CPU reference, pick a launch geometry and run the kernels of package
// kernels (embedded PTX) on a tensor.CUDADevice.
//
// Builds. The launchers carry `//go:build cuda || cudaemu`. With `cuda` they drive a GPU through
// gorgonia.org/cu (which exits the process at init without a driver, so a cuda binary runs only
// where a GPU answers). With `cudaemu` the same launchers drive a CUDA device emulated on the host,
// whose kernels are the same kernels/*.cu compiled as host C++ (package kernels/hostexec): that is
// how CI executes every kernel without a GPU. In a plain CPU build the package holds only what
// needs no device — the planners and the argument structs, tested there — and New returns
// tensor.ErrNoCUDA.
//
// Launches. Every kernel takes one argument struct (args.go) whose fields are its parameters in
// order; packArgs checks the struct against the kernel's entry in the table generated from the
// kernel source and its PTX (names, kinds, pointer dtypes) before a launch, so that a launcher
// cannot pass arguments out of order or of the wrong width. Launchers never move a caller's inputs
// or outputs between host and device (callers do that with tensor's copies).
//
// Planning (plan.go): kernel variants, grids, tiles, FFT passes, the empirical score's data layout
// and the fGn chunking are pure functions of sizes, dtype and the device's multiprocessors and
// free memory.
//
// Memory (cache.go). A backend keeps device copies of targets (mixtures and their per-level
// constants, data sets, fGn weights, MA-fBM transitions, domains, FFT twiddles) under a byte
// budget (Options.TableBytes, by default half the device's memory), evicting the least recently
// used tables of earlier calls; Release frees a target's tables at once. Work buffers (FFT, fGn
// and empirical scratch, the clamp counter) are kept per backend and grown when a call needs more,
// so a call in the steady state allocates and frees nothing. Close frees all of it.
//
// Concurrency. A backend serialises its calls (they share its tables and scratch, and the device
// runs one stream in order anyway); separate backends, on one device or several, share nothing.
//
// What may not live here: math (the kernels and the CPU reference in ops own it), samplers.
package cuda
