package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const doubleWellJSON = `{"kind": "double-well", "dim": 2, "barrier": 0.5}`

func TestOptimizeFPGDMatchesTheSolver(t *testing.T) {
	dir := t.TempDir()
	obj := writeFile(t, dir, "dw.json", doubleWellJSON)
	const n, steps, thin = 200, 300, 3
	out, tr, st, pl := filepath.Join(dir, "x.npy"), filepath.Join(dir, "tr.npy"), filepath.Join(dir, "s.json"), filepath.Join(dir, "p.png")
	code, stdout, stderr := runCLI("optimize", "fpgd", "--objective", obj, "--hurst", "0.7", "--step", "0.05",
		"--sigma", "1.1", "--steps", strconv.Itoa(steps), "--n", strconv.Itoa(n), "--seed", "12", "--device", "cpu",
		"--out", out, "--trace", tr, "--thin", strconv.Itoa(thin), "--stats", st, "--plot", pl)
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "wrote "+out)

	// The same run through the library: x0 = −e1 (the default for a double well), f32.
	w, err := solvers.NewDoubleWell(2, 0.5)
	require.NoError(t, err)
	x0 := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		x0 = append(x0, -1, 0)
	}
	xt, err := tensor.FromFloat64s(tensor.F32, x0, n, 2)
	require.NoError(t, err)
	res, err := solvers.FPGD(ops.CPU(), w, xt, solvers.FPGDConfig{Hurst: 0.7, StepSize: 0.05, Sigma: 1.1,
		Steps: steps, Seed: 12, Thin: thin, Escape: &solvers.EscapeSpec{Threshold: 0.5}})
	require.NoError(t, err)
	defer res.Close()
	want, err := res.Final.Float64s()
	require.NoError(t, err)
	shape, dt, got := readNpy(t, out)
	assert.Equal(t, []int{n, 2}, shape)
	assert.Equal(t, tensor.F32, dt)
	assert.Equal(t, want, got)
	wantTrace, err := res.Trace.Float64s()
	require.NoError(t, err)
	shape, _, gotTrace := readNpy(t, tr)
	assert.Equal(t, []int{steps/thin + 1, n, 2}, shape)
	assert.Equal(t, wantTrace, gotTrace)
	requirePNG(t, pl)

	stats := readStats(t, st)
	frac, mean, med := res.EscapeStats()
	require.Greater(t, frac, 0.0, "the run should see escapes for the check below to mean something")
	for k, v := range map[string]any{"method": "fpgd", "noise": "davies-harte", "device": "cpu", "dtype": "f32",
		"n": float64(n), "d": 2.0, "steps": float64(steps), "hurst": 0.7, "step": 0.05, "sigma": 1.1, "seed": 12.0,
		"grad_evals": float64(steps), "nan_chains": 0.0} {
		assert.Equal(t, v, stats[k], k)
	}
	esc, ok := stats["escape"].(map[string]any)
	require.True(t, ok, "stats %v", stats)
	assert.Equal(t, 0.5, esc["threshold"])
	assert.Equal(t, false, esc["below"])
	assert.InDelta(t, frac, esc["fraction"], 1e-15)
	assert.InDelta(t, mean, esc["mean_step"], 1e-12)
	assert.InDelta(t, med, esc["median_step"], 1e-12)
	assert.InDelta(t, frac*n, esc["escaped"], 1e-9)
	mv := 0.0
	for i := 0; i < n; i++ {
		mv += w.Value(got[2*i:2*i+2]) / n
	}
	assert.InDelta(t, mv, stats["final_value_mean"], 1e-9)
	assert.NotContains(t, stats, "noise_rel_error_sq")
}

func TestOptimizeFPGDWithoutNoiseIsGradientDescent(t *testing.T) {
	// σ = 0 on a quadratic: x_K − c = (1 − h a)^K (x0 − c) per coordinate, for any H and method.
	dir := t.TempDir()
	obj := writeFile(t, dir, "q.json", `{"kind": "quadratic", "curvatures": [1, 4], "center": [2, -1]}`)
	out := filepath.Join(dir, "x.npy")
	code, _, stderr := runCLI("optimize", "fpgd", "--objective", obj, "--hurst", "0.3", "--step", "0.1",
		"--sigma", "0", "--steps", "25", "--n", "3", "--x0", "0, 3", "--dtype", "f64", "--device", "cpu", "--quiet", "--out", out)
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Empty(t, stderr)
	shape, dt, got := readNpy(t, out)
	assert.Equal(t, []int{3, 2}, shape)
	assert.Equal(t, tensor.F64, dt)
	for i := 0; i < 3; i++ {
		assert.InDelta(t, 2+math.Pow(0.9, 25)*(0-2), got[2*i], 1e-12)
		assert.InDelta(t, -1+math.Pow(0.6, 25)*(3+1), got[2*i+1], 1e-12)
	}
}

func TestOptimizeFPGDObjectivesAndMethods(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, json string
		d          int
		extra      []string
		escape     bool
	}{
		{"rastrigin", `{"kind": "rastrigin", "dim": 3, "a": 5}`, 3, nil, false},
		{"rastrigin-escape", `{"kind": "rastrigin", "dim": 1}`, 1, []string{"--escape", "0.5", "--plot", filepath.Join(dir, "r.png")}, true},
		{"quadratic-a", `{"kind": "quadratic", "dim": 4, "a": 2}`, 4, []string{"--method", "cholesky"}, false},
		{"double-well-mafbm", `{"kind": "double-well", "dim": 1}`, 1, []string{"--method", "mafbm", "--k", "4", "--x0", "1"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := writeFile(t, dir, c.name+".json", c.json)
			out, st := filepath.Join(dir, c.name+".npy"), filepath.Join(dir, c.name+".stats.json")
			args := append([]string{"optimize", "fpgd", "--objective", obj, "--hurst", "0.6", "--step", "0.01",
				"--sigma", "0.5", "--steps", "50", "--n", "20", "--device", "cpu", "--quiet", "--out", out, "--stats", st}, c.extra...)
			code, _, stderr := runCLI(args...)
			require.Equal(t, 0, code, "stderr %q", stderr)
			shape, _, _ := readNpy(t, out)
			assert.Equal(t, []int{20, c.d}, shape)
			stats := readStats(t, st)
			assert.Equal(t, float64(c.d), stats["d"])
			if c.escape {
				require.Contains(t, stats, "escape")
			} else {
				assert.NotContains(t, stats, "escape")
			}
			if c.name == "double-well-mafbm" {
				// Started in the right well: the threshold is −½, crossed downwards.
				esc := stats["escape"].(map[string]any)
				assert.Equal(t, -0.5, esc["threshold"])
				assert.Equal(t, true, esc["below"])
				assert.Contains(t, stats, "noise_rel_error_sq")
			}
		})
	}
}

func TestParseObjective(t *testing.T) {
	good := []struct {
		json string
		want solvers.Objective
	}{
		{`{"kind": "double-well", "dim": 3}`, solvers.DoubleWell{D: 3, Barrier: 1}},
		{`{"kind": "double-well", "dim": 2, "barrier": 2.5}`, solvers.DoubleWell{D: 2, Barrier: 2.5}},
		{`{"kind": "rastrigin", "dim": 2}`, solvers.Rastrigin{D: 2, A: 10}},
		{`{"kind": "rastrigin", "dim": 1, "a": 3}`, solvers.Rastrigin{D: 1, A: 3}},
		{`{"kind": "quadratic", "dim": 2}`, solvers.Quadratic{Curvatures: []float64{1, 1}, Center: []float64{0, 0}}},
		{`{"kind": "quadratic", "dim": 2, "a": 0.5, "center": [1, 2]}`, solvers.Quadratic{Curvatures: []float64{0.5, 0.5}, Center: []float64{1, 2}}},
		{`{"kind": "quadratic", "curvatures": [1, 0, 3]}`, solvers.Quadratic{Curvatures: []float64{1, 0, 3}, Center: []float64{0, 0, 0}}},
	}
	for _, c := range good {
		f, err := parseObjective([]byte(c.json))
		require.NoError(t, err, c.json)
		assert.Equal(t, c.want, f, c.json)
	}
	bad := []struct{ json, want string }{
		{`[1, 2]`, "not a JSON object"},
		{`{"dim": 2}`, `"kind" is missing`},
		{`{"kind": 3, "dim": 2}`, `"kind" must be a string`},
		{`{"kind": "himmelblau", "dim": 2}`, `unknown kind "himmelblau"`},
		{`{"kind": "double-well", "dim": 2, "barier": 1}`, `unknown field "barier"`},
		{`{"kind": "double-well", "dim": 2, "a": 1}`, `unknown field "a" for kind "double-well"`},
		{`{"kind": "rastrigin", "dim": 2, "barrier": 1}`, `unknown field "barrier" for kind "rastrigin"`},
		{`{"kind": "double-well"}`, `"dim" is missing`},
		{`{"kind": "rastrigin", "dim": 0}`, `"dim" must be ≥ 1 (got 0)`},
		{`{"kind": "double-well", "dim": "two"}`, `"dim"`},
		{`{"kind": "double-well", "dim": 2, "barrier": -1}`, `"barrier" must be a finite number > 0 (got -1)`},
		{`{"kind": "rastrigin", "dim": 2, "a": -1}`, `"a" must be a finite number ≥ 0 (got -1)`},
		{`{"kind": "quadratic"}`, `"dim" is missing`},
		{`{"kind": "quadratic", "curvatures": [1, -2]}`, `"curvatures"[1] must be a finite number ≥ 0 (got -2)`},
		{`{"kind": "quadratic", "dim": 2, "a": -1}`, `"a" must be a finite number ≥ 0`},
		{`{"kind": "quadratic", "curvatures": [1, 2], "a": 1}`, `not both`},
		{`{"kind": "quadratic", "dim": 3, "curvatures": [1, 2]}`, `"dim" 3 does not match the 2 "curvatures"`},
		{`{"kind": "quadratic", "dim": 2, "center": [1]}`, `"center" has 1 coordinates, the dimension is 2`},
		{`{"kind": "quadratic", "dim": 2} {"kind": "x"}`, `not a JSON object`},
	}
	for _, c := range bad {
		_, err := parseObjective([]byte(c.json))
		assert.ErrorContains(t, err, c.want, c.json)
	}
}

func TestOptimizeBadInput(t *testing.T) {
	dir := t.TempDir()
	inputs := t.TempDir()
	obj := writeFile(t, inputs, "dw.json", doubleWellJSON)
	badObj := writeFile(t, inputs, "bad.json", `{"kind": "double-well", "dim": 2, "barier": 1}`)
	out := filepath.Join(dir, "x.npy")
	base := func(edit map[string]string, drop ...string) []string {
		flags := [][2]string{{"--objective", obj}, {"--hurst", "0.6"}, {"--step", "0.1"}, {"--sigma", "1"},
			{"--steps", "10"}, {"--n", "4"}, {"--out", out}}
		var args []string
		for _, f := range flags {
			if contains(drop, f[0]) {
				continue
			}
			v := f[1]
			if e, ok := edit[f[0]]; ok {
				v = e
				delete(edit, f[0])
			}
			args = append(args, f[0], v)
		}
		for k, v := range edit {
			args = append(args, k, v)
		}
		return args
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing objective", base(nil, "--objective"), []string{"--objective is required"}},
		{"objective file missing", base(map[string]string{"--objective": filepath.Join(inputs, "none.json")}), []string{"--objective", "none.json"}},
		{"objective unknown field", base(map[string]string{"--objective": badObj}), []string{"bad.json", `unknown field "barier"`}},
		{"missing hurst", base(nil, "--hurst"), []string{"--hurst is required"}},
		{"hurst 0", base(map[string]string{"--hurst": "0"}), []string{"--hurst must be in (0, 1) (got 0)"}},
		{"hurst 1", base(map[string]string{"--hurst": "1"}), []string{"--hurst must be in (0, 1) (got 1)"}},
		{"missing step", base(nil, "--step"), []string{"--step is required"}},
		{"step 0", base(map[string]string{"--step": "0"}), []string{"--step must be a finite number > 0 (got 0)"}},
		{"missing sigma", base(nil, "--sigma"), []string{"--sigma is required"}},
		{"sigma negative", base(map[string]string{"--sigma": "-1"}), []string{"--sigma must be a finite number ≥ 0 (got -1)"}},
		{"steps 0", base(map[string]string{"--steps": "0"}), []string{"--steps must be ≥ 1 (got 0)"}},
		{"n 0", base(map[string]string{"--n": "0"}), []string{"--n must be in [1, 2^32] (got 0)"}},
		{"x0 wrong length", base(map[string]string{"--x0": "1,2,3"}), []string{"--x0 has 3 coordinates", "dimension 2"}},
		{"x0 not a number", base(map[string]string{"--x0": "1,b"}), []string{"--x0: coordinate 2 \"b\""}},
		{"unknown method", base(map[string]string{"--method": "hosking"}), []string{"--method must be davies-harte, cholesky or mafbm"}},
		{"cholesky too long", base(map[string]string{"--method": "cholesky", "--steps": "5000"}), []string{"at most 4096 steps"}},
		{"k without mafbm", base(map[string]string{"--k": "3"}), []string{"--k applies to --method mafbm"}},
		{"gamma max 0.5", base(map[string]string{"--method": "mafbm", "--gamma-max": "0.5"}), []string{"--gamma-max must be a finite number > 1"}},
		{"thin without trace", base(map[string]string{"--thin": "2"}), []string{"--thin applies to --trace"}},
		{"thin beyond steps", base(map[string]string{"--thin": "20", "--trace": filepath.Join(dir, "t.npy")}), []string{"--thin must be in [1, --steps 10] (got 20)"}},
		{"trace is out", base(map[string]string{"--trace": out}), []string{"--out and --trace name the same file"}},
		{"stats dir missing", base(map[string]string{"--stats": filepath.Join(dir, "no", "s.json")}), []string{"--stats", "does not exist"}},
		{"escape NaN", base(map[string]string{"--escape": "NaN"}), []string{"--escape must be a finite number"}},
		{"bad dtype", base(map[string]string{"--dtype": "f16"}), []string{"--dtype", "f16"}},
		{"missing out", base(nil, "--out"), []string{"--out is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(append([]string{"optimize", "fpgd"}, c.args...)...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, append(c.want, "scorekit optimize fpgd: ")...)
			assert.Empty(t, dirListing(t, dir)[1:], "a failed run wrote something")
		})
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"optimize"}, "which method? want fpgd or sgdo"},
		{[]string{"optimize", "sgd"}, `unknown method "sgd" (available: fpgd, sgdo)`},
	} {
		code, _, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code)
		requireOneLine(t, stderr, "scorekit optimize: ", c.want)
	}
}

func TestOptimizeFailureLeavesExistingOutputUntouched(t *testing.T) {
	dir := t.TempDir()
	obj := writeFile(t, dir, "dw.json", doubleWellJSON)
	old := []byte("not overwritten")
	paths := map[string]string{}
	for _, name := range []string{"x.npy", "tr.npy", "s.json", "p.png"} {
		paths[name] = filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(paths[name], old, 0o644))
	}
	for _, bad := range [][]string{{"--hurst", "1.5"}, {"--x0", "1"}, {"--sigma", "-2"}} {
		args := []string{"optimize", "fpgd", "--objective", obj, "--hurst", "0.6", "--step", "0.1", "--sigma", "1",
			"--steps", "10", "--n", "4", "--out", paths["x.npy"], "--trace", paths["tr.npy"], "--stats", paths["s.json"],
			"--plot", paths["p.png"]}
		code, _, _ := runCLI(append(args, bad...)...)
		assert.Equal(t, 2, code, "%v", bad)
		for name, p := range paths {
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, old, got, "%s after %v", name, bad)
		}
	}
	assert.Len(t, dirListing(t, dir), 6) // ".", dw.json and the four outputs
}

func TestOptimizeHelp(t *testing.T) {
	for _, args := range [][]string{{"optimize", "--help"}, {"optimize", "fpgd", "-h"}, {"help", "optimize"}} {
		code, stdout, stderr := runCLI(args...)
		require.Equal(t, 0, code, "%v", args)
		assert.Empty(t, stderr)
		for _, want := range []string{"Usage: scorekit optimize fpgd", "ΔB^H_n", "h^{2H}", "double-well", "σ = √v · h^{−H}"} {
			assert.Contains(t, stdout, want, "%v", args)
		}
	}
	_, stdout, _ := runCLI("--help")
	assert.Contains(t, stdout, "optimize")
}

func TestOptimizeSGDOMatchesTheSolver(t *testing.T) {
	dir := t.TempDir()
	obj := writeFile(t, dir, "q.json", `{"kind": "quadratic", "curvatures": [1, 2], "center": [0.5, -0.5]}`)
	const n, steps, thin = 50, 200, 10
	for _, epoch := range []string{"0.5", "0"} {
		out, tr, st, pl := filepath.Join(dir, "x.npy"), filepath.Join(dir, "tr.npy"), filepath.Join(dir, "s.json"), filepath.Join(dir, "p.png")
		code, stdout, stderr := runCLI("optimize", "sgdo", "--objective", obj, "--beta", "0.6", "--step", "0.01",
			"--sigma", "0.8", "--steps", strconv.Itoa(steps), "--epoch", epoch, "--n", strconv.Itoa(n), "--x0", "2,1",
			"--seed", "7", "--dtype", "f64", "--device", "cpu", "--out", out, "--trace", tr, "--thin", strconv.Itoa(thin),
			"--stats", st, "--plot", pl)
		require.Equal(t, 0, code, "stderr %q", stderr)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "wrote "+out)

		q, err := solvers.NewQuadratic([]float64{1, 2}, []float64{0.5, -0.5})
		require.NoError(t, err)
		x0 := make([]float64, 0, 2*n)
		for i := 0; i < n; i++ {
			x0 = append(x0, 2, 1)
		}
		xt, err := tensor.FromFloat64s(tensor.F64, x0, n, 2)
		require.NoError(t, err)
		tau, err := strconv.ParseFloat(epoch, 64)
		require.NoError(t, err)
		res, err := solvers.SGDWOR(ops.CPU(), q, xt, solvers.SGDWORConfig{Beta: 0.6, StepSize: 0.01, Sigma: 0.8,
			Steps: steps, Epoch: tau, Seed: 7, Thin: thin})
		require.NoError(t, err)
		want, err := res.Final.Float64s()
		require.NoError(t, err)
		wantTrace, err := res.Trace.Float64s()
		require.NoError(t, err)
		res.Close()
		shape, dt, got := readNpy(t, out)
		assert.Equal(t, []int{n, 2}, shape)
		assert.Equal(t, tensor.F64, dt)
		assert.Equal(t, want, got)
		shape, _, gotTrace := readNpy(t, tr)
		assert.Equal(t, []int{steps/thin + 1, n, 2}, shape)
		assert.Equal(t, wantTrace, gotTrace)
		requirePNG(t, pl)
		noise := map[string]string{"0.5": "epoched", "0": "brownian"}[epoch]
		stats := readStats(t, st)
		for k, v := range map[string]any{"method": "sgdo", "noise": noise, "device": "cpu", "dtype": "f64",
			"n": float64(n), "d": 2.0, "steps": float64(steps), "beta": 0.6, "step": 0.01, "sigma": 0.8, "epoch": tau,
			"seed": 7.0, "grad_evals": float64(steps), "nan_chains": 0.0} {
			assert.Equal(t, v, stats[k], "%s (epoch %s)", k, epoch)
		}
		for _, p := range []string{out, tr, st, pl} {
			require.NoError(t, os.Remove(p))
		}
	}
}

func TestOptimizeSGDOBadInput(t *testing.T) {
	dir := t.TempDir()
	inputs := t.TempDir()
	obj := writeFile(t, inputs, "dw.json", doubleWellJSON)
	out := filepath.Join(dir, "x.npy")
	good := map[string]string{"--objective": obj, "--beta": "0.5", "--step": "0.1", "--sigma": "1", "--steps": "10",
		"--epoch": "0.5", "--n": "4", "--out": out}
	args := func(edit map[string]string, drop string) []string {
		var a []string
		for _, k := range []string{"--objective", "--beta", "--step", "--sigma", "--steps", "--epoch", "--n", "--out"} {
			if k == drop {
				continue
			}
			v := good[k]
			if e, ok := edit[k]; ok {
				v = e
			}
			a = append(a, k, v)
		}
		for k, v := range edit {
			if _, ok := good[k]; !ok {
				a = append(a, k, v)
			}
		}
		return a
	}
	cases := []struct {
		name string
		edit map[string]string
		drop string
		want []string
	}{
		{"missing beta", nil, "--beta", []string{"--beta is required"}},
		{"missing epoch", nil, "--epoch", []string{"--epoch is required", "0 for plain Brownian noise"}},
		{"beta 1", map[string]string{"--beta": "1"}, "", []string{"--beta must be in (0, 1) (got 1)"}},
		{"beta 0", map[string]string{"--beta": "0"}, "", []string{"--beta must be in (0, 1) (got 0)"}},
		{"step 0", map[string]string{"--step": "0"}, "", []string{"--step must be a finite number > 0 (got 0)"}},
		{"sigma negative", map[string]string{"--sigma": "-1"}, "", []string{"--sigma must be a finite number ≥ 0 (got -1)"}},
		{"epoch not a multiple", map[string]string{"--epoch": "0.25"}, "", []string{"--epoch: ", "not a multiple of the step h = 0.1"}},
		{"epoch below h", map[string]string{"--epoch": "0.05"}, "", []string{"--epoch: ", "shorter than the step h = 0.1"}},
		{"x0 wrong length", map[string]string{"--x0": "1"}, "", []string{"--x0 has 1 coordinates", "dimension 2"}},
		{"thin without trace", map[string]string{"--thin": "2"}, "", []string{"--thin applies to --trace"}},
		{"missing out", nil, "--out", []string{"--out is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(append([]string{"optimize", "sgdo"}, args(c.edit, c.drop)...)...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, append(c.want, "scorekit optimize sgdo: ")...)
			assert.Empty(t, dirListing(t, dir)[1:], "a failed run wrote something")
		})
	}
	code, stdout, _ := runCLI("optimize", "sgdo", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "Usage: scorekit optimize sgdo")
	assert.Contains(t, stdout, "u_t = (1 + t)^{−β}")
}
