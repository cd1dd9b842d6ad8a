// Package perfmodel is the arithmetic of the kernels' paper performance model: occupancy from a
// kernel's registers, shared memory and block size on a given GPU (the CUDA occupancy rules, with
// their allocation granularities), the hot-loop instruction mix read from cuobjdump's SASS
// listing, and roofline bounds turned into a predicted time range.
//
// Everything here is pure computation on numbers and text: no ptxas, no cuobjdump, no GPU. The
// command bench/perfmodel runs the tools and feeds their output in; the CPU tests of this package
// and of kernels/ptx/resources.txt use the same functions, so the occupancy the report prints and
// the occupancy the tests guard are one computation.
//
// The results are predictions of a model, not measurements: they bound what the code can do on
// paper and say which resource limits it. Measured numbers live in bench/RESULTS.md.
package perfmodel
