package kernels

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed ptx/*.ptx
var ptxFS embed.FS

// PTX returns the PTX text of module name, generated from kernels/<name>.cu (e.g. "random").
func PTX(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("kernels: invalid PTX module name %q", name)
	}
	b, err := ptxFS.ReadFile("ptx/" + name + ".ptx")
	if err != nil {
		return "", fmt.Errorf("kernels: no PTX module %q (kernels/ptx/%s.ptx is not embedded; modules: %s)",
			name, name, strings.Join(Modules(), ", "))
	}
	return string(b), nil
}

// Modules returns the names of the embedded PTX modules, sorted.
func Modules() []string {
	matches, err := fs.Glob(ptxFS, "ptx/*.ptx")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(m, "ptx/"), ".ptx"))
	}
	sort.Strings(names)
	return names
}
