package kernels

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/scorekit/scorekit/kernels/internal/entrygen"
)

// The entry table agrees with the embedded PTX: the same entries per module, the same number of
// parameters, double exactly where the PTX has .f64 (every other parameter a 64-bit integer or
// pointer), the launch bound and the static shared memory.
func TestEntryTableMatchesPTX(t *testing.T) {
	seen := map[string]bool{}
	for _, mod := range Modules() {
		ptx, err := PTX(mod)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := entrygen.ParsePTX(ptx)
		if err != nil {
			t.Fatalf("ptx/%s.ptx: %v", mod, err)
		}
		for _, pe := range ents {
			seen[mod+"/"+pe.Name] = true
			e, ok := LookupEntry(mod, pe.Name)
			if !ok {
				t.Errorf("%s: PTX entry %s is not in the entry table (run make ptx)", mod, pe.Name)
				continue
			}
			if len(e.Params) != len(pe.Params) {
				t.Errorf("%s: the table gives %d parameters, the PTX %d (run make ptx)", pe.Name, len(e.Params), len(pe.Params))
				continue
			}
			for i, p := range e.Params {
				if (p.Type == "double") != (pe.Params[i] == ".f64") {
					t.Errorf("%s parameter %d (%s %s) is %s in the PTX", pe.Name, i, p.Type, p.Name, pe.Params[i])
				}
			}
			if e.SyncFree != pe.SyncFree {
				t.Errorf("%s: table says sync-free %v, the PTX %v (run make ptx)", pe.Name, e.SyncFree, pe.SyncFree)
			}
			if e.MaxThreads != pe.MaxThreads || e.StaticShared != pe.StaticShared {
				t.Errorf("%s: table says %d threads and %d bytes of shared memory, the PTX %d and %d (run make ptx)",
					pe.Name, e.MaxThreads, e.StaticShared, pe.MaxThreads, pe.StaticShared)
			}
		}
	}
	for _, e := range Entries() {
		if !seen[e.Module+"/"+e.Name] {
			t.Errorf("the entry table lists %s/%s, which no PTX module has (run make ptx)", e.Module, e.Name)
		}
		for _, p := range e.Params {
			switch {
			case p.Pointer(), p.Type == "double", p.Type == "long long", p.Type == "unsigned long long":
			default:
				t.Errorf("%s parameter %s has type %q: kernel parameters are pointers, long long, unsigned long long or double",
					e.Name, p.Name, p.Type)
			}
		}
	}
}

// The generated files (entries_gen.go and the host build's hostexec/zz_*.cpp) are what the
// generator writes from the current sources and PTX. It needs the host C++ compiler (any machine
// that builds the host execution of kernels has it).
func TestGeneratedEntryFilesUpToDate(t *testing.T) {
	cxx := entrygen.CXX()
	if _, err := exec.LookPath(cxx); err != nil {
		t.Skipf("no host C++ compiler (%s) to preprocess the kernel sources: %v", cxx, err)
	}
	mods, err := entrygen.Collect(cxx, ".")
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := entrygen.Hashes(".", mods)
	if err != nil {
		t.Fatal(err)
	}
	files, err := entrygen.Files(mods, hashes)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		rel, err := filepath.Rel("kernels", path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(rel)
		if err != nil {
			t.Errorf("%s: %v (run go run ./kernels/hostexec/gen from the repository root)", path, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale (a kernel source changed since it was generated: the host build would run the old kernel): "+
				"run make ptx", path)
		}
	}
	old, _ := filepath.Glob("hostexec/zz_*.cpp")
	for _, f := range old {
		if _, ok := files[filepath.Join("kernels", f)]; !ok {
			t.Errorf("kernels/%s was generated for a module that no longer exists: delete it", f)
		}
	}
}
