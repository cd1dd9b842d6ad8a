package perfmodel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegsPerWarp(t *testing.T) {
	for regs, want := range map[int]int{1: 256, 8: 256, 9: 512, 30: 1024, 32: 1024, 33: 1280, 52: 1792, 128: 4096, 144: 4608, 255: 8192} {
		assert.Equal(t, want, RegsPerWarp(regs), "%d registers", regs)
	}
}

// The cases are worked by hand from the rules: registers rounded up to 8 per thread, the
// register file (65,536) divided into whole warps, then whole blocks.
func TestBlocksByRegs(t *testing.T) {
	cases := []struct {
		name          string
		regs, threads int
		want          int
		gpu           GPU
	}{
		// 52 → 56 regs: 1,792 per warp, 36 warps, 4 blocks of 8 warps.
		{name: "gmm warp1 sm_90", regs: 52, threads: 256, want: 4, gpu: H100},
		// 144 regs: 4,608 per warp, 14 warps, 1 block.
		{name: "chains row16 sm_90", regs: 144, threads: 256, want: 1, gpu: H100},
		// 128 regs (what __launch_bounds__(256, 2) asks ptxas for): 4,096 per warp, 16 warps, 2 blocks.
		{name: "empirical launch_bounds(256,2)", regs: 128, threads: 256, want: 2, gpu: H100},
		// 129 → 136 regs: 4,352 per warp, 15 warps, 1 block: the step below 2.
		{name: "one register past the step", regs: 129, threads: 256, want: 1, gpu: H100},
		// 64 regs: 2,048 per warp, 32 warps, 2 blocks of 16 warps; 65 → 72: 28 warps, 1 block.
		{name: "fft 512 threads at 64", regs: 64, threads: 512, want: 2, gpu: A100},
		{name: "fft 512 threads at 65", regs: 65, threads: 512, want: 1, gpu: A100},
		// 32 regs: 1,024 per warp, 64 warps, 8 blocks; 33 → 40: 51 warps, 6 blocks.
		{name: "normal at 32", regs: 32, threads: 256, want: 8, gpu: H100},
		{name: "normal at 33", regs: 33, threads: 256, want: 6, gpu: H100},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, BlocksByRegs(c.gpu, c.regs, c.threads), c.name)
	}
}

func TestOccupyLimits(t *testing.T) {
	// Registers limit: 52 regs, 8,448 B dynamic shared memory (9,472 with the reservation: 24
	// blocks by shared memory on an H100), 8 by warps → 4 by registers.
	o, err := Occupy(H100, Kernel{Regs: 52, Threads: 256, DynamicShared: 8448})
	require.NoError(t, err)
	assert.Equal(t, Occupancy{Blocks: 4, Warps: 32, Limit: "regs", ByRegs: 4, ByShared: 24, ByThreads: 8}, o)

	// Shared memory limits: 48 KiB static per block → 228 KiB / 49 KiB = 4 blocks on an H100,
	// 164 / 49 = 3 on an A100, while 32 registers would allow 8.
	k := Kernel{Regs: 32, Threads: 256, StaticShared: 48 << 10}
	o, err = Occupy(H100, k)
	require.NoError(t, err)
	assert.Equal(t, 4, o.Blocks)
	assert.Equal(t, "smem", o.Limit)
	o, err = Occupy(A100, k)
	require.NoError(t, err)
	assert.Equal(t, 3, o.Blocks)

	// Threads limit: 1,024-thread blocks with few registers: 2 blocks = 64 warps.
	o, err = Occupy(H100, Kernel{Regs: 16, Threads: 1024})
	require.NoError(t, err)
	assert.Equal(t, 2, o.Blocks)
	assert.Equal(t, "threads", o.Limit)
	assert.Equal(t, 64, o.Warps)

	// Block-count limit: 32-thread blocks would fit 64 by warps; the SM holds 32 blocks.
	o, err = Occupy(H100, Kernel{Regs: 16, Threads: 32})
	require.NoError(t, err)
	assert.Equal(t, 32, o.Blocks)
	assert.Equal(t, "blocks", o.Limit)

	// Nothing fits: 255 registers × 1,024 threads needs 262,144 registers.
	_, err = Occupy(H100, Kernel{Regs: 255, Threads: 1024})
	assert.Error(t, err)
	_, err = Occupy(H100, Kernel{Regs: 32, Threads: 0})
	assert.Error(t, err)
}

func TestIssueEfficiency(t *testing.T) {
	assert.InDelta(t, 0.5, IssueEfficiency(4), 1e-12)
	assert.InDelta(t, 2.0/3, IssueEfficiency(8), 1e-12)
	assert.InDelta(t, 16.0/17, IssueEfficiency(64), 1e-12)
	assert.Zero(t, IssueEfficiency(0))
	for w := 1; w < 64; w++ {
		assert.Less(t, IssueEfficiency(w), IssueEfficiency(w+1), "more warps never issue less")
	}
}

func TestBoundsAndPredict(t *testing.T) {
	// 1.045e12 warp-instructions on an H100 issue in one second.
	c := Counts{Instrs: H100.IssueRate(), FP32: 0, DRAMBytes: 3.35e12 / 2}
	b := BoundsOf(H100, c, 1)
	assert.InDelta(t, 1, b.Issue, 1e-12)
	assert.InDelta(t, 0.5, b.DRAM, 1e-12)
	assert.InDelta(t, 128, H100.FP32Lanes(), 0.5)
	assert.InDelta(t, 64, A100.FP32Lanes(), 0.5)
	// FP32: a full FP32 peak of FFMA lanes (66.9e12 FLOP = 33.45e12 lanes) takes a second.
	b = BoundsOf(H100, Counts{FP32: 66.9e12 / 2 / 32}, 1)
	assert.InDelta(t, 1, b.FP32, 1e-9)

	best, worst, limit := Predict(Bounds{Issue: 1, DRAM: 0.5}, Bounds{Issue: 2, DRAM: 0.5}, 0.5)
	assert.Equal(t, 1.0, best)
	assert.Equal(t, 4.0, worst)
	assert.Equal(t, "issue", limit)
	// A DRAM-bound launch: the worst case is DRAM at DRAMEfficiency.
	_, worst, limit = Predict(Bounds{Issue: 0.1, DRAM: 1}, Bounds{Issue: 0.2, DRAM: 1}, 0.8)
	assert.InDelta(t, 1/DRAMEfficiency, worst, 1e-12)
	assert.Equal(t, "DRAM", limit)
}
