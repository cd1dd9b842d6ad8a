package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/nn"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// An mlp target reads its checkpoint (relative to the JSON file), evaluates through the
// backend's MLPScore — the same numbers as the network itself — and carries the stored
// covariance.
func TestMLPTarget(t *testing.T) {
	dir := t.TempDir()
	cfg := ops.MLPConfig{Dim: 2, Width: 8, Depth: 2, BlockLayers: 2, Fourier: 3, SigmaData: 0.8, BranchMult: 0.7, OutMult: 1}
	m, err := ops.RandomMLP(cfg, 3)
	require.NoError(t, err)
	cov := []float64{1, 0.2, 0.2, 0.5}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "models"), 0o755))
	require.NoError(t, nn.Save(filepath.Join(dir, "models", "m.safetensors"), m, nn.Meta{Cov: cov}))
	path := writeJSON(t, dir, "t.json", `{"kind": "mlp", "model": "models/m.safetensors"}`)
	tg, err := Load(path)
	require.NoError(t, err)
	mt, ok := tg.(MLP)
	require.True(t, ok, "%T", tg)
	assert.Equal(t, KindMLP, tg.Kind())
	assert.Equal(t, 2, tg.Dim())
	assert.Equal(t, cov, mt.Cov)
	assert.Equal(t, filepath.Join(dir, "models", "m.safetensors"), mt.File)
	assert.Equal(t, m.Packed(), mt.Net.Packed())
	assert.Contains(t, tg.String(), "mlp (d = 2, width 8, depth 2")

	x, err := tensor.FromF64([]float64{0.5, -1, 2, 0.25}, 2, 2)
	require.NoError(t, err)
	den := mustNew(t, tensor.F64, 2, 2)
	require.NoError(t, tg.Evaluate(ops.CPU(), ops.ScoreOutputs{Denoiser: den}, x, ops.AtSigma(0.3)))
	got, _ := den.F64()
	for r := 0; r < 2; r++ {
		want := make([]float64, 2)
		m.DenoiseRow(want, []float64{0.5, -1, 2, 0.25}[2*r:2*r+2], 0.3)
		assert.Equal(t, want, got[2*r:2*r+2])
	}
	lp := mustNew(t, tensor.F64, 2)
	assert.ErrorContains(t, tg.Check(tensor.CPU(), ops.ScoreOutputs{LogP: lp}, x, ops.AtSigma(1)), "no log-density")
	assert.ErrorContains(t, tg.Evaluate(ops.CPU(), ops.ScoreOutputs{Denoiser: den}, x, ops.NoNoise), "no noise-free score")
}

func TestMLPTargetErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.safetensors"), []byte("not a checkpoint"), 0o644))
	for _, c := range []struct{ name, json, want string }{
		{"model missing", `{"kind": "mlp"}`, "mlp: model: missing (want the path of a .safetensors checkpoint)"},
		{"model empty", `{"kind": "mlp", "model": ""}`, "mlp: model: empty path"},
		{"model not a string", `{"kind": "mlp", "model": 3}`, "mlp: model: want a string"},
		{"unknown field", `{"kind": "mlp", "model": "m.safetensors", "width": 3}`, `mlp: unknown field "width" (an mlp target has kind, model)`},
		{"no such file", `{"kind": "mlp", "model": "none.safetensors"}`, `mlp: model "none.safetensors": cannot read ` + filepath.Join(dir, "none.safetensors") + ": no such file or directory"},
		{"not a checkpoint", `{"kind": "mlp", "model": "junk.safetensors"}`, `mlp: model "junk.safetensors": nn: load`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeJSON(t, dir, "t.json", c.json)
			_, err := Load(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.False(t, strings.Contains(err.Error(), "\n"), "one line: %q", err)
		})
	}
}
