package perfmodel

import "math"

// Counts is the work of one launch on the whole device, as warp-instructions by class (from the
// hot loop's mix times its iterations) and DRAM bytes (from the workload's design).
type Counts struct {
	Instrs    float64 // warp-instructions issued
	FP32      float64 // FFMA + FMUL + FADD warp-instructions
	MUFU      float64 // MUFU warp-instructions (32 lanes each)
	SHFL      float64 // SHFL warp-instructions
	DRAMBytes float64
}

// Add returns the sum of c and o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Instrs + o.Instrs, c.FP32 + o.FP32, c.MUFU + o.MUFU, c.SHFL + o.SHFL, c.DRAMBytes + o.DRAMBytes}
}

// Scale returns c with the instruction counts (not the bytes) multiplied by f.
func (c Counts) Scale(f float64) Counts {
	return Counts{c.Instrs * f, c.FP32 * f, c.MUFU * f, c.SHFL * f, c.DRAMBytes}
}

// FromMix is the counts of a path executed warps times.
func FromMix(m Mix, warps float64) Counts {
	return Counts{
		Instrs: float64(m.Total()) * warps,
		FP32:   float64(m["FFMA"]+m["FMUL"]+m["FADD"]) * warps,
		MUFU:   float64(m["MUFU"]) * warps,
		SHFL:   float64(m["SHFL"]) * warps,
	}
}

// Bounds are the times, in seconds, each resource alone needs for some counts.
type Bounds struct {
	Issue, FP32, SFU, Shuffle, DRAM float64
}

// DRAMEfficiency is the fraction of the theoretical DRAM bandwidth a streaming kernel reaches
// (about 3.0 of 3.35 TB/s on an H100), used for the pessimistic end of a prediction.
const DRAMEfficiency = 0.9

// FP32Lanes is the number of FP32 lanes per SM and clock implied by g's FP32 peak (an FFMA is
// two FLOP): 128 on the H100, 64 on the A100.
func (g GPU) FP32Lanes() float64 {
	return g.FP32TFLOPs * 1e12 / 2 / (float64(g.SMs) * g.ClockGHz * 1e9)
}

// BoundsOf returns the bounds of c on g; imbalance (≥ 1) multiplies the SM-side bounds when the
// busiest SM has more than the mean share of the blocks (fixed work per block, a grid that is
// not a whole number of waves).
func BoundsOf(g GPU, c Counts, imbalance float64) Bounds {
	clk := g.ClockGHz * 1e9
	sms := float64(g.SMs)
	return Bounds{
		Issue:   c.Instrs / g.IssueRate() * imbalance,
		FP32:    c.FP32 * 32 / (sms * g.FP32Lanes() * clk) * imbalance,
		SFU:     c.MUFU * 32 / (sms * float64(g.SFUPerClk) * clk) * imbalance,
		Shuffle: c.SHFL * 32 / (sms * float64(g.ShflPerClk) * clk) * imbalance,
		DRAM:    c.DRAMBytes / (g.HBMTBs * 1e12),
	}
}

// Max returns the largest bound and its name.
func (b Bounds) Max() (float64, string) {
	t, name := b.Issue, "issue"
	for _, c := range []struct {
		t    float64
		name string
	}{{b.FP32, "FP32"}, {b.SFU, "SFU"}, {b.Shuffle, "SHFL"}, {b.DRAM, "DRAM"}} {
		if c.t > t {
			t, name = c.t, c.name
		}
	}
	return t, name
}

// Predict turns bounds into a time range: best is the largest bound of the fewest instructions
// (lo), everything at peak; worst is the largest of the bounds of the most instructions (hi),
// the SM-side ones divided by eff (IssueEfficiency of the resident warps) and DRAM's by
// DRAMEfficiency. limit names the resource of the worst case.
func Predict(lo, hi Bounds, eff float64) (best, worst float64, limit string) {
	best, _ = lo.Max()
	w := Bounds{Issue: hi.Issue / eff, FP32: hi.FP32 / eff, SFU: hi.SFU / eff, Shuffle: hi.Shuffle / eff,
		DRAM: hi.DRAM / DRAMEfficiency}
	worst, limit = w.Max()
	return best, math.Max(best, worst), limit
}
