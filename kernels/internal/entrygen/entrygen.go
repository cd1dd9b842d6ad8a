// Package entrygen derives the kernel entry tables from the kernel sources and their PTX: the
// entries of each module with their launch bound and static shared memory (from kernels/ptx/*.ptx)
// and their parameter names and C types (from kernels/*.cu, preprocessed by the host C++ compiler
// against kernels/hostexec/cuda_host.h). It writes kernels/entries_gen.go (the table the launchers
// check their arguments against) and, for the host execution of kernels, one C++ file per module
// (kernels/hostexec/zz_<module>.cpp) and the registry (kernels/hostexec/zz_registry.cpp).
//
// The generator is run by `make ptx` (go run ./kernels/hostexec/gen); a test in package kernels
// regenerates the files in memory and fails when the committed ones differ.
package entrygen

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// PTXEntry is what a PTX module says about one entry.
type PTXEntry struct {
	Name         string
	Params       []string // PTX types: .u64, .f64, …
	MaxThreads   int      // .maxntid x·y·z, 0 when absent
	StaticShared int64    // bytes of .shared variables the entry uses
	// SyncFree: the entry's code has no barrier, warp collective or call — its threads never
	// wait for each other, so the host execution runs them as plain calls, without fibers.
	SyncFree bool
}

var (
	entryHeadRE = regexp.MustCompile(`(?m)^\.visible\s+\.entry\s+(\w+)\(([^)]*)\)`)
	paramRE     = regexp.MustCompile(`^\.param\s+(\.\w+)\s+\w+$`)
	maxntidRE   = regexp.MustCompile(`\.maxntid\s+(\d+),\s*(\d+),\s*(\d+)`)
	sharedRE    = regexp.MustCompile(`(?m)^\s*\.shared\s+\.align\s+\d+\s+\.b8\s+([\w$.]+)\[(\d+)\];`)
	// syncRE finds the instructions by which threads wait for each other (barriers, warp
	// shuffles, votes, matches, reductions) or a call into code the entry does not show.
	syncRE = regexp.MustCompile(`(?m)^\s*(@!?%\w+\s+)?(bar\.|barrier\.|shfl\.|vote\.|match\.|redux\.|call(\.uni)?\s)`)
)

// ParsePTX returns the entries of a PTX module in the order they appear.
func ParsePTX(ptx string) ([]PTXEntry, error) {
	heads := entryHeadRE.FindAllStringSubmatchIndex(ptx, -1)
	// Module-scope shared variables (declared outside every entry body), by name.
	moduleShared := map[string]int64{}
	var out []PTXEntry
	type span struct{ lo, hi int }
	var bodies []span
	for _, h := range heads {
		open := strings.Index(ptx[h[1]:], "{")
		if open < 0 {
			return nil, fmt.Errorf("entry %s has no body", ptx[h[2]:h[3]])
		}
		lo := h[1] + open
		// The body ends at the first "}" at the start of a line.
		closeIdx := strings.Index(ptx[lo:], "\n}")
		if closeIdx < 0 {
			return nil, fmt.Errorf("entry %s: body not closed", ptx[h[2]:h[3]])
		}
		bodies = append(bodies, span{lo, lo + closeIdx + 2})
	}
	inBody := func(pos int) bool {
		for _, b := range bodies {
			if pos >= b.lo && pos < b.hi {
				return true
			}
		}
		return false
	}
	for _, m := range sharedRE.FindAllStringSubmatchIndex(ptx, -1) {
		if inBody(m[0]) {
			continue
		}
		size, _ := strconv.ParseInt(ptx[m[4]:m[5]], 10, 64)
		moduleShared[ptx[m[2]:m[3]]] = size
	}
	for i, h := range heads {
		e := PTXEntry{Name: ptx[h[2]:h[3]]}
		for _, p := range strings.Split(ptx[h[4]:h[5]], ",") {
			p = strings.Join(strings.Fields(p), " ")
			if p == "" {
				continue
			}
			pm := paramRE.FindStringSubmatch(p)
			if pm == nil {
				return nil, fmt.Errorf("entry %s: unexpected parameter declaration %q", e.Name, p)
			}
			e.Params = append(e.Params, pm[1])
		}
		between := ptx[h[1]:bodies[i].lo]
		if m := maxntidRE.FindStringSubmatch(between); m != nil {
			x, _ := strconv.Atoi(m[1])
			y, _ := strconv.Atoi(m[2])
			z, _ := strconv.Atoi(m[3])
			e.MaxThreads = x * y * z
		}
		body := ptx[bodies[i].lo:bodies[i].hi]
		e.SyncFree = !syncRE.MatchString(body)
		for _, m := range sharedRE.FindAllStringSubmatch(body, -1) {
			size, _ := strconv.ParseInt(m[2], 10, 64)
			e.StaticShared += size
		}
		for name, size := range moduleShared {
			if strings.Contains(body, name) {
				e.StaticShared += size
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Param is one kernel parameter as the source declares it.
type Param struct {
	Name string
	Type string // normalised C type: "float*", "const double*", "long long", "unsigned long long", "double"
}

// Signature is an entry's parameter list from the source.
type Signature struct {
	Name   string
	Params []Param
}

var globalRE = regexp.MustCompile(`__cudahost_global__\s+void\s+(\w+)\s*\(([^)]*)\)`)

// ScanSource preprocesses kernels/<module>.cu with the host compiler (cxx) against
// kernels/hostexec/cuda_host.h and returns the entries' parameter lists.
func ScanSource(cxx, kernelsDir, module string) ([]Signature, error) {
	src := filepath.Join(kernelsDir, module+".cu")
	header := filepath.Join(kernelsDir, "hostexec", "cuda_host.h")
	cmd := exec.Command(cxx, "-E", "-P", "-x", "c++", "-std=c++17", "-DCUDAHOST_SCAN", "-include", header,
		"-I", kernelsDir, src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("preprocess %s: %v: %s", src, err, stderr.String())
	}
	var sigs []Signature
	for _, m := range globalRE.FindAllStringSubmatch(string(out), -1) {
		s := Signature{Name: m[1]}
		for _, p := range strings.Split(m[2], ",") {
			p = strings.TrimSpace(p)
			if p == "" || p == "void" {
				continue
			}
			param, err := parseParam(p)
			if err != nil {
				return nil, fmt.Errorf("%s: entry %s: %w", src, s.Name, err)
			}
			s.Params = append(s.Params, param)
		}
		sigs = append(sigs, s)
	}
	return sigs, nil
}

var identRE = regexp.MustCompile(`[A-Za-z_]\w*$`)

// parseParam splits "const float *__restrict__ x" into (x, "const float*").
func parseParam(p string) (Param, error) {
	p = strings.ReplaceAll(p, "*", " * ")
	var words []string
	for _, w := range strings.Fields(p) {
		if w == "__restrict__" || w == "__restrict" {
			continue
		}
		words = append(words, w)
	}
	if len(words) < 2 || !identRE.MatchString(words[len(words)-1]) {
		return Param{}, fmt.Errorf("cannot read parameter %q", p)
	}
	name := words[len(words)-1]
	ty := strings.Join(words[:len(words)-1], " ")
	ty = strings.ReplaceAll(ty, " *", "*")
	return Param{Name: name, Type: ty}, nil
}

// Entry is a generated table row: the PTX facts and the source's parameters.
type Entry struct {
	Module string
	PTXEntry
	Sig Signature
}

// SourceHash is the SHA-256 of kernels/<module>.cu and every kernels/*.cuh, in a fixed order. The
// module's generated translation unit records it: the go command rebuilds a cgo package when a
// file in its directory changes, not when a header it includes from elsewhere does, so an edited
// kernel changes the generated file (make ptx) and with it the host build.
func SourceHash(kernelsDir, module string) (string, error) {
	files := []string{filepath.Join(kernelsDir, module+".cu")}
	headers, err := filepath.Glob(filepath.Join(kernelsDir, "*.cuh"))
	if err != nil {
		return "", err
	}
	sort.Strings(headers)
	files = append(files, headers...)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// Hashes returns SourceHash of every module of mods.
func Hashes(kernelsDir string, mods map[string][]Entry) (map[string]string, error) {
	out := map[string]string{}
	for m := range mods {
		h, err := SourceHash(kernelsDir, m)
		if err != nil {
			return nil, err
		}
		out[m] = h
	}
	return out, nil
}

// Collect reads every module of kernelsDir (kernels/<m>.cu with kernels/ptx/<m>.ptx) and joins
// the PTX entries with the source signatures, checking that they agree: the same entries, the same
// number of parameters, and .f64 exactly where the source says double.
func Collect(cxx, kernelsDir string) (map[string][]Entry, error) {
	srcs, err := filepath.Glob(filepath.Join(kernelsDir, "*.cu"))
	if err != nil {
		return nil, err
	}
	out := map[string][]Entry{}
	for _, src := range srcs {
		module := strings.TrimSuffix(filepath.Base(src), ".cu")
		ptx, err := os.ReadFile(filepath.Join(kernelsDir, "ptx", module+".ptx"))
		if err != nil {
			return nil, fmt.Errorf("module %s: %w (run make ptx)", module, err)
		}
		ents, err := ParsePTX(string(ptx))
		if err != nil {
			return nil, fmt.Errorf("ptx/%s.ptx: %w", module, err)
		}
		sigs, err := ScanSource(cxx, kernelsDir, module)
		if err != nil {
			return nil, err
		}
		byName := map[string]Signature{}
		for _, s := range sigs {
			byName[s.Name] = s
		}
		if len(sigs) != len(ents) {
			return nil, fmt.Errorf("module %s: the source defines %d entries, the PTX %d (run make ptx)", module, len(sigs), len(ents))
		}
		for _, e := range ents {
			s, ok := byName[e.Name]
			if !ok {
				return nil, fmt.Errorf("module %s: PTX entry %s is not in the source (run make ptx)", module, e.Name)
			}
			if len(s.Params) != len(e.Params) {
				return nil, fmt.Errorf("module %s: entry %s has %d parameters in the source, %d in the PTX (run make ptx)",
					module, e.Name, len(s.Params), len(e.Params))
			}
			for i, p := range s.Params {
				if (p.Type == "double") != (e.Params[i] == ".f64") {
					return nil, fmt.Errorf("module %s: entry %s parameter %d (%s %s) is %s in the PTX",
						module, e.Name, i, p.Type, p.Name, e.Params[i])
				}
			}
			out[module] = append(out[module], Entry{Module: module, PTXEntry: e, Sig: s})
		}
	}
	return out, nil
}

// Files returns the generated files (paths relative to the repository root) for the entries;
// hashes holds each module's SourceHash.
func Files(mods map[string][]Entry, hashes map[string]string) (map[string][]byte, error) {
	names := make([]string, 0, len(mods))
	for m := range mods {
		names = append(names, m)
	}
	sort.Strings(names)
	files := map[string][]byte{}

	// The Go table.
	var g bytes.Buffer
	g.WriteString("// Code generated by go run ./kernels/hostexec/gen; DO NOT EDIT.\n\npackage kernels\n\n")
	g.WriteString("// entryTable lists every kernel entry of every module, in PTX order: its launch bound and static\n")
	g.WriteString("// shared memory from the PTX, its parameters from the source.\n")
	g.WriteString("var entryTable = []Entry{\n")
	for _, m := range names {
		for _, e := range mods[m] {
			fmt.Fprintf(&g, "{Module: %q, Name: %q, MaxThreads: %d, StaticShared: %d, SyncFree: %v, Params: []Param{", m, e.Name,
				e.MaxThreads, e.StaticShared, e.SyncFree)
			for i, p := range e.Sig.Params {
				if i > 0 {
					g.WriteString(", ")
				}
				fmt.Fprintf(&g, "{%q, %q}", p.Name, p.Type)
			}
			g.WriteString("}},\n")
		}
	}
	g.WriteString("}\n")
	src, err := format.Source(g.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format entries_gen.go: %w", err)
	}
	files["kernels/entries_gen.go"] = src

	// One host translation unit per module, and the registry.
	for _, m := range names {
		var c bytes.Buffer
		c.WriteString("//go:build cudaemu\n\n")
		fmt.Fprintf(&c, "// Code generated by go run ./kernels/hostexec/gen from kernels/%s.cu; DO NOT EDIT.\n", m)
		fmt.Fprintf(&c, "// Source hash (kernels/%s.cu and kernels/*.cuh): %s\n", m, hashes[m])
		fmt.Fprintf(&c, "// The kernels of kernels/%s.cu compiled for the host (cuda_host.h), in a namespace of their own so\n", m)
		c.WriteString("// that the modules' device helpers do not collide, and the module's entry table.\n\n")
		c.WriteString("#include \"cuda_host.h\"\n\n")
		fmt.Fprintf(&c, "namespace cudahost_%s {\n#include \"../%s.cu\"\n}  // namespace cudahost_%s\n\n", m, m, m)
		c.WriteString("namespace cudahost {\n\n")
		fmt.Fprintf(&c, "extern const Entry entries_%s[] = {\n", m)
		for _, e := range mods[m] {
			fmt.Fprintf(&c, "    make_entry(%q, %q, %d, %d, %v, &::cudahost_%s::%s),\n", m, e.Name, e.MaxThreads, e.StaticShared,
				e.SyncFree, m, e.Name)
		}
		c.WriteString("};\n\n}  // namespace cudahost\n")
		files["kernels/hostexec/zz_"+m+".cpp"] = c.Bytes()
	}
	var r bytes.Buffer
	r.WriteString("//go:build cudaemu\n\n")
	r.WriteString("// Code generated by go run ./kernels/hostexec/gen; DO NOT EDIT.\n")
	r.WriteString("// The registry of the host-compiled modules (zz_<module>.cpp) that runtime.cpp looks entries up in.\n\n")
	r.WriteString("#include \"cuda_host.h\"\n\nnamespace cudahost {\n\n")
	for _, m := range names {
		fmt.Fprintf(&r, "extern const Entry entries_%s[];\n", m)
	}
	r.WriteString("\nextern const Entry* const module_entries[] = {\n")
	for _, m := range names {
		fmt.Fprintf(&r, "    entries_%s,\n", m)
	}
	r.WriteString("};\nextern const int module_counts[] = {")
	for i, m := range names {
		if i > 0 {
			r.WriteString(", ")
		}
		fmt.Fprintf(&r, "%d", len(mods[m]))
	}
	fmt.Fprintf(&r, "};\nextern const int module_count = %d;\n\n}  // namespace cudahost\n", len(names))
	files["kernels/hostexec/zz_registry.cpp"] = r.Bytes()
	return files, nil
}

// CXX returns the host C++ compiler: $CXX, or g++.
func CXX() string {
	if c := os.Getenv("CXX"); c != "" {
		return c
	}
	return "g++"
}
