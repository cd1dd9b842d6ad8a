package main

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const sampleTargetJSON = `{"kind": "gmm", "weights": [0.3, 0.7], "means": [[-3, 0], [3, 1]],
 "covariance": "isotropic", "vars": [1.0, 0.25]}`

// sampleBoxJSON is a box holding nearly all the mass of the mixture above (the means ± 4 and 6
// standard deviations).
const sampleBoxJSON = `{"kind": "box", "lo": [-7, -4], "hi": [6, 4]}`

// sampleDir returns a temporary directory holding t.json (the 2-D mixture above) and box.json.
func sampleDir(t *testing.T) (dir, tj string) {
	t.Helper()
	dir = t.TempDir()
	tj = filepath.Join(dir, "t.json")
	require.NoError(t, os.WriteFile(tj, []byte(sampleTargetJSON), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "box.json"), []byte(sampleBoxJSON), 0o644))
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

func readSampleNpy(t *testing.T, path string) (*tensor.Tensor, []float64) {
	t.Helper()
	x, err := tensor.ReadNpy(path)
	require.NoError(t, err)
	v, err := x.Float64s()
	require.NoError(t, err)
	return x, v
}

// sd is the standard deviation of all the values.
func sd(v []float64) float64 {
	m, s := 0.0, 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)-1))
}

// twoStage is the evaluation count of heun, dpm2 and edm-sde on the budget K: ⌊(K+1)/2⌋ steps
// of two evaluations, one on the last.
func twoStage(K int) int { return 2*((K+1)/2) - 1 }

// Chain i's samples depend only on (seed, i), for every method with its defaults (mala's adapted
// step size included): the first 40 chains of a run of 40 and of a run of 130 are the same.
// The registry's methods by kind, for the tests below.
func methodsWhere(keep func(solvers.Method) bool) []string {
	var out []string
	for _, m := range solvers.Methods() {
		if keep(m) {
			out = append(out, m.Name)
		}
	}
	return out
}

var (
	veMethods       = methodsWhere(func(m solvers.Method) bool { return m.Takes("sigma-max") })
	rfMethods       = methodsWhere(func(m solvers.Method) bool { return m.Family == solvers.FamilyFlow })
	twoStageMethods = []string{solvers.MethodHeun, solvers.MethodDPM2, solvers.MethodEDMSDE}
)

func TestSamplePrefixesAgree(t *testing.T) {
	dir, tj := sampleDir(t)
	box := filepath.Join(dir, "box.json")
	for _, m := range solvers.MethodNames() {
		t.Run(m, func(t *testing.T) {
			run := func(n int) []float64 {
				out := filepath.Join(t.TempDir(), "x.npy")
				args := []string{"sample", "--target", tj, "--method", m, "--n", strconv.Itoa(n), "--steps", "20",
					"--seed", "5", "--out", out, "--quiet"}
				if m == "metropolis-constrained" {
					args = append(args, "--constraint", box)
				}
				code, _, stderr := runCLI(args...)
				require.Equal(t, 0, code, "stderr %s", stderr)
				_, v := readSampleNpy(t, out)
				return v
			}
			small, large := run(40), run(130)
			assert.Equal(t, small, large[:len(small)])
		})
	}
}

func TestSampleEveryMethod(t *testing.T) {
	dir, tj := sampleDir(t)
	tg, err := target.Load(tj)
	require.NoError(t, err)
	g := tg.(target.GMM).Mixture
	box := []string{"--constraint", filepath.Join(dir, "box.json")}
	const n, steps = 1500, 60
	for _, c := range []struct {
		method   string
		evals    int // per chain
		trajRows int
		accept   bool
		// modes: the mode weights are checked; start: the standard deviation of row 0 of the
		// trajectory (0: not checked).
		modes bool
		start float64
		extra []string
	}{
		{method: "ula", evals: steps, trajRows: steps + 1},
		{method: "mala", evals: steps + 1, trajRows: steps + 1, accept: true},
		{method: "uld", evals: steps, trajRows: steps + 1},
		{method: "rtk-mala", evals: 5 * (steps/5 - 2 + 2), trajRows: 6, accept: true, modes: true}, // 10 inner steps + 2 per segment
		{method: "rtk-uld", evals: 5 * (steps/5 - 1 + 1), trajRows: 6, modes: true},
		{method: "ddpm", evals: steps, trajRows: steps + 1, modes: true},
		{method: "ddim", evals: steps, trajRows: steps + 1, modes: true, start: 80},
		{method: "euler", evals: steps, trajRows: steps + 1, modes: true, start: 80},
		{method: "heun", evals: twoStage(steps), trajRows: (steps+1)/2 + 1, modes: true, start: 80},
		{method: "dpm2", evals: twoStage(steps), trajRows: (steps+1)/2 + 1, modes: true, start: 80},
		{method: "dpmpp-2m", evals: steps, trajRows: steps + 1, modes: true, start: 80},
		{method: "dpmpp-3m", evals: steps, trajRows: steps + 1, modes: true, start: 80},
		{method: "ipndm", evals: steps, trajRows: steps + 1, modes: true, start: 80},
		{method: "edm-sde", evals: twoStage(steps), trajRows: (steps+1)/2 + 1, modes: true, start: 80},
		{method: "lim", evals: steps, trajRows: steps + 1, modes: true}, // the start is heavy-tailed
		{method: "lim", evals: steps, trajRows: steps + 1, modes: true, extra: []string{"--alpha", "1.5", "--eta", "1", "--clamp", "20"}},
		{method: "rf", evals: steps, trajRows: steps + 2, modes: true, start: 1},
		{method: "rf-lowdim", evals: steps, trajRows: steps + 2, modes: true, start: 1},
		{method: "rf-stochastic", evals: steps, trajRows: steps + 2, modes: true, start: 1},
		{method: "metropolis-constrained", evals: steps, trajRows: steps + 1, modes: true, extra: box},
	} {
		t.Run(strings.Join(append([]string{c.method}, c.extra...), " "), func(t *testing.T) {
			out := filepath.Join(dir, c.method+".npy")
			traj := filepath.Join(dir, c.method+"-traj.npy")
			stats := filepath.Join(dir, c.method+".json")
			args := append([]string{"sample", "--target", tj, "--method", c.method, "--n", strconv.Itoa(n),
				"--steps", strconv.Itoa(steps), "--seed", "5", "--out", out, "--trajectory", traj, "--stats", stats}, c.extra...)
			code, stdout, stderr := runCLI(args...)
			require.Equal(t, 0, code, "stderr %s", stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, "scorekit: device cpu")
			x, xv := readSampleNpy(t, out)
			assert.Equal(t, []int{n, 2}, x.Shape())
			assert.Equal(t, tensor.F32, x.DType())
			tr, tv := readSampleNpy(t, traj)
			assert.Equal(t, []int{c.trajRows, n, 2}, tr.Shape())
			// The last row of the trajectory is the samples, row 0 the start.
			assert.Equal(t, xv, tv[(c.trajRows-1)*n*2:])
			if c.start > 0 {
				// ≈ 4200 values of N(0, start²): the relative standard error of the standard
				// deviation is 1/sqrt(2·3000) ≈ 1.3%, 5% is ≈ 4 standard errors.
				assert.InDelta(t, 1, sd(tv[:n*2])/c.start, 0.05, "the start is N(0, %g² I)", c.start)
			}

			st := readStats(t, stats)
			for _, k := range []string{"method", "device", "n", "d", "steps", "method_steps", "score_evals", "wall_seconds", "seed", "nan_chains"} {
				assert.Contains(t, st, k)
			}
			assert.Equal(t, c.method, st["method"])
			assert.Equal(t, "cpu", st["device"])
			assert.Equal(t, float64(n), st["n"])
			assert.Equal(t, 2.0, st["d"])
			assert.Equal(t, float64(steps), st["steps"])
			assert.Equal(t, float64(c.trajRows-1), st["method_steps"])
			assert.Equal(t, float64(c.evals), st["score_evals"])
			assert.Equal(t, float64(c.evals*n), st["score_evals_total"])
			assert.Equal(t, 5.0, st["seed"])
			assert.Equal(t, 0.0, st["nan_chains"])
			_, hasAcc := st["acceptance_rate"]
			assert.Equal(t, c.accept, hasAcc)
			if c.accept {
				a := st["acceptance_rate"].(float64)
				assert.True(t, a > 0.2 && a <= 1, "acceptance %g", a)
			}
			clamped, hasClamped := st["clamped"]
			assert.Equal(t, c.method == "lim", hasClamped)
			if hasClamped && len(c.extra) == 0 {
				assert.Equal(t, 0.0, clamped, "no clamp by default")
			}
			rej, hasRej := st["rejection_rate"]
			assert.Equal(t, c.method == "metropolis-constrained", hasRej)
			if hasRej {
				// The box cuts into the noised mixture at large τ: some proposals leave it.
				r := rej.(float64)
				assert.True(t, r > 0 && r < 0.5, "rejection rate %g", r)
				dom, err := loadConstraint(filepath.Join(dir, "box.json"))
				require.NoError(t, err)
				for i := 0; i < len(tv); i += 2 {
					require.True(t, dom.Contains(tv[i:i+2]), "trajectory point %d = %v leaves the box", i/2, tv[i:i+2])
				}
			}
			// The diffusion-based methods must put the modes' weights right: TV error ≤ 0.06
			// (exact samples: ≈ 0.01 at n = 1500, standard deviation ≈ 0.008).
			if c.modes {
				assert.Less(t, solvers.ModeWeightError(xv, 2, g), 0.06)
			}
		})
	}
}

// writeEmpirical writes a data set of 40 points on a 5 × 8 grid of spacing 1 (its mean at the
// origin) and an empirical target file naming it; it returns the target file and the points.
func writeEmpirical(t *testing.T, dir string) (string, []float64) {
	t.Helper()
	var pts []float64
	for i := 0; i < 5; i++ {
		for j := 0; j < 8; j++ {
			pts = append(pts, float64(i)-2, float64(j)-3.5)
		}
	}
	x, err := tensor.FromF64(pts, 40, 2)
	require.NoError(t, err)
	require.NoError(t, tensor.WriteNpy(filepath.Join(dir, "pts.npy"), x))
	return writeFile(t, dir, "e.json", `{"kind": "empirical", "data": "pts.npy"}`), pts
}

// nearest is the distance from x (2 values) to the nearest of the points.
func nearest(x, pts []float64) float64 {
	best := math.Inf(1)
	for i := 0; i < len(pts); i += 2 {
		best = math.Min(best, math.Hypot(x[0]-pts[i], x[1]-pts[i+1]))
	}
	return best
}

// With the exact denoiser of a data set, the noise-level and low-dimension-grid flow samplers end
// on a denoiser output at a small noise level (σ_min = 0.002, or t = 1 − δ, δ = 0.001), where the
// softmax weights of the points are one-hot up to exp(−(d₂² − d₁²)/(2σ²)): every sample is a
// data point (memorisation, docs/math.md §5.1). rf's uniform grid ends at σ = 1/K = 0.05, where
// chains near the bisector of two points end between them: it is not checked, nor is ipndm (its
// last step extrapolates the derivatives, it does not land on D), nor are ddpm and
// metropolis-constrained (their last step adds noise); those only run: shapes and counts. Nor is
// lim: under α-stable noise the posterior over the points decays polynomially, not like a
// Gaussian, so a chain that the 20-step grid leaves away from the data lands between points
// (measured at α = 1.8: 22 of 200 samples off the data at 20 steps, 3 at 60, none at 200).
func TestSampleEmpiricalTarget(t *testing.T) {
	dir := t.TempDir()
	ej, pts := writeEmpirical(t, dir)
	box := writeFile(t, dir, "box.json", `{"kind": "box", "lo": [-3, -5], "hi": [3, 5]}`)
	const n, steps = 200, 20
	for _, m := range append(append([]string{"ddpm", "metropolis-constrained"}, veMethods...), rfMethods...) {
		t.Run(m, func(t *testing.T) {
			out, traj, stats := filepath.Join(dir, m+".npy"), filepath.Join(dir, m+"-tr.npy"), filepath.Join(dir, m+".json")
			args := []string{"sample", "--target", ej, "--method", m, "--n", strconv.Itoa(n), "--steps", strconv.Itoa(steps),
				"--seed", "3", "--dtype", "f64", "--out", out, "--trajectory", traj, "--stats", stats, "--quiet"}
			if m == "metropolis-constrained" {
				args = append(args, "--constraint", box)
			}
			code, _, stderr := runCLI(args...)
			require.Equal(t, 0, code, "stderr %s", stderr)
			assert.Empty(t, stderr)
			x, xv := readSampleNpy(t, out)
			assert.Equal(t, []int{n, 2}, x.Shape())
			st := readStats(t, stats)
			tr, _ := readSampleNpy(t, traj)
			assert.Equal(t, []int{int(st["method_steps"].(float64)) + 1, n, 2}, tr.Shape())
			assert.LessOrEqual(t, st["score_evals"].(float64), float64(steps))
			assert.Equal(t, 0.0, st["nan_chains"])
			if !contains(veMethods, m) && m != "rf-lowdim" && m != "rf-stochastic" || m == "ipndm" || m == "lim" {
				return
			}
			far := 0
			for i := 0; i < len(xv); i += 2 {
				if nearest(xv[i:i+2], pts) > 1e-6 {
					far++
				}
			}
			assert.Zero(t, far, "samples that are not data points")
		})
	}
}

// --steps K is the budget: a method's evaluations per chain never exceed it, and are K, or
// 2⌊(K+1)/2⌋ − 1 for the two-stage methods, mala K + 1 (its start), rtk-* a multiple of the
// segments.
func TestSampleBudget(t *testing.T) {
	dir, tj := sampleDir(t)
	box := filepath.Join(dir, "box.json")
	methods := append(append(append([]string{"ula", "uld", "ddpm", "metropolis-constrained"}, veMethods...), rfMethods...),
		"rtk-mala", "rtk-uld")
	for _, m := range methods {
		for _, K := range []int{1, 2, 3, 4, 7, 10, 16, 33} {
			switch {
			case m == "rtk-mala" && K < 15, m == "rtk-uld" && K < 10, strings.HasPrefix(m, "rf-") && K < 2:
				continue // refused: TestSampleBadInput
			}
			stats := filepath.Join(dir, "s.json")
			args := []string{"sample", "--target", tj, "--method", m, "--n", "3", "--steps", strconv.Itoa(K),
				"--out", filepath.Join(dir, "x.npy"), "--stats", stats, "--quiet"}
			if m == "metropolis-constrained" {
				args = append(args, "--constraint", box)
			}
			code, _, stderr := runCLI(args...)
			require.Equal(t, 0, code, "%s K=%d: %s", m, K, stderr)
			st := readStats(t, stats)
			evals := int(st["score_evals"].(float64))
			want := K
			switch {
			case contains(twoStageMethods, m):
				want = twoStage(K)
			case strings.HasPrefix(m, "rtk-"):
				want = K - K%5
			}
			assert.Equal(t, want, evals, "%s K=%d", m, K)
			assert.LessOrEqual(t, evals, K, "%s K=%d", m, K)
		}
	}
}

func TestSampleSameSeedSameSamples(t *testing.T) {
	dir, tj := sampleDir(t)
	for _, m := range []string{"rtk-uld", "edm-sde", "ddim", "rf-stochastic", "metropolis-constrained"} {
		t.Run(m, func(t *testing.T) {
			run := func(name, seed string, extra ...string) []float64 {
				out := filepath.Join(dir, name)
				args := append([]string{"sample", "--target", tj, "--method", m, "--n", "50", "--steps", "20",
					"--seed", seed, "--out", out, "--quiet", "--dtype", "f64"}, extra...)
				if m == "metropolis-constrained" {
					args = append(args, "--constraint", filepath.Join(dir, "box.json"))
				}
				code, _, stderr := runCLI(args...)
				require.Equal(t, 0, code, stderr)
				assert.Empty(t, stderr)
				x, v := readSampleNpy(t, out)
				assert.Equal(t, tensor.F64, x.DType())
				return v
			}
			var extra []string
			if m == "ddim" {
				extra = []string{"--eta", "1"} // ancestral: random
			}
			a, b, c := run("a.npy", "3", extra...), run("b.npy", "3", extra...), run("c.npy", "4", extra...)
			assert.Equal(t, a, b)
			assert.NotEqual(t, a, c)
		})
	}
}

// The method flags change what they say: a different grid, η, churn or horizon gives different
// samples, and the defaults written out give the same ones.
func TestSampleMethodFlags(t *testing.T) {
	dir, tj := sampleDir(t)
	run := func(method string, extra ...string) []float64 {
		out := filepath.Join(dir, "x.npy")
		args := append([]string{"sample", "--target", tj, "--method", method, "--n", "40", "--steps", "12",
			"--seed", "9", "--out", out, "--quiet", "--dtype", "f64"}, extra...)
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
		_, v := readSampleNpy(t, out)
		return v
	}
	box := []string{"--constraint", filepath.Join(dir, "box.json")}
	for _, c := range []struct {
		method                  string
		base, defaults, changed []string
	}{
		{"euler", nil, []string{"--schedule", "edm", "--sigma-min", "0.002", "--sigma-max", "80", "--rho", "7"}, []string{"--schedule", "logsnr"}},
		{"heun", nil, nil, []string{"--sigma-max", "20"}},
		{"dpm2", nil, nil, []string{"--sigma-min", "0.01"}},
		{"dpmpp-2m", nil, nil, []string{"--rho", "3"}},
		{"dpmpp-3m", nil, nil, []string{"--classic"}},
		{"ipndm", nil, []string{"--schedule", "edm"}, []string{"--classic"}},
		{"ddim", nil, []string{"--eta", "0"}, []string{"--eta", "0.5"}},
		{"ddim", nil, nil, []string{"--schedule", "time"}},
		{"edm-sde", nil, []string{"--churn", "40", "--s-tmin", "0.05", "--s-tmax", "50", "--s-noise", "1"}, []string{"--churn", "1"}}, // γ = min(S_churn/6, √2 − 1)
		{"edm-sde", nil, nil, []string{"--s-tmin", "0"}},
		{"edm-sde", nil, nil, []string{"--s-tmax", "inf", "--s-noise", "1.003"}},
		{"rf-lowdim", nil, []string{"--t-min", "0.001"}, []string{"--t-min", "0.01"}},
		{"rf-stochastic", nil, []string{"--t-min", "0.001"}, []string{"--t-min", "0.2"}},
		{"ddpm", nil, []string{"--schedule", "geometric", "--horizon", "5", "--t-min", "0.001"}, []string{"--schedule", "uniform"}},
		{"metropolis-constrained", box, nil, []string{"--horizon", "5"}},
		{"lim", nil, []string{"--alpha", "1.8", "--eta", "0", "--schedule", "edm", "--sigma-max", "80"}, []string{"--alpha", "1.5"}},
		{"lim", []string{"--eta", "1"}, []string{"--clamp", "0"}, []string{"--clamp", "0.5"}},
		{"lim", nil, nil, []string{"--alpha", "2"}},
	} {
		base := run(c.method, c.base...)
		assert.Equal(t, base, run(c.method, append(c.base, c.defaults...)...), "%s %v", c.method, c.defaults)
		assert.NotEqual(t, base, run(c.method, append(c.base, c.changed...)...), "%s %v", c.method, c.changed)
	}
}

// The default horizon of metropolis-constrained is 0.6·D² of the box: stated explicitly it gives
// the same samples.
func TestSampleConstrainedDefaultHorizon(t *testing.T) {
	dir, tj := sampleDir(t)
	run := func(extra ...string) []float64 {
		out := filepath.Join(dir, "x.npy")
		args := append([]string{"sample", "--target", tj, "--method", "metropolis-constrained", "--n", "30", "--steps", "8",
			"--constraint", filepath.Join(dir, "box.json"), "--out", out, "--quiet", "--dtype", "f64"}, extra...)
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
		_, v := readSampleNpy(t, out)
		return v
	}
	D2 := 13.0*13 + 8*8 // the box [-7, 6] × [-4, 4]
	assert.Equal(t, run(), run("--horizon", strconv.FormatFloat(0.6*D2, 'g', -1, 64)))
}

// --init gives the start of metropolis-constrained: a start of n copies of one point inside a
// polytope (which has no default start) is row 0 of the trajectory, and no state ever leaves the
// polytope.
func TestSampleConstrainedInitPolytope(t *testing.T) {
	dir, tj := sampleDir(t)
	// The triangle x ≥ −6, y ≥ −3, x + y ≤ 5.
	poly := writeFile(t, dir, "tri.json", `{"kind": "polytope", "a": [[-1, 0], [0, -1], [1, 1]], "b": [6, 3, 5]}`)
	const n = 100
	start := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		start = append(start, 0.5, -0.25)
	}
	x0, err := tensor.FromF64(start, n, 2)
	require.NoError(t, err)
	initFile := filepath.Join(dir, "x0.npy")
	require.NoError(t, tensor.WriteNpy(initFile, x0))
	traj, stats := filepath.Join(dir, "tr.npy"), filepath.Join(dir, "s.json")
	code, _, stderr := runCLI("sample", "--target", tj, "--method", "metropolis-constrained", "--n", strconv.Itoa(n),
		"--steps", "40", "--horizon", "4", "--constraint", poly, "--init", initFile, "--out", filepath.Join(dir, "x.npy"),
		"--trajectory", traj, "--stats", stats, "--quiet")
	require.Equal(t, 0, code, stderr)
	_, tv := readSampleNpy(t, traj)
	assert.Equal(t, start, tv[:2*n])
	dom, err := loadConstraint(poly)
	require.NoError(t, err)
	for i := 0; i < len(tv); i += 2 {
		require.True(t, dom.Contains(tv[i:i+2]), "point %d = %v", i/2, tv[i:i+2])
	}
	r := readStats(t, stats)["rejection_rate"].(float64)
	assert.Greater(t, r, 0.0, "the triangle cuts through the mixture")
}

func TestSamplePlotIsAPNG(t *testing.T) {
	dir, tj := sampleDir(t)
	ej, _ := writeEmpirical(t, dir)
	decode := func(p string) (w, h int) {
		f, err := os.Open(p)
		require.NoError(t, err)
		defer f.Close()
		img, err := png.Decode(f)
		require.NoError(t, err)
		return img.Bounds().Dx(), img.Bounds().Dy()
	}
	one := filepath.Join(dir, "one.json")
	require.NoError(t, os.WriteFile(one, []byte(`{"kind": "gmm", "weights": [1, 2], "means": [[-2], [3]], "covariance": "full", "covs": [[[1]], [[0.5]]]}`), 0o644))
	pts, _ := tensor.FromF64([]float64{-1, 0, 0.5, 2, 2.5}, 5, 1)
	require.NoError(t, tensor.WriteNpy(filepath.Join(dir, "pts1.npy"), pts))
	emp1 := filepath.Join(dir, "emp1.json")
	require.NoError(t, os.WriteFile(emp1, []byte(`{"kind": "empirical", "data": "pts1.npy"}`), 0o644))
	box1 := filepath.Join(dir, "box1.json")
	require.NoError(t, os.WriteFile(box1, []byte(`{"kind": "box", "lo": [-4], "hi": [5]}`), 0o644))
	for _, c := range []struct {
		name   string
		args   []string
		panes  int
		aspect float64 // of one panel
	}{
		{"1-D gmm: a histogram", []string{"--target", one, "--method", "mala"}, 1, 1.5},
		{"1-D gmm with trajectories", []string{"--target", one, "--method", "heun", "--trajectory", filepath.Join(dir, "tr.npy")}, 2, 1.5},
		{"1-D data set", []string{"--target", emp1, "--method", "rf"}, 1, 1.5},
		{"1-D constrained", []string{"--target", one, "--method", "metropolis-constrained", "--constraint", box1}, 1, 1.5},
		{"gmm", []string{"--target", tj, "--method", "ddpm"}, 1, 0},
		{"gmm with trajectories", []string{"--target", tj, "--method", "heun", "--trajectory", filepath.Join(dir, "tr.npy")}, 2, 0},
		{"empirical with trajectories", []string{"--target", ej, "--method", "rf-stochastic", "--trajectory", filepath.Join(dir, "tr.npy")}, 2, 0},
		{"constrained", []string{"--target", tj, "--method", "metropolis-constrained", "--constraint", filepath.Join(dir, "box.json"),
			"--trajectory", filepath.Join(dir, "tr.npy")}, 2, 0},
		{"euler with trajectories", []string{"--target", tj, "--method", "euler", "--trajectory", filepath.Join(dir, "tr.npy")}, 2, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "p.png")
			args := append([]string{"sample", "--n", "300", "--steps", "20", "--out", filepath.Join(dir, "x.npy"), "--plot", p, "--quiet"}, c.args...)
			code, _, stderr := runCLI(args...)
			require.Equal(t, 0, code, stderr)
			w, h := decode(p)
			assert.Greater(t, h, 100)
			aspect := c.aspect
			if aspect == 0 {
				aspect = 1 // square panels in two dimensions
			}
			assert.InDelta(t, float64(c.panes)*aspect, float64(w)/float64(h), 0.01, "%d panels", c.panes)
		})
	}
}

// domainOutline draws the boundary: every vertex of a clipped polytope lies on the boundary
// (inside, with some constraint active), and a ball's outline is at its radius.
func TestDomainOutline(t *testing.T) {
	tri, err := ops.NewPolytope([][]float64{{-1, 0}, {0, -1}, {1, 1}}, []float64{6, 3, 5})
	require.NoError(t, err)
	lines := domainOutline(tri, -10, 10, -10, 10)
	require.Len(t, lines, 1)
	require.Len(t, lines[0], 4, "a triangle, closed")
	for _, v := range lines[0] {
		s := []float64{-v.X - 6, -v.Y - 3, v.X + v.Y - 5}
		assert.LessOrEqual(t, max(s[0], s[1], s[2]), 1e-12)
		assert.InDelta(t, 0, max(s[0], s[1], s[2]), 1e-12, "vertex %v on the boundary", v)
	}
	ball, err := ops.NewBall([]float64{1, 2, 3}, 2)
	require.NoError(t, err)
	for _, v := range domainOutline(ball, -10, 10, -10, 10)[0] {
		assert.InDelta(t, 2, math.Hypot(v.X-1, v.Y-2), 1e-12)
	}
	cube, err := ops.NewPolytope([][]float64{{1, 0, 0}}, []float64{1})
	require.NoError(t, err)
	assert.Nil(t, domainOutline(cube, -10, 10, -10, 10), "no outline of a polytope in d > 2")
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
	emp, _ := writeEmpirical(t, dir)
	empMix := writeFile(t, dir, "emix.json", `{"kind": "empirical", "data": "pts.npy", "mixture": {"weights": [1, 1], "scales": [1, 4]}}`)
	bad := writeFile(t, dir, "bad.json", `{"kind": "gmm", "weights": [-1], "means": [[0, 0]], "covariance": "isotropic", "vars": [1]}`)
	box := filepath.Join(dir, "box.json")
	constraintFile := func(name, text string) string { return writeFile(t, dir, name, text) }
	box3 := constraintFile("box3.json", `{"kind": "box", "lo": [0, 0, 0], "hi": [1, 1, 1]}`)
	unknownField := constraintFile("c1.json", `{"kind": "box", "lo": [0, 0], "hi": [1, 1], "radius": 2}`)
	badJSON := constraintFile("c2.json", `{"kind": "ball", "center": [0, 0], "radius": }`)
	badKind := constraintFile("c3.json", `{"kind": "sphere", "center": [0, 0], "radius": 1}`)
	emptyBox := constraintFile("c4.json", `{"kind": "box", "lo": [0, 2], "hi": [1, 1]}`)
	tri := constraintFile("tri.json", `{"kind": "polytope", "a": [[-1, 0], [0, -1], [1, 1]], "b": [6, 3, 5]}`)
	initOutside, err := tensor.FromF64([]float64{0, 0, 9, 9, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 2)
	require.NoError(t, err)
	outsideFile := filepath.Join(dir, "outside.npy")
	require.NoError(t, tensor.WriteNpy(outsideFile, initOutside))
	shortInit, err := tensor.FromF64([]float64{0, 0}, 1, 2)
	require.NoError(t, err)
	shortFile := filepath.Join(dir, "short.npy")
	require.NoError(t, tensor.WriteNpy(shortFile, shortInit))

	out := filepath.Join(dir, "x.npy")
	old := []byte("an existing output")
	require.NoError(t, os.WriteFile(out, old, 0o644))
	base := func(extra ...string) []string {
		return append([]string{"sample", "--target", tj, "--method", "ula", "--n", "10", "--steps", "10", "--out", out}, extra...)
	}
	with := func(flag, value string, extra ...string) []string {
		args := base()
		for i := range args {
			if args[i] == flag {
				args[i+1] = value
				return append(args, extra...)
			}
		}
		return append(append(args, flag, value), extra...)
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
	method := func(m string, extra ...string) []string { return with("--method", m, extra...) }
	constrained := func(extra ...string) []string { return method("metropolis-constrained", extra...) }
	before := dirListing(t, dir)
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"no target", without("--target"), []string{"--target"}},
		{"missing target file", with("--target", filepath.Join(dir, "none.json")), []string{"--target", "none.json"}},
		{"bad target", with("--target", bad), []string{"--target", "weights"}},
		{"no method", without("--method"), []string{"--method", "rtk-mala", "metropolis-constrained"}},
		{"unknown method", method("foo"), []string{"--method", "unknown", "ula, mala, uld, rtk-mala, rtk-uld, ddpm, ddim, euler, heun, dpm2, dpmpp-2m, dpmpp-3m, ipndm, edm-sde, lim, rf, rf-lowdim, rf-stochastic, metropolis-constrained, gfdm, gfdm-ode"}},
		{"hurst out of range", method("gfdm", "--hurst", "1"), []string{"--hurst must be in (0, 1)"}},
		{"k out of range", method("gfdm-ode", "--k", "0"), []string{"--k must be in [1, 5]"}},
		{"gamma max ≤ 1", method("gfdm", "--gamma-max", "1"), []string{"--gamma-max must be a finite number > 1"}},
		{"gamma max NaN", method("gfdm", "--gamma-max", "NaN"), []string{"--gamma-max must be a finite number > 1"}},
		{"hurst for heun", method("heun", "--hurst", "0.3"), []string{"--hurst applies to gfdm, gfdm-ode"}},
		{"augmented trajectory for heun", method("heun", "--augmented-trajectory", filepath.Join(dir, "a.npy")), []string{"--augmented-trajectory applies to gfdm, gfdm-ode"}},
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
		{"step size for ddpm", method("ddpm", "--step-size", "0.1"), []string{"--step-size", "ddpm"}},
		{"segments for ula", with("--segments", "3"), []string{"--segments", "ula"}},
		{"budget too small for rtk", method("rtk-mala", "--segments", "5"), []string{"--steps 10", "rtk-mala", "at least 15"}},
		{"budget too small for rf-lowdim", method("rf-lowdim", "--steps", "1"), []string{"--steps 1", "rf-lowdim", "a budget ≥ 2"}},
		{"bad ddpm schedule", method("ddpm", "--schedule", "cosine"), []string{"--schedule", "geometric or uniform", "cosine"}},
		{"ve schedule for ddpm", method("ddpm", "--schedule", "edm"), []string{"--schedule", "geometric or uniform"}},
		{"ddpm schedule for euler", method("euler", "--schedule", "geometric"), []string{"--schedule", "edm, logsnr, time", "euler"}},
		{"schedule for rf", method("rf", "--schedule", "edm"), []string{"--schedule", "rf"}},
		{"sigma-min above sigma-max", method("heun", "--sigma-min", "5", "--sigma-max", "1"), []string{"--sigma-min 5", "--sigma-max 1"}},
		{"sigma-min above the default sigma-max", method("euler", "--sigma-min", "80"), []string{"--sigma-min 80", "--sigma-max 80"}},
		{"negative sigma-max", method("euler", "--sigma-max", "-1"), []string{"--sigma-max", "> 0"}},
		{"sigma-min for ddpm", method("ddpm", "--sigma-min", "0.01"), []string{"--sigma-min", "ddpm"}},
		{"rho with logsnr", method("dpmpp-2m", "--schedule", "logsnr", "--rho", "3"), []string{"--rho", "edm", "logsnr"}},
		{"eta for euler", method("euler", "--eta", "0.5"), []string{"--eta", "ddim", "euler"}},
		{"eta out of range", method("ddim", "--eta", "1.5"), []string{"--eta", "[0, 1]"}},
		{"eta out of range for lim", method("lim", "--eta", "-0.5"), []string{"--eta", "[0, 1]"}},
		{"alpha for ddim", method("ddim", "--alpha", "1.5"), []string{"--alpha", "lim", "ddim"}},
		{"alpha too small", method("lim", "--alpha", "1"), []string{"--alpha", "(1, 2]", "got 1"}},
		{"alpha too large", method("lim", "--alpha", "2.5"), []string{"--alpha", "(1, 2]"}},
		{"alpha NaN", method("lim", "--alpha", "NaN"), []string{"--alpha", "(1, 2]"}},
		{"clamp for ddim", method("ddim", "--clamp", "20"), []string{"--clamp", "lim", "ddim"}},
		{"negative clamp", method("lim", "--clamp", "-1"), []string{"--clamp", "≥ 0"}},
		{"infinite clamp", method("lim", "--clamp", "inf"), []string{"--clamp", "finite"}},
		{"lim steps", method("lim", "--steps", "0"), []string{"--steps"}},
		{"lim with a mixture data set", method("lim", "--target", empMix), []string{"lim", "scale mixture"}},
		{"churn for heun", method("heun", "--churn", "10"), []string{"--churn", "edm-sde", "heun"}},
		{"zero churn", method("edm-sde", "--churn", "0"), []string{"--churn", "> 0"}},
		{"s-tmax below s-tmin", method("edm-sde", "--s-tmin", "60"), []string{"--s-tmax 50", "--s-tmin 60"}},
		{"classic for euler", method("euler", "--classic"), []string{"--classic", "dpmpp-3m, ipndm", "euler"}},
		{"t-min for rf", method("rf", "--t-min", "0.01"), []string{"--t-min", "rf-lowdim", "--method rf"}},
		{"t-min too large for rf-lowdim", method("rf-lowdim", "--t-min", "0.7"), []string{"--t-min", "(0, 1/2)"}},
		{"horizon for euler", method("euler", "--horizon", "3"), []string{"--horizon", "euler"}},
		{"constraint for ula", with("--constraint", box), []string{"--constraint", "metropolis-constrained", "ula"}},
		{"init file for euler", method("euler", "--init", outsideFile), []string{"--init must be exact or prior for euler"}},
		{"init for mala", method("mala", "--init", "exact"), []string{"--init applies to", "not to --method mala"}},
		{"init exact for metropolis", constrained("--constraint", box, "--init", "exact"), []string{"--init exact", "from a file"}},
		{"no constraint", constrained(), []string{"metropolis-constrained", "--constraint"}},
		{"missing constraint file", constrained("--constraint", filepath.Join(dir, "none.json")), []string{"--constraint", "none.json", "cannot read"}},
		{"constraint: unknown field", constrained("--constraint", unknownField), []string{"--constraint", "c1.json", `unknown field "radius"`, "kind, lo, hi"}},
		{"constraint: invalid JSON", constrained("--constraint", badJSON), []string{"--constraint", "c2.json", "invalid JSON", "line 1"}},
		{"constraint: unknown kind", constrained("--constraint", badKind), []string{"--constraint", `"sphere"`, "box"}},
		{"constraint: lo above hi", constrained("--constraint", emptyBox), []string{"--constraint", "box", "coordinate 1"}},
		{"constraint: dimension", constrained("--constraint", box3), []string{"--constraint", "dimension 3", "target 2"}},
		{"polytope without init", constrained("--constraint", tri), []string{"polytope", "--init"}},
		{"init outside the domain", constrained("--constraint", box, "--init", outsideFile), []string{"--init", "1 of 10", "outside the box", "row 1 = [9 9]"}},
		{"init of the wrong shape", constrained("--constraint", box, "--init", shortFile), []string{"--init", "shape [1 2]", "(10, 2)"}},
		{"missing init file", constrained("--constraint", box, "--init", filepath.Join(dir, "none.npy")), []string{"--init", "none.npy"}},
		{"langevin on empirical", with("--target", emp), []string{"--method ula", "gmm"}},
		{"rtk on empirical", method("rtk-uld", "--target", emp, "--steps", "20"), []string{"--method rtk-uld", "gmm"}},
		{"stray argument", append(base(), "extra"), []string{"extra"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(c.args...)
			assert.Equal(t, 2, code, "stderr %q", stderr)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, append([]string{"scorekit sample:"}, c.want...)...)
		})
	}
	assert.ElementsMatch(t, before, dirListing(t, dir), "nothing written")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, old, got, "the existing output is untouched")
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
		"⌊K/S⌋ − 1", "geometric", "--trajectory", "--stats", "acceptance_rate", "nan_chains",
		"ancestral sampler of the noise-level grids is ddim", "⌊(K+1)/2⌋", "2n − 1", "n = K + 1", "edm, logsnr or time", "--sigma-max", "default 80",
		"--churn", "default 40", "rejection_rate", "method_steps", "0.6·D²", `"kind": "polytope"`,
		"--alpha A", "default 1.8; 2 is ddim", "--clamp C", "clamped (lim)"} {
		assert.Contains(t, stdout, want)
	}
	for _, m := range solvers.MethodNames() {
		documented := strings.Contains(stdout, "\n  "+m+" ") || strings.Contains(stdout, "\n  "+m+"\n")
		assert.True(t, documented, "method %s is documented", m)
	}
}

// gfdm's augmented trajectory: (n, N, d, K + 1), its component 0 the --trajectory rows 0 … n−1.
func TestSampleGFDMAugmentedTrajectory(t *testing.T) {
	dir := t.TempDir()
	tg := writeFile(t, dir, "t.json", `{"kind": "gmm", "weights": [1, 2], "means": [[-2, 0], [2, 1]], "covariance": "isotropic", "vars": [0.3, 0.3]}`)
	out, tr, aug := filepath.Join(dir, "x.npy"), filepath.Join(dir, "tr.npy"), filepath.Join(dir, "aug.npy")
	code, _, stderr := runCLI("sample", "--target", tg, "--method", "gfdm", "--k", "2", "--n", "50", "--steps", "12",
		"--dtype", "f64", "--out", out, "--trajectory", tr, "--augmented-trajectory", aug, "--quiet")
	require.Equal(t, 0, code, stderr)
	at, err := tensor.ReadNpy(aug)
	require.NoError(t, err)
	tt, err := tensor.ReadNpy(tr)
	require.NoError(t, err)
	rows := tt.Dim(0) - 1
	require.Equal(t, []int{rows, 50, 2, 3}, at.Shape())
	a, _ := at.F64()
	x, _ := tt.F64()
	for i := 0; i < rows*50*2; i++ {
		require.Equal(t, x[i], a[i*3], "entry %d", i)
	}
}

// gfdm's size check counts the sampler's float64 state on the device besides the samples: K + 1
// values per coordinate (Heun's predictor as many again), the statistics and the denoiser's
// values, and on the CPU a step's K + 1 normals. 2^31 chains in 2-D, f32, K = 3, gfdm-ode on the
// CPU: 8 bytes of samples and 14 · 2 · 8 of state per chain, 464 GiB: beyond any host here, and
// the message names the whole.
func TestSampleGFDMCountsItsState(t *testing.T) {
	if hostAvailableMemory() == 0 {
		t.Skip("host memory unknown (no /proc/meminfo): the size check does not apply")
	}
	dir := t.TempDir()
	tg := writeFile(t, dir, "t.json", `{"kind": "gmm", "weights": [1, 2], "means": [[-2, 0], [2, 1]], "covariance": "isotropic", "vars": [0.3, 0.3]}`)
	out := filepath.Join(dir, "x.npy")
	const n = int64(1) << 31
	for _, c := range []struct {
		method string
		planes int64
	}{{"gfdm-ode", 14}, {"gfdm", 10}} {
		code, _, stderr := runCLI("sample", "--target", tg, "--method", c.method, "--k", "3", "--n", strconv.FormatInt(n, 10),
			"--steps", "50", "--dtype", "f32", "--device", "cpu", "--quiet", "--out", out)
		assert.Equal(t, 2, code, c.method)
		want := tensor.HumanBytes(n * (2*4 + c.planes*2*8))
		requireOneLine(t, stderr, "plus the sampler's float64 state ("+strconv.FormatInt(c.planes, 10)+" values per coordinate) needs "+want, "available")
		assert.NoFileExists(t, out)
	}
}
