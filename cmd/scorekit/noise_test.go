package main

import (
	"bytes"
	"fmt"
	"math"
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

// readNpy reads a .npy file written by the command and returns its shape, dtype and values.
func readNpy(t *testing.T, path string) ([]int, tensor.DType, []float64) {
	t.Helper()
	x, err := tensor.ReadNpy(path)
	require.NoError(t, err)
	v, err := x.Float64s()
	require.NoError(t, err)
	return x.Shape(), x.DType(), v
}

// requirePNG checks that path holds a PNG image.
func requirePNG(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")), "%s is not a PNG", path)
}

// fgnReference draws what `noise fgn|fbm` must write, with the ops directly on the CPU.
func fgnReference(t *testing.T, kind, method string, dt tensor.DType, hurst float64, paths, length int,
	horizon float64, k int, gammaMax float64, d ops.Draw) []float64 {
	t.Helper()
	x, err := tensor.New(nil, dt, paths, length)
	require.NoError(t, err)
	form := ops.FGNForm{Horizon: horizon, Path: kind == "fbm"}
	switch method {
	case "davies-harte":
		plan, err := ops.NewFGNPlan(hurst, length)
		require.NoError(t, err)
		require.NoError(t, ops.CPU().FGN(x, plan, form, d))
	case "cholesky":
		require.NoError(t, ops.FGNCholesky(x, hurst, form, d))
	case "mafbm":
		m, err := ops.NewMAFBM(hurst, k, gammaMax, horizon)
		require.NoError(t, err)
		y, err := tensor.New(nil, dt, paths, k)
		require.NoError(t, err)
		require.NoError(t, ops.CPU().MAFBM(x, y, m, horizon/float64(length), d, 1))
	}
	v, err := x.Float64s()
	require.NoError(t, err)
	if method == "mafbm" && kind == "fgn" {
		for p := 0; p < paths; p++ {
			for i := length - 1; i > 0; i-- {
				v[p*length+i] -= v[p*length+i-1]
			}
		}
		if dt == tensor.F32 { // the command writes the differences rounded to f32
			for i := range v {
				v[i] = float64(float32(v[i]))
			}
		}
	}
	return v
}

func TestNoiseFractionalWritesTheOpsDraw(t *testing.T) {
	dir := t.TempDir()
	const paths, length, hurst, seed, site = 7, 33, 0.7, 42, 3
	for _, kind := range []string{"fgn", "fbm"} {
		for _, method := range []string{"davies-harte", "cholesky", "mafbm"} {
			for _, c := range []struct {
				dtype   string
				dt      tensor.DType
				horizon string
			}{{"f32", tensor.F32, ""}, {"f64", tensor.F64, "2.5"}} {
				t.Run(fmt.Sprintf("%s/%s/%s", kind, method, c.dtype), func(t *testing.T) {
					out := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.npy", kind, method, c.dtype))
					args := []string{"noise", kind, "--hurst", "0.7", "--length", strconv.Itoa(length),
						"--paths", strconv.Itoa(paths), "--method", method, "--seed", "42", "--site", "3",
						"--dtype", c.dtype, "--device", "cpu", "--out", out}
					horizon := float64(length)
					if c.horizon != "" {
						args = append(args, "--horizon", c.horizon)
						horizon, _ = strconv.ParseFloat(c.horizon, 64)
					}
					if method == "mafbm" {
						args = append(args, "--k", "3", "--gamma-max", "10")
					}
					code, stdout, stderr := runCLI(args...)
					require.Equal(t, 0, code, "stderr %q", stderr)
					assert.Empty(t, stdout)
					assert.Contains(t, stderr, "wrote "+out)
					if method == "mafbm" {
						assert.Contains(t, stderr, "squared relative L² error")
					}
					shape, dt, got := readNpy(t, out)
					assert.Equal(t, []int{paths, length}, shape)
					assert.Equal(t, c.dt, dt)
					want := fgnReference(t, kind, method, c.dt, hurst, paths, length, horizon, 3, 10,
						ops.Draw{Seed: seed, Site: site})
					assert.Equal(t, want, got)
				})
			}
		}
	}
}

func TestNoiseFBMIsTheSumOfFGN(t *testing.T) {
	// Same seed: fbm = cumulative sums of fgn, and --horizon T scales fgn by (T/L)^H.
	dir := t.TempDir()
	const paths, length, hurst = 5, 64, 0.3
	get := func(kind string, extra ...string) []float64 {
		out := filepath.Join(dir, kind+strings.Join(extra, "")+".npy")
		args := append([]string{"noise", kind, "--hurst", "0.3", "--length", strconv.Itoa(length), "--paths",
			strconv.Itoa(paths), "--dtype", "f64", "--seed", "8", "--device", "cpu", "--quiet", "--out", out}, extra...)
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, "stderr %q", stderr)
		_, _, v := readNpy(t, out)
		return v
	}
	fgn, fbm, scaled := get("fgn"), get("fbm"), get("fgn", "--horizon", "1")
	scale := math.Pow(1.0/length, hurst)
	for p := 0; p < paths; p++ {
		acc := 0.0
		for k := 0; k < length; k++ {
			i := p*length + k
			acc += fgn[i]
			assert.InDelta(t, acc, fbm[i], 1e-12*(1+math.Abs(acc)), "path %d, t_%d", p, k+1)
			assert.InDelta(t, scale*fgn[i], scaled[i], 1e-12*(1+math.Abs(fgn[i])), "path %d, step %d", p, k)
		}
	}
}

func TestNoiseStable(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		dim  int
		spec ops.StableSpec
	}{
		{"symmetric", []string{"--alpha", "1.5"}, 1, ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.5}},
		{"skewed", []string{"--alpha", "1.2", "--beta", "-0.5", "--dim", "3"}, 3,
			ops.StableSpec{Kind: ops.StableSkewed, Alpha: 1.2, Beta: -0.5}},
		{"positive", []string{"--alpha", "0.5", "--positive", "--dim", "2"}, 2, ops.StableSpec{Kind: ops.StablePositive, Alpha: 0.5}},
		{"isotropic", []string{"--alpha", "1.8", "--isotropic", "--dim", "4"}, 4, ops.StableSpec{Kind: ops.StableIsotropic, Alpha: 1.8}},
		{"clamped", []string{"--alpha", "1", "--clamp", "2"}, 1, ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1, Clamp: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 500
			out, pl := filepath.Join(dir, c.name+".npy"), filepath.Join(dir, c.name+".png")
			args := append([]string{"noise", "stable", "--n", strconv.Itoa(n), "--seed", "5", "--device", "cpu",
				"--out", out, "--plot", pl}, c.args...)
			code, stdout, stderr := runCLI(args...)
			require.Equal(t, 0, code, "stderr %q", stderr)
			assert.Empty(t, stdout)
			shape, dt, got := readNpy(t, out)
			assert.Equal(t, []int{n, c.dim}, shape)
			assert.Equal(t, tensor.F32, dt)
			requirePNG(t, pl)

			x, err := tensor.New(nil, tensor.F32, n, c.dim)
			require.NoError(t, err)
			clamped, err := ops.CPU().Stable(x, c.spec, ops.Draw{Seed: 5})
			require.NoError(t, err)
			want, err := x.Float64s()
			require.NoError(t, err)
			assert.Equal(t, want, got)
			if c.spec.Kind == ops.StablePositive {
				for i, v := range got {
					require.Greater(t, v, 0.0, "value %d", i)
				}
			}
			if c.spec.Clamp > 0 {
				atClamp := 0
				for _, v := range got {
					if math.Abs(v) >= c.spec.Clamp {
						atClamp++
					}
				}
				// Cauchy: P(|X| > 2) = 1 − (2/π) arctan 2 ≈ 0.30, so some values are clamped.
				assert.Greater(t, atClamp, 0)
				assert.Equal(t, int64(atClamp), clamped)
				assert.Contains(t, stderr, fmt.Sprintf("clamped %d of %d values", atClamp, n))
			} else {
				assert.NotContains(t, stderr, "clamped")
			}
		})
	}
}

func TestNoiseBridge(t *testing.T) {
	dir := t.TempDir()
	const paths, length, epoch = 6, 40, 10
	get := func(name string, extra ...string) []float64 {
		out, pl := filepath.Join(dir, name+".npy"), filepath.Join(dir, name+".png")
		args := append([]string{"noise", "bridge", "--length", strconv.Itoa(length), "--paths", strconv.Itoa(paths),
			"--seed", "2", "--dtype", "f64", "--device", "cpu", "--quiet", "--out", out, "--plot", pl}, extra...)
		code, stdout, stderr := runCLI(args...)
		require.Equal(t, 0, code, "stderr %q", stderr)
		assert.Empty(t, stdout)
		assert.Empty(t, stderr)
		requirePNG(t, pl)
		shape, _, v := readNpy(t, out)
		require.Equal(t, []int{paths, length}, shape)
		return v
	}
	bridge := get("bridge", "--epoch", strconv.Itoa(epoch), "--horizon", "4")
	inc := get("increments", "--epoch", strconv.Itoa(epoch), "--horizon", "4", "--increments")
	plain := get("plain", "--epoch", "0")
	x, err := tensor.New(nil, tensor.F64, paths, length)
	require.NoError(t, err)
	require.NoError(t, ops.CPU().Brownian(x, ops.BrownianSpec{Horizon: 4, Epoch: epoch}, ops.Draw{Seed: 2}))
	want, err := x.Float64s()
	require.NoError(t, err)
	assert.Equal(t, want, bridge)
	for p := 0; p < paths; p++ {
		acc := 0.0
		for k := 0; k < length; k++ {
			i := p*length + k
			acc += inc[i]
			assert.InDelta(t, bridge[i], acc, 1e-12, "path %d: increments sum to the path", p)
			if (k+1)%epoch == 0 {
				assert.InDelta(t, 0, bridge[i], 1e-12, "path %d is pinned at the end of epoch %d", p, (k+1)/epoch)
			}
		}
	}
	nonzero := 0
	for p := 0; p < paths; p++ {
		if plain[p*length+epoch-1] != 0 {
			nonzero++
		}
	}
	assert.Equal(t, paths, nonzero, "--epoch 0 is plain Brownian motion: not pinned")
}

func TestNoiseFractionalPlot(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"fgn", "fbm"} {
		out, pl := filepath.Join(dir, kind+".npy"), filepath.Join(dir, kind+".png")
		code, _, stderr := runCLI("noise", kind, "--hurst", "0.6", "--length", "3000", "--paths", "80",
			"--device", "cpu", "--quiet", "--out", out, "--plot", pl)
		require.Equal(t, 0, code, "stderr %q", stderr)
		requirePNG(t, pl)
	}
}

func TestNoiseNewKindsBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.npy")
	frac := func(extra ...string) []string {
		return append([]string{"--hurst", "0.7", "--length", "8", "--paths", "2", "--out", out}, extra...)
	}
	cases := []struct {
		kind string
		name string
		args []string
		want []string
	}{
		{"fgn", "missing hurst", []string{"--length", "8", "--paths", "2", "--out", out}, []string{"--hurst is required"}},
		{"fgn", "hurst 0", frac("--hurst", "0"), []string{"--hurst must be in (0, 1) (got 0)"}},
		{"fbm", "hurst 1.5", frac("--hurst", "1.5"), []string{"--hurst must be in (0, 1) (got 1.5)"}},
		{"fgn", "missing length", []string{"--hurst", "0.7", "--paths", "2", "--out", out}, []string{"--length is required"}},
		{"fgn", "length 0", frac("--length", "0"), []string{"--length must be ≥ 1 (got 0)"}},
		{"fbm", "missing paths", []string{"--hurst", "0.7", "--length", "8", "--out", out}, []string{"--paths is required"}},
		{"fbm", "paths 0", frac("--paths", "0"), []string{"--paths must be ≥ 1 (got 0)"}},
		{"fgn", "horizon 0", frac("--horizon", "0"), []string{"--horizon must be a finite number > 0 (got 0)"}},
		{"fbm", "horizon negative", frac("--horizon", "-1"), []string{"--horizon must be a finite number > 0"}},
		{"fgn", "unknown method", frac("--method", "hosking"), []string{"--method must be davies-harte, cholesky or mafbm", "hosking"}},
		{"fgn", "cholesky too long", frac("--method", "cholesky", "--length", "5000"), []string{"at most --length 4096"}},
		{"fbm", "davies-harte too long", frac("--length", "8388609"), []string{"at most --length 8388608"}},
		{"fbm", "k 0", frac("--method", "mafbm", "--k", "0"), []string{"--k must be in [1, 16] (got 0)"}},
		{"fbm", "k 17", frac("--method", "mafbm", "--k", "17"), []string{"--k must be in [1, 16] (got 17)"}},
		{"fbm", "k without mafbm", frac("--k", "3"), []string{"--k applies to --method mafbm"}},
		{"fgn", "gamma max 1", frac("--method", "mafbm", "--gamma-max", "1"), []string{"--gamma-max must be a finite number > 1 (got 1)"}},
		{"fgn", "bad dtype", frac("--dtype", "f16"), []string{"--dtype", "f16"}},
		{"fgn", "plot is out", frac("--plot", out), []string{"--out and --plot name the same file"}},
		{"fbm", "plot dir missing", frac("--plot", filepath.Join(dir, "no", "p.png")), []string{"--plot", "does not exist"}},
		{"stable", "missing alpha", []string{"--n", "3", "--out", out}, []string{"--alpha is required"}},
		{"stable", "alpha 0", []string{"--alpha", "0", "--n", "3", "--out", out}, []string{"--alpha must be in (0, 2] (got 0)"}},
		{"stable", "alpha 2.5", []string{"--alpha", "2.5", "--n", "3", "--out", out}, []string{"--alpha must be in (0, 2] (got 2.5)"}},
		{"stable", "beta 1.5", []string{"--alpha", "1", "--beta", "1.5", "--n", "3", "--out", out}, []string{"--beta must be in [-1, 1] (got 1.5)"}},
		{"stable", "n 0", []string{"--alpha", "1", "--n", "0", "--out", out}, []string{"--n must be ≥ 1 (got 0)"}},
		{"stable", "missing n", []string{"--alpha", "1", "--out", out}, []string{"--n is required"}},
		{"stable", "dim 0", []string{"--alpha", "1", "--n", "3", "--dim", "0", "--out", out}, []string{"--dim must be ≥ 1 (got 0)"}},
		{"stable", "isotropic and positive", []string{"--alpha", "0.5", "--n", "3", "--isotropic", "--positive", "--out", out},
			[]string{"--isotropic and --positive exclude each other"}},
		{"stable", "positive alpha 1.2", []string{"--alpha", "1.2", "--n", "3", "--positive", "--out", out},
			[]string{"--positive needs --alpha in (0, 1) (got 1.2)"}},
		{"stable", "beta with isotropic", []string{"--alpha", "1.2", "--beta", "0.3", "--n", "3", "--isotropic", "--out", out},
			[]string{"--beta applies to scalar stable laws"}},
		{"stable", "clamp negative", []string{"--alpha", "1", "--n", "3", "--clamp", "-1", "--out", out},
			[]string{"--clamp must be a finite number ≥ 0 (got -1"}},
		{"bridge", "missing epoch", []string{"--length", "8", "--paths", "2", "--out", out}, []string{"--epoch is required"}},
		{"bridge", "epoch negative", []string{"--length", "8", "--paths", "2", "--epoch", "-1", "--out", out},
			[]string{"--epoch must be ≥ 0 (got -1"}},
		{"bridge", "length 0", []string{"--length", "0", "--paths", "2", "--epoch", "1", "--out", out}, []string{"--length must be ≥ 1 (got 0)"}},
		{"bridge", "horizon negative", []string{"--length", "8", "--paths", "2", "--epoch", "1", "--horizon", "-2", "--out", out},
			[]string{"--horizon must be a finite number > 0 (got -2)"}},
		{"bridge", "missing out", []string{"--length", "8", "--paths", "2", "--epoch", "1"}, []string{"--out is required"}},
		{"bridge", "hurst is not a bridge flag", []string{"--length", "8", "--paths", "2", "--epoch", "1", "--hurst", "0.5", "--out", out},
			[]string{"hurst"}},
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(append([]string{"noise", c.kind}, c.args...)...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, append(c.want, "scorekit noise "+c.kind+": ")...)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "a failed run wrote something")
		})
	}
}

func TestNoiseNewKindsLeaveExistingOutputUntouched(t *testing.T) {
	dir := t.TempDir()
	out, pl := filepath.Join(dir, "x.npy"), filepath.Join(dir, "x.png")
	old := []byte("not overwritten")
	require.NoError(t, os.WriteFile(out, old, 0o644))
	require.NoError(t, os.WriteFile(pl, old, 0o644))
	for _, args := range [][]string{
		{"noise", "fgn", "--hurst", "1", "--length", "8", "--paths", "2", "--out", out, "--plot", pl},
		{"noise", "fbm", "--hurst", "0.5", "--length", "8", "--paths", "2", "--method", "x", "--out", out, "--plot", pl},
		{"noise", "stable", "--alpha", "3", "--n", "4", "--out", out, "--plot", pl},
		{"noise", "bridge", "--length", "8", "--paths", "2", "--out", out, "--plot", pl},
	} {
		code, _, _ := runCLI(args...)
		assert.Equal(t, 2, code, "%v", args)
		for _, p := range []string{out, pl} {
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, old, got, "%v", args)
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2)
}
