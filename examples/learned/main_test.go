//go:build !cuda

package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/nn"
)

// The program runs end to end with -quick and writes the figure, the table and the checkpoint,
// which loads back.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	require.NoError(t, run(dir, model, true, io.Discard))
	md, err := os.ReadFile(filepath.Join(dir, "learned-samples.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "learned.png"))
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)
	for _, m := range methods {
		assert.Contains(t, string(md), "| "+m+" |")
	}
	assert.NotContains(t, string(md), "NaN")
	_, meta, err := nn.Load(model)
	require.NoError(t, err)
	assert.Len(t, meta.Cov, 4)
}

// The data set is two moons: every point lies near one of the two arcs.
func TestMoons(t *testing.T) {
	x := moons(1000, 1)
	for i := 0; i < 1000; i++ {
		a, b := x[2*i], x[2*i+1]
		upper := (a*a + b*b - 1)
		lower := ((a-1)*(a-1) + (b-0.5)*(b-0.5) - 1)
		near := min(upper*upper, lower*lower)
		assert.Less(t, near, 0.25, "point %d = (%g, %g)", i, a, b)
	}
}
