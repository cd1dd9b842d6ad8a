//go:build !cuda

package train

import (
	"runtime"
	"testing"
)

// Training does not accumulate memory: the live heap after 200 more steps is within 1 MiB of
// the heap after a warm-up.
func TestNoMemoryGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("200 steps")
	}
	tr, err := New(Config{Width: 32, Depth: 2, BlockLayers: 2, Fourier: 4, Param: DepthMuP, LR: 1e-3, Batch: 64, Seed: 1}, gaussSource(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for range 20 {
		tr.Step()
	}
	before := heap()
	for range 200 {
		if _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	t.Logf("live heap %d → %d bytes over 200 steps", before, after)
	if after > before+1<<20 {
		t.Errorf("live heap grew from %d to %d bytes over 200 steps", before, after)
	}
}
