package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
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

// Device lists that name absent GPUs, and GPUs in the CPU-only build: exit 2, one line, nothing
// written.
func TestDeviceListRefusals(t *testing.T) {
	dir, tj := sampleDir(t)
	out := filepath.Join(dir, "x.npy")
	sample := []string{"sample", "--target", tj, "--method", "ula", "--n", "5", "--steps", "3", "--out", out}
	if !cudaBuild {
		code, _, stderr := runCLI(append(sample, "--device", "cuda:all")...)
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
	} {
		code, _, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code, strings.Join(c.args, " "))
		requireOneLine(t, stderr, c.want)
		_, err := os.Stat(out)
		assert.True(t, os.IsNotExist(err), "nothing written")
	}
}

// score, sde simulate, bridge sample and demo on three devices write the one-device run's files.
func TestOtherCommandsOnSeveralDevices(t *testing.T) {
	dir, tj := sampleDir(t)
	pts := filepath.Join(dir, "p.npy")
	code, _, stderr := runCLI("noise", "normal", "--n", "11", "--dim", "2", "--dtype", "f64", "--out", pts, "--quiet")
	require.Equal(t, 0, code, stderr)
	spec := writeFile(t, dir, "ou.json", `{"family": "ou", "theta": 1.3, "mu": 0.4, "sigma": 0.6, "x0": [1.5, -0.5],
 "paths": 13, "steps": 20, "horizon": 1.5, "seed": 3}`)
	s0, s1 := filepath.Join(dir, "s0.npy"), filepath.Join(dir, "s1.npy")
	for i, f := range []string{s0, s1} {
		code, _, stderr := runCLI("noise", "normal", "--n", "30", "--dim", "2", "--dtype", "f64", "--seed", strconv.Itoa(i), "--out", f, "--quiet")
		require.Equal(t, 0, code, stderr)
	}
	model := filepath.Join(dir, "b.safetensors")
	// (bridge fit runs on the CPU; the CUDA build refuses it, and the bridge case is left out there)
	fitCode, _, fitErr := runCLI("bridge", "fit", "--snapshots", s0+","+s1, "--times", "0,1", "--out", model, "--steps", "3",
		"--iterations", "1", "--width", "4", "--depth", "1", "--quiet")
	require.True(t, fitCode == 0 || (tensor.CUDABuild && !tensor.CUDAEmulated), fitErr)
	fakeGPUs(t, 3)
	for _, c := range []struct {
		name  string
		args  []string
		files []string // outputs: flag=name pairs appended per run, or files in --dir
	}{
		{"score logp", []string{"score", "--target", tj, "--sigma", "0.7", "--in", pts, "--what", "logp"}, []string{"--out"}},
		{"score denoiser", []string{"score", "--target", tj, "--time", "0.3", "--in", pts}, []string{"--out"}},
		{"sde simulate", []string{"sde", "simulate", "--spec", spec}, []string{"--out", "--trajectory"}},
		{"bridge sample", []string{"bridge", "sample", "--model", model, "--from", "0", "--to", "1", "--in", s0, "--steps", "6"},
			[]string{"--out", "--trajectory"}},
		{"demo", []string{"demo", "--n", "50", "--steps", "15"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "bridge sample" && fitCode != 0 {
				t.Skip("bridge fit is not in this build")
			}
			cdir := t.TempDir()
			run := func(device, tag string) {
				args := append(append([]string{}, c.args...), "--device", device, "--quiet")
				for _, o := range c.files {
					args = append(args, o, filepath.Join(cdir, tag+o+".npy"))
				}
				if c.files == nil {
					args = append(args, "--dir", filepath.Join(cdir, tag))
				}
				code, _, stderr := runCLI(args...)
				require.Equal(t, 0, code, stderr)
			}
			run("cpu", "one")
			run("cuda:all", "many")
			files := []string{}
			for _, o := range c.files {
				files = append(files, o+".npy")
			}
			if c.files == nil {
				matches, err := filepath.Glob(filepath.Join(cdir, "one", "*.npy"))
				require.NoError(t, err)
				require.NotEmpty(t, matches)
				for _, m := range matches {
					files = append(files, filepath.Base(m))
				}
			}
			for _, f := range files {
				a, b := filepath.Join(cdir, "one"+f), filepath.Join(cdir, "many"+f)
				if c.files == nil {
					a, b = filepath.Join(cdir, "one", f), filepath.Join(cdir, "many", f)
				}
				want, err := os.ReadFile(a)
				require.NoError(t, err)
				got, err := os.ReadFile(b)
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "%s", f)
			}
		})
	}
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
