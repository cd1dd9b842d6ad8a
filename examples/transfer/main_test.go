//go:build !cuda

package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The program runs end to end with -quick (seconds) and writes its three files; every run of the
// quick sweep trains (its excess moves off the starting network's) and is finite.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, run(dir, true, io.Discard))
	md, err := os.ReadFile(filepath.Join(dir, "transfer.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "transfer.png"))
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)
	csv, err := os.ReadFile(filepath.Join(dir, "transfer.csv"))
	require.NoError(t, err)
	text := string(md)
	for _, want := range []string{"Quick run", "## Best learning rate per depth", "## Excess against learning rate",
		"## Feature updates of two-layer blocks", "## Reading", "depth-μP corrected"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "NaN")
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	assert.Len(t, lines, 1+5*2*2*2, "a header and one line per run")
}
