// Command perfmodel prints the paper performance model of the kernels on the benchmark workloads:
// for each workload the kernel entries the launch planners pick, their registers, spills, shared
// memory and occupancy on an A100 (sm_80) and an H100 (sm_90) from ptxas -v, the hot loops'
// instruction mix from cuobjdump -sass, roofline bounds and a predicted time range. Everything
// it prints is a prediction, not a measurement. It runs from the repository root (make
// perf-model) and needs ptxas and cuobjdump (PTXAS, CUOBJDUMP override the names).
//
//	go run ./bench/perfmodel                     the tables, markdown, on standard output
//	go run ./bench/perfmodel -o FILE             the same into FILE, as the section of bench/RESULTS.md
//	go run ./bench/perfmodel -update bench/RESULTS.md
//	                                             replace that section of the file (append it when absent)
//	go run ./bench/perfmodel -loops gmm:gmm_score_warp1_f32[:sm_80]
//	                                             every loop of one entry with its paths and mix
//
// Files: workloads.go (the table of workloads: sizes, the loops that carry their work, the
// iteration counts and DRAM bytes, each formula commented), tools.go (ptxas and cuobjdump),
// report.go (the evaluation and the markdown). The arithmetic (occupancy, SASS loops and paths,
// bounds) is internal/perfmodel's, shared with the tests that guard kernels/ptx/resources.txt.
package main
