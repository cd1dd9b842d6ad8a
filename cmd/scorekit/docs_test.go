package main

import (
	"os"
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
