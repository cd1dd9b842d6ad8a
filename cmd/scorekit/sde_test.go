package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// simulate writes the terminal states (N, d), the trajectory (K/E + 1, N, d) starting at x0 and
// ending at the terminal states, the fan plot and the statistics; the terminal states are the
// library's reversible Heun solve of the spec (bit for bit in f64), and their mean is the OU
// closed form μ + (x0 − μ)e^{−θT} within the Monte-Carlo tolerance: 4.5 standard errors
// σ_T/√N per coordinate (a false failure about once in 10^5 runs for the two coordinates;
// the seed is fixed, so it is a deterministic check, not tuned to pass) plus 1e-4 for the
// discretisation (its bias on the mean of this linear SDE is O(h²) ≈ 1e-4 at h = 0.01).
func TestSDESimulateOU(t *testing.T) {
	dir := t.TempDir()
	const theta, mu, sigma, T, n, steps = 1.2, 0.5, 0.7, 1.0, 4000, 100
	x0 := []float64{2, -1}
	spec := writeFile(t, dir, "ou.json", fmt.Sprintf(`{"family": "ou", "theta": %g, "mu": %g, "sigma": %g, "x0": [2, -1],
		"paths": %d, "steps": %d, "horizon": %g, "seed": 11, "save_every": 4, "dtype": "f64", "device": "cpu"}`,
		theta, mu, sigma, n, steps, T))
	out, tr, png, stats := filepath.Join(dir, "x.npy"), filepath.Join(dir, "tr.npy"), filepath.Join(dir, "fan.png"),
		filepath.Join(dir, "s.json")
	code, stdout, stderr := runCLI("sde", "simulate", "--spec", spec, "--out", out, "--trajectory", tr, "--plot", png,
		"--stats", stats)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	shape, dt, x := readNpy(t, out)
	assert.Equal(t, []int{n, 2}, shape)
	assert.Equal(t, tensor.F64, dt)
	tshape, _, trv := readNpy(t, tr)
	assert.Equal(t, []int{steps/4 + 1, n, 2}, tshape)
	for c := range n {
		assert.Equal(t, x0, trv[2*c:2*c+2], "row 0 is x0")
	}
	assert.Equal(t, x, trv[len(trv)-2*n:], "the last row is the terminal state")
	requirePNG(t, png)

	fam, err := solvers.NewOUFamily(theta, mu, sigma, 2)
	require.NoError(t, err)
	start := make([]float64, 0, 2*n)
	for range n {
		start = append(start, x0...)
	}
	want, err := solvers.ReversibleHeun{SDE: fam, Horizon: T, Steps: steps, Seed: 11}.Solve(start, n)
	require.NoError(t, err)
	assert.Equal(t, want.Y, x, "the terminal states are the library's solve")

	var st sdeStats
	data, err := os.ReadFile(stats)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &st))
	sd := sigma * math.Sqrt(-math.Expm1(-2*theta*T)/(2*theta))
	for j := range 2 {
		exact := mu + (x0[j]-mu)*math.Exp(-theta*T)
		tol := 4.5*sd/math.Sqrt(n) + 1e-4
		t.Logf("coordinate %d: mean %.5f, exact %.5f (tolerance %.4f); variance %.5f, exact %.5f",
			j, st.TerminalMean[j], exact, tol, st.TerminalVar[j], sd*sd)
		assert.InDelta(t, exact, st.TerminalMean[j], tol, "coordinate %d", j)
		// The variance within 6 of its standard errors (√(2/N) σ² for a normal law).
		assert.InDelta(t, sd*sd, st.TerminalVar[j], 6*math.Sqrt(2.0/n)*sd*sd, "coordinate %d", j)
	}
	assert.Equal(t, "ou", st.Family)
	assert.Equal(t, 4, st.SaveEvery)
}

// The defaults: f32 outputs, no trajectory unless asked, the fan of gbm and gmm-langevin, and
// --dtype overriding the spec.
func TestSDESimulateFamiliesAndDefaults(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, spec string
		d          int
	}{
		{"gbm", `{"family": "gbm", "mu": 0.1, "sigma": 0.4, "paths": 50, "steps": 30, "horizon": 1}`, 1},
		{"gmm", `{"family": "gmm-langevin", "means": [[-2, 0], [2, 0]], "vars": [0.5, 0.5], "paths": 20, "steps": 40, "horizon": 2}`, 2},
	} {
		spec := writeFile(t, dir, c.name+".json", c.spec)
		out, png := filepath.Join(dir, c.name+".npy"), filepath.Join(dir, c.name+".png")
		code, _, stderr := runCLI("sde", "simulate", "--spec", spec, "--out", out, "--plot", png, "--quiet")
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, stderr)
		shape, dt, x := readNpy(t, out)
		assert.Equal(t, tensor.F32, dt, c.name)
		assert.Equal(t, []int{map[string]int{"gbm": 50, "gmm": 20}[c.name], c.d}, shape, c.name)
		if c.name == "gbm" {
			for _, v := range x {
				assert.Greater(t, v, 0.0, "a geometric Brownian motion from 1 stays positive")
			}
		}
		requirePNG(t, png)
		out64 := filepath.Join(dir, c.name+"64.npy")
		code, _, stderr = runCLI("sde", "simulate", "--spec", spec, "--out", out64, "--dtype", "f64", "--quiet")
		require.Equal(t, 0, code, stderr)
		_, dt, x64 := readNpy(t, out64)
		assert.Equal(t, tensor.F64, dt)
		for i := range x {
			// --plot traces every step, and the fused path rounds the float32 state at each: 30
			// (gbm) or 40 (gmm) roundings of 2⁻²⁴ relative, carried by the dynamics.
			if c.name == "gmm" { // coordinates near 0: bounded absolutely
				assert.InDelta(t, x64[i], x[i], 1e-5*(1+math.Abs(x64[i])), "%s: f32 within 40 roundings of f64", c.name)
			} else {
				assert.InEpsilon(t, x64[i], x[i], 2*30*0x1p-24, "%s: f32 within 30 roundings of f64", c.name)
			}
		}
	}
}

// parseGradText parses grad's text output into name → value, checking its layout.
func parseGradText(t *testing.T, out string) map[string]float64 {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.True(t, strings.HasPrefix(lines[0], "# scorekit sde grad: "), out)
	got := map[string]float64{}
	for _, l := range lines[1:] {
		name, v, ok := strings.Cut(l, "\t")
		require.True(t, ok, "line %q", l)
		f, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, "line %q", l)
		got[name] = f
	}
	return got
}

// libraryLoss names the library's losses (not the command's table, which the test checks).
var libraryLoss = map[string]func(y []float64, n, d int) (float64, []float64, error){
	"terminal-mean": solvers.TerminalMeanLoss,
	"terminal-var":  solvers.TerminalVarianceLoss,
}

// grad prints the gradient of the loss that a central finite difference of the same loss,
// computed through the library (Solve of the family at θ ± ε e_i, the spec's seed, the loss
// function), confirms: |grad − fd| ≤ 1e-6 + 1e-5·|fd|. With the Brownian paths fixed by the
// seed the loss is a smooth function of θ and x0; at ε = 1e-5 the difference's truncation error
// (ε² L”' ≈ 1e-10 here) and round-off (≈ 1e-16·L/ε ≈ 1e-11) are far below the tolerance, which
// a wrong sign, factor or missing term exceeds by orders of magnitude. The --json output carries
// the same numbers.
func TestSDEGradMatchesFiniteDifferences(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, spec string }{
		{"ou", `{"family": "ou", "theta": 1.3, "mu": 0.4, "sigma": 0.6, "x0": [1.5, -0.5], "paths": 16, "steps": 20, "horizon": 1.5, "seed": 3}`},
		{"gbm", `{"family": "gbm", "mu": 0.2, "sigma": 0.5, "x0": [0.8], "paths": 16, "steps": 25, "horizon": 1, "seed": 4}`},
		{"gmm", `{"family": "gmm-langevin", "means": [[-1, 0], [1.5, 0.5]], "vars": [0.6, 0.9], "logits": [0.2, -0.1],
			"x0": [0.3, 0.2], "paths": 8, "steps": 16, "horizon": 1, "seed": 5}`},
	} {
		spec := writeFile(t, dir, c.name+".json", c.spec)
		s, err := loadSDESpec(spec)
		require.NoError(t, err)
		for _, loss := range []string{"terminal-mean", "terminal-var"} {
			label := c.name + " " + loss
			code, stdout, stderr := runCLI("sde", "grad", "--spec", spec, "--loss", loss, "--wrt-x0")
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stderr)
			got := parseGradText(t, stdout)
			require.Len(t, got, 1+len(s.names)+s.d, label)

			lossAt := func(p, x0 []float64) float64 {
				fam, err := s.params.WithParams(p)
				require.NoError(t, err)
				start := make([]float64, 0, s.paths*s.d)
				for range s.paths {
					start = append(start, x0...)
				}
				fin, err := solvers.ReversibleHeun{SDE: fam, Horizon: s.horizon, Steps: s.steps, Seed: s.seed}.Solve(start, s.paths)
				require.NoError(t, err)
				l, _, err := libraryLoss[loss](fin.Y, s.paths, s.d)
				require.NoError(t, err)
				return l
			}
			p0 := s.params.Params()
			assert.Equal(t, lossAt(p0, s.x0), got["loss"], label)
			const eps = 1e-5
			check := func(name string, g, fd float64) {
				t.Logf("%s %s: adjoint %.12g, finite difference %.12g", label, name, g, fd)
				assert.InDelta(t, fd, g, 1e-6+1e-5*math.Abs(fd), "%s %s", label, name)
			}
			for i, name := range s.names {
				up, down := append([]float64(nil), p0...), append([]float64(nil), p0...)
				up[i] += eps
				down[i] -= eps
				check(name, got[name], (lossAt(up, s.x0)-lossAt(down, s.x0))/(2*eps))
			}
			for j := range s.d {
				up, down := append([]float64(nil), s.x0...), append([]float64(nil), s.x0...)
				up[j] += eps
				down[j] -= eps
				check(fmt.Sprintf("x0[%d]", j), got[fmt.Sprintf("x0[%d]", j)], (lossAt(p0, up)-lossAt(p0, down))/(2*eps))
			}

			code, stdout, stderr = runCLI("sde", "grad", "--spec", spec, "--loss", loss, "--wrt-x0", "--json")
			require.Equal(t, 0, code, stderr)
			var j sdeGradJSON
			require.NoError(t, json.Unmarshal([]byte(stdout), &j))
			assert.Equal(t, got["loss"], j.Value, label)
			assert.Equal(t, s.names, j.Params, label)
			for i, name := range s.names {
				assert.Equal(t, got[name], j.Gradient[i], "%s %s", label, name)
			}
			require.Len(t, j.X0Gradient, s.d)
		}
	}
}

// grad --device (or the spec's device): every family runs both passes on the device through the
// fused ops and prints the host's loss and gradient to round-off (the fused step's fma against
// separate roundings, the device's exp, the chains' parameter cotangents summed in another order:
// within 1e-12 relative here). The header and the JSON name where it ran; several devices are
// refused.
func TestSDEGradOnDevice(t *testing.T) {
	dir := t.TempDir()
	device := "cpu"
	if tensor.CUDABuild {
		device = "cuda"
	}
	for _, c := range []struct{ name, spec, where string }{
		{"ou", `{"family": "ou", "theta": 1.3, "mu": 0.4, "sigma": 0.6, "x0": [1.5, -0.5], "paths": 16, "steps": 300, "horizon": 1.5, "seed": 3}`, ""},
		{"gbm", `{"family": "gbm", "mu": 0.2, "sigma": 0.5, "x0": [0.8], "paths": 16, "steps": 300, "horizon": 1, "seed": 4}`, ""},
		{"gmm", `{"family": "gmm-langevin", "means": [[-1, 0], [1.5, 0.5]], "vars": [0.6, 0.9], "x0": [0.3, 0.2], "paths": 8, "steps": 300, "horizon": 1, "seed": 5}`, ""},
	} {
		spec := writeFile(t, dir, c.name+".json", c.spec)
		for _, loss := range []string{"terminal-mean", "terminal-var"} {
			label := c.name + " " + loss
			code, stdout, stderr := runCLI("sde", "grad", "--spec", spec, "--loss", loss, "--wrt-x0")
			require.Equal(t, 0, code, stderr)
			host := parseGradText(t, stdout)
			assert.Contains(t, stdout, ", on the host\n", label)
			code, stdout, stderr = runCLI("sde", "grad", "--spec", spec, "--loss", loss, "--wrt-x0", "--device", device)
			require.Equal(t, 0, code, stderr)
			got := parseGradText(t, stdout)
			where := c.where
			if where == "" {
				where = map[string]string{"cpu": "cpu", "cuda": "cuda:0"}[device]
			}
			assert.Contains(t, stdout, ", on "+where+"\n", label)
			require.Len(t, got, len(host), label)
			for k, v := range host {
				assert.InDelta(t, v, got[k], 1e-12*(1+math.Abs(v)), "%s %s", label, k)
			}
			code, stdout, stderr = runCLI("sde", "grad", "--spec", spec, "--loss", loss, "--device", device, "--json")
			require.Equal(t, 0, code, stderr)
			var j sdeGradJSON
			require.NoError(t, json.Unmarshal([]byte(stdout), &j))
			assert.Equal(t, where, j.Device, label)
		}
	}
	spec := writeFile(t, dir, "two.json", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 3, "horizon": 1}`)
	if n, err := tensor.CUDADeviceCount(); err == nil && n >= 2 {
		code, _, stderr := runCLI("sde", "grad", "--spec", spec, "--loss", "terminal-mean", "--device", "cuda:0,1")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "grad runs on one device")
	}
}

// Bad specs and flags: exit status 2, one line on stderr naming the field and the problem, no
// output written and an existing one untouched.
func TestSDEBadSpecs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.npy")
	old := []byte("not overwritten")
	require.NoError(t, os.WriteFile(out, old, 0o644))
	ok := `"theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": 1`
	for _, c := range []struct{ name, spec, want string }{
		{"not json", `{"family": `, "not a JSON object"},
		{"no family", `{` + ok + `}`, `"family" is missing`},
		{"unknown family", `{"family": "heston", ` + ok + `}`, `unknown family "heston" (want one of ou, gbm, gmm-langevin)`},
		{"family not a string", `{"family": 3, ` + ok + `}`, `"family" must be a string`},
		{"unknown field", `{"family": "ou", "kappa": 2, ` + ok + `}`, `unknown field "kappa" for family "ou"`},
		{"field of another family", `{"family": "gbm", ` + ok + `}`, `unknown field "theta" for family "gbm"`},
		{"missing theta", `{"family": "ou", "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": 1}`, `"theta" is missing`},
		{"missing paths", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "steps": 10, "horizon": 1}`, `"paths" is missing`},
		{"missing steps", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "horizon": 1}`, `"steps" is missing`},
		{"missing horizon", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 10}`, `"horizon" is missing`},
		{"steps 0", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 0, "horizon": 1}`, `"steps" must be ≥ 1 (got 0)`},
		{"horizon 0", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": 0}`, `"horizon" must be a finite number > 0 (got 0)`},
		{"negative horizon", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": -2}`, `"horizon" must be a finite number > 0`},
		{"paths 0", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 0, "steps": 10, "horizon": 1}`, `"paths" must be ≥ 1 (got 0)`},
		{"infinite theta", `{"family": "ou", "theta": 1e999, "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": 1}`, `"theta": number 1e999 is not a finite number`},
		{"infinite horizon", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": 1e400}`, `"horizon": number 1e400 is not a finite number`},
		{"infinite x0", `{"family": "ou", "x0": [0, -1e999], ` + ok + `}`, `"x0": number -1e999 is not a finite number`},
		{"infinite mean", `{"family": "gmm-langevin", "means": [[0, 1e999]], "vars": [1], "paths": 4, "steps": 10, "horizon": 1}`, `"means": number 1e999 is not a finite number`},
		{"negative sigma", `{"family": "gbm", "mu": 0, "sigma": -1, "paths": 4, "steps": 10, "horizon": 1}`, `"sigma" must be a finite number ≥ 0 (got -1)`},
		{"theta·mu overflows", `{"family": "ou", "theta": 1e200, "mu": 1e200, "sigma": 1, "paths": 4, "steps": 10, "horizon": 1}`, "overflows"},
		{"string paths", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": "4", "steps": 10, "horizon": 1}`, `"paths": string is not a valid int64`},
		{"fractional steps", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 2.5, "horizon": 1}`, `"steps": number 2.5 is not a valid int64`},
		{"x0 length", `{"family": "ou", "dim": 2, "x0": [1, 2, 3], ` + ok + `}`, `"x0" has 3 numbers, "dim" is 2`},
		{"dim 0", `{"family": "ou", "dim": 0, ` + ok + `}`, `"dim" must be ≥ 1 (got 0)`},
		{"save_every", `{"family": "ou", "save_every": 3, ` + ok + `}`, `"save_every" must divide "steps" 10 (got 3)`},
		{"dtype", `{"family": "ou", "dtype": "f16", ` + ok + `}`, `"dtype" must be f32 or f64 (got "f16")`},
		{"device", `{"family": "ou", "device": "tpu", ` + ok + `}`, `"device" must be auto, cpu, cuda or cuda:N (got "tpu")`},
		{"ragged means", `{"family": "gmm-langevin", "means": [[0, 1], [2]], "vars": [1, 1], "paths": 4, "steps": 10, "horizon": 1}`, `"means"[1] has 1 numbers`},
		{"zero var", `{"family": "gmm-langevin", "means": [[0]], "vars": [0], "paths": 4, "steps": 10, "horizon": 1}`, `"vars"[0] must be a finite number > 0 (got 0)`},
		{"missing vars", `{"family": "gmm-langevin", "means": [[0]], "paths": 4, "steps": 10, "horizon": 1}`, `"vars" is missing`},
		{"logits count", `{"family": "gmm-langevin", "means": [[0]], "vars": [1], "logits": [0, 1], "paths": 4, "steps": 10, "horizon": 1}`, `"logits" has 2 values for 1 means`},
		{"too many paths", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "dim": 2, "paths": 4294967296, "steps": 10, "horizon": 1}`, `more than 2^32 Brownian paths`},
		{"step underflows", `{"family": "ou", "theta": 1, "mu": 0, "sigma": 1, "paths": 4, "steps": 10, "horizon": 1e-320}`, "below float64's smallest normal number"},
	} {
		spec := writeFile(t, dir, "bad.json", c.spec)
		for _, args := range [][]string{
			{"sde", "simulate", "--spec", spec, "--out", out},
			{"sde", "grad", "--spec", spec, "--loss", "terminal-mean"},
		} {
			code, stdout, stderr := runCLI(args...)
			assert.Equal(t, 2, code, "%s: %s", c.name, stderr)
			assert.Empty(t, stdout, c.name)
			requireOneLine(t, stderr, "scorekit sde "+args[1]+": --spec "+spec+": ", c.want)
		}
	}
	spec := writeFile(t, dir, "ok.json", `{"family": "ou", `+ok+`}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sde"}, "which action? want simulate or grad"},
		{[]string{"sde", "solve"}, `unknown action "solve" (available: simulate, grad)`},
		{[]string{"sde", "simulate", "--out", out}, "--spec is required"},
		{[]string{"sde", "simulate", "--spec", spec}, "--out"},
		{[]string{"sde", "simulate", "--spec", filepath.Join(dir, "none.json"), "--out", out}, "no such file"},
		{[]string{"sde", "simulate", "--spec", spec, "--out", out, "--dtype", "f16"}, "--dtype must be f32 or f64"},
		{[]string{"sde", "simulate", "--spec", spec, "--out", out, "--device", "tpu"}, "--device must be auto, cpu, cuda, cuda:N"},
		{[]string{"sde", "simulate", "--spec", spec, "--out", out, "--plot", out}, "name the same file"},
		{[]string{"sde", "grad", "--spec", spec}, "--loss is required"},
		{[]string{"sde", "grad", "--spec", spec, "--loss", "terminal-max"}, `--loss must be terminal-mean or terminal-var (got "terminal-max")`},
		{[]string{"sde", "grad", "--loss", "terminal-mean"}, "--spec is required"},
	} {
		code, stdout, stderr := runCLI(c.args...)
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Empty(t, stdout)
		requireOneLine(t, stderr, c.want)
	}
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, old, got)
	assert.NotContains(t, strings.Join(dirListing(t, dir), " "), ".tmp")
}

// A run that fails while running (a geometric Brownian motion that overflows) exits with status
// 1 and writes nothing: the existing outputs keep their content and no other file appears.
func TestSDESimulateFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, dir, "gbm.json", `{"family": "gbm", "mu": 1e6, "sigma": 0.1, "paths": 8, "steps": 50, "horizon": 1}`)
	old := []byte("not overwritten")
	out, png := filepath.Join(dir, "x.npy"), filepath.Join(dir, "p.png")
	require.NoError(t, os.WriteFile(out, old, 0o644))
	tr, stats := filepath.Join(dir, "tr.npy"), filepath.Join(dir, "s.json")
	before := dirListing(t, dir)
	code, _, stderr := runCLI("sde", "simulate", "--spec", spec, "--out", out, "--trajectory", tr, "--plot", png,
		"--stats", stats, "--quiet")
	assert.Equal(t, 1, code, stderr)
	requireOneLine(t, stderr, "scorekit sde simulate: gbm:", "no longer finite")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, old, got)
	assert.Equal(t, before, dirListing(t, dir), "nothing written")
	code, _, stderr = runCLI("sde", "grad", "--spec", spec, "--loss", "terminal-var")
	assert.Equal(t, 1, code, stderr)
	requireOneLine(t, stderr, "scorekit sde grad: gbm:", "not finite")
	assert.Equal(t, before, dirListing(t, dir))
}

// The help documents the spec, the output format and the defaults; the example specs of the
// help are the files of testdata, and they parse.
func TestSDEHelpAndExampleSpecs(t *testing.T) {
	for _, args := range [][]string{{"sde", "--help"}, {"sde", "simulate", "-h"}, {"sde", "grad", "--help"}, {"help", "sde"}} {
		code, stdout, stderr := runCLI(args...)
		require.Equal(t, 0, code, "%v", args)
		assert.Empty(t, stderr)
		for _, want := range []string{"Usage: scorekit sde simulate", "scorekit sde grad", "save_every", "terminal-var",
			"%.17g", "x0_gradient", "(K/E + 1, N, d)", "default f32"} {
			assert.Contains(t, stdout, want, "%v", args)
		}
	}
	_, stdout, _ := runCLI("--help")
	assert.Contains(t, stdout, "sde")
	normal := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	help := normal(sdeHelp)
	files, err := filepath.Glob("testdata/sde-*.json")
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.Contains(t, help, normal(string(data)), "%s is not the help's example", f)
		s, err := parseSDESpec(data)
		require.NoError(t, err, f)
		assert.Equal(t, 200, s.steps/s.saveEvery, "%s: the default keeps 200 intervals", f)
	}
	assert.Equal(t, 5, defaultSaveEvery(1000))
	assert.Equal(t, 1009, defaultSaveEvery(1009), "a prime number of steps past 200: the start and the end")
	assert.Equal(t, 1, defaultSaveEvery(7))
}
