package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/internal/perfmodel"
	"github.com/scorekit/scorekit/ops/cuda"
)

// The hand-written listing of internal/perfmodel's tests: synthetic_branches has an outer loop
// 0x10–0xf0 (13 instructions on its shortest path, 18 on its longest, 1 and 3 FMUL) around an
// inner loop 0x30–0x60 (4 instructions, 1 LDS).
func TestCountLoopsPairsSides(t *testing.T) {
	f, err := os.Open("../../internal/perfmodel/testdata/synthetic.sass")
	require.NoError(t, err)
	defer f.Close()
	fs, err := perfmodel.ParseSASS(f)
	require.NoError(t, err)
	fn, ok := perfmodel.Find(fs, "synthetic_branches")
	require.True(t, ok)

	terms := []term{
		{what: "outer", pick: largestAtDepth(0), iters: func(iterCtx) float64 { return 10 }},
		// The nested term's count depends on the outer path of the same side: 10 per FMUL on it.
		{what: "inner", pick: innermostWith([]string{"LDS"}, nil), iters: func(x iterCtx) float64 {
			return 10 * float64(x.outer.Mix["FMUL"])
		}},
	}
	lo, hi, res, err := countLoops(fn, terms, perfmodel.H100, cuda.PlannedLaunch{})
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.Equal(t, 10*13+10*4.0, lo.Instrs, "best: shortest outer path (1 FMUL) and 10 inner iterations")
	assert.Equal(t, 10*18+30*4.0, hi.Instrs, "worst: longest outer path (3 FMUL) and 30 inner iterations")
	assert.Equal(t, 2*10+1*10.0, lo.FP32, "FP32: FFMA and FMUL on the outer short path ×10, the inner FMUL ×10")
	assert.Equal(t, 5*10+1*30.0, hi.FP32, "FP32: FFMA, 3 FMUL and FADD on the outer long path ×10, the inner FMUL ×30")
	assert.Equal(t, 10.0, res[1].itersLo)
	assert.Equal(t, 30.0, res[1].itersHi)
	assert.Equal(t, 0x10, res[0].shortAddr[0])

	_, _, _, err = countLoops(fn, []term{{what: "none", pick: innermostWith([]string{"DFMA"}, nil)}}, perfmodel.H100, cuda.PlannedLaunch{})
	assert.ErrorContains(t, err, "no loop matches")
}
