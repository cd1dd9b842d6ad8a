package perfmodel

import "fmt"

// GPU holds the constants of one device that the model uses.
type GPU struct {
	Name             string
	Arch             string  // ptxas target, e.g. sm_90
	SMs              int     // multiprocessors
	ClockGHz         float64 // boost clock
	RegsPerSM        int     // 32-bit registers per SM
	MaxWarpsPerSM    int     // resident warps per SM
	MaxBlocksPerSM   int     // resident blocks per SM
	SharedPerSM      int     // shared memory per SM usable by blocks (largest carveout), bytes
	ReservedPerBlock int     // shared memory the system reserves per resident block, bytes
	FP32TFLOPs       float64 // FP32 peak, FFMA counted as 2 FLOP
	HBMTBs           float64 // theoretical DRAM bandwidth, 10^12 bytes/s
	SFUPerClk        int     // MUFU lanes per clock per SM
	ShflPerClk       int     // shuffle lanes per clock per SM
}

// Schedulers is the number of warp schedulers per SM (four on sm_80 and sm_90), each issuing one
// warp-instruction per clock.
const Schedulers = 4

// Register allocation granularity on sm_80 and sm_90: a thread's registers are rounded up to a
// multiple of RegUnit, a warp's to a multiple of WarpRegUnit.
const (
	RegUnit     = 8
	WarpRegUnit = 256
)

// H100 is the H100 SXM5 (80 GB HBM3).
var H100 = GPU{Name: "H100 SXM", Arch: "sm_90", SMs: 132, ClockGHz: 1.98, RegsPerSM: 65536,
	MaxWarpsPerSM: 64, MaxBlocksPerSM: 32, SharedPerSM: 228 << 10, ReservedPerBlock: 1 << 10,
	FP32TFLOPs: 66.9, HBMTBs: 3.35, SFUPerClk: 16, ShflPerClk: 32}

// A100 is the A100 SXM4 40 GB (HBM2, 1.555 TB/s); the 80 GB SXM4 part has 2.0 TB/s and is
// otherwise the same.
var A100 = GPU{Name: "A100 SXM 40GB", Arch: "sm_80", SMs: 108, ClockGHz: 1.41, RegsPerSM: 65536,
	MaxWarpsPerSM: 64, MaxBlocksPerSM: 32, SharedPerSM: 164 << 10, ReservedPerBlock: 1 << 10,
	FP32TFLOPs: 19.5, HBMTBs: 1.555, SFUPerClk: 16, ShflPerClk: 32}

// IssueRate is the device's warp-instruction issue rate per second.
func (g GPU) IssueRate() float64 { return float64(g.SMs*Schedulers) * g.ClockGHz * 1e9 }

// Kernel is what occupancy depends on: one launch of one entry.
type Kernel struct {
	Regs          int // registers per thread (ptxas -v)
	Threads       int // per block
	StaticShared  int // bytes (ptxas -v "bytes smem")
	DynamicShared int // bytes (the launch's dynamic shared memory)
}

// Occupancy is the number of resident blocks of one kernel per SM and what limits it.
type Occupancy struct {
	Blocks    int    // resident blocks per SM
	Warps     int    // resident warps per SM
	Limit     string // "regs", "smem", "threads" or "blocks": the smallest limit (the first of these on a tie; smem only when the kernel uses shared memory)
	ByRegs    int    // blocks/SM allowed by the register file
	ByShared  int    // blocks/SM allowed by shared memory
	ByThreads int    // blocks/SM allowed by the resident-warp limit
}

func ceilTo(x, unit int) int { return (x + unit - 1) / unit * unit }

// RegsPerWarp is the register file a warp of k occupies: per thread rounded up to RegUnit, per
// warp to WarpRegUnit.
func RegsPerWarp(regs int) int { return ceilTo(ceilTo(regs, RegUnit)*32, WarpRegUnit) }

// BlocksByRegs is the number of blocks of threads threads with regs registers each that the
// register file of g holds: whole warps (RegsPerSM / RegsPerWarp), then whole blocks.
func BlocksByRegs(g GPU, regs, threads int) int {
	if regs <= 0 {
		return g.MaxBlocksPerSM
	}
	warps := g.RegsPerSM / RegsPerWarp(regs)
	return warps / warpsOf(threads)
}

func warpsOf(threads int) int { return (threads + 31) / 32 }

// Occupy returns the occupancy of k on g: the minimum over the register file, shared memory
// (each block takes its static and dynamic shared memory plus ReservedPerBlock), the resident
// warps and the resident blocks.
func Occupy(g GPU, k Kernel) (Occupancy, error) {
	if k.Threads <= 0 || warpsOf(k.Threads) > g.MaxWarpsPerSM {
		return Occupancy{}, fmt.Errorf("occupancy: block of %d threads on %s", k.Threads, g.Name)
	}
	o := Occupancy{
		ByRegs:    BlocksByRegs(g, k.Regs, k.Threads),
		ByShared:  g.MaxBlocksPerSM,
		ByThreads: g.MaxWarpsPerSM / warpsOf(k.Threads),
	}
	if sh := k.StaticShared + k.DynamicShared; sh > 0 {
		o.ByShared = g.SharedPerSM / (sh + g.ReservedPerBlock)
	}
	type limit struct {
		n    int
		name string
	}
	limits := []limit{{o.ByThreads, "threads"}, {g.MaxBlocksPerSM, "blocks"}}
	if k.StaticShared+k.DynamicShared > 0 {
		limits = append([]limit{{o.ByShared, "smem"}}, limits...)
	}
	o.Blocks, o.Limit = o.ByRegs, "regs"
	for _, c := range limits {
		if c.n < o.Blocks {
			o.Blocks, o.Limit = c.n, c.name
		}
	}
	if o.Blocks < 1 {
		return o, fmt.Errorf("occupancy: %d registers × %d threads, %d B shared memory do not fit one block on %s",
			k.Regs, k.Threads, k.StaticShared+k.DynamicShared, g.Name)
	}
	o.Warps = o.Blocks * warpsOf(k.Threads)
	return o, nil
}

// IssueEfficiency is the fraction of the issue rate the model credits a kernel with when w warps
// are resident per SM: with v = w / Schedulers warps per scheduler, v / (v + 1). One warp per
// scheduler issues half the time (every instruction waits about one issue slot for a dependency
// or memory), 2 warps: 67 %, 4: 80 %, 8: 89 %, 16: 94 %. It is a rule of thumb for latency hiding
// with dependent instruction chains, not a measured curve.
func IssueEfficiency(warps int) float64 {
	if warps <= 0 {
		return 0
	}
	v := float64(warps) / Schedulers
	return v / (v + 1)
}
