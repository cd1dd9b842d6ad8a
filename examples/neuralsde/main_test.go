package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The program runs end to end with -quick and writes its three files.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, run(dir, true, io.Discard))
	md, err := os.ReadFile(filepath.Join(dir, "neuralsde.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "neuralsde.png"))
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)
	csv, err := os.ReadFile(filepath.Join(dir, "neuralsde.csv"))
	require.NoError(t, err)
	text := string(md)
	for _, want := range []string{"Quick run", "| 0.6 (held out) |", "## Reading", "diffusion s"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "NaN")
	assert.Len(t, strings.Split(strings.TrimSpace(string(csv)), "\n"), 1+quick.Iterations)
}

// The squared MMD and its gradient: zero for identical samples, positive otherwise, and the
// gradient equals central differences.
func TestMMD(t *testing.T) {
	a, b := []float64{0.1, -0.4, 1.2}, []float64{0.3, 0.9}
	v, g := mmd2(a, a)
	assert.InDelta(t, 0, v, 1e-15)
	for _, gi := range g {
		assert.InDelta(t, 0, gi, 1e-15)
	}
	v, g = mmd2(a, b)
	assert.Greater(t, v, 0.0)
	for i := range a {
		ap, am := append([]float64(nil), a...), append([]float64(nil), a...)
		ap[i] += 1e-6
		am[i] -= 1e-6
		vp, _ := mmd2(ap, b)
		vm, _ := mmd2(am, b)
		fd := (vp - vm) / 2e-6
		assert.InDelta(t, fd, g[i], 1e-8*(1+math.Abs(fd)), "d/da[%d]", i)
	}
}
