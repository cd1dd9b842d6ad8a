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

// The command and the core packages do not link gorgonia.org/tensor (whose dependencies, Apache
// Arrow and protobuf, are most of a binary's size): only tensor/dense and training do.
func TestCoreDoesNotLinkGorgonia(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/scorekit/scorekit/cmd/scorekit",
		"github.com/scorekit/scorekit/solvers", "github.com/scorekit/scorekit/ops").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"gorgonia.org/tensor", "github.com/apache/arrow", "gorgonia.org/gorgonia"} {
			assert.False(t, strings.HasPrefix(dep, banned), "the command links %s", dep)
		}
	}
}
