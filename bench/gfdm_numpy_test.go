package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// The GFDM peer (peers/gfdm_torch.py) against solvers.GFDMSample: the peer's problems are the Go
// benchmarks', and its core loop, run with NumPy as the array module (--backend numpy
// --check-dir), computes what the Go sampler computes.

// The peer times BenchmarkGFDMCUDA's problems (and with --backend numpy BenchmarkGFDM's) in their
// order, under their names, with their Hurst index, evaluations per sample and traffic by design.
func TestGFDMPeerTimesTheBenchmark(t *testing.T) {
	py, err := peerPython("json")
	if err != nil {
		t.Skipf("no Python for the peers: %v", err)
	}
	const script = `
import json, sys
sys.path.insert(0, "peers")
import gfdm_torch as g
def rows(problems, cpu):
    return [{"name": g.go_benchmark(cpu, g.DTYPE, s, k, d, m, n),
             "bytes": g.bytes_by_design(s, k, n, d, g.STEPS[s], g.DTYPE),
             "evals": g.evals_per_sample(s, g.STEPS[s])}
            for s in g.SOLVERS for k in g.KS for d, m, n in problems]
print(json.dumps({"cpu": rows(g.CPU_PROBLEMS, True), "cuda": rows(g.CUDA_PROBLEMS, False), "hurst": g.HURST}))
`
	out, err := exec.Command(py, "-B", "-c", script).CombinedOutput() // -B: no __pycache__ in peers/
	require.NoError(t, err, "%s", out)
	type row struct {
		Name  string `json:"name"`
		Bytes int64  `json:"bytes"`
		Evals int    `json:"evals"`
	}
	var peer struct {
		CPU, CUDA []row
		Hurst     float64
	}
	require.NoError(t, json.Unmarshal(out, &peer), "%s", out)
	want := func(bench string, problems []gfdmProblem) []row {
		var rs []row
		for _, s := range gfdmSolvers {
			for _, k := range gfdmKs {
				for _, p := range problems {
					rs = append(rs, row{fmt.Sprintf("%s/f32/%s/K=%d/steps=%d/%s", bench, s.name, k, s.steps, p.name()),
						gfdmMovedBytes(s, k, tensor.F32, p.n, p.d), gfdmEvals(s)})
				}
			}
		}
		return rs
	}
	assert.Equal(t, want("BenchmarkGFDM", cpuGFDMProblems), peer.CPU)
	assert.Equal(t, want("BenchmarkGFDMCUDA", cudaGFDMProblems), peer.CUDA)
	assert.Equal(t, gfdmHurst, peer.Hurst)
}

// gfdmPeerCheck is the problem of TestGFDMPeerMatchesGo: the 2-D mixture with 3 components, N
// traced samples per solver, F samples of the whole runs compared in distribution.
const (
	gfdmCheckD, gfdmCheckModes = 2, 3
	gfdmCheckN, gfdmCheckF     = 200, 4000
	gfdmCheckSeed              = 7
)

// The tolerances of TestGFDMPeerMatchesGo. Both sides are float64 and integrate the same ODEs by the
// same RK4 steps, so what differs is rounding (Go's loops against NumPy's GEMMs and LAPACK), ≈ 1e-15
// relative in φ and Σ; Σ⁻¹ multiplies it by the condition number of Σ, up to 10⁸ at t_min (K = 3).
// Measured worst (K = 1 / K = 3): speeds and weights 3e-16 / 2e-13 relative; t_min – / 3e-9 (the
// bisection's target, condition number 10⁸, is itself computed to ≈ 1e-8); σ̃ 2e-11 / 7e-9; φ and Σ
// 2e-15 / 1e-14 of √(Σ_aa Σ_bb); one sde or ode step 1e-11 / 5e-10 of the largest |value| of the
// next state's component; the exp residual's fit 4e-11 / 3e-9 of it, the fitted L̂ L̂ ᵀ 1e-10 /
// 7e-8 of √(C_aa C_bb); the posterior mean 3e-16 / 7e-15 of 1 + |x|; whole sde and ode runs 5e-13
// / 6e-11 of 1 + |x|. Each bound below is 100 to 1000 times the worst measured; the statistical
// checks use 4.5 standard errors (a false failure per statistic of 7e-6 were the peer exact; 19
// statistics at K = 1 and 37 at K = 3, and the seeds are fixed).
const (
	gfdmTolDriver   = 1e-10 // speeds, weights: relative
	gfdmTolTMin     = 1e-6  // t_min: relative
	gfdmTolTimes    = 1e-13 // grid times: relative
	gfdmTolSigmaVE  = 1e-6  // σ̃: relative
	gfdmTolLaw      = 1e-12 // φ: absolute (|φ| ≤ 1); Σ: of √(Σ_aa Σ_bb)
	gfdmTolStep     = 1e-7  // a step: of the next state's largest |value| per component
	gfdmTolResidual = 1e-6  // exp: the residual's least-squares fit, as a step
	gfdmTolBridge   = 1e-5  // exp: L̂ L̂ ᵀ against the peer's C, of √(C_aa C_bb)
	gfdmTolSamples  = 1e-8  // the posterior mean and whole runs: of 1 + |x|
	gfdmTolZ        = 4.5   // the statistical checks: standard errors
)

// TestGFDMPeerMatchesGo: the peer, run with NumPy (gfdm_torch.py --backend numpy --check-dir),
// computes solvers.GFDMSample's sampler, for every solver of the benchmark (at its steps) and
// K ∈ {1, 3}, on the 2-D benchmark mixture:
//
//   - the forward process: the MA-fBM speeds and weights, the default t_min, the grid, σ̃, φ and Σ
//     at every grid time (the peer integrates the Lyapunov ODE itself);
//   - each step: from every state of the Go run's augmented trajectory (N = 200), the peer's step
//     with the Go run's normals lands on the Go run's next state (sde, ode); for exp, whose factor
//     L of the bridge covariance C = L Lᵀ is not unique, the peer's mean A z + b D leaves a residual
//     that is exactly L̂ ξ for the Go normals ξ (a least-squares fit over the N·d coordinates), and
//     L̂ L̂ ᵀ is the peer's C; the posterior mean at the last state is the Go samples;
//   - a whole run of the peer's timed loop from the Go run's start with the Go normals ends on the
//     Go samples (sde and ode; an exp run draws L ξ with the peer's own factor of C);
//   - with its own generator: its terminal draw has the exact law's mean and covariance, and its
//     whole runs (F = 4000) have the mode weights of a Go run of the same size (a two-sample test:
//     the same distribution, whatever the sampler's discretisation error; sde at K = 3 diverges on
//     both sides).
//
// Tolerances: see gfdmTolStep and the others. Skipped, with the reason, where no interpreter
// imports NumPy.
func TestGFDMPeerMatchesGo(t *testing.T) {
	py, err := numpyPython()
	if err != nil {
		t.Skipf("no Python with NumPy for the peer: %v", err)
	}
	for _, k := range gfdmKs {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) { checkGFDMPeer(t, py, k) })
	}
}

// gfdmGoRun is what the check keeps of one Go run of a solver.
type gfdmGoRun struct {
	trace   []float64 // (steps, K+1, N, d): the peer's layout
	normals []float64 // sde: (steps−1, N, d); exp: (steps−1, K+1, N, d); ode: nil
	samples []float64 // (N, d)
	times   []float64
	sigmas  []float64
	free    []float64 // (F, d): a run of F samples with another seed
}

// gfdmPeerReport is the peer's peer.json.
type gfdmPeerReport struct {
	Gammas, Weights []float64
	TMin            float64
	Solvers         map[string]struct {
		Times     []float64
		SigmaVE   []float64     `json:"sigma_ve"`
		Phi       [][]float64   `json:"phi"`
		Sigma     [][][]float64 `json:"sigma"`
		BridgeCov [][][]float64 `json:"bridge_cov"`
	}
}

// worstErr is the largest |got_i − want_i| / scale(i) (+Inf for a NaN), and its index.
func worstErr(got, want []float64, scale func(i int) float64) (float64, int) {
	w, at := 0.0, 0
	for i := range want {
		e := math.Abs(got[i]-want[i]) / scale(i)
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		if e > w {
			w, at = e, i
		}
	}
	return w, at
}

// checkWorst asserts worstErr(got, want, scale) ≤ tol, naming the element, and returns it; got is
// the peer's where one side is the peer's.
func checkWorst(t *testing.T, name string, got, want []float64, scale func(i int) float64, tol float64) float64 {
	t.Helper()
	require.Len(t, got, len(want), name)
	w, at := worstErr(got, want, scale)
	if len(want) > 0 {
		assert.LessOrEqual(t, w, tol, "%s: element %d is %.17g, want %.17g", name, at, got[at], want[at])
	}
	return w
}

func relTo(v []float64) func(int) float64 { return func(i int) float64 { return math.Abs(v[i]) } }

func checkGFDMPeer(t *testing.T, py string, k int) {
	const n, d = gfdmCheckN, gfdmCheckD
	np, plane := k+1, gfdmCheckN*gfdmCheckD
	proc, err := newGFDMProcess(k)
	require.NoError(t, err)
	tmin := proc.DefaultTMin()
	m, err := newDiffusionMixture(gfdmCheckModes, d)
	require.NoError(t, err)
	den := solvers.TargetDenoiser(target.GMM{Mixture: m.g})
	dir := t.TempDir()
	runs := make(map[string]*gfdmGoRun, len(gfdmSolvers))
	steps := make(map[string]int, len(gfdmSolvers))
	for _, s := range gfdmSolvers {
		r := gfdmTraceRun(t, proc, den, s, k)
		runs[s.name], steps[s.name] = r, s.steps
		writeNpy(t, filepath.Join(dir, s.name+"_trace.npy"), r.trace, s.steps, np, n, d)
		switch {
		case s.exponential:
			writeNpy(t, filepath.Join(dir, s.name+"_normals.npy"), r.normals, s.steps-1, np, n, d)
		case s.solver == solvers.GFDMSolverSDE:
			writeNpy(t, filepath.Join(dir, s.name+"_normals.npy"), r.normals, s.steps-1, n, d)
		}
	}
	prob, err := json.Marshal(map[string]any{"k": k, "hurst": gfdmHurst, "d": d, "modes": gfdmCheckModes,
		"steps": steps, "tmin": tmin, "free_samples": gfdmCheckF, "seed": gfdmCheckSeed})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "problem.json"), prob, 0o644))
	out, err := exec.Command(py, "-B", filepath.Join("peers", "gfdm_torch.py"), "--backend", "numpy", "--check-dir", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	raw, err := os.ReadFile(filepath.Join(dir, "peer.json"))
	require.NoError(t, err)
	var peer gfdmPeerReport
	require.NoError(t, json.Unmarshal(raw, &peer))

	// The forward process.
	g, w := proc.Gammas(), proc.Weights()
	e1 := checkWorst(t, "speeds", peer.Gammas, g, relTo(g), gfdmTolDriver)
	e2 := checkWorst(t, "weights", peer.Weights, w, relTo(w), gfdmTolDriver)
	e3 := checkWorst(t, "t_min", []float64{peer.TMin}, []float64{tmin}, relTo([]float64{tmin}), gfdmTolTMin)
	t.Logf("speeds %.2g, weights %.2g, t_min %.2g (relative)", e1, e2, e3)

	for _, s := range gfdmSolvers {
		r, ps := runs[s.name], peer.Solvers[s.name]
		require.Len(t, ps.Phi, len(r.times), s.name)
		require.Len(t, ps.Sigma, len(r.times), s.name)
		law := 0.0
		for i, tt := range r.times {
			phi, err := proc.Mean(tt)
			require.NoError(t, err)
			sig, err := proc.Covariance(tt)
			require.NoError(t, err)
			law = math.Max(law, checkWorst(t, fmt.Sprintf("%s φ(t_%d)", s.name, i), ps.Phi[i], phi,
				func(int) float64 { return 1 }, gfdmTolLaw))
			var flat []float64
			for _, row := range ps.Sigma[i] {
				flat = append(flat, row...)
			}
			law = math.Max(law, checkWorst(t, fmt.Sprintf("%s Σ(t_%d)", s.name, i), flat, sig, func(e int) float64 {
				a, b := e/np, e%np
				return math.Sqrt(sig[a*np+a] * sig[b*np+b])
			}, gfdmTolLaw))
		}
		et := checkWorst(t, s.name+" grid", ps.Times, r.times, relTo(r.times), gfdmTolTimes)
		es := checkWorst(t, s.name+" σ̃", ps.SigmaVE, r.sigmas, relTo(r.sigmas), gfdmTolSigmaVE)

		// The steps, from the Go trajectory.
		onestep := readNpy(t, filepath.Join(dir, s.name+"_onestep.npy"))
		require.Len(t, onestep, (s.steps-1)*np*plane, s.name)
		step, fitErr, bridge := 0.0, 0.0, 0.0
		for i := 0; i+1 < s.steps; i++ {
			next := r.trace[(i+1)*np*plane : (i+2)*np*plane]
			got := onestep[i*np*plane : (i+1)*np*plane]
			scale := make([]float64, np)
			for a := range scale {
				for _, v := range next[a*plane : (a+1)*plane] {
					scale[a] = math.Max(scale[a], math.Abs(v))
				}
			}
			byPlane := func(e int) float64 { return scale[e/plane] }
			name := fmt.Sprintf("%s step %d", s.name, i)
			if !s.exponential {
				step = math.Max(step, checkWorst(t, name, got, next, byPlane, gfdmTolStep))
				continue
			}
			res := make([]float64, len(next))
			for e := range res {
				res[e] = next[e] - got[e]
			}
			lhat, fit := fitNoiseFactor(t, res, r.normals[i*np*plane:(i+1)*np*plane], np, plane)
			fitErr = math.Max(fitErr, checkWorst(t, name+": the fit L̂ξ against the residual", fit, res, byPlane, gfdmTolResidual))
			var c mat.Dense
			c.Mul(lhat, lhat.T())
			require.Len(t, ps.BridgeCov, s.steps-1, s.name)
			var peerC []float64
			for _, row := range ps.BridgeCov[i] {
				peerC = append(peerC, row...)
			}
			bridge = math.Max(bridge, checkWorst(t, name+": the peer's C against L̂L̂ᵀ", peerC, c.RawMatrix().Data, func(e int) float64 {
				a, b := e/np, e%np
				return math.Sqrt(peerC[a*np+a] * peerC[b*np+b])
			}, gfdmTolBridge))
		}
		samplesScale := func(e int) float64 { return 1 + math.Abs(r.samples[e]) }
		final := checkWorst(t, s.name+" posterior mean", readNpy(t, filepath.Join(dir, s.name+"_final.npy")), r.samples,
			samplesScale, gfdmTolSamples)
		run := "not compared"
		if !s.exponential {
			run = fmt.Sprintf("%.2g", checkWorst(t, s.name+" whole run", readNpy(t, filepath.Join(dir, s.name+"_run.npy")),
				r.samples, samplesScale, gfdmTolSamples))
		}

		// Its own draws: the mode weights of a whole run.
		z := gfdmModeWeightsZ(m, readNpy(t, filepath.Join(dir, s.name+"_free.npy")), r.free, d)
		assert.LessOrEqual(t, z, gfdmTolZ, "%s: the peer's mode weights differ from Go's", s.name)
		t.Logf("%s: grid %.2g, σ̃ %.2g, law %.2g; step %.2g, exp fit %.2g, exp L̂L̂ᵀ %.2g; "+
			"posterior mean %.2g, run %s; mode weights %.2f SE", s.name, et, es, law, step, fitErr, bridge, final, run, z)
	}
	z := gfdmStartZ(t, proc, m, readNpy(t, filepath.Join(dir, "start.npy")), gfdmCheckF, d)
	assert.LessOrEqual(t, z, gfdmTolZ, "the peer's terminal draw differs from the exact law")
	t.Logf("terminal draw: moments within %.2f SE", z)
}

// gfdmTraceRun runs s on the check problem with the augmented trajectory, draws the normals the run
// used, and a second run of F samples.
func gfdmTraceRun(t *testing.T, proc *solvers.GFDMProcess, den solvers.Denoiser, s gfdmSolver, k int) *gfdmGoRun {
	const n, d = gfdmCheckN, gfdmCheckD
	np := k + 1
	cfg := gfdmConfig(proc, s)
	cfg.Seed, cfg.AugmentedTrajectory = gfdmCheckSeed, true
	res, err := solvers.GFDMSample(ops.CPU(), den, n, tensor.F64, cfg)
	require.NoError(t, err, s.name)
	defer res.Close()
	aug, err := res.AugmentedTrace.Float64s()
	require.NoError(t, err)
	require.Len(t, aug, s.steps*n*d*np)
	r := &gfdmGoRun{trace: make([]float64, len(aug)), times: res.AugmentedTimes, sigmas: res.Sigmas}
	for i := 0; i < s.steps; i++ { // (steps, N, d, K+1) → (steps, K+1, N, d)
		for e := 0; e < n*d; e++ {
			for a := 0; a < np; a++ {
				r.trace[(i*np+a)*n*d+e] = aug[(i*n*d+e)*np+a]
			}
		}
	}
	if r.samples, err = res.Samples.Float64s(); err != nil {
		t.Fatal(err)
	}
	if s.solver == solvers.GFDMSolverSDE {
		cols := d
		if s.exponential {
			cols = d * np
		}
		for i := 0; i+1 < s.steps; i++ {
			xt, err := tensor.New(nil, tensor.F64, n, cols)
			require.NoError(t, err)
			require.NoError(t, ops.CPU().Normal(xt, ops.Draw{Seed: gfdmCheckSeed, Site: solvers.Site(uint64(i), solvers.PurposeGFDMSample)}))
			xi, err := xt.Float64s()
			require.NoError(t, err)
			require.NoError(t, xt.Close())
			if !s.exponential {
				r.normals = append(r.normals, xi...)
				continue
			}
			step := make([]float64, np*n*d) // (N, d, K+1) → (K+1, N, d)
			for e := 0; e < n*d; e++ {
				for a := 0; a < np; a++ {
					step[a*n*d+e] = xi[e*np+a]
				}
			}
			r.normals = append(r.normals, step...)
		}
	}
	cfg = gfdmConfig(proc, s)
	cfg.Seed = gfdmCheckSeed + 1
	fres, err := solvers.GFDMSample(ops.CPU(), den, gfdmCheckF, tensor.F64, cfg)
	require.NoError(t, err, s.name)
	defer fres.Close()
	if r.free, err = fres.Samples.Float64s(); err != nil {
		t.Fatal(err)
	}
	return r
}

// fitNoiseFactor returns the least-squares L̂ ((K+1)×(K+1)) of res ≈ L̂ ξ (both (K+1) × plane,
// row-major) and L̂ ξ: L̂ = res ξᵀ (ξ ξᵀ)⁻¹.
func fitNoiseFactor(t *testing.T, res, xi []float64, np, plane int) (*mat.Dense, []float64) {
	t.Helper()
	r := mat.NewDense(np, plane, res)
	x := mat.NewDense(np, plane, xi)
	var rx, xx, inv, l, fit mat.Dense
	rx.Mul(r, x.T())
	xx.Mul(x, x.T())
	require.NoError(t, inv.Inverse(&xx), "the normals' Gram matrix")
	l.Mul(&rx, &inv)
	fit.Mul(&l, x)
	return &l, fit.RawMatrix().Data
}

// gfdmModeWeightsZ is the largest |difference|/SE, over the mixture's modes, of the mean
// responsibility of two sets of samples (a two-sample z statistic per mode).
func gfdmModeWeightsZ(m *diffusionMixture, a, b []float64, d int) float64 {
	ma, va, na := modeResponsibilities(m, a, d)
	mb, vb, nb := modeResponsibilities(m, b, d)
	z := 0.0
	for c := range ma {
		se := math.Sqrt(va[c]/na + vb[c]/nb)
		z = math.Max(z, math.Abs(ma[c]-mb[c])/se)
	}
	return z
}

// modeResponsibilities returns, per mode, the mean and variance over the finite rows of samples of
// the responsibility r_k(x) of the mixture at σ = 0, and the number of rows.
func modeResponsibilities(m *diffusionMixture, samples []float64, d int) (mean, vari []float64, rows float64) {
	k := len(m.weights)
	mean, vari = make([]float64, k), make([]float64, k)
	var all [][]float64
	for i := 0; i+d <= len(samples); i += d {
		row := make([]float64, k)
		if !m.responsibilities(samples[i:i+d], row, nil) {
			continue
		}
		for c := range row {
			mean[c] += row[c]
		}
		all = append(all, row)
	}
	rows = float64(len(all))
	for c := range mean {
		mean[c] /= rows
	}
	for _, row := range all {
		for c := range row {
			vari[c] += (row[c] - mean[c]) * (row[c] - mean[c])
		}
	}
	for c := range vari {
		vari[c] /= rows - 1
	}
	return mean, vari, rows
}

// gfdmStartZ is the largest |error|/SE of the means and covariances, per coordinate, of a terminal
// draw z ((K+1, F, d)) against the exact law of Z_1: mean φ(1) E[x_0j], covariance
// Var(x_0j) φ(1)φ(1)ᵀ + Σ(1). The SE of a covariance is the sample standard deviation of the
// centred products over √F (no Gaussian assumption).
func gfdmStartZ(t *testing.T, proc *solvers.GFDMProcess, m *diffusionMixture, z []float64, f, d int) float64 {
	phi, err := proc.Mean(1)
	require.NoError(t, err)
	sig, err := proc.Covariance(1)
	require.NoError(t, err)
	np := len(phi)
	require.Len(t, z, np*f*d)
	worst := 0.0
	ff := float64(f)
	for j := 0; j < d; j++ {
		mean, second := 0.0, 0.0
		for c, w := range m.weights {
			mean += w * m.means[c][j]
			second += w * (m.vars[c] + m.means[c][j]*m.means[c][j])
		}
		v := second - mean*mean
		col := func(a, i int) float64 { return z[(a*f+i)*d+j] }
		avg := make([]float64, np)
		for a := range avg {
			s, s2 := 0.0, 0.0
			for i := 0; i < f; i++ {
				s += col(a, i)
				s2 += col(a, i) * col(a, i)
			}
			avg[a] = s / ff
			sd := math.Sqrt((s2/ff - avg[a]*avg[a]) * ff / (ff - 1))
			worst = math.Max(worst, math.Abs(avg[a]-phi[a]*mean)/(sd/math.Sqrt(ff)))
		}
		for a := 0; a < np; a++ {
			for b := a; b < np; b++ {
				s, s2 := 0.0, 0.0
				for i := 0; i < f; i++ {
					p := (col(a, i) - avg[a]) * (col(b, i) - avg[b])
					s += p
					s2 += p * p
				}
				c := s / ff
				sd := math.Sqrt((s2/ff - c*c) * ff / (ff - 1))
				want := v*phi[a]*phi[b] + sig[a*np+b]
				worst = math.Max(worst, math.Abs(c-want)/(sd/math.Sqrt(ff)))
			}
		}
	}
	return worst
}

func writeNpy(t *testing.T, path string, v []float64, shape ...int) {
	t.Helper()
	arr, err := tensor.FromF64(append([]float64(nil), v...), shape...)
	require.NoError(t, err, path)
	require.NoError(t, tensor.WriteNpy(path, arr))
}

func readNpy(t *testing.T, path string) []float64 {
	t.Helper()
	arr, err := tensor.ReadNpy(path)
	require.NoError(t, err)
	v, err := arr.Float64s()
	require.NoError(t, err)
	return v
}
