package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/solvers"
)

func TestParseShard(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	good := []struct {
		flag string
		env  func(string) string
		want shardSpec
	}{
		{"", env(), shardSpec{}},
		{"0/1", env(), shardSpec{0, 1}},
		{"3/4", env(), shardSpec{3, 4}},
		{"4294967295/4294967296", env(), shardSpec{1<<32 - 1, 1 << 32}},
		{"env", env(envSlurmID, "2", envSlurmCount, "4"), shardSpec{2, 4}},
		{"env", env(envSlurmID, "7", envSlurmMin, "5", envSlurmCount, "4", envSlurmStep, "1"), shardSpec{2, 4}},
		{"env/4", env(envSlurmID, "3"), shardSpec{3, 4}},
		{"env/4", env(envSlurmID, "3", envSlurmCount, "4"), shardSpec{3, 4}},
		{"env/8", env(envK8sIndex, "7"), shardSpec{7, 8}},
	}
	for _, c := range good {
		got, err := parseShard(c.flag, c.env)
		require.NoError(t, err, c.flag)
		assert.Equal(t, c.want, got, c.flag)
	}
	bad := []struct {
		flag string
		env  func(string) string
		want string
	}{
		{"3", env(), "want i/n"},
		{"4/4", env(), "below the count"},
		{"-1/4", env(), "non-negative integer"},
		{"1/0", env(), "[1, 2^32]"},
		{"0/4294967297", env(), "[1, 2^32]"},
		{"a/b", env(), "[1, 2^32]"},
		{"env", env(), "neither SLURM_ARRAY_TASK_ID"},
		{"env/2", env(envSlurmID, "0", envK8sIndex, "0"), "both"},
		{"env", env(envK8sIndex, "1"), "env/n"},
		{"env", env(envSlurmID, "1"), "SLURM_ARRAY_TASK_COUNT is not set"},
		{"env/3", env(envSlurmID, "1", envSlurmCount, "4"), "has SLURM_ARRAY_TASK_COUNT=4 tasks, not 3"},
		{"env", env(envSlurmID, "4", envSlurmCount, "4"), "not below the number of shards 4"},
		{"env", env(envSlurmID, "8", envSlurmCount, "4", envSlurmStep, "4"), "contiguous"},
		{"env", env(envSlurmID, "1", envSlurmMin, "2", envSlurmCount, "4"), "below SLURM_ARRAY_TASK_MIN"},
		{"env", env(envSlurmID, "x", envSlurmCount, "4"), `SLURM_ARRAY_TASK_ID="x"`},
		{"env/4", env(envK8sIndex, "-2"), "JOB_COMPLETION_INDEX"},
	}
	for _, c := range bad {
		_, err := parseShard(c.flag, c.env)
		require.Error(t, err, c.flag)
		assert.Contains(t, err.Error(), c.want, c.flag)
		assert.ErrorAs(t, err, new(usageError), "bad usage: exit 2")
	}
}

// The shards of any split tile the rows: contiguous, in order, sizes within one of each other.
func TestShardRowsTile(t *testing.T) {
	for _, total := range []uint64{1, 2, 7, 10, 1000, 1<<32 - 1, 1 << 32} {
		for _, count := range []uint64{1, 2, 3, 7, 10, 1 << 20, 1 << 32} {
			if count > total {
				continue // refused (setRows)
			}
			prev := uint64(0)
			small, large := total, uint64(0)
			step := max(count/4096, 1) // huge counts: a sample of the shards, and the last
			for i := uint64(0); i < count; i += step {
				lo, hi := shardSpec{i, count}.rows(total)
				if step == 1 {
					require.Equal(t, prev, lo, "shard %d/%d of %d starts where the previous ends", i, count, total)
				}
				require.Less(t, lo, hi, "shard %d/%d of %d is not empty", i, count, total)
				small, large = min(small, hi-lo), max(large, hi-lo)
				prev = hi
			}
			_, last := shardSpec{count - 1, count}.rows(total)
			require.Equal(t, total, last)
			require.LessOrEqual(t, large-small, uint64(1), "%d shards of %d", count, total)
		}
	}
	lo, hi := shardSpec{}.rows(10)
	assert.Equal(t, [2]uint64{0, 10}, [2]uint64{lo, hi}, "no shard: the whole run")
}

// commandBinary returns the path of a `scorekit` script on PATH-less use that runs this test
// binary as the command (TestMain), for subprocesses.
func commandBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "scorekit")
	script := fmt.Sprintf("#!/bin/sh\nSCOREKIT_AS_COMMAND=1 exec %q \"$@\"\n", exe)
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

// runShards runs `args --shard i/n --out <dir>/<name>.i.npy [extra outputs]` for i = 0 … n−1 as
// concurrent processes of the command and returns the shard files of each output flag.
func runShards(t *testing.T, exe, dir, name string, n int, args []string, outputs []string) map[string][]string {
	t.Helper()
	files := map[string][]string{}
	var wg sync.WaitGroup
	errs := make([]error, n)
	logs := make([]bytes.Buffer, n)
	for i := 0; i < n; i++ {
		a := append([]string{}, args...)
		a = append(a, "--shard", fmt.Sprintf("%d/%d", i, n), "--quiet")
		for _, o := range outputs {
			f := filepath.Join(dir, fmt.Sprintf("%s%s.%d.npy", name, o, i))
			a = append(a, o, f)
			files[o] = append(files[o], f)
		}
		cmd := exec.Command(exe, a...)
		cmd.Stdout, cmd.Stderr = &logs[i], &logs[i]
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = cmd.Run()
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "shard %d/%d: %s", i, n, logs[i].String())
	}
	return files
}

// mergeCase is one command line whose shards must merge into its unsplit run, byte for byte.
type mergeCase struct {
	name    string
	args    []string // without --out and the other outputs
	outputs []string // the .npy output flags, --out first
}

func shardCases(t *testing.T, dir string) []mergeCase {
	_, tj := sampleDir(t)
	box := filepath.Join(filepath.Dir(tj), "box.json")
	obj := writeFile(t, dir, "dw.json", doubleWellJSON)
	var cases []mergeCase
	for _, m := range solvers.MethodNames() {
		args := []string{"sample", "--target", tj, "--method", m, "--n", "10", "--steps", "20", "--seed", "5"}
		if m == "metropolis-constrained" {
			args = append(args, "--constraint", box)
		}
		outs := []string{"--out"}
		switch m {
		case "mala", "heun", "rtk-uld", "lim", "metropolis-constrained":
			outs = append(outs, "--trajectory")
		case "gfdm":
			outs = append(outs, "--trajectory", "--augmented-trajectory")
		}
		cases = append(cases, mergeCase{"sample " + m, args, outs})
	}
	// An empirical target (a data file named inside the target file) and f64.
	emp, _ := writeEmpirical(t, dir)
	cases = append(cases, mergeCase{"sample ddim empirical f64", []string{"sample", "--target", emp, "--method", "ddim",
		"--n", "10", "--steps", "8", "--seed", "2", "--dtype", "f64", "--eta", "0.5"}, []string{"--out"}})
	noise := [][]string{
		{"normal", "--n", "10", "--dim", "3"},
		{"uniform", "--n", "10", "--dim", "3", "--dtype", "f64"},
		{"fgn", "--hurst", "0.3", "--length", "64", "--paths", "10"},
		{"fbm", "--hurst", "0.7", "--length", "100", "--paths", "10", "--dtype", "f64"},
		{"fgn", "--hurst", "0.6", "--length", "40", "--paths", "10", "--method", "cholesky"},
		{"fbm", "--hurst", "0.4", "--length", "50", "--paths", "10", "--method", "mafbm", "--k", "3"},
		{"fgn", "--hurst", "0.4", "--length", "50", "--paths", "10", "--method", "mafbm"},
		{"stable", "--alpha", "1.5", "--n", "10", "--dim", "2"},
		{"stable", "--alpha", "1.2", "--beta", "0.5", "--n", "10", "--clamp", "3"},
		{"stable", "--alpha", "1.7", "--n", "10", "--dim", "3", "--isotropic"},
		{"stable", "--alpha", "0.6", "--n", "10", "--positive"},
		{"bridge", "--length", "30", "--paths", "10", "--epoch", "7"},
		{"bridge", "--length", "30", "--paths", "10", "--epoch", "0", "--increments"},
	}
	for _, a := range noise {
		cases = append(cases, mergeCase{"noise " + strings.Join(a, " "), append([]string{"noise"}, append(a, "--seed", "9", "--site", "2")...),
			[]string{"--out"}})
	}
	for _, m := range []string{"davies-harte", "cholesky", "mafbm"} {
		cases = append(cases, mergeCase{"optimize fpgd " + m, []string{"optimize", "fpgd", "--objective", obj, "--hurst", "0.6",
			"--step", "0.05", "--sigma", "1", "--steps", "30", "--n", "10", "--seed", "4", "--method", m, "--thin", "5"},
			[]string{"--out", "--trace"}})
	}
	for _, epoch := range []string{"5", "0"} {
		cases = append(cases, mergeCase{"optimize sgdo epoch " + epoch, []string{"optimize", "sgdo", "--objective", obj,
			"--beta", "0.5", "--step", "0.05", "--sigma", "1", "--steps", "30", "--epoch", epoch, "--n", "10", "--seed", "4",
			"--thin", "3"}, []string{"--out", "--trace"}})
	}
	return cases
}

// Every method, noise kind and optimiser, split into 3 uneven shards (10 = 3 + 3 + 4) run as
// separate processes at once, merges into the unsplit run's files byte for byte.
func TestShardsMergeIntoTheUnsplitRun(t *testing.T) {
	exe := commandBinary(t)
	dir := t.TempDir()
	for _, c := range shardCases(t, dir) {
		t.Run(c.name, func(t *testing.T) {
			cdir := t.TempDir()
			args := append([]string{}, c.args...)
			for _, o := range c.outputs {
				args = append(args, o, filepath.Join(cdir, "full"+o+".npy"))
			}
			code, _, stderr := runCLI(append(args, "--quiet")...)
			require.Equal(t, 0, code, "unsplit run: %s", stderr)
			shards := runShards(t, exe, cdir, "shard", 3, c.args, c.outputs)
			for _, o := range c.outputs {
				merged := filepath.Join(cdir, "merged"+o+".npy")
				// in reverse order: merge sorts the shards
				files := shards[o]
				rev := []string{files[2], files[0], files[1]}
				code, _, stderr := runCLI(append([]string{"merge", "--out", merged, "--quiet"}, rev...)...)
				require.Equal(t, 0, code, "merge %s: %s", o, stderr)
				want, err := os.ReadFile(filepath.Join(cdir, "full"+o+".npy"))
				require.NoError(t, err)
				got, err := os.ReadFile(merged)
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "%s: the merged shards differ from the unsplit run (%d and %d bytes)",
					o, len(got), len(want))
			}
		})
	}
}

// shardedSample runs the 2-D mixture's sampler of method in count shards (in process) and
// returns the shard files of --out and the directory.
func shardedSample(t *testing.T, method string, n, count int, extra ...string) (files []string, dir string) {
	t.Helper()
	dir, tj := sampleDir(t)
	for i := 0; i < count; i++ {
		f := filepath.Join(dir, fmt.Sprintf("x.%d.npy", i))
		args := append([]string{"sample", "--target", tj, "--method", method, "--n", strconv.Itoa(n), "--steps", "20",
			"--seed", "5", "--out", f, "--quiet", "--shard", fmt.Sprintf("%d/%d", i, count)}, extra...)
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, "shard %d: %s", i, stderr)
		files = append(files, f)
	}
	return files, dir
}

// merge --stats combines the shards' statistics into the unsplit run's: counts summed exactly,
// rates and MALA's geometric-mean step size to rounding.
func TestMergeStatsCombineTheShards(t *testing.T) {
	files, dir := shardedSample(t, "mala", 1001, 4)
	st := filepath.Join(dir, "merged.json")
	code, _, stderr := runCLI(append([]string{"merge", "--out", filepath.Join(dir, "m.npy"), "--stats", st}, files...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "merged 4 shards of sample (--out): (1001, 2) f32")
	full := filepath.Join(dir, "full.json")
	code, _, stderr = runCLI("sample", "--target", filepath.Join(dir, "t.json"), "--method", "mala", "--n", "1001",
		"--steps", "20", "--seed", "5", "--out", filepath.Join(dir, "full.npy"), "--stats", full, "--quiet")
	require.Equal(t, 0, code, stderr)
	got, want := readStats(t, st), readStats(t, full)
	for _, k := range []string{"method", "n", "d", "steps", "method_steps", "score_evals", "score_evals_total", "seed", "nan_chains", "device", "dtype"} {
		assert.Equal(t, want[k], got[k], k)
	}
	for _, k := range []string{"acceptance_rate", "step_size"} {
		assert.InEpsilon(t, want[k], got[k], 1e-12, k)
	}
	shards := got["shards"].([]any)
	require.Len(t, shards, 4)
	sum, most := 0.0, 0.0
	for i, s := range shards {
		m := s.(map[string]any)
		assert.Equal(t, fmt.Sprintf("%d/4", i), m["shard"])
		w := m["wall_seconds"].(float64)
		sum, most = sum+w, max(most, w)
	}
	assert.Equal(t, []any{750.0, 1001.0}, shards[3].(map[string]any)["rows"])
	assert.InDelta(t, sum, got["wall_seconds"], 1e-12)
	assert.Equal(t, most, got["wall_seconds_max"])
}

// Counts and rates of metropolis-constrained, lim's clamp count and fpgd's escape summary.
func TestMergeStatsOtherRules(t *testing.T) {
	dir, tj := sampleDir(t)
	type run struct {
		args []string
		keys []string // compared with the unsplit run's statistics: "=key" exactly, "key" to rounding
	}
	obj := writeFile(t, dir, "dw.json", doubleWellJSON)
	for _, r := range []run{
		{[]string{"sample", "--target", tj, "--method", "lim", "--n", "500", "--steps", "10", "--alpha", "1.3", "--eta", "1", "--clamp", "2"},
			[]string{"=clamped", "=score_evals_total"}},
		{[]string{"sample", "--target", tj, "--method", "metropolis-constrained", "--constraint", filepath.Join(dir, "box.json"),
			"--n", "500", "--steps", "10"}, []string{"rejection_rate"}},
		{[]string{"optimize", "fpgd", "--objective", obj, "--hurst", "0.7", "--step", "0.05", "--sigma", "1.1", "--steps", "200",
			"--n", "300"}, []string{"final_value_mean", "=escape.escaped", "escape.fraction", "escape.mean_step"}},
		{[]string{"noise", "stable", "--alpha", "1.1", "--n", "1000", "--dim", "3", "--clamp", "4"}, []string{"=clamped", "=rows"}},
	} {
		t.Run(strings.Join(r.args[:2], " "), func(t *testing.T) {
			d := t.TempDir()
			var files []string
			for i := 0; i < 3; i++ {
				f := filepath.Join(d, fmt.Sprintf("s%d.npy", i))
				code, _, stderr := runCLI(append(append([]string{}, r.args...), "--seed", "3", "--out", f, "--quiet",
					"--shard", fmt.Sprintf("%d/3", i))...)
				require.Equal(t, 0, code, stderr)
				files = append(files, f)
			}
			st := filepath.Join(d, "m.json")
			code, _, stderr := runCLI(append([]string{"merge", "--out", filepath.Join(d, "m.npy"), "--stats", st, "--quiet"}, files...)...)
			require.Equal(t, 0, code, stderr)
			got := readStats(t, st)
			var want map[string]any
			if r.args[0] == "noise" {
				// noise has no --stats: the unsplit run's values come from its own manifest (1 shard)
				f := filepath.Join(d, "one.npy")
				code, _, stderr := runCLI(append(append([]string{}, r.args...), "--seed", "3", "--out", f, "--quiet", "--shard", "0/1")...)
				require.Equal(t, 0, code, stderr)
				var m shardManifest
				b, err := os.ReadFile(manifestPath(f))
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal(b, &m))
				require.NoError(t, json.Unmarshal(m.Stats, &want))
			} else {
				full := filepath.Join(d, "full.json")
				code, _, stderr := runCLI(append(append([]string{}, r.args...), "--seed", "3", "--out", filepath.Join(d, "full.npy"),
					"--stats", full, "--quiet")...)
				require.Equal(t, 0, code, stderr)
				want = readStats(t, full)
			}
			lookup := func(m map[string]any, key string) any {
				if a, b, ok := strings.Cut(key, "."); ok {
					return m[a].(map[string]any)[b]
				}
				return m[key]
			}
			for _, k := range r.keys {
				key, exact := strings.CutPrefix(k, "=")
				w, g := lookup(want, key), lookup(got, key)
				require.NotNil(t, w, key)
				require.NotNil(t, g, key)
				if exact {
					assert.Equal(t, w, g, key)
				} else {
					assert.InEpsilon(t, w, g, 1e-12, key)
				}
			}
			if r.args[1] == "fpgd" {
				esc := got["escape"].(map[string]any)
				assert.NotContains(t, esc, "median_step", "a median does not combine")
				assert.Greater(t, esc["escaped"], 0.0, "the check needs escapes")
			}
			if r.args[1] == "stable" {
				assert.Greater(t, got["clamped"], 0.0, "the check needs clipped values")
			}
		})
	}
}

// Bad merges are refused with one line and exit 2, and nothing is written: an existing --out
// keeps its content.
func TestMergeRefuses(t *testing.T) {
	files, dir := shardedSample(t, "ula", 20, 3)
	other, _ := shardedSample(t, "ula", 20, 3, "--dtype", "f64") // another configuration
	four, _ := shardedSample(t, "ula", 20, 4)                    // another shard count
	traj, _ := func() ([]string, string) {                       // the trajectory of the first run
		d, tj := sampleDir(t)
		var fs []string
		for i := 0; i < 3; i++ {
			f := filepath.Join(d, fmt.Sprintf("tr.%d.npy", i))
			code, _, stderr := runCLI("sample", "--target", tj, "--method", "ula", "--n", "20", "--steps", "20", "--seed", "5",
				"--out", filepath.Join(d, fmt.Sprintf("x.%d.npy", i)), "--trajectory", f, "--quiet", "--shard", fmt.Sprintf("%d/3", i))
			require.Equal(t, 0, code, stderr)
			fs = append(fs, f)
		}
		return fs, d
	}()
	noManifest := filepath.Join(dir, "plain.npy")
	code, _, stderr := runCLI("noise", "normal", "--n", "7", "--out", noManifest, "--quiet")
	require.Equal(t, 0, code, stderr)
	tampered := filepath.Join(t.TempDir(), "x.1.npy")
	b, err := os.ReadFile(files[1])
	require.NoError(t, err)
	mb, err := os.ReadFile(manifestPath(files[1]))
	require.NoError(t, err)
	tb := append([]byte{}, b...)
	tb[len(tb)-1] ^= 1
	require.NoError(t, os.WriteFile(tampered, tb, 0o644))
	require.NoError(t, os.WriteFile(manifestPath(tampered), mb, 0o644))
	dup := filepath.Join(t.TempDir(), "x.1.npy") // a copy of shard 1
	require.NoError(t, os.WriteFile(dup, b, 0o644))
	require.NoError(t, os.WriteFile(manifestPath(dup), mb, 0o644))
	badManifest := filepath.Join(t.TempDir(), "x.1.npy")
	require.NoError(t, os.WriteFile(badManifest, b, 0o644))
	require.NoError(t, os.WriteFile(manifestPath(badManifest), []byte(`{"format": 1, "extra": true}`), 0o644))

	out := filepath.Join(dir, "merged.npy")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no files", nil, "no shard files"},
		{"missing shard", []string{files[0], files[2]}, "1 of 3 shards are missing: 1/3 (rows 6…12)"},
		{"duplicate shard", []string{files[0], files[1], dup, files[2]}, "shard 1/3 is given twice"},
		{"same file twice", []string{files[0], files[1], files[1], files[2]}, "is given twice"},
		{"other configuration", []string{files[0], other[1], files[2]}, "configuration --dtype=f32 and --dtype=f64"},
		{"other count", []string{files[0], four[1], files[2]}, "shard count 3 and 4"},
		{"other output", []string{files[0], traj[1], files[2]}, "output --out and --trajectory"},
		{"no manifest", []string{files[0], noManifest, files[2]}, "has no manifest"},
		{"missing file", []string{files[0], filepath.Join(dir, "nope.npy"), files[2]}, "nope.npy"},
		{"tampered", []string{files[0], tampered, files[2]}, "is not the file its manifest describes"},
		{"bad manifest", []string{files[0], badManifest, files[2]}, "is not a shard manifest"},
		{"out is a shard", []string{"--out", files[0], files[0], files[1], files[2]}, "is one of the shard files"},
		{"flag after files", []string{files[0], files[1], files[2], "--stats", "s.json"}, "flags go before them"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(out, []byte("keep"), 0o644))
			args := []string{"merge"}
			if len(c.args) == 0 || c.args[0] != "--out" {
				args = append(args, "--out", out)
			}
			code, _, stderr := runCLI(append(args, c.args...)...)
			assert.Equal(t, 2, code)
			requireOneLine(t, stderr, c.want)
			kept, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, "keep", string(kept), "the existing output is untouched")
			left, _ := filepath.Glob(filepath.Join(dir, ".merged.npy.tmp-*"))
			assert.Empty(t, left, "no temporary file is left")
		})
	}
	// The same shards, complete: merged.
	code, _, stderr = runCLI(append([]string{"merge", "--out", out, "--quiet"}, files...)...)
	require.Equal(t, 0, code, stderr)
}

// --shard errors: exit 2, one line, nothing written.
func TestShardBadInput(t *testing.T) {
	dir, tj := sampleDir(t)
	out := filepath.Join(dir, "x.npy")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sample", "--target", tj, "--method", "ula", "--n", "3", "--steps", "5", "--shard", "0/4"}, "4 shards of 3 chains leave some shards empty"},
		{[]string{"sample", "--target", tj, "--method", "ula", "--n", "30", "--steps", "5", "--shard", "4/4"}, "below the count"},
		{[]string{"noise", "normal", "--n", "10", "--shard", "1-4"}, "want i/n"},
		{[]string{"noise", "fgn", "--hurst", "0.5", "--length", "8", "--paths", "2", "--shard", "0/3"}, "3 shards of 2 rows"},
		{[]string{"optimize", "sgdo", "--objective", writeFile(t, dir, "dw.json", doubleWellJSON), "--beta", "0.5", "--step", "0.1",
			"--sigma", "1", "--steps", "5", "--epoch", "2", "--n", "4", "--shard", "env"}, "neither SLURM_ARRAY_TASK_ID"},
		{[]string{"sample", "--target", tj, "--method", "ula", "--n", "30", "--steps", "5", "--shard", "0/2", "--stats",
			filepath.Join(dir, "x.manifest.json")}, "--stats and the manifest of --out name the same file"},
	} {
		t.Run(strings.Join(c.args[:2], " ")+" "+c.want, func(t *testing.T) {
			if c.args[len(c.args)-1] == "env" {
				t.Setenv(envSlurmID, "")
				t.Setenv(envK8sIndex, "")
			}
			code, _, stderr := runCLI(append(append([]string{}, c.args...), "--out", out)...)
			assert.Equal(t, 2, code)
			requireOneLine(t, stderr, c.want)
			_, err := os.Stat(out)
			assert.True(t, os.IsNotExist(err), "nothing written")
		})
	}
}

// --shard env reads the index of a Slurm array task or a Kubernetes Indexed Job's pod.
func TestShardFromEnvironment(t *testing.T) {
	exe := commandBinary(t)
	dir := t.TempDir()
	base := []string{"noise", "normal", "--n", "11", "--dim", "2", "--seed", "8", "--quiet"}
	full := filepath.Join(dir, "full.npy")
	code, _, stderr := runCLI(append(append([]string{}, base...), "--out", full)...)
	require.Equal(t, 0, code, stderr)
	want, err := os.ReadFile(full)
	require.NoError(t, err)
	for _, c := range []struct {
		name, flag string
		env        func(i int) []string
	}{
		{"slurm", "env", func(i int) []string {
			return []string{envSlurmID + "=" + strconv.Itoa(i+1), envSlurmMin + "=1", envSlurmCount + "=3", envSlurmStep + "=1"}
		}},
		{"kubernetes", "env/3", func(i int) []string { return []string{envK8sIndex + "=" + strconv.Itoa(i)} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var files []string
			for i := 0; i < 3; i++ {
				f := filepath.Join(dir, fmt.Sprintf("%s.%d.npy", c.name, i))
				cmd := exec.Command(exe, append(append([]string{}, base...), "--shard", c.flag, "--out", f)...)
				cmd.Env = append(os.Environ(), c.env(i)...)
				outb, err := cmd.CombinedOutput()
				require.NoError(t, err, string(outb))
				files = append(files, f)
			}
			merged := filepath.Join(dir, c.name+".npy")
			code, _, stderr := runCLI(append([]string{"merge", "--out", merged, "--quiet"}, files...)...)
			require.Equal(t, 0, code, stderr)
			got, err := os.ReadFile(merged)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got))
		})
	}
}

// A changed input file (the target's data) makes another configuration.
func TestShardConfigurationHashesInputs(t *testing.T) {
	dir := t.TempDir()
	emp, _ := writeEmpirical(t, dir)
	run := func(i int) string {
		f := filepath.Join(dir, fmt.Sprintf("x.%d.npy", i))
		code, _, stderr := runCLI("sample", "--target", emp, "--method", "ddim", "--n", "6", "--steps", "4", "--out", f,
			"--quiet", "--shard", fmt.Sprintf("%d/2", i))
		require.Equal(t, 0, code, stderr)
		return f
	}
	a := run(0)
	// rewrite the data file (one point moved) and run the second shard
	pts := filepath.Join(dir, "pts.npy")
	b, err := os.ReadFile(pts)
	require.NoError(t, err)
	b[len(b)-1] ^= 0x40
	require.NoError(t, os.WriteFile(pts, b, 0o644))
	c := run(1)
	code, _, stderr := runCLI("merge", "--out", filepath.Join(dir, "m.npy"), a, c)
	assert.Equal(t, 2, code)
	requireOneLine(t, stderr, "configuration --target=sha256:")
}

// Any number of shards, from 1 to N (one chain each), merges into the unsplit run.
func TestShardsAnyCount(t *testing.T) {
	dir := t.TempDir()
	_, tj := sampleDir(t)
	for _, base := range [][]string{
		{"sample", "--target", tj, "--method", "edm-sde", "--n", "10", "--steps", "9", "--seed", "3"},
		{"noise", "fbm", "--hurst", "0.35", "--length", "33", "--paths", "10", "--seed", "3"},
	} {
		full := filepath.Join(dir, "full.npy")
		code, _, stderr := runCLI(append(append([]string{}, base...), "--out", full, "--quiet")...)
		require.Equal(t, 0, code, stderr)
		want, err := os.ReadFile(full)
		require.NoError(t, err)
		for _, n := range []int{1, 2, 4, 7, 10} {
			var files []string
			for i := 0; i < n; i++ {
				f := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.npy", base[0], n, i))
				code, _, stderr := runCLI(append(append([]string{}, base...), "--out", f, "--quiet", "--shard", fmt.Sprintf("%d/%d", i, n))...)
				require.Equal(t, 0, code, stderr)
				files = append(files, f)
			}
			merged := filepath.Join(dir, fmt.Sprintf("%s-%d.npy", base[0], n))
			code, _, stderr := runCLI(append([]string{"merge", "--out", merged, "--quiet"}, files...)...)
			require.Equal(t, 0, code, stderr)
			got, err := os.ReadFile(merged)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "%s in %d shards", base[0], n)
		}
	}
}
