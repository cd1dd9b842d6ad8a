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

// The program runs end to end with -quick and writes its three files: a table per metric with a
// row per width, the reading, and a CSV line per (width, seed, forward iteration).
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, run(dir, true, io.Discard))
	md, err := os.ReadFile(filepath.Join(dir, "bridge-gauss.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "bridge-gauss.png"))
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)
	csv, err := os.ReadFile(filepath.Join(dir, "bridge-gauss.csv"))
	require.NoError(t, err)
	text := string(md)
	for _, want := range []string{"Quick run", "## KL at τ = 0.5 (held out)", "## ‖C₀₁ − exact‖_F", "## Reading", "| 8 |"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "NaN ±")
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	assert.Len(t, lines, 1+1*2*2, "a header and one line per width, seed and forward iteration (1, 3)")
}
