//go:build !cuda

package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/nn"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

// writePoints writes n points of N(m, diag(s²)) in dimension len(m) to dir/name.
func writePoints(t *testing.T, dir, name string, n int, m, s []float64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	d := len(m)
	x := make([]float64, n*d)
	for i := range x {
		x[i] = m[i%d] + s[i%d]*rng.NormFloat64()
	}
	xt, err := tensor.FromF64(x, n, d)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, tensor.WriteNpy(path, xt))
	return path
}

// train writes a checkpoint that is the library's training of the same data, flags and seed, bit
// for bit, with the data's mean and covariance; its statistics say what ran; the checkpoint is a
// target that sample runs on; the loss went down.
func TestTrainEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := writePoints(t, dir, "d.npy", 500, []float64{1, -2}, []float64{0.5, 1.5})
	out, stats := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "s.json")
	code, stdout, stderr := runCLI("train", "--data", data, "--width", "16", "--depth", "2", "--blocks", "2",
		"--steps", "60", "--batch", "64", "--seed", "5", "--lr", "0.01", "--out", out, "--stats", stats)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "60 steps")
	m, meta, err := nn.Load(out)
	require.NoError(t, err)
	assert.Equal(t, ops.MLPConfig{Dim: 2, Width: 16, Depth: 2, BlockLayers: 2, Fourier: 8, SigmaData: m.Config().SigmaData,
		BranchMult: 1 / math.Sqrt(2), OutMult: 64.0 / 16}, m.Config())
	assert.Equal(t, "depth-mup", meta.Info["parametrization"])
	assert.Equal(t, "60", meta.Info["steps"])
	require.Len(t, meta.Cov, 4)
	assert.InDelta(t, 0.25, meta.Cov[0], 0.05)
	assert.InDelta(t, 2.25, meta.Cov[3], 0.4)

	x, err := tensor.ReadNpy(data)
	require.NoError(t, err)
	xv, _ := x.Float64s()
	src, err := train.FromFlat(xv, 2)
	require.NoError(t, err)
	tr, err := train.New(train.Config{Width: 16, Depth: 2, BlockLayers: 2, Fourier: 8, Param: train.DepthMuP, LR: 0.01,
		Batch: 64, Steps: 60, Seed: 5, Schedule: func(s int) float64 { return 1 - float64(s)/60 }}, src)
	require.NoError(t, err)
	defer tr.Close()
	require.NoError(t, tr.Run())
	assert.Equal(t, tr.Model().Packed(), m.Packed(), "the command's checkpoint is the library's training")

	var st map[string]any
	raw, err := os.ReadFile(stats)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.EqualValues(t, 500, st["n"])
	assert.EqualValues(t, 60, st["steps"])
	loss := st["loss"].([]any)
	require.Len(t, loss, 10)
	assert.Less(t, loss[9].(float64), loss[0].(float64), "the loss goes down")
	assert.NotContains(t, st, "diverged_at_step")

	tj := writeFile(t, dir, "m.json", `{"kind": "mlp", "model": "m.safetensors"}`)
	samples := filepath.Join(dir, "x.npy")
	code, _, stderr = runCLI("sample", "--target", tj, "--method", "dpmpp-2m", "--n", "200", "--steps", "16", "--seed", "1",
		"--dtype", "f64", "--out", samples, "--quiet")
	require.Equal(t, 0, code, stderr)
	shape, _, v := readNpy(t, samples)
	assert.Equal(t, []int{200, 2}, shape)
	for _, s := range v {
		require.False(t, math.IsNaN(s) || math.IsInf(s, 0))
	}
	code, _, stderr = runCLI("sample", "--target", tj, "--method", "mala", "--n", "10", "--steps", "16", "--out", samples)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "needs a target with a density at t = 0")
}

// A run whose loss turns non-finite stops, writes the last network whose loss was finite, says
// so and exits with status 1; its statistics name the step.
func TestTrainDiverges(t *testing.T) {
	dir := t.TempDir()
	data := writePoints(t, dir, "d.npy", 200, []float64{0, 3}, []float64{1, 0.1})
	out, stats := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "s.json")
	code, _, stderr := runCLI("train", "--data", data, "--width", "8", "--depth", "2", "--steps", "50",
		"--lr", "1e60", "--schedule", "constant", "--out", out, "--stats", stats, "--quiet")
	require.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "training diverged at step")
	assert.Contains(t, stderr, "wrote the last network whose loss was finite")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
	m, _, err := nn.Load(out)
	require.NoError(t, err, "the last good network is there")
	for _, v := range m.Packed() {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
	raw, err := os.ReadFile(stats)
	require.NoError(t, err)
	var st map[string]any
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.Greater(t, st["diverged_at_step"].(float64), 1.0)
}

// Bad input: exit status 2, one line naming the flag or the value, nothing written, an existing
// output kept.
func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	data := writePoints(t, dir, "d.npy", 50, []float64{0, 1}, []float64{1, 1})
	nanT, err := tensor.FromF64([]float64{0, 1, math.NaN(), 2}, 2, 2)
	require.NoError(t, err)
	nanPath := filepath.Join(dir, "nan.npy")
	require.NoError(t, tensor.WriteNpy(nanPath, nanT))
	vec, err := tensor.FromF64([]float64{0, 1, 2}, 3)
	require.NoError(t, err)
	vecPath := filepath.Join(dir, "vec.npy")
	require.NoError(t, tensor.WriteNpy(vecPath, vec))
	out := filepath.Join(dir, "m.safetensors")
	require.NoError(t, os.WriteFile(out, []byte("keep me"), 0o644))
	base := []string{"train", "--data", data, "--width", "8", "--depth", "2", "--steps", "5", "--out", out}
	with := func(kv ...string) []string {
		args := append([]string(nil), base...)
		for i := 0; i < len(kv); i += 2 {
			found := false
			for j := 1; j < len(args); j += 2 {
				if args[j] == kv[i] {
					args[j+1], found = kv[i+1], true
				}
			}
			if !found {
				args = append(args, kv[i], kv[i+1])
			}
		}
		return args
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--width", "8", "--depth", "2", "--steps", "5", "--out", out}, "--data is required"},
		{[]string{"train", "--data", data, "--depth", "2", "--steps", "5", "--out", out}, "--width is required"},
		{with("--width", "0"), "--width must be in 1 … 256 (got 0)"},
		{with("--width", "300"), "--width must be in 1 … 256 (got 300)"},
		{with("--depth", "17"), "--depth must be in 1 … 16 (got 17)"},
		{with("--steps", "0"), "--steps must be ≥ 1 (got 0)"},
		{with("--blocks", "3"), "--blocks must be 1 or 2 (got 3)"},
		{with("--lr", "0"), "--lr must be a finite number > 0 (got 0)"},
		{with("--lr", "-1"), "--lr must be a finite number > 0 (got -1)"},
		{with("--lr", "NaN"), "--lr must be a finite number > 0 (got NaN)"},
		{with("--batch", "0"), "--batch must be ≥ 1 (got 0)"},
		{with("--param", "mup"), `--param "mup": want standard, depth-mup or depth-mup-corrected`},
		{with("--schedule", "cosine"), `--schedule "cosine": want linear or constant`},
		{with("--data", nanPath), "must be finite"},
		{with("--data", vecPath), "has shape (3,): want (N, d)"},
		{with("--data", filepath.Join(dir, "none.npy")), "--data:"},
		{with("--stats", out), "name the same file"},
	} {
		code, stdout, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, c.want, "%v", c.args)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
		kept, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, "keep me", string(kept))
	}
}
