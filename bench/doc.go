// Package bench holds scorekit's benchmarks: `go test -bench` suites for every op and solver, on
// the CPU backend and, in builds with the `cuda` tag, on the CUDA backend, over the same size
// sweeps. The package's own code (harness.go) is the small shared harness: the size sweeps, a
// timed loop that synchronises the device before the timer stops, and the bandwidth metrics
// ("GB/s", and "%peak" of the device's theoretical DRAM bandwidth where it is known).
//
// Layout:
//
//	harness.go             size sweeps, TimeOp, ReportBandwidth, RunBandwidth
//	<op>_test.go           CPU benchmarks of an op family (no build tag)
//	<op>_cuda_test.go      the same sweeps on the GPU (//go:build cuda)
//	peers/                 PyTorch and JAX scripts timing the same problems on the same GPU
//	perfmodel/             make perf-model: the kernels' paper performance model (predictions)
//	RESULTS.md             measured tables, each naming device, date and commit; the model's section
//	results/               the raw `go test -bench` output behind each table (benchstat input)
//
// Benchmark names read <Op>[CUDA]/<dtype>/n=<elements>/dim=<dim>, for example
// BenchmarkNormalCUDA/f32/n=256Mi/dim=128: n is the total element count chains×dim, so the same
// n with dim 2 and dim 128 is the same amount of output in a different shape. Every other family
// names its sizes the same way, <Op>[CUDA]/<dtype>/<size>=<value>/…, and states its pattern at the
// top of its file: Chains{MALA,ULD}[StepByStep]CUDA …/chains=<N>/d=<dim> (fused chains),
// FFT[CUDA] …/n=<n>/batch=<batch>, FGN[CUDA] …/<form>/n=<n>/paths=<paths>, Stable, MAFBM and
// Brownian (noise_test.go), Combine[CUDA] …/terms=<k>/noise=<0|1>/n=<elements> and
// Diffusion[CUDA] …/<method>/steps=<S>/d=<d>/K=<K>/samples=<N> (whole sampler runs).
//
// How to run:
//
//	make bench                                  CPU suites (go test ./bench/ -run '^$' -bench .)
//	go test ./bench/ -run '^$' -bench 'Normal/f32' -benchtime 3x -count 5 > new.txt
//	benchstat old.txt new.txt                   golang.org/x/perf/cmd/benchstat
//
// The CUDA suites run only where an NVIDIA GPU answers: a `-tags cuda` binary exits at start
// without a driver (gorgonia.org/cu calls cuInit at init). Build them with `make gpu-tests`, which
// writes build/gpu/bench.test next to the other test binaries and peers/, copy build/gpu to the GPU
// machine and run
//
//	BENCH=1 build/gpu/run.sh                    tests, then every benchmark (CPU and CUDA)
//	build/gpu/bench.test -test.run '^$' -test.bench CUDA -test.benchtime 20x
//
// then the peers scripts on the same machine (peers/README.md). A CUDA benchmark whose problem
// does not fit in the device's free memory is skipped with the reason, never silently passed.
//
// Every speed claim elsewhere in the project cites a row of RESULTS.md; a row names the device, the
// date and the commit it was measured at.
//
// What may not live here: ops, solvers or kernels (benchmarks only call the public API of ops,
// ops/cuda, solvers and tensor), and timed assertions in tests.
package bench
