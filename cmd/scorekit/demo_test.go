package main

import (
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, stdout, stderr := runCLI("demo", "--dir", dir, "--n", "400", "--steps", "40")
	require.Equal(t, 0, code, "stdout %s\nstderr %s", stdout, stderr)
	if tensor.CUDABuild {
		assert.Contains(t, stderr, "scorekit: device cuda:0")
	} else {
		assert.Equal(t, "scorekit: device cpu\n", stderr)
	}
	// The floor row: mean ± standard deviation of SW2 and of the mode-weight error over the pairs.
	floor := regexp.MustCompile(`(?m)^\s*exact\s+cpu\s+-\s+-\s+([0-9.]+) ± ([0-9.]+)\s+([0-9.]+) ± ([0-9.]+)\s+-\s+\(8 pairs\)\s*$`).
		FindStringSubmatch(stdout)
	require.NotNil(t, floor, "the floor row in\n%s", stdout)
	floorMode, err := strconv.ParseFloat(floor[3], 64)
	require.NoError(t, err)
	floorModeSD, err := strconv.ParseFloat(floor[4], 64)
	require.NoError(t, err)
	// One table row per method: name, device, budget, wall, SW2, mode-weight error, acceptance,
	// and whether it is within the floor.
	errs := map[string]float64{}
	for _, m := range demoMethods {
		re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(m) + `\s+\S+\s+(\S+)\s+(\S+)\s+([0-9.]+)\s+([0-9.]+)\s+\S+\s+(≈ floor|above)\s*$`)
		row := re.FindStringSubmatch(stdout)
		require.NotNil(t, row, "row %s in\n%s", m, stdout)
		x, err := tensor.ReadNpy(filepath.Join(dir, "samples-"+m+".npy"))
		require.NoError(t, err)
		assert.Equal(t, []int{400, 2}, x.Shape(), m)
		assert.Equal(t, tensor.F32, x.DType(), "%s: every sample file is float32", m)
		if m != "exact" {
			// The budget is 40; heun and edm-sde take 20 steps of 2 evaluations but the last.
			want := "40"
			if m == "heun" || m == "edm-sde" {
				want = "39"
			}
			assert.Equal(t, want, row[1], "%s: score evaluations per chain", m)
		}
		e, err := strconv.ParseFloat(row[4], 64)
		require.NoError(t, err)
		errs[m] = e
		sw, err := strconv.ParseFloat(row[3], 64)
		require.NoError(t, err)
		if row[5] == "≈ floor" { // the mark follows the rule the demo states
			assert.LessOrEqual(t, e, floorMode+2*floorModeSD, m)
			assert.NotZero(t, sw)
		}
	}
	assert.Regexp(t, `(?m)^\s*mala\s.*above\s*$`, stdout, "MALA from N(0, I) misses the far modes")
	// The comparison must show what it is about: the diffusion-based samplers put the mode weights
	// right, the local sampler started from N(0, I) does not. At 400 chains the mode-weight error
	// of exact samples has mean ≈ 0.04 and standard deviation ≈ 0.015: 0.1 is 4 of them above.
	for _, m := range []string{"ddpm", "heun", "dpmpp-2m", "edm-sde", "rf-lowdim", "rtk-mala"} {
		assert.Less(t, errs[m], 0.1, m)
	}
	assert.Greater(t, errs["mala"], 0.2)
	f, err := os.Open(filepath.Join(dir, "demo.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	// Nine sample panels and the mode-weight panel, three to a row: four rows.
	assert.InDelta(t, 3.0/4, float64(img.Bounds().Dx())/float64(img.Bounds().Dy()), 0.01)
}

func TestDemoBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--n", "0"}, "--n"},
		{[]string{"--steps", "3"}, "--steps"},
		{[]string{"--dir", ""}, "--dir"},
	} {
		code, stdout, stderr := runCLI(append([]string{"demo", "--dir", filepath.Join(dir, "d")}, c.args...)...)
		assert.Equal(t, 2, code, "%v", c.args)
		assert.Empty(t, stdout)
		requireOneLine(t, stderr, "scorekit demo:", c.want)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")
}
