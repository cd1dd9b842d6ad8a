package ops

import (
	"runtime"
	"sync"

	"github.com/scorekit/scorekit/tensor"
)

// cpuBackend is the reference implementation, parallel over rows.
type cpuBackend struct{ workers int }

// CPU returns the CPU reference backend, using GOMAXPROCS goroutines.
func CPU() Backend { return cpuBackend{} }

// CPUWorkers returns a CPU backend limited to n goroutines (n ≤ 0: GOMAXPROCS). Benchmarks use it
// to measure parallel scaling.
func CPUWorkers(n int) Backend { return cpuBackend{workers: n} }

func (cpuBackend) Name() string          { return "cpu" }
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
