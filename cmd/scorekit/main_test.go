package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// runCLI runs the command line and returns its exit status, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// requireOneLine checks that stderr holds exactly one line containing every one of want.
func requireOneLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	require.True(t, strings.HasSuffix(stderr, "\n"), "stderr %q", stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "stderr %q", stderr)
	for _, w := range want {
		assert.Contains(t, stderr, w)
	}
}

// reference draws kind with the CPU backend.
func reference(t *testing.T, kind string, dt tensor.DType, n, dim int, d ops.Draw) []float64 {
	t.Helper()
	x, err := tensor.New(nil, dt, n, dim)
	require.NoError(t, err)
	if kind == "normal" {
		require.NoError(t, ops.CPU().Normal(x, d))
	} else {
		require.NoError(t, ops.CPU().Uniform(x, d))
	}
	v, err := x.Float64s()
	require.NoError(t, err)
	return v
}

func TestNoiseWritesTheBackendsDraw(t *testing.T) {
	cases := []struct {
		kind   string
		dtype  string
		dt     tensor.DType
		n, dim int
	}{
		{"normal", "f32", tensor.F32, 37, 3},
		{"normal", "f64", tensor.F64, 5, 1},
		{"uniform", "f32", tensor.F32, 1000, 5},
		{"uniform", "f64", tensor.F64, 33, 2},
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.dtype, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.npy")
			code, stdout, stderr := runCLI("noise", c.kind, "--n", strconv.Itoa(c.n), "--dim", strconv.Itoa(c.dim),
				"--seed", "18446744073709551615", "--site", "7", "--dtype", c.dtype, "--device", "cpu", "--out", out)
			require.Equal(t, 0, code, "stderr %q", stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, "scorekit: device cpu\n")
			assert.Contains(t, stderr, "wrote "+out)

			x, err := tensor.ReadNpy(out)
			require.NoError(t, err)
			assert.Equal(t, c.dt, x.DType())
			assert.Equal(t, []int{c.n, c.dim}, x.Shape())
			got, err := x.Float64s()
			require.NoError(t, err)
			want := reference(t, c.kind, c.dt, c.n, c.dim, ops.Draw{Seed: math.MaxUint64, Site: 7})
			assert.Equal(t, want, got)
			if c.kind == "uniform" {
				for i, v := range got {
					require.True(t, v >= 0 && v < 1, "element %d = %v", i, v)
				}
			}
		})
	}
}

func TestNoiseDefaultsAndQuiet(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.npy")
	code, stdout, stderr := runCLI("noise", "normal", "--n", "4", "--quiet", "--out", out)
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Empty(t, stdout)
	assert.Empty(t, stderr)
	x, err := tensor.ReadNpy(out)
	require.NoError(t, err)
	assert.Equal(t, tensor.F32, x.DType())
	assert.Equal(t, []int{4, 1}, x.Shape())
	got, err := x.Float64s()
	require.NoError(t, err)
	assertSameDraw(t, reference(t, "normal", tensor.F32, 4, 1, ops.Draw{}), got)
}

// assertSameDraw checks a draw of the default device (--device auto) against the CPU reference:
// exactly, in the CPU build and on a GPU alike (the kernels' normals are the reference's bits).
func assertSameDraw(t *testing.T, want, got []float64) {
	t.Helper()
	assert.Equal(t, want, got)
}

func TestNoiseBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.npy")
	cases := []struct {
		name string
		args []string
		want []string // substrings of the one stderr line
	}{
		{"missing n", []string{"--out", out}, []string{"--n is required"}},
		{"n zero", []string{"--n", "0", "--out", out}, []string{"--n must be ≥ 1 (got 0)"}},
		{"n negative", []string{"--n", "-3", "--out", out}, []string{"--n must be ≥ 1 (got -3)"}},
		{"n not a number", []string{"--n", "ten", "--out", out}, []string{"-n", "ten"}},
		{"n beyond 2^32 chains", []string{"--n", "4294967297", "--out", out}, []string{"--n must be ≤ 2^32"}},
		{"dim zero", []string{"--n", "3", "--dim", "0", "--out", out}, []string{"--dim must be ≥ 1 (got 0)"}},
		{"more than 2^40 elements", []string{"--n", "4294967296", "--dim", "1000", "--out", out},
			[]string{"--n 4294967296 × --dim 1000", "2^40"}},
		{"bad dtype", []string{"--n", "3", "--dtype", "f16", "--out", out}, []string{"--dtype", "f16"}},
		{"bad device", []string{"--n", "3", "--device", "gpu", "--out", out}, []string{"--device", "gpu"}},
		{"negative seed", []string{"--n", "3", "--seed", "-1", "--out", out}, []string{"-seed", "-1"}},
		{"seed too large", []string{"--n", "3", "--seed", "18446744073709551616", "--out", out}, []string{"-seed"}},
		{"bad site", []string{"--n", "3", "--site", "x", "--out", out}, []string{"-site"}},
		{"missing out", []string{"--n", "3"}, []string{"--out is required"}},
		{"out dir missing", []string{"--n", "3", "--out", filepath.Join(dir, "no", "x.npy")}, []string{"--out", "does not exist"}},
		{"out is a directory", []string{"--n", "3", "--out", dir}, []string{"--out", "is a directory"}},
		{"unknown flag", []string{"--n", "3", "--bogus", "--out", out}, []string{"bogus"}},
		{"stray argument", []string{"--n", "3", "--out", out, "extra"}, []string{"unexpected argument \"extra\""}},
	}
	for _, kind := range []string{"normal", "uniform"} {
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				code, stdout, stderr := runCLI(append([]string{"noise", kind}, c.args...)...)
				assert.Equal(t, 2, code)
				assert.Empty(t, stdout)
				requireOneLine(t, stderr, append(c.want, "scorekit noise "+kind+": ")...)
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Empty(t, entries, "a failed run wrote something")
			})
		}
	}
}

func TestNoiseRefusesSizesTheDeviceCannotHold(t *testing.T) {
	if hostAvailableMemory() == 0 {
		t.Skip("host memory unknown (no /proc/meminfo): the size check does not apply")
	}
	out := filepath.Join(t.TempDir(), "x.npy")
	// 2^32 × 250 f64 = 7.8 TiB: within the chain and element limits, beyond any host.
	code, _, stderr := runCLI("noise", "normal", "--n", "4294967296", "--dim", "250", "--dtype", "f64",
		"--device", "cpu", "--quiet", "--out", out)
	assert.Equal(t, 2, code)
	requireOneLine(t, stderr, "--n 4294967296 × --dim 250 of f64 needs 7.8 TiB", "available")
	assert.NoFileExists(t, out)
}

func TestFailedRunLeavesExistingFileUntouched(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.npy")
	old := []byte("not overwritten")
	require.NoError(t, os.WriteFile(out, old, 0o644))
	failing := [][]string{
		{"noise", "normal", "--n", "0", "--out", out},
		{"noise", "normal", "--n", "3", "--dtype", "f16", "--out", out},
	}
	if !tensor.CUDABuild {
		failing = append(failing, []string{"noise", "uniform", "--n", "3", "--device", "cuda", "--out", out})
	}
	for _, args := range failing {
		code, _, _ := runCLI(args...)
		assert.Equal(t, 2, code, "%v", args)
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, old, got, "%v", args)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestNoiseWriteFailureIsARuntimeError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses /proc, where no file can be created")
	}
	// /proc/version exists, and no temporary file can be created beside it: the draw succeeds,
	// the write fails, and the existing file is left as it was.
	before, err := os.ReadFile("/proc/version")
	require.NoError(t, err)
	code, _, stderr := runCLI("noise", "normal", "--n", "10", "--device", "cpu", "--quiet", "--out", "/proc/version")
	assert.Equal(t, 1, code)
	requireOneLine(t, stderr, "scorekit noise normal: write /proc/version")
	after, err := os.ReadFile("/proc/version")
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestDeviceCUDAInCPUBuild(t *testing.T) {
	if tensor.CUDABuild {
		t.Skip("cuda build")
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"noise", "normal", "--n", "3", "--device", "cuda", "--out", filepath.Join(dir, "x.npy")},
		{"demo", "--device", "cuda", "--dir", dir},
	} {
		code, stdout, stderr := runCLI(args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Empty(t, stdout)
		requireOneLine(t, stderr, "--device cuda", "-tags cuda")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"sampel"}, []string{"unknown command \"sampel\"", "noise"}},
		{"noise without kind", []string{"noise"}, []string{"scorekit noise:", "normal, uniform"}},
		{"noise fgn without length", []string{"noise", "fgn", "--hurst", "0.7"},
			[]string{"scorekit noise fgn:", "--length is required"}},
		{"unknown noise kind", []string{"noise", "pink"}, []string{"unknown kind \"pink\"", "normal, uniform"}},
		{"info with a flag", []string{"info", "--verbose"}, []string{"scorekit info:", "verbose"}},
		{"demo with a bad device", []string{"demo", "--device", "tpu"}, []string{"scorekit demo:", "--device"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(c.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, c.want...)
		})
	}
}

func TestHelp(t *testing.T) {
	code, stdout, stderr := runCLI()
	assert.Equal(t, 2, code, "no arguments is a usage error")
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "Commands:")

	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, stderr := runCLI(args...)
		assert.Equal(t, 0, code, "%v", args)
		assert.Empty(t, stderr)
		for _, want := range []string{"demo", "info", "noise", "-tags cuda", "CPU-only", "NVIDIA driver"} {
			assert.Contains(t, stdout, want, "%v", args)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"noise", "--help"}, "Usage: scorekit noise"},
		{[]string{"noise", "normal", "-h"}, "Usage: scorekit noise"},
		{[]string{"help", "noise"}, "Usage: scorekit noise"},
		{[]string{"info", "-h"}, "Usage: scorekit info"},
		{[]string{"demo", "--help"}, "Usage: scorekit demo"},
	} {
		code, stdout, stderr := runCLI(c.args...)
		assert.Equal(t, 0, code, "%v", c.args)
		assert.Empty(t, stderr)
		assert.Contains(t, stdout, c.want, "%v", c.args)
	}
	_, stdout, _ = runCLI("demo", "--help")
	assert.Contains(t, stdout, "sampler comparison")
}

func TestInfo(t *testing.T) {
	code, stdout, stderr := runCLI("info")
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Empty(t, stderr)
	assert.Contains(t, stdout, "scorekit  "+version)
	assert.Contains(t, stdout, runtime.Version())
	assert.Regexp(t, `(?m)^  cpu +\d+ logical CPUs`, stdout)
	assert.Contains(t, stdout, "kernels")
	if !tensor.CUDABuild {
		assert.Contains(t, stdout, "build     cpu")
	}
	// One row per embedded module, its entry count in one column.
	rows := regexp.MustCompile(`(?m)^  (\w+) +(\d+) entries, PTX ISA`).FindAllStringSubmatchIndex(stdout, -1)
	require.Len(t, rows, len(kernels.Modules()))
	col := -1
	for _, r := range rows {
		start := strings.LastIndex(stdout[:r[0]+1], "\n") + 1
		if c := r[5] - start; col < 0 {
			col = c
		} else {
			assert.Equal(t, col, c, "entry counts aligned: %q", stdout[r[0]:r[1]])
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version", "-version"} {
		code, stdout, stderr := runCLI(arg)
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, stderr)
		build := "cpu"
		if tensor.CUDABuild || tensor.CUDAEmulated {
			build = map[bool]string{true: "cudaemu", false: "cuda"}[tensor.CUDAEmulated]
		}
		assert.Equal(t, fmt.Sprintf("scorekit %s (%s, %s/%s, %s build)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, build), stdout)
	}
}
