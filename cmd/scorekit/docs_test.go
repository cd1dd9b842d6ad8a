package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/solvers"
)

// The README names every method of the registry (the list `scorekit sample --help` prints from it).
func TestReadmeNamesEveryMethod(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	for _, m := range solvers.MethodNames() {
		assert.True(t, strings.Contains(readme, "`"+m+"`"), "README.md does not name the method `%s`", m)
	}
}

// The core packages do not link gorgonia.org/tensor or gorgonia (whose dependencies, Apache Arrow
// and protobuf, are most of a binary's size): only tensor/dense and package train do, so a program
// that samples (targets, checkpoints, solvers) does not. The command links train for its train
// subcommand, and nothing else of gorgonia's: without train its dependencies are the core's.
func TestCoreDoesNotLinkGorgonia(t *testing.T) {
	core := []string{"github.com/scorekit/scorekit/solvers", "github.com/scorekit/scorekit/ops",
		"github.com/scorekit/scorekit/ops/target", "github.com/scorekit/scorekit/nn"}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, core...)...).Output()
	require.NoError(t, err)
	banned := []string{"gorgonia.org/tensor", "github.com/apache/arrow", "gorgonia.org/gorgonia"}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			assert.False(t, strings.HasPrefix(dep, b), "a core package links %s", dep)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "github.com/scorekit/scorekit/cmd/scorekit").Output()
	require.NoError(t, err)
	for _, imp := range strings.Fields(string(out)) {
		for _, b := range banned {
			assert.False(t, strings.HasPrefix(imp, b), "the command imports %s itself (only package train may)", imp)
		}
	}
}
