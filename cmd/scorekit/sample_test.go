package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const sampleTargetJSON = `{"kind": "gmm", "weights": [0.3, 0.7], "means": [[-3, 0], [3, 1]],
 "covariance": "isotropic", "vars": [1.0, 0.25]}`

// sampleDir returns a temporary directory holding t.json (the 2-D mixture above).
func sampleDir(t *testing.T) (dir, tj string) {
	t.Helper()
	dir = t.TempDir()
	tj = filepath.Join(dir, "t.json")
	require.NoError(t, os.WriteFile(tj, []byte(sampleTargetJSON), 0o644))
	return dir, tj
}

func readStats(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

func TestSampleEveryMethod(t *testing.T) {
	dir, tj := sampleDir(t)
	tg, err := target.Load(tj)
	require.NoError(t, err)
	g := tg.(target.GMM).Mixture
	const n, steps = 1500, 60
	for _, c := range []struct {
		method   string
		evals    float64 // per chain
		trajRows int
		accept   bool
	}{
		{"ula", steps, steps + 1, false},
		{"mala", steps + 1, steps + 1, true},
		{"uld", steps, steps + 1, false},
		{"rtk-mala", 5 * (steps/5 - 2 + 2), 6, true}, // 10 inner steps + 2 per segment
		{"rtk-uld", 5 * (steps/5 - 1 + 1), 6, false},
		{"ddpm", steps, steps + 1, false},
	} {
		t.Run(c.method, func(t *testing.T) {
			out := filepath.Join(dir, c.method+".npy")
			traj := filepath.Join(dir, c.method+"-traj.npy")
			stats := filepath.Join(dir, c.method+".json")
			code, stdout, stderr := runCLI("sample", "--target", tj, "--method", c.method, "--n", strconv.Itoa(n),
				"--steps", strconv.Itoa(steps), "--seed", "5", "--out", out, "--trajectory", traj, "--stats", stats)
			require.Equal(t, 0, code, "stderr %s", stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, "scorekit: device cpu")
			x, err := tensor.ReadNpy(out)
			require.NoError(t, err)
			assert.Equal(t, []int{n, 2}, x.Shape())
			assert.Equal(t, tensor.F32, x.DType())
			tr, err := tensor.ReadNpy(traj)
			require.NoError(t, err)
			assert.Equal(t, []int{c.trajRows, n, 2}, tr.Shape())
			// The last row of the trajectory is the samples.
			xv, _ := x.Float64s()
			tv, _ := tr.Float64s()
			assert.Equal(t, xv, tv[(c.trajRows-1)*n*2:])

			st := readStats(t, stats)
			for _, k := range []string{"method", "device", "n", "d", "steps", "score_evals", "wall_seconds", "seed", "nan_chains"} {
				assert.Contains(t, st, k)
			}
			assert.Equal(t, c.method, st["method"])
			assert.Equal(t, "cpu", st["device"])
			assert.Equal(t, float64(n), st["n"])
			assert.Equal(t, 2.0, st["d"])
			assert.Equal(t, float64(steps), st["steps"])
			assert.Equal(t, c.evals, st["score_evals"])
			assert.Equal(t, 5.0, st["seed"])
			assert.Equal(t, 0.0, st["nan_chains"])
			_, hasAcc := st["acceptance_rate"]
			assert.Equal(t, c.accept, hasAcc)
			if c.accept {
				a := st["acceptance_rate"].(float64)
				assert.True(t, a > 0.2 && a <= 1, "acceptance %g", a)
			}
			// The diffusion-based methods start from N(0, I) and must put the modes' weights
			// right: TV error ≤ 0.06 (exact samples: ≈ 0.01 at n = 1500).
			if c.method == "rtk-mala" || c.method == "rtk-uld" || c.method == "ddpm" {
				assert.Less(t, solvers.ModeWeightError(xv, 2, g), 0.06)
			}
		})
	}
}

func TestSampleSameSeedSameSamples(t *testing.T) {
	dir, tj := sampleDir(t)
	run := func(name, seed string) []float64 {
		out := filepath.Join(dir, name)
		code, _, stderr := runCLI("sample", "--target", tj, "--method", "rtk-uld", "--n", "50", "--steps", "20",
			"--seed", seed, "--out", out, "--quiet", "--dtype", "f64")
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, stderr)
		x, err := tensor.ReadNpy(out)
		require.NoError(t, err)
		assert.Equal(t, tensor.F64, x.DType())
		v, _ := x.Float64s()
		return v
	}
	a, b, c := run("a.npy", "3"), run("b.npy", "3"), run("c.npy", "4")
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c)
}

func TestSamplePlotIsAPNG(t *testing.T) {
	dir, tj := sampleDir(t)
	p := filepath.Join(dir, "p.png")
	code, _, stderr := runCLI("sample", "--target", tj, "--method", "ddpm", "--n", "300", "--steps", "20",
		"--out", filepath.Join(dir, "x.npy"), "--plot", p, "--quiet")
	require.Equal(t, 0, code, stderr)
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 100)
	assert.Greater(t, img.Bounds().Dy(), 100)
}

func TestSampleReportsNaNChains(t *testing.T) {
	dir, tj := sampleDir(t)
	stats := filepath.Join(dir, "s.json")
	// ULA with h = 100 ≫ λ = 0.25 multiplies the distance to a mean by ≈ −400 per step: overflow.
	code, _, stderr := runCLI("sample", "--target", tj, "--method", "ula", "--n", "40", "--steps", "50",
		"--step-size", "100", "--out", filepath.Join(dir, "x.npy"), "--stats", stats, "--quiet")
	require.Equal(t, 0, code, stderr)
	requireOneLine(t, stderr, "warning", "40 of 40 chains", "NaN", "first: chain 0")
	st := readStats(t, stats)
	assert.Equal(t, 40.0, st["nan_chains"])
	assert.Equal(t, 0.0, st["nan_first_chain"])
}

func TestSampleBadInput(t *testing.T) {
	dir, tj := sampleDir(t)
	emp := filepath.Join(dir, "e.json")
	require.NoError(t, os.WriteFile(emp, []byte(`{"kind": "empirical", "data": "pts.npy"}`), 0o644))
	pts, err := tensor.FromF64([]float64{0, 0, 1, 1}, 2, 2)
	require.NoError(t, err)
	require.NoError(t, tensor.WriteNpy(filepath.Join(dir, "pts.npy"), pts))
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"kind": "gmm", "weights": [-1], "means": [[0, 0]], "covariance": "isotropic", "vars": [1]}`), 0o644))
	out := filepath.Join(dir, "x.npy")
	base := func(extra ...string) []string {
		return append([]string{"sample", "--target", tj, "--method", "ula", "--n", "10", "--steps", "10", "--out", out}, extra...)
	}
	with := func(flag, value string) []string {
		args := base()
		for i := range args {
			if args[i] == flag {
				args[i+1] = value
				return args
			}
		}
		return append(args, flag, value)
	}
	without := func(flag string) []string {
		args := base()
		for i := range args {
			if args[i] == flag {
				return append(args[:i:i], args[i+2:]...)
			}
		}
		return args
	}
	before := dirListing(t, dir)
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"no target", without("--target"), []string{"--target"}},
		{"missing target file", with("--target", filepath.Join(dir, "none.json")), []string{"--target", "none.json"}},
		{"bad target", with("--target", bad), []string{"--target", "weights"}},
		{"no method", without("--method"), []string{"--method", "rtk-mala"}},
		{"unknown method", with("--method", "foo"), []string{"--method", "unknown", "ddpm"}},
		{"planned method", with("--method", "ddim"), []string{"--method", "not available in this version", "ula, mala, uld, rtk-mala, rtk-uld, ddpm"}},
		{"no n", without("--n"), []string{"--n"}},
		{"zero n", with("--n", "0"), []string{"--n"}},
		{"no steps", without("--steps"), []string{"--steps"}},
		{"zero steps", with("--steps", "0"), []string{"--steps"}},
		{"no out", without("--out"), []string{"--out"}},
		{"out dir missing", with("--out", filepath.Join(dir, "no", "x.npy")), []string{"--out", "does not exist"}},
		{"trajectory dir missing", with("--trajectory", filepath.Join(dir, "no", "t.npy")), []string{"--trajectory"}},
		{"stats same as out", with("--stats", out), []string{"--out", "--stats", "same file"}},
		{"bad dtype", with("--dtype", "f16"), []string{"--dtype"}},
		{"bad device", with("--device", "tpu"), []string{"--device"}},
		{"negative step size", with("--step-size", "-1"), []string{"--step-size"}},
		{"step size for ddpm", append(with("--method", "ddpm"), "--step-size", "0.1"), []string{"--step-size", "ddpm"}},
		{"segments for ula", with("--segments", "3"), []string{"--segments", "ula"}},
		{"budget too small for rtk", append(with("--method", "rtk-mala"), "--segments", "5"), []string{"--steps 10", "rtk-mala", "at least 15"}},
		{"bad schedule", append(with("--method", "ddpm"), "--schedule", "cosine"), []string{"--schedule"}},
		{"langevin on empirical", with("--target", emp), []string{"--method ula", "gmm"}},
		{"plot of a 1-D target", append(with("--target", writeFile(t, dir, "one.json",
			`{"kind": "gmm", "weights": [1], "means": [[0]], "covariance": "isotropic", "vars": [1]}`)), "--plot", filepath.Join(dir, "p.png")), []string{"--plot"}},
		{"stray argument", append(base(), "extra"), []string{"extra"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(c.args...)
			assert.Equal(t, 2, code, "stderr %q", stderr)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, append([]string{"scorekit sample:"}, c.want...)...)
		})
	}
	before = append(before, "one.json")
	assert.ElementsMatch(t, before, dirListing(t, dir), "nothing written")
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestSampleHelp(t *testing.T) {
	code, stdout, stderr := runCLI("sample", "--help")
	require.Equal(t, 0, code)
	assert.Empty(t, stderr)
	for _, want := range []string{"Usage: scorekit sample", "0.05·λ_min", "dual averaging", "⌊K/S⌋ − 2",
		"⌊K/S⌋ − 1", "geometric", "--trajectory", "--stats", "acceptance_rate", "nan_chains"} {
		assert.Contains(t, stdout, want)
	}
}
