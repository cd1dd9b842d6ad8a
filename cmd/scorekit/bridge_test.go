//go:build !cuda

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

// fit writes the library's bridge for the same data, flags and seed, bit for bit; its statistics
// say what ran; sample moves points forward and backward, with a trajectory whose rows are the
// library's simulation.
func TestBridgeFitAndSampleEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s0 := writePoints(t, dir, "s0.npy", 300, []float64{0, 0}, []float64{1, 0.5})
	s1 := writePoints(t, dir, "s1.npy", 200, []float64{3, 1}, []float64{0.5, 0.5})
	s2 := writePoints(t, dir, "s2.npy", 250, []float64{1, -2}, []float64{1, 1})
	out, stats := filepath.Join(dir, "b.safetensors"), filepath.Join(dir, "fit.json")
	code, stdout, stderr := runCLI("bridge", "fit", "--snapshots", s0+","+s1+","+s2, "--times", "0,1,2.5", "--out", out,
		"--eps", "0.4", "--iterations", "2", "--width", "16", "--depth", "1", "--steps", "30", "--batch", "32",
		"--sim-steps", "5", "--seed", "9", "--init", "minibatch-ot", "--stats", stats)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "iteration 1/2 (forward)")
	assert.Contains(t, stderr, "iteration 2/2 (backward)")
	b, info, err := solvers.LoadBridge(out)
	require.NoError(t, err)
	assert.Equal(t, "2", info["iterations"])
	assert.Equal(t, []float64{0, 1, 2.5}, b.Times())

	var snaps [][]float64
	for _, p := range []string{s0, s1, s2} {
		x, err := tensor.ReadNpy(p)
		require.NoError(t, err)
		v, _ := x.Float64s()
		snaps = append(snaps, v)
	}
	lib, err := train.FitBridge(train.BridgeConfig{Net: train.Config{Width: 16, Depth: 1, BlockLayers: 1, Fourier: 8, LR: 3e-3,
		Batch: 32, Steps: 30, Seed: 9, Schedule: func(s int) float64 { return 1 - float64(s)/30 }},
		Eps: 0.4, Iterations: 2, SimSteps: 5, Init: train.InitMinibatchOT}, []float64{0, 1, 2.5}, snaps, 2)
	require.NoError(t, err)
	for k := 0; k < 2; k++ {
		assert.Equal(t, lib.Forward(k).Packed(), b.Forward(k).Packed(), "forward network %d", k)
		assert.Equal(t, lib.Backward(k).Packed(), b.Backward(k).Packed(), "backward network %d", k)
	}
	var st map[string]any
	raw, err := os.ReadFile(stats)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.EqualValues(t, 2, st["iterations_done"])
	assert.Equal(t, "minibatch-ot", st["init"])
	assert.Equal(t, []any{300.0, 200.0, 250.0}, st["n"])
	per := st["per_iteration"].([]any)
	require.Len(t, per, 2)
	assert.Equal(t, "backward", per[1].(map[string]any)["direction"])
	assert.Len(t, per[1].(map[string]any)["sw"], 2)

	for _, c := range []struct{ from, to string }{{"0", "2.5"}, {"2.5", "0.5"}} {
		y, tr, st2 := filepath.Join(dir, "y"+c.from+".npy"), filepath.Join(dir, "tr"+c.from+".npy"), filepath.Join(dir, "st"+c.from+".json")
		code, _, stderr = runCLI("bridge", "sample", "--model", out, "--from", c.from, "--to", c.to, "--in", s1, "--out", y,
			"--trajectory", tr, "--steps", "4", "--seed", "3", "--stats", st2, "--dtype", "f32")
		require.Equal(t, 0, code, stderr)
		yt, err := tensor.ReadNpy(y)
		require.NoError(t, err)
		assert.Equal(t, []int{200, 2}, yt.Shape())
		assert.Equal(t, tensor.F32, yt.DType())
		trt, err := tensor.ReadNpy(tr)
		require.NoError(t, err)
		var sst map[string]any
		raw, _ := os.ReadFile(st2)
		require.NoError(t, json.Unmarshal(raw, &sst))
		times := sst["times"].([]any)
		assert.Equal(t, []int{len(times), 200, 2}, trt.Shape())

		x1, _ := tensor.ReadNpy(s1)
		v, _ := x1.Float64s()
		x32, _ := tensor.FromFloat64s(tensor.F32, v, 200, 2)
		from, to := map[string]float64{"0": 0, "2.5": 2.5}[c.from], map[string]float64{"2.5": 2.5, "0.5": 0.5}[c.to]
		res, err := lib.Simulate(ops.CPU(), x32, solvers.BridgeSimConfig{From: from, To: to, Steps: 4, Seed: 3})
		require.NoError(t, err)
		want, _ := res.Samples.Float64s()
		got, _ := yt.Float64s()
		assert.Equal(t, want, got, "%s → %s: the command's result is the library's", c.from, c.to)
		res.Close()
	}
}

func TestBridgeRejects(t *testing.T) {
	dir := t.TempDir()
	s0 := writePoints(t, dir, "s0.npy", 20, []float64{0, 0}, []float64{1, 1})
	s1 := writePoints(t, dir, "s1.npy", 20, []float64{1, 1}, []float64{1, 1})
	s3 := writePoints(t, dir, "s3.npy", 20, []float64{0, 0, 0}, []float64{1, 1, 1})
	empty := filepath.Join(dir, "empty.npy")
	et, err := tensor.New(tensor.CPU(), tensor.F64, 0, 2)
	require.NoError(t, err)
	require.NoError(t, tensor.WriteNpy(empty, et))
	out := filepath.Join(dir, "b.safetensors")
	fit := func(extra ...string) []string {
		return append([]string{"bridge", "fit", "--out", out, "--steps", "2", "--iterations", "1", "--width", "4", "--depth", "1"}, extra...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{fit("--snapshots", s0+","+s3, "--times", "0,1"), "s3.npy has points of dimension 3"},
		{fit("--snapshots", s0+","+s1, "--times", "1,0"), "strictly increasing"},
		{fit("--snapshots", s0+","+s1, "--times", "0,0"), "strictly increasing"},
		{fit("--snapshots", s0+","+s1, "--times", "0,1,2"), "names 2 files but --times gives 3"},
		{fit("--snapshots", s0, "--times", "0"), "at least two snapshots"},
		{fit("--snapshots", s0+","+empty, "--times", "0,1"), "empty.npy has shape (0, 2)"},
		{fit("--snapshots", s0+","+s1, "--times", "0,1", "--eps", "0"), "--eps"},
		{fit("--snapshots", s0+","+s1, "--times", "0,1", "--eps", "-1"), "--eps"},
		{fit("--snapshots", s0+","+s1, "--times", "0,nan"), "not a finite number"},
		{fit("--snapshots", s0+","+s1), "--times is required"},
		{fit("--snapshots", s0+","+s1, "--times", "0,1", "--iterations", "0"), "--iterations must be ≥ 1"},
		{fit("--snapshots", s0+","+s1, "--times", "0,1", "--init", "ot"), "--init \"ot\""},
		{fit("--snapshots", s0+","+filepath.Join(dir, "missing.npy"), "--times", "0,1"), "missing.npy"},
		{[]string{"bridge", "nope"}, "unknown subcommand \"nope\""},
	} {
		code, _, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, "%v", c.args)
		_, err := os.Stat(out)
		assert.True(t, os.IsNotExist(err), "%v: nothing written", c.args)
	}

	// a forward-only model (one iteration) and the sample command's checks
	code, _, stderr := runCLI(fit("--snapshots", s0+","+s1, "--times", "0,2", "--quiet")...)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	y := filepath.Join(dir, "y.npy")
	sample := func(extra ...string) []string {
		return append([]string{"bridge", "sample", "--model", out, "--out", y}, extra...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{sample("--from", "2", "--to", "0", "--in", s0), "needs the backward networks"},
		{sample("--from", "0", "--to", "3", "--in", s0), "to = 3: must be a time in [0, 2]"},
		{sample("--from", "-1", "--to", "1", "--in", s0), "from = -1"},
		{sample("--from", "0", "--to", "1", "--in", s3), "s3.npy has shape (20, 3): the bridge needs (N, 2)"},
		{sample("--from", "0", "--to", "1", "--in", s0, "--steps", "0"), "--steps must be ≥ 1"},
		{sample("--to", "1", "--in", s0), "--from is required"},
		{[]string{"bridge", "sample", "--model", s0, "--from", "0", "--to", "1", "--in", s0, "--out", y}, "--model"},
	} {
		code, _, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, "%v", c.args)
		_, err := os.Stat(y)
		assert.True(t, os.IsNotExist(err), "%v: nothing written", c.args)
	}
}
