// Command gen writes the kernel entry tables derived from kernels/*.cu and kernels/ptx/*.ptx:
// kernels/entries_gen.go and, for the host execution of kernels, kernels/hostexec/zz_*.cpp (see
// package kernels/internal/entrygen). Run it from the repository root after `make ptx` (which
// runs it): go run ./kernels/hostexec/gen.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scorekit/scorekit/kernels/internal/entrygen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	mods, err := entrygen.Collect(entrygen.CXX(), "kernels")
	if err != nil {
		return err
	}
	hashes, err := entrygen.Hashes("kernels", mods)
	if err != nil {
		return err
	}
	files, err := entrygen.Files(mods, hashes)
	if err != nil {
		return err
	}
	// Remove generated module files of modules that no longer exist.
	old, _ := filepath.Glob("kernels/hostexec/zz_*.cpp")
	for _, f := range old {
		if _, ok := files[f]; !ok {
			if err := os.Remove(f); err != nil {
				return err
			}
			fmt.Println("removed", f)
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, files[p]) {
			continue
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, files[p], 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
		fmt.Println("wrote", strings.TrimPrefix(p, "./"))
	}
	return nil
}
