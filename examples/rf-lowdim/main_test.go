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

// The program runs end to end with -quick (a few seconds), writes both files, and a report
// written again from the saved results is the same; every metric of the quick sweep is finite
// where it applies, and the references pass their own checks.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	save := filepath.Join(dir, "results.gob")
	require.NoError(t, run(dir, true, save, "", io.Discard))
	md, err := os.ReadFile(filepath.Join(dir, "rf-lowdim.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "rf-lowdim.png"))
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)
	text := string(md)
	for _, want := range []string{"Quick run", "docs/math.md §5.3", "## The grids", "## Off-subspace", "## In-subspace error", "## Tube", "## Checks of the references", "## Reading"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "ALGORITHMS")
	assert.NotContains(t, text, "NaN")

	again := filepath.Join(dir, "again")
	require.NoError(t, os.Mkdir(again, 0o755))
	require.NoError(t, run(again, false, "", save, io.Discard))
	md2, err := os.ReadFile(filepath.Join(again, "rf-lowdim.md"))
	require.NoError(t, err)
	assert.Equal(t, text, string(md2))
}

// The quick sweep's numbers obey what the study relies on: the in-subspace coordinates do not
// depend on d; the sampler on Gaussian data is the closed-form Euler map; the RK4 reference at
// 128 steps agrees with the closed-form flow map to 10⁻⁴; exact samples give a variance ratio within
// 4 standard errors of 1; the uniform grid (1 − t_{K−1} = 1/K ≫ ε) shrinks the off-subspace
// spread (a ratio below 10⁻², ≈ (ε K)²), and the U-shaped grid with δ ≪ ε does not.
func TestQuickSweepProperties(t *testing.T) {
	s := &study{Set: quick}
	for _, ds := range dataSets() {
		require.NoError(t, s.runData(ds, io.Discard))
	}
	for _, rc := range s.Refs {
		assert.Less(t, rc.DecoupleMaxAbs, 1e-9, "%s: in-subspace coordinates depend on d", rc.Data)
		if rc.Data == "gaussian" {
			assert.Less(t, rc.ClosedInEuler, 1e-10, "sampler vs closed-form Euler map")
			assert.Less(t, rc.ClosedMax, 1e-4, "RK4 (128 steps) vs closed-form flow map")
		}
	}
	for _, f := range s.Floors {
		if f.Data == "flat" {
			continue
		}
		se := math.Sqrt(2 / float64(f.N*(f.D-k)))
		assert.InDelta(t, 1, f.M.VarRatio, 4*se, "%s d=%d: exact samples", f.Data, f.D)
	}
	for _, p := range s.Points {
		if p.Data == "flat" {
			continue
		}
		switch p.Grid {
		case uniform.Name:
			assert.Less(t, p.M.VarRatio, 1e-2, "%s d=%d K=%d uniform", p.Data, p.D, p.Steps)
		case uSmall.Name:
			assert.Greater(t, p.M.VarRatio, 0.2, "%s d=%d K=%d U-shaped", p.Data, p.D, p.Steps)
		}
	}
	assert.False(t, strings.Contains(s.reading(quick.Steps[len(quick.Steps)-1], quick.Dims[len(quick.Dims)-1]), "NaN"))
}
