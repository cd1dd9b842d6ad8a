package perfmodel

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Instr is one SASS instruction of a cuobjdump -sass listing.
type Instr struct {
	Addr   int    // byte offset in the function
	Pred   string // guard predicate ("@P0", "@!P1"), empty when unguarded
	Opcode string // full opcode with modifiers, e.g. "IMAD.WIDE.U32"
	Target int    // target of BRA and CALL, -1 otherwise
}

// Base is the opcode without modifiers ("IMAD" for "IMAD.WIDE.U32").
func (in Instr) Base() string {
	if i := strings.IndexByte(in.Opcode, '.'); i >= 0 {
		return in.Opcode[:i]
	}
	return in.Opcode
}

// Function is the SASS of one kernel entry (with the device functions inlined or placed after it).
type Function struct {
	Name   string
	Instrs []Instr
}

var (
	sassFunc  = regexp.MustCompile(`^\s*Function\s*:\s*(\S+)`)
	sassInstr = regexp.MustCompile(`^\s*/\*([0-9a-f]+)\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);`)
	sassBra   = regexp.MustCompile(`(?:^|\s)(?:` + "`" + `\([^)]*\)\s*)?0x([0-9a-f]+)\s*$`)
)

// ParseSASS reads the output of cuobjdump -sass (one or several functions) and returns its
// functions in listing order. Lines that are neither a function header nor an instruction
// (encodings, headers, blank lines) are skipped.
func ParseSASS(r io.Reader) ([]Function, error) {
	var fs []Function
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if m := sassFunc.FindStringSubmatch(t); m != nil {
			fs = append(fs, Function{Name: m[1]})
			continue
		}
		m := sassInstr.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		if len(fs) == 0 {
			return nil, fmt.Errorf("sass line %d: instruction before any Function header", line)
		}
		addr, err := strconv.ParseInt(m[1], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("sass line %d: address %q: %w", line, m[1], err)
		}
		in := Instr{Addr: int(addr), Pred: strings.TrimSpace(m[2]), Opcode: m[3], Target: -1}
		if b := in.Base(); b == "BRA" || b == "CALL" {
			if b := sassBra.FindStringSubmatch(strings.TrimSpace(m[4])); b != nil {
				tgt, err := strconv.ParseInt(b[1], 16, 64)
				if err != nil {
					return nil, fmt.Errorf("sass line %d: branch target %q: %w", line, b[1], err)
				}
				in.Target = int(tgt)
			}
		}
		f := &fs[len(fs)-1]
		f.Instrs = append(f.Instrs, in)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sass: %w", err)
	}
	return fs, nil
}

// Loop is the address range [Start, End] closed by a backward branch at End to Start.
type Loop struct {
	Start, End int
	Instrs     []Instr
}

// Loops returns the loops of f: every backward branch (target at or before the branch, not a
// branch to itself, which is the trap after EXIT) closes the range from its target to itself.
// Ranges holding an unguarded EXIT or RET are not loops of the kernel: they are out-of-line paths
// (a shuffle's divergent fallback, a slow division) that jump back into the code they left. Equal
// ranges are merged. Sorted by start, then end.
func Loops(f Function) []Loop {
	index := make(map[int]int, len(f.Instrs))
	for i, in := range f.Instrs {
		index[in.Addr] = i
	}
	seen := map[[2]int]bool{}
	var loops []Loop
	for i, in := range f.Instrs {
		if in.Base() != "BRA" || in.Target < 0 || in.Target >= in.Addr {
			continue
		}
		start, ok := index[in.Target]
		if !ok || seen[[2]int{in.Target, in.Addr}] {
			continue
		}
		body := f.Instrs[start : i+1]
		if leaves(body[:len(body)-1]) {
			continue
		}
		seen[[2]int{in.Target, in.Addr}] = true
		loops = append(loops, Loop{Start: in.Target, End: in.Addr, Instrs: body})
	}
	sort.Slice(loops, func(a, b int) bool {
		if loops[a].Start != loops[b].Start {
			return loops[a].Start < loops[b].Start
		}
		return loops[a].End < loops[b].End
	})
	return loops
}

func leaves(body []Instr) bool {
	for _, in := range body {
		if in.Pred == "" && (in.Base() == "EXIT" || in.Base() == "RET") {
			return true
		}
	}
	return false
}

// Contains reports whether l's range holds o's (o ≠ l).
func (l Loop) Contains(o Loop) bool {
	return l.Start <= o.Start && o.End <= l.End && (l.Start != o.Start || l.End != o.End)
}

// Innermost returns the loops of ls that hold no other loop of ls.
func Innermost(ls []Loop) []Loop {
	return loopsWhere(ls, func(l, o Loop) bool { return l.Contains(o) })
}

// Outermost returns the loops of ls that no other loop of ls holds.
func Outermost(ls []Loop) []Loop {
	return loopsWhere(ls, func(l, o Loop) bool { return o.Contains(l) })
}

// loopsWhere returns the loops l of ls for which excludes(l, o) holds for no o of ls.
func loopsWhere(ls []Loop, excludes func(l, o Loop) bool) []Loop {
	var out []Loop
next:
	for _, l := range ls {
		for _, o := range ls {
			if excludes(l, o) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// Mix is an instruction mix: the count per class (see Class).
type Mix map[string]int

// Total is the number of instructions in m.
func (m Mix) Total() int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// Class names the pipe or kind of an instruction for the model: FP32 arithmetic is split into
// FFMA, FMUL and FADD (FMNMX, FSEL, FSETP and the like are "FP32 other"), "MUFU", "SHFL", "LDS",
// "STS", "LDG" (global loads, LDG and LD), "STG" (global stores, STG and ST), "BAR", "IMAD"
// (IMAD and its forms), "FP64" (DFMA, DMUL, DADD), "CONV" (F2F, F2I, I2F), "BRANCH" (BRA, BSSY,
// BSYNC, WARPSYNC, CALL, RET, EXIT) and "other" for the rest (integer, logic, moves, predicates).
func Class(in Instr) string {
	switch b := in.Base(); b {
	case "FFMA", "FMUL", "FADD", "MUFU", "SHFL", "LDS", "STS", "BAR", "IMAD":
		return b
	case "FMNMX", "FSEL", "FSETP", "FSET", "FCHK", "FSWZADD":
		return "FP32 other"
	case "LDG", "LD", "LDGSTS":
		return "LDG"
	case "STG", "ST":
		return "STG"
	case "DFMA", "DMUL", "DADD", "DSETP", "DMNMX":
		return "FP64"
	case "F2F", "F2I", "I2F", "F2FP", "I2FP", "F2IP":
		return "CONV"
	case "BRA", "BSSY", "BSYNC", "WARPSYNC", "CALL", "RET", "EXIT", "BREAK", "BMOV":
		return "BRANCH"
	}
	return "other"
}

// MixOf counts the classes of instrs.
func MixOf(instrs []Instr) Mix {
	m := Mix{}
	for _, in := range instrs {
		m[Class(in)]++
	}
	return m
}

// Find returns the function named name.
func Find(fs []Function, name string) (Function, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// Path is one way through a loop body, from its first instruction to the backward branch that
// closes it, each loop nested inside taken once.
type Path struct {
	Instrs int     // instructions executed
	Mix    Mix     // their classes
	Ops    []Instr // the instructions, in order
}

// Count is the number of instructions on p with the full opcode op.
func (p Path) Count(op string) int {
	n := 0
	for _, in := range p.Ops {
		if in.Opcode == op {
			n++
		}
	}
	return n
}

// Paths returns the shortest and the longest path through one iteration of l, a loop of f
// (counted in instructions). The graph: every instruction of f; an edge to the next instruction
// unless the instruction is an unguarded BRA, EXIT or RET; an edge along every forward branch,
// and along every branch from outside l back into it (an out-of-line block returning into the
// body). BRA.DIV and BRA.CONV, taken only when the warp has diverged before a warp-synchronous
// operation (a shuffle's fallback path), are taken as not taken: the kernels run those
// operations converged. Backward branches inside l (nested loops) are not followed,
// so a nested loop counts once. A CALL both falls through (a subroutine returns; it counts as one
// instruction) and leads to its target: sm_80 code leaves some loops by CALL.REL.NOINC to the
// instruction after the loop's unguarded backward BRA. A path runs from l's first
// instruction to the backward branch that closes l. The shortest path is the cheapest iteration
// the code allows, the longest the most expensive one; the static count of the body
// (len(l.Instrs)) counts every side of every branch. ok is false when no path closes the loop.
func Paths(f Function, l Loop) (short, long Path, ok bool) {
	g, ok := newGraph(f, l)
	if !ok {
		return Path{}, Path{}, false
	}
	return g.paths(g.index[l.Start], g.index[l.End])
}

// PathsThrough is Paths restricted to the paths that pass the instruction at addr (the start of
// a nested loop that every iteration runs, say).
func PathsThrough(f Function, l Loop, addr int) (short, long Path, ok bool) {
	g, ok := newGraph(f, l)
	if !ok {
		return Path{}, Path{}, false
	}
	j, in := g.index[addr]
	if !in {
		return Path{}, Path{}, false
	}
	s1, l1, ok1 := g.paths(g.index[l.Start], j)
	s2, l2, ok2 := g.paths(j, g.index[l.End])
	if !ok1 || !ok2 {
		return Path{}, Path{}, false
	}
	return join(s1, s2), join(l1, l2), true
}

// join is a followed by b, where b starts at a's last instruction.
func join(a, b Path) Path {
	p := Path{Instrs: a.Instrs + b.Instrs - 1, Mix: Mix{}, Ops: append(slices.Clone(a.Ops), b.Ops[1:]...)}
	for _, in := range p.Ops {
		p.Mix[Class(in)]++
	}
	return p
}

// graph is the control flow of f for the paths through one loop (see Paths).
type graph struct {
	f     Function
	index map[int]int
	succ  [][]int
}

func newGraph(f Function, l Loop) (*graph, bool) {
	g := &graph{f: f, index: make(map[int]int, len(f.Instrs)), succ: make([][]int, len(f.Instrs))}
	for i, in := range f.Instrs {
		g.index[in.Addr] = i
	}
	if _, ok := g.index[l.Start]; !ok {
		return nil, false
	}
	if _, ok := g.index[l.End]; !ok {
		return nil, false
	}
	inside := func(a int) bool { return a >= l.Start && a <= l.End }
	for i, in := range f.Instrs {
		divergent := strings.Contains(in.Opcode, ".DIV") || strings.Contains(in.Opcode, ".CONV")
		if in.Target >= 0 && in.Addr != l.End && !divergent {
			if j, ok := g.index[in.Target]; ok && (in.Target > in.Addr || (!inside(in.Addr) && inside(in.Target))) {
				g.succ[i] = append(g.succ[i], j)
			}
		}
		b := in.Base()
		if i+1 < len(f.Instrs) && (in.Pred != "" || divergent || (b != "BRA" && b != "EXIT" && b != "RET")) {
			g.succ[i] = append(g.succ[i], i+1)
		}
	}
	return g, true
}

// paths returns the shortest and longest paths from instruction from to instruction to over the
// nodes that lie on some path between them; ok is false when there is none or when those nodes
// form a cycle (no longest path).
func (g *graph) paths(from, to int) (short, long Path, ok bool) {
	n := len(g.f.Instrs)
	// Nodes reachable from `from` (not past `to`), then those that also reach `to`.
	reach := make([]bool, n)
	stack := []int{from}
	reach[from] = true
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i == to {
			continue
		}
		for _, j := range g.succ[i] {
			if !reach[j] {
				reach[j] = true
				stack = append(stack, j)
			}
		}
	}
	if !reach[to] {
		return Path{}, Path{}, false
	}
	pred := make([][]int, n)
	for i := range n {
		if reach[i] && i != to {
			for _, j := range g.succ[i] {
				if reach[j] {
					pred[j] = append(pred[j], i)
				}
			}
		}
	}
	useful := make([]bool, n)
	useful[to] = true
	stack = append(stack[:0], to)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range pred[i] {
			if !useful[j] {
				useful[j] = true
				stack = append(stack, j)
			}
		}
	}
	// Topological order of the useful nodes (Kahn); a cycle leaves nodes unordered.
	indeg := make([]int, n)
	count := 0
	for i := range n {
		if useful[i] {
			count++
			for _, j := range pred[i] {
				if useful[j] {
					indeg[i]++
				}
			}
		}
	}
	const none = -1
	lo, hi := make([]int, n), make([]int, n)
	loFrom, hiFrom := make([]int, n), make([]int, n)
	for i := range lo {
		lo[i], hi[i], loFrom[i], hiFrom[i] = none, none, none, none
	}
	lo[from], hi[from] = 1, 1
	queue := []int{from}
	done := 0
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		done++
		if i == to {
			continue
		}
		for _, j := range g.succ[i] {
			if !useful[j] {
				continue
			}
			if lo[j] == none || lo[i]+1 < lo[j] {
				lo[j], loFrom[j] = lo[i]+1, i
			}
			if hi[j] == none || hi[i]+1 > hi[j] {
				hi[j], hiFrom[j] = hi[i]+1, i
			}
			if indeg[j]--; indeg[j] == 0 {
				queue = append(queue, j)
			}
		}
	}
	if done != count || lo[to] == none {
		return Path{}, Path{}, false
	}
	walk := func(prev []int) Path {
		p := Path{Mix: Mix{}}
		for i := to; i != none; i = prev[i] {
			p.Instrs++
			p.Mix[Class(g.f.Instrs[i])]++
			p.Ops = append(p.Ops, g.f.Instrs[i])
			if i == from {
				break
			}
		}
		slices.Reverse(p.Ops)
		return p
	}
	return walk(loFrom), walk(hiFrom), true
}
