package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/internal/perfmodel"
)

// entryInfo is what ptxas -v reports for one entry on one arch.
type entryInfo struct {
	Regs, Stack, SpillStores, SpillLoads, StaticShared int
}

// assembled is one PTX module assembled for one arch: ptxas's per-entry report and the SASS.
type assembled struct {
	entries map[string]entryInfo
	sass    []perfmodel.Function
}

var (
	ptxasEntry = regexp.MustCompile(`Compiling entry function '([^']+)'`)
	ptxasFrame = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	ptxasUsed  = regexp.MustCompile(`Used (\d+) registers(?:, (\d+) bytes smem)?`)
)

// parsePtxas reads the per-entry lines of ptxas -v.
func parsePtxas(out []byte) map[string]entryInfo {
	res := map[string]entryInfo{}
	var cur string
	var info entryInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		t := sc.Text()
		if m := ptxasEntry.FindStringSubmatch(t); m != nil {
			cur, info = m[1], entryInfo{}
			continue
		}
		if cur == "" {
			continue
		}
		if m := ptxasFrame.FindStringSubmatch(t); m != nil {
			info.Stack, _ = strconv.Atoi(m[1])
			info.SpillStores, _ = strconv.Atoi(m[2])
			info.SpillLoads, _ = strconv.Atoi(m[3])
		}
		if m := ptxasUsed.FindStringSubmatch(t); m != nil {
			info.Regs, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				info.StaticShared, _ = strconv.Atoi(m[2])
			}
			res[cur] = info
			cur = ""
		}
	}
	return res
}

// toolchain runs ptxas and cuobjdump in a scratch directory, once per (module, arch).
type toolchain struct {
	ptxas, cuobjdump, dir string
	cache                 map[string]*assembled
}

func (tc *toolchain) version() string {
	out, err := exec.Command(tc.ptxas, "--version").Output()
	if err != nil {
		return "unknown"
	}
	m := regexp.MustCompile(`V(\d[\d.]*)`).FindSubmatch(out)
	if m == nil {
		return "unknown"
	}
	return string(m[1])
}

func (tc *toolchain) module(module, arch string) (*assembled, error) {
	key := module + "." + arch
	if a, ok := tc.cache[key]; ok {
		return a, nil
	}
	ptx := filepath.Join("kernels", "ptx", module+".ptx")
	cubin := filepath.Join(tc.dir, key+".cubin")
	out, err := exec.Command(tc.ptxas, "-v", "-arch="+arch, "-o", cubin, ptx).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ptxas -arch=%s %s: %w\n%s", arch, ptx, err, out)
	}
	a := &assembled{entries: parsePtxas(out)}
	sass, err := exec.Command(tc.cuobjdump, "-sass", cubin).Output()
	if err != nil {
		return nil, fmt.Errorf("cuobjdump -sass %s (%s): %w", ptx, arch, err)
	}
	if a.sass, err = perfmodel.ParseSASS(bytes.NewReader(sass)); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", ptx, arch, err)
	}
	tc.cache[key] = a
	return a, nil
}

// printLoops lists every loop of an entry with its mix (the -loops flag): the listing from which
// the workload table's loop choices are made.
func (tc *toolchain) printLoops(module, entry, arch string) error {
	a, err := tc.module(module, arch)
	if err != nil {
		return err
	}
	f, ok := perfmodel.Find(a.sass, entry)
	if !ok {
		return fmt.Errorf("%s has no entry %s", module, entry)
	}
	loops := perfmodel.Loops(f)
	inner := perfmodel.Innermost(loops)
	fmt.Printf("%s %s (%s): %d instructions, %d loops\n", module, entry, arch, len(f.Instrs), len(loops))
	for i, l := range loops {
		tag := ""
		for _, o := range inner {
			if o.Start == l.Start && o.End == l.End {
				tag = " innermost"
			}
		}
		short, long, _ := perfmodel.Paths(f, l)
		fmt.Printf("  loop %d 0x%04x-0x%04x %4d static, paths %d..%d (EX2 %d..%d)%s: %s\n", i, l.Start, l.End, len(l.Instrs),
			short.Instrs, long.Instrs, short.Count("MUFU.EX2"), long.Count("MUFU.EX2"), tag, mixString(perfmodel.MixOf(l.Instrs)))
	}
	return nil
}

func mixString(m perfmodel.Mix) string {
	var parts []string
	for _, c := range mixOrder {
		if m[c] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, m[c]))
		}
	}
	return strings.Join(parts, ", ")
}

var mixOrder = []string{"FFMA", "FMUL", "FADD", "FP32 other", "MUFU", "SHFL", "LDS", "STS", "LDG", "STG",
	"BAR", "IMAD", "FP64", "CONV", "BRANCH", "other"}

func mustEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
