package ops

import (
	"runtime"
	"sync"

	"github.com/scorekit/scorekit/tensor"
)

// cpuBackend is the reference implementation, parallel over rows: plain loops in float64 that
// follow docs/math.md term by term. It is the specification every other backend is checked
// against.
type cpuBackend struct{ workers int }

// CPU returns the CPU backend, using GOMAXPROCS goroutines: the reference's ops, with faster
// implementations of the hot ones (score_fast.go) that the conformance suite checks against
// Reference().
func CPU() Backend { return fastBackend{cpuBackend{}} }

// CPUWorkers returns the CPU backend limited to n goroutines (n ≤ 0: GOMAXPROCS). Benchmarks use
// it to measure parallel scaling.
func CPUWorkers(n int) Backend { return fastBackend{cpuBackend{workers: n}} }

// Reference returns the CPU reference backend (GOMAXPROCS goroutines): the specification, slower
// than CPU() on the ops that have a fast form. Parity tests compare other backends with it.
func Reference() Backend { return cpuBackend{} }

// ReferenceWorkers is Reference limited to n goroutines (n ≤ 0: GOMAXPROCS).
func ReferenceWorkers(n int) Backend { return cpuBackend{workers: n} }

func (cpuBackend) Name() string          { return "cpu-reference" }
func (cpuBackend) Device() tensor.Device { return tensor.CPU() }
func (cpuBackend) Close() error          { return nil }

// parallelRows calls fn on disjoint row ranges [lo, hi) covering [0, rows), in parallel when the
// work (rows × cost per row) is large enough to pay for goroutines.
func (b cpuBackend) parallelRows(rows, costPerRow int, fn func(lo, hi int)) {
	workers := b.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	const minWork = 1 << 14
	if max := rows * costPerRow / minWork; max < workers {
		workers = max
	}
	if workers <= 1 {
		fn(0, rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (rows + workers - 1) / workers
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
