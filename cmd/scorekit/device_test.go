package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
)

// fakeGPUs makes the command see count "GPUs", each a CPU backend (so that the multi-device paths
// run in the CPU-only build: the parts, their gathering and the outputs), until the test ends. It
// records which ordinals were opened.
func fakeGPUs(t *testing.T, count int) *[]int {
	t.Helper()
	build, countFn, open := cudaBuild, cudaDeviceCount, openCUDABackend
	t.Cleanup(func() { cudaBuild, cudaDeviceCount, openCUDABackend = build, countFn, open })
	var opened []int
	cudaBuild = true
	cudaDeviceCount = func() (int, error) { return count, nil }
	openCUDABackend = func(i int) (ops.Backend, func() error, error) {
		opened = append(opened, i)
		b := ops.CPUWorkers(1 + i%2)
		return b, b.Close, nil
	}
	return &opened
}

func TestParseDeviceFlag(t *testing.T) {
	for _, c := range []struct {
		flag string
		want deviceSpec
	}{
		{"auto", deviceSpec{name: "auto", kind: "auto"}},
		{"cpu", deviceSpec{name: "cpu", kind: "cpu"}},
		{"cuda", deviceSpec{name: "cuda", kind: "cuda"}},
		{"cuda:1", deviceSpec{name: "cuda:1", kind: "cuda", ordinals: []int{1}}},
		{"cuda:2,0", deviceSpec{name: "cuda:2,0", kind: "cuda", ordinals: []int{2, 0}}},
		{"cuda:all", deviceSpec{name: "cuda:all", kind: "cuda", all: true}},
	} {
		got, err := parseDeviceFlag(c.flag)
		require.NoError(t, err, c.flag)
		assert.Equal(t, c.want, got, c.flag)
	}
	for flag, want := range map[string]string{
		"gpu": "--device must be auto, cpu, cuda", "cuda:": `"" is not a GPU number`, "cuda:-1": `"-1" is not a GPU number`,
		"cuda:0,0": "GPU 0 is named twice", "cuda:a": `"a" is not a GPU number`, "cuda:0,,1": `"" is not a GPU number`,
	} {
		_, err := parseDeviceFlag(flag)
		require.Error(t, err, flag)
		assert.Contains(t, err.Error(), want, flag)
	}
}

// Every method and noise kind on three devices writes the one-device run's files, byte for byte;
// so does a shard of a run spread over two of them.
func TestSeveralDevicesWriteTheOneDeviceRun(t *testing.T) {
	opened := fakeGPUs(t, 3)
	dir := t.TempDir()
	for _, c := range shardCases(t, dir) {
		t.Run(c.name, func(t *testing.T) {
			for _, dev := range [][2]string{{"cuda:all", ""}, {"cuda:2,0", "1/2"}} {
				cdir := t.TempDir()
				files := func(tag string) []string {
					var a []string
					for _, o := range c.outputs {
						a = append(a, o, filepath.Join(cdir, tag+o+".npy"))
					}
					if dev[1] != "" {
						a = append(a, "--shard", dev[1])
					}
					return a
				}
				args := append(append([]string{}, c.args...), "--quiet")
				code, _, stderr := runCLI(append(append(args, "--device", "cpu"), files("one")...)...)
				require.Equal(t, 0, code, stderr)
				*opened = nil
				code, _, stderr = runCLI(append(append(args, "--device", dev[0]), files("many")...)...)
				require.Equal(t, 0, code, stderr)
				if dev[0] == "cuda:all" {
					assert.Equal(t, []int{0, 1, 2}, *opened)
				} else {
					assert.Equal(t, []int{2, 0}, *opened)
				}
				for _, o := range c.outputs {
					want, err := os.ReadFile(filepath.Join(cdir, "one"+o+".npy"))
					require.NoError(t, err)
					got, err := os.ReadFile(filepath.Join(cdir, "many"+o+".npy"))
					require.NoError(t, err)
					require.True(t, bytes.Equal(want, got), "%s on %s", o, dev[0])
				}
			}
		})
	}
}

// The statistics of a run on several devices name them and count every chain.
func TestSeveralDevicesStats(t *testing.T) {
	fakeGPUs(t, 2)
	dir, tj := sampleDir(t)
	st := filepath.Join(dir, "s.json")
	code, _, stderr := runCLI("sample", "--target", tj, "--method", "mala", "--n", "301", "--steps", "20", "--device", "cuda:all",
		"--out", filepath.Join(dir, "x.npy"), "--stats", st)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "scorekit: devices cpu, cpu\n")
	s := readStats(t, st)
	assert.Equal(t, "cpu, cpu", s["device"])
	assert.Equal(t, 301.0, s["n"])
	assert.Equal(t, 21.0*301, s["score_evals_total"])
}

// Device lists that name absent GPUs, several GPUs for a one-device command, and GPUs in the
// CPU-only build: exit 2, one line, nothing written.
func TestDeviceListRefusals(t *testing.T) {
	dir, tj := sampleDir(t)
	out := filepath.Join(dir, "x.npy")
	sample := []string{"sample", "--target", tj, "--method", "ula", "--n", "5", "--steps", "3", "--out", out}
	pts := filepath.Join(dir, "p.npy")
	code, _, stderr := runCLI("noise", "normal", "--n", "3", "--dim", "2", "--out", pts, "--quiet")
	require.Equal(t, 0, code, stderr)
	score := []string{"score", "--target", tj, "--sigma", "1", "--in", pts, "--out", out}
	if !cudaBuild {
		code, _, stderr = runCLI(append(sample, "--device", "cuda:all")...)
		assert.Equal(t, 2, code)
		requireOneLine(t, stderr, "--device cuda:all", "CUDA")
	}
	fakeGPUs(t, 2)
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(append([]string{}, sample...), "--device", "cuda:0,2"), "--device cuda:0,2: GPU 2 does not exist (2 found: cuda:0 … cuda:1)"},
		{append(append([]string{}, sample...), "--device", "cuda:3"), "GPU 3 does not exist"},
		{append(append([]string{}, score...), "--device", "cuda:0,1"), "this command runs on one device"},
		{append(append([]string{}, score...), "--device", "cuda:all"), "this command runs on one device"},
	} {
		code, _, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code, strings.Join(c.args, " "))
		requireOneLine(t, stderr, c.want)
		_, err := os.Stat(out)
		assert.True(t, os.IsNotExist(err), "nothing written")
	}
	// One GPU of the list is a one-device run.
	code, _, stderr = runCLI(append(append([]string{}, score...), "--device", "cuda:1", "--quiet")...)
	require.Equal(t, 0, code, stderr)
}

// With more devices than rows, the extra devices get none.
func TestMoreDevicesThanRows(t *testing.T) {
	fakeGPUs(t, 4)
	dir := t.TempDir()
	one, many := filepath.Join(dir, "a.npy"), filepath.Join(dir, "b.npy")
	for _, c := range [][]string{{"--device", "cpu", "--out", one}, {"--device", "cuda:all", "--out", many}} {
		code, _, stderr := runCLI(append([]string{"noise", "stable", "--alpha", "1.5", "--n", "2", "--dim", "3", "--quiet"}, c...)...)
		require.Equal(t, 0, code, stderr)
	}
	a, _ := os.ReadFile(one)
	b, _ := os.ReadFile(many)
	assert.True(t, bytes.Equal(a, b))
}
