//go:build cudaemu

package hostexectest

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/kernels/hostexec"
	"github.com/scorekit/scorekit/tensor"
)

func device(t *testing.T) *tensor.CUDADevice {
	t.Helper()
	d, err := tensor.OpenCUDA(0)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return d
}

func kernel(t *testing.T, d *tensor.CUDADevice, name string) tensor.Kernel {
	t.Helper()
	k, err := d.Kernel("hostexectest", "(host only)", name)
	require.NoError(t, err)
	return k
}

// withOrder runs f under the thread order o and restores the options.
func withOrder(t *testing.T, o hostexec.Order, f func()) {
	t.Helper()
	old := hostexec.Current()
	opts := old
	opts.Order = o
	require.NoError(t, hostexec.Configure(opts))
	defer func() { require.NoError(t, hostexec.Configure(old)) }()
	f()
}

func upload(t *testing.T, d *tensor.CUDADevice, v []float64) *tensor.Tensor {
	t.Helper()
	h, err := tensor.FromF64(v, len(v))
	require.NoError(t, err)
	g, err := h.CopyTo(d)
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })
	return g
}

func values(t *testing.T, g *tensor.Tensor) []float64 {
	t.Helper()
	v, err := g.Float64s()
	require.NoError(t, err)
	return v
}

func empty(t *testing.T, d *tensor.CUDADevice, n int) *tensor.Tensor {
	t.Helper()
	g, err := tensor.New(d, tensor.F64, n)
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })
	return g
}

// A block sum through shared memory is right in every order with its barrier; without it, the
// result depends on the order in which threads run (thread 0 first reads slots nobody wrote yet),
// which is how the parity suites, run in two orders, catch a missing __syncthreads.
func TestMissingBarrierChangesTheResult(t *testing.T) {
	d := device(t)
	const n, threads = 1000, 256
	in := make([]float64, n)
	want := make([]float64, (n+threads-1)/threads)
	for i := range in {
		in[i] = float64(i%17) + 0.5
		want[i/threads] += in[i]
	}
	x := upload(t, d, in)
	run := func(name string, o hostexec.Order) []float64 {
		out := empty(t, d, len(want))
		withOrder(t, o, func() {
			require.NoError(t, d.Launch(kernel(t, d, name), tensor.Grid1D(len(want), threads), x, out, int64(n)))
		})
		return values(t, out)
	}
	for _, o := range []hostexec.Order{hostexec.Forward, hostexec.Reverse, hostexec.Random} {
		assert.Equal(t, want, run("block_sum_ok", o), "with the barrier, %v order", o)
	}
	// Without it: thread 0 runs before the others in forward order and sums unwritten slots; in
	// reverse order it runs last and happens to be right. Two orders are needed to see the bug.
	assert.NotEqual(t, want, run("block_sum_no_barrier", hostexec.Forward), "forward order must expose the missing barrier")
	assert.Equal(t, want, run("block_sum_no_barrier", hostexec.Reverse), "reverse order hides it")
}

// expectedShuffles computes the CUDA-documented results of the shuffles kernel for one block of
// the given threads and width (the Programming Guide's rules, written independently of the PTX
// rule the runtime implements).
func expectedShuffles(block, threads, width int) []float64 {
	out := make([]float64, 4*threads)
	val := func(t int) float64 { return 1000*float64(block) + float64(t) }
	for t := 0; t < threads; t++ {
		warpBase := t &^ 31
		lane := t & 31
		seg := lane / width * width // first lane of this lane's group
		src := func(l int) float64 { return val(warpBase + l) }
		// xor: a source in a later group returns the own value.
		x := lane ^ 3
		if x/width > lane/width {
			x = lane
		}
		// up: a source before the group start returns the own value.
		u := lane - 2
		if u < seg {
			u = lane
		}
		// down: a source past the group end returns the own value.
		dn := lane + 5
		if dn >= seg+width {
			dn = lane
		}
		// idx: lane srcLane mod width of the own group.
		ix := seg + ((7*lane+3)%32)%width
		o := out[4*t:]
		o[0], o[1], o[2], o[3] = src(x), src(u), src(dn), src(ix)
	}
	return out
}

func TestShuffleSemantics(t *testing.T) {
	d := device(t)
	const blocks, threads = 2, 64
	for _, w := range []int{32, 16, 8, 4, 2, 1} {
		out := empty(t, d, 4*blocks*threads)
		require.NoError(t, d.Launch(kernel(t, d, "shuffles"), tensor.Grid1D(blocks, threads), out, int64(w)))
		got := values(t, out)
		for b := 0; b < blocks; b++ {
			assert.Equal(t, expectedShuffles(b, threads, w), got[4*b*threads:4*(b+1)*threads], "width %d block %d", w, b)
		}
	}
	// A width that is not a power of two is refused.
	out := empty(t, d, 4*threads)
	err := d.Launch(kernel(t, d, "shuffles"), tensor.Grid1D(1, threads), out, int64(12))
	assert.ErrorContains(t, err, "width is not a power of two")
}

// Thread and block indices of a 3-D launch: x fastest, as on the device.
func TestIndicesOf3DLaunch(t *testing.T) {
	d := device(t)
	cfg := tensor.LaunchConfig{Grid: [3]int{3, 2, 2}, Block: [3]int{5, 3, 2}}
	per := 5 * 3 * 2
	blocks := 3 * 2 * 2
	out := empty(t, d, 12*per*blocks)
	require.NoError(t, d.Launch(kernel(t, d, "indices"), cfg, out))
	got := values(t, out)
	i := 0
	for bz := 0; bz < 2; bz++ {
		for by := 0; by < 2; by++ {
			for bx := 0; bx < 3; bx++ {
				for tz := 0; tz < 2; tz++ {
					for ty := 0; ty < 3; ty++ {
						for tx := 0; tx < 5; tx++ {
							want := []float64{float64(tx), float64(ty), float64(tz), float64(bx), float64(by), float64(bz),
								5, 3, 2, 3, 2, 2}
							require.Equal(t, want, got[12*i:12*i+12], "thread %d", i)
							i++
						}
					}
				}
			}
		}
	}
}

// Atomics from blocks that run concurrently on several workers lose no update.
func TestAtomicsAcrossWorkers(t *testing.T) {
	d := device(t)
	old := hostexec.Current()
	opts := old
	opts.Workers = 4
	require.NoError(t, hostexec.Configure(opts))
	defer func() { require.NoError(t, hostexec.Configure(old)) }()
	c := empty(t, d, 1)
	require.NoError(t, c.Fill(0))
	require.NoError(t, d.Launch(kernel(t, d, "count"), tensor.Grid1D(97, 64), c))
	v := values(t, c)
	assert.Equal(t, uint64(97*64), math.Float64bits(v[0]))
}

// Lanes of one warp at two different shuffles: reported, naming the kernel, block, warp, lanes
// and sites, instead of hanging or silently exchanging values between different shuffles.
func TestDivergentShuffleIsReported(t *testing.T) {
	d := device(t)
	out := empty(t, d, 64)
	for _, o := range []hostexec.Order{hostexec.Forward, hostexec.Reverse} {
		withOrder(t, o, func() {
			err := d.Launch(kernel(t, d, "divergent_shuffle"), tensor.Grid1D(1, 64), out)
			require.Error(t, err, "%v order", o)
			assert.Contains(t, err.Error(), "kernel divergent_shuffle: block (0, 0, 0)")
			assert.Contains(t, err.Error(), "divergent warp")
			assert.Contains(t, err.Error(), "__shfl_xor_sync at kernels.cpp:")
			t.Logf("%v order: %v", o, err)
		})
	}
}

// A shuffle that reads a lane which has exited gets an undefined value on a device: an error here.
func TestShuffleFromExitedLaneIsReported(t *testing.T) {
	d := device(t)
	out := empty(t, d, 32)
	err := d.Launch(kernel(t, d, "shuffle_after_exit"), tensor.Grid1D(1, 32), out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reads lane 16, which has exited")
}

// Threads at two different __syncthreads, and a warp whose lanes wait at a __syncwarp while the
// others wait at the block barrier: a divergent barrier and a deadlock, each reported.
func TestDivergentBarrierAndDeadlockAreReported(t *testing.T) {
	d := device(t)
	out := empty(t, d, 64)
	err := d.Launch(kernel(t, d, "divergent_barrier"), tensor.Grid1D(1, 64), out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "divergent barrier")

	err = d.Launch(kernel(t, d, "warp_deadlock"), tensor.Grid1D(1, 64), out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "deadlock: no thread can run")
	assert.Contains(t, err.Error(), "lanes 0-15 wait at __syncwarp")
	assert.Contains(t, err.Error(), "for lanes 16-31")
	t.Log(err)
}

// An off-by-one store past the end of a device allocation is reported by the launch that made it
// (the allocation's guard bytes changed). Under the address sanitizer the store itself is
// reported (TestOffByOneStoreUnderASan).
func TestOffByOneStoreIsReported(t *testing.T) {
	if asanBuild {
		t.Skip("under -asan the guard bytes are poisoned: TestOffByOneStoreUnderASan covers this")
	}
	d := device(t)
	const n = 100
	out := empty(t, d, n)
	err := d.Launch(kernel(t, d, "off_by_one_store"), tensor.Grid1D(1, 128), out, int64(n))
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("out-of-bounds write: byte %d of a device allocation of %d bytes", 8*n, 8*n))
}

// A write past the launch's dynamic shared memory, and a read of shared memory nobody wrote (it
// holds 0xff bytes, as uninitialised memory holds garbage on a device).
func TestDynamicSharedMemoryBounds(t *testing.T) {
	d := device(t)
	const threads = 64
	out := empty(t, d, threads)
	cfg := tensor.Grid1D(1, threads)
	cfg.SharedMem = 8 * threads
	if !asanBuild {
		err := d.Launch(kernel(t, d, "smem_overrun"), cfg, out)
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("a write past the end of the dynamic shared memory (%d bytes)", 8*threads))
	}
	require.NoError(t, d.Launch(kernel(t, d, "smem_uninitialised"), cfg, out))
	for i, v := range values(t, out) {
		require.True(t, math.IsNaN(v), "element %d = %g: unwritten shared memory must not read as data", i, v)
	}
}

// The launch limits of compute capability 8.x/9.0 are enforced.
func TestLaunchLimits(t *testing.T) {
	d := device(t)
	c := empty(t, d, 1)
	k := kernel(t, d, "count")
	for _, tc := range []struct {
		cfg  tensor.LaunchConfig
		want string
	}{
		{tensor.Grid1D(1, 2048), "exceeds 1024 threads"},
		{tensor.LaunchConfig{Grid: [3]int{1, 1, 1}, Block: [3]int{1, 1, 65}}, "exceeds 1024 threads"},
		{tensor.Grid1D(1, 128), "exceeds its __launch_bounds__ of 64"},
		{tensor.LaunchConfig{Grid: [3]int{1, 70000, 1}, Block: [3]int{32, 1, 1}}, "exceeds (2^31 − 1, 65535, 65535)"},
		{tensor.LaunchConfig{Grid: [3]int{1, 1, 1}, Block: [3]int{32, 1, 1}, SharedMem: 49 << 10}, "exceed the 49152 bytes"},
	} {
		err := d.Launch(k, tc.cfg, c)
		require.Error(t, err, "%+v", tc.cfg)
		assert.Contains(t, err.Error(), tc.want)
	}
	err := d.Launch(kernel(t, d, "too_much_static_shared"), tensor.Grid1D(1, 32), c)
	assert.ErrorContains(t, err, "static shared memory exceed 48 KiB")
	// Argument count.
	err = d.Launch(k, tensor.Grid1D(1, 32), c, int64(3))
	assert.ErrorContains(t, err, "takes 1 parameters, the launch passes 2")
}

// Threads of a sync-free entry run as plain calls in the chosen order (the last one to run wins a
// racy store), and a stale table — an entry said to be sync-free that waits at a barrier — is
// reported rather than run wrongly.
func TestSyncFreeEntries(t *testing.T) {
	d := device(t)
	out := empty(t, d, 64)
	for _, c := range []struct {
		o    hostexec.Order
		want float64
	}{{hostexec.Forward, 63}, {hostexec.Reverse, 0}} {
		withOrder(t, c.o, func() {
			require.NoError(t, d.Launch(kernel(t, d, "last_writer"), tensor.Grid1D(1, 64), out))
			assert.Equal(t, c.want, values(t, out)[0], "%v order", c.o)
		})
	}
	err := d.Launch(kernel(t, d, "stale_sync_free"), tensor.Grid1D(1, 64), out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the entry table is stale")
}

// The cost of the emulation: a warp collective per lane, and a thread of a sync-free entry.
func BenchmarkShuffle(b *testing.B) {
	d, err := tensor.OpenCUDA(0)
	require.NoError(b, err)
	defer d.Close()
	out, err := tensor.New(d, tensor.F64, 8*256)
	require.NoError(b, err)
	defer out.Close()
	k, err := d.Kernel("hostexectest", "(host only)", "bench_shuffles")
	require.NoError(b, err)
	const rounds = 100
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		require.NoError(b, d.Launch(k, tensor.Grid1D(8, 256), out, int64(rounds)))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8*256*rounds), "ns/lane-shuffle")
}

func BenchmarkSyncFreeThread(b *testing.B) {
	d, err := tensor.OpenCUDA(0)
	require.NoError(b, err)
	defer d.Close()
	out, err := tensor.New(d, tensor.F64, 64*256)
	require.NoError(b, err)
	defer out.Close()
	k, err := d.Kernel("hostexectest", "(host only)", "bench_store")
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		require.NoError(b, d.Launch(k, tensor.Grid1D(64, 256), out, int64(i)))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64*256), "ns/thread")
}

// A bad SCOREKIT_EMU_ORDER is an error, not a silent default.
func TestOptionsFromEnvironment(t *testing.T) {
	t.Setenv(hostexec.EnvOrder, "backwards")
	_, err := hostexec.DefaultOptions()
	assert.ErrorContains(t, err, "want forward, reverse, random")
	t.Setenv(hostexec.EnvOrder, "random:17")
	o, err := hostexec.DefaultOptions()
	require.NoError(t, err)
	assert.Equal(t, hostexec.Random, o.Order)
	assert.Equal(t, uint64(17), o.Seed)
	t.Setenv(hostexec.EnvOrder, "reverse:3")
	_, err = hostexec.DefaultOptions()
	assert.Error(t, err)
	t.Setenv(hostexec.EnvOrder, "")
	t.Setenv(hostexec.EnvWorkers, "0")
	_, err = hostexec.DefaultOptions()
	assert.Error(t, err)
}
