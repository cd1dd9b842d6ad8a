package perfmodel

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, name string) []Function {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	fs, err := ParseSASS(f)
	require.NoError(t, err)
	return fs
}

func loopAt(t *testing.T, ls []Loop, start, end int) Loop {
	t.Helper()
	for _, l := range ls {
		if l.Start == start && l.End == end {
			return l
		}
	}
	require.Failf(t, "loop not found", "0x%x-0x%x among %d loops", start, end, len(ls))
	return Loop{}
}

// testdata/fgn_increments_f32.sm_90.sass is cuobjdump -sass (11.8) of the committed fgn.ptx
// assembled for sm_90, the encoding-only lines after the fifth instruction removed. The kernel
// is a grid-stride loop over the outputs: one loop, no branches inside it.
func TestParseRealListing(t *testing.T) {
	fs := parseFile(t, "testdata/fgn_increments_f32.sm_90.sass")
	require.Len(t, fs, 1)
	f := fs[0]
	assert.Equal(t, "fgn_increments_f32", f.Name)
	require.Len(t, f.Instrs, 224)
	assert.Equal(t, Instr{Addr: 0, Opcode: "LDC", Target: -1}, f.Instrs[0])
	assert.Equal(t, 0x50, f.Instrs[5].Addr)
	assert.Equal(t, "ISETP.GE.U32.AND", f.Instrs[5].Opcode)
	assert.Equal(t, "ISETP", f.Instrs[5].Base())

	loops := Loops(f)
	require.Len(t, loops, 1, "the trap BRA after EXIT is not a loop")
	l := loops[0]
	assert.Equal(t, 0x06c0, l.Start)
	assert.Equal(t, 0x08e0, l.End)
	assert.Len(t, l.Instrs, 35)
	assert.Equal(t, Mix{"FMUL": 1, "LDG": 1, "STG": 1, "IMAD": 7, "BRANCH": 1, "other": 24}, MixOf(l.Instrs))
	back := l.Instrs[len(l.Instrs)-1]
	assert.Equal(t, "BRA", back.Opcode)
	assert.NotEmpty(t, back.Pred)
	assert.Equal(t, l.Start, back.Target)

	short, long, ok := Paths(f, l)
	require.True(t, ok)
	assert.Equal(t, 35, short.Instrs, "a body without branches has one path")
	assert.Equal(t, 35, long.Instrs)
	assert.Equal(t, MixOf(l.Instrs), long.Mix)
}

// testdata/synthetic.sass is written by hand in cuobjdump's layout; its comments are in the test.
//
// synthetic_branches: an outer loop 0x10–0xf0 holding an inner loop 0x30–0x60, an if that skips
// 0x80–0x90, a BRA.DIV to a divergent fallback after EXIT that jumps back (0x130–0x140), and a
// guarded branch to an out-of-line block (0x150–0x170) that returns into the body at 0xd0.
//
// synthetic_call_exit: an outer loop 0x10–0x80 around an inner loop 0x20–0x50 whose backward
// branch is unguarded and whose exit is @P0 CALL.REL.NOINC to the instruction after it (sm_80).
func TestLoopsAndPaths(t *testing.T) {
	fs := parseFile(t, "testdata/synthetic.sass")
	require.Len(t, fs, 2)
	f, ok := Find(fs, "synthetic_branches")
	require.True(t, ok)
	require.Len(t, f.Instrs, 24)
	assert.Equal(t, 0x130, f.Instrs[10].Target, "BRA.DIV UR4, 0x130")
	assert.Equal(t, "@!P2", f.Instrs[7].Pred)

	loops := Loops(f)
	require.Len(t, loops, 2, "the fallback's and the out-of-line block's jumps back span EXIT: not loops; the trap neither")
	outer, inner := loopAt(t, loops, 0x10, 0xf0), loopAt(t, loops, 0x30, 0x60)
	assert.True(t, outer.Contains(inner))
	assert.False(t, inner.Contains(outer))
	assert.False(t, outer.Contains(outer))
	assert.Equal(t, []Loop{inner}, Innermost(loops))
	assert.Equal(t, []Loop{outer}, Outermost(loops))

	// Shortest: 0x10–0x70, skip the if to 0xa0, not the fallback, not the out-of-line block:
	// 0x10 0x20 0x30 0x40 0x50 0x60 0x70 0xa0 0xb0 0xc0 0xd0 0xe0 0xf0.
	short, long, ok := Paths(f, outer)
	require.True(t, ok)
	assert.Equal(t, 13, short.Instrs)
	assert.Equal(t, Mix{"IMAD": 1, "FFMA": 1, "LDS": 1, "FMUL": 1, "SHFL": 1, "STG": 1, "BRANCH": 5, "other": 2}, short.Mix)
	assert.Equal(t, 0, short.Count("MUFU.EX2"))
	// Longest: the if's body (0x80, 0x90) and the out-of-line block (0x150–0x170) as well.
	assert.Equal(t, 18, long.Instrs)
	assert.Equal(t, Mix{"IMAD": 1, "FFMA": 1, "LDS": 1, "FMUL": 3, "FADD": 1, "MUFU": 1, "SHFL": 1, "STG": 1,
		"BRANCH": 6, "other": 2}, long.Mix)
	assert.Equal(t, 1, long.Count("MUFU.EX2"))
	addrs := func(p Path) []int {
		var a []int
		for _, in := range p.Ops {
			a = append(a, in.Addr)
		}
		return a
	}
	assert.Equal(t, []int{0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0x150, 0x160, 0x170,
		0xd0, 0xe0, 0xf0}, addrs(long))

	// Through the if's body: the shortest path must take 0x80 and 0x90.
	short, _, ok = PathsThrough(f, outer, 0x80)
	require.True(t, ok)
	assert.Equal(t, 15, short.Instrs)
	assert.Equal(t, 1, short.Count("MUFU.EX2"))
	_, _, ok = PathsThrough(f, outer, 0x130)
	assert.False(t, ok, "the divergent fallback is never on a path")

	short, long, ok = Paths(f, inner)
	require.True(t, ok)
	assert.Equal(t, 4, short.Instrs)
	assert.Equal(t, 4, long.Instrs)

	g, ok := Find(fs, "synthetic_call_exit")
	require.True(t, ok)
	loops = Loops(g)
	require.Len(t, loops, 2)
	outer = loopAt(t, loops, 0x10, 0x80)
	short, long, ok = Paths(g, outer)
	require.True(t, ok, "the inner loop is left by CALL.REL.NOINC")
	assert.Equal(t, 7, short.Instrs) // 0x10 0x20 0x30 0x40 (CALL) 0x60 0x70 0x80
	assert.Equal(t, 7, long.Instrs)
	assert.Equal(t, []int{0x10, 0x20, 0x30, 0x40, 0x60, 0x70, 0x80}, addrs(long))
}

func TestParseErrors(t *testing.T) {
	_, err := ParseSASS(strings.NewReader("        /*0000*/                   EXIT ;\n"))
	assert.ErrorContains(t, err, "before any Function header")
	fs, err := ParseSASS(strings.NewReader("no listing here\n"))
	require.NoError(t, err)
	assert.Empty(t, fs)
}

func TestClass(t *testing.T) {
	for op, want := range map[string]string{
		"FFMA": "FFMA", "FMUL.FTZ": "FMUL", "FADD": "FADD", "FSETP.GEU.AND": "FP32 other", "MUFU.EX2": "MUFU",
		"SHFL.BFLY": "SHFL", "LDS.128": "LDS", "STS": "STS", "LDG.E.128": "LDG", "LD.E": "LDG", "STG.E": "STG",
		"BAR.SYNC": "BAR", "IMAD.WIDE.U32": "IMAD", "DFMA": "FP64", "F2F.F64.F32": "CONV", "BRA.DIV": "BRANCH",
		"CALL.REL.NOINC": "BRANCH", "LOP3.LUT": "other", "IADD3": "other",
	} {
		assert.Equal(t, want, Class(Instr{Opcode: op}), op)
	}
}
