// Command sgdwor measures how fast the continuous-time model of SGD without replacement
// (solvers.SGDWOR, docs/math.md §4.4) converges to the optimum of a strongly convex quadratic,
// with the epoched Brownian noise (a bridge per epoch) against plain Brownian noise, for several
// β, and writes docs/sgdwor.md, docs/sgdwor.csv and docs/sgdwor.png.
//
//	go run ./examples/sgdwor [-out docs] [-chains 100] [-seeds 5] [-T 1000]
//
// The objective is f(θ) = ½‖θ‖² in d = 5 dimensions (curvature a = 1, optimum θ* = 0). Chains
// start at θ_0 = (1, …, 1) and run
//
//	θ_{k+1} = θ_k − h u_{t_k} θ_k + σ u_{t_k} ΔB̃_k,   u_t = (1 + t)^{−β},
//
// with h = 0.02, σ = 1, epoch τ = 1 (50 steps), up to T. For each β, noise and seed the mean and
// the median of ‖θ_t − θ*‖ over the chains are recorded at every half epoch; the table reports the
// mean over seeds with a 95% t-interval, and the log-log slope fitted over t ∈ [T/10, T] per seed
// (at epoch ends and at mid-epochs separately), again with a 95% t-interval over seeds.
//
// The reference is exact: on a quadratic the linearised model is the model, and the variance of
// the recursion with the bridge covariance h(δ_kl − 1/m) inside each epoch is computed step by
// step (theoryRMS); its slope over the same window and the asymptotic exponents (−β/2 plain,
// −3β/2 at epoch ends, −β inside an epoch; derived in the report) are listed beside the measured
// slopes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const (
	dim      = 5
	stepSize = 0.02
	sigma    = 1.0
	epoch    = 1.0
	seed0    = 9100
	date     = "2026-12-06"
)

var betas = []float64{0.3, 0.5, 0.7}

// noise is one of the two drivers compared.
type noise struct {
	name  string
	epoch float64
}

var noises = []noise{{"epoched", epoch}, {"plain", 0}}

// series is the measured curve of one (β, noise): times t_i and, per seed, the mean and median
// of ‖θ_t‖ over the chains.
type series struct {
	beta       float64
	noise      noise
	times      []float64
	mean, med  [][]float64 // [seed][time]
	theory     []float64   // exact RMS √E‖θ_t‖² of the linear recursion
	wall       time.Duration
	nanChains  int
	gradEvals  int64
	meanOfMean []float64 // over seeds
}

// theoryRMS is √E‖θ_t‖² at the recorded steps for the recursion ε_{k+1} = c_k ε_k + g_k ξ̃_k per
// coordinate (c_k = 1 − h a u_k, g_k = σ √h u_k), ξ̃ unit-variance bridge increments of m steps
// (Cov = δ_kl − 1/m inside an epoch, independent across; m = 0: independent), from ε_0 = θ_0:
// the mean is θ_0 Π c_k and the variance P + S2 − S1²/m, with P the variance carried from past
// epochs and S1, S2 the sums of the current epoch's propagated coefficients and their squares.
func theoryRMS(beta float64, m, steps, every int, theta0 float64) []float64 {
	var out []float64
	mean, p, s1, s2 := theta0, 0.0, 0.0, 0.0
	out = append(out, math.Sqrt(dim)*math.Abs(theta0))
	for k := 0; k < steps; k++ {
		u := solvers.SGDWORRate(beta, float64(k)*stepSize)
		c, g := 1-stepSize*u, sigma*math.Sqrt(stepSize)*u
		mean *= c
		p *= c * c
		s1 = c*s1 + g
		s2 = c*c*s2 + g*g
		v := p + s2
		if m > 0 {
			v -= s1 * s1 / float64(m)
			if (k+1)%m == 0 {
				p, s1, s2 = v, 0, 0
			}
		}
		if (k+1)%every == 0 {
			out = append(out, math.Sqrt(dim*(mean*mean+v)))
		}
	}
	return out
}

func main() {
	out := flag.String("out", "docs", "directory for sgdwor.md, sgdwor.csv and sgdwor.png")
	chains := flag.Int("chains", 100, "chains per seed")
	seeds := flag.Int("seeds", 5, "independent seeds (the intervals are over seeds)")
	horizon := flag.Float64("T", 1000, "horizon T (a multiple of the epoch)")
	flag.Parse()
	b := ops.CPU()
	a := make([]float64, dim)
	for j := range a {
		a[j] = 1
	}
	q, err := solvers.NewQuadratic(a, nil)
	if err != nil {
		log.Fatal(err)
	}
	m := int(math.Round(epoch / stepSize))
	steps := int(math.Round(*horizon / stepSize))
	thin := m / 2
	start := time.Now()
	var all []*series
	for _, beta := range betas {
		for _, nz := range noises {
			s := &series{beta: beta, noise: nz}
			mSteps := 0
			if nz.epoch > 0 {
				mSteps = m
			}
			s.theory = theoryRMS(beta, mSteps, steps, thin, 1)
			t0 := time.Now()
			for sd := 0; sd < *seeds; sd++ {
				x0 := make([]float64, *chains*dim)
				for i := range x0 {
					x0[i] = 1
				}
				xt, err := tensor.FromFloat64s(tensor.F64, x0, *chains, dim)
				if err != nil {
					log.Fatal(err)
				}
				res, err := solvers.SGDWOR(b, q, xt, solvers.SGDWORConfig{Beta: beta, StepSize: stepSize, Sigma: sigma,
					Steps: steps, Epoch: nz.epoch, Seed: seed0 + uint64(sd), Thin: thin})
				if err != nil {
					log.Fatalf("β = %g, %s: %v", beta, nz.name, err)
				}
				tr, err := res.Trace.Float64s()
				if err != nil {
					log.Fatal(err)
				}
				s.nanChains += res.NaN.Chains
				s.gradEvals += res.GradEvals
				if s.times == nil {
					for _, k := range res.TraceSteps {
						s.times = append(s.times, float64(k)*stepSize)
					}
				}
				mean, med := make([]float64, len(s.times)), make([]float64, len(s.times))
				norms := make([]float64, *chains)
				for r := range s.times {
					for i := range norms {
						row := tr[(r**chains+i)*dim : (r**chains+i+1)*dim]
						ss := 0.0
						for _, v := range row {
							ss += v * v
						}
						norms[i] = math.Sqrt(ss)
					}
					mean[r] = stat.Mean(norms, nil)
					slices.Sort(norms)
					med[r] = stat.Quantile(0.5, stat.Empirical, norms, nil)
				}
				s.mean = append(s.mean, mean)
				s.med = append(s.med, med)
				res.Close()
				xt.Close()
			}
			s.wall = time.Since(t0)
			all = append(all, s)
			fmt.Fprintf(os.Stderr, "β = %.1f %-8s %v\n", beta, nz.name, s.wall.Round(time.Millisecond))
		}
	}
	total := time.Since(start)
	if err := writeCSV(filepath.Join(*out, "sgdwor.csv"), all); err != nil {
		log.Fatal(err)
	}
	if err := writePlot(filepath.Join(*out, "sgdwor.png"), all, *horizon); err != nil {
		log.Fatal(err)
	}
	if err := writeReport(filepath.Join(*out, "sgdwor.md"), all, *chains, *seeds, *horizon, total); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "done in %v\n", total.Round(time.Second))
}

// ci is the mean of v and the half-width of its 95% t-interval.
func ci(v []float64) (mean, half float64) {
	mean = stat.Mean(v, nil)
	if len(v) < 2 {
		return mean, math.NaN()
	}
	tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(v) - 1)}.Quantile(0.975)
	return mean, tq * stat.StdDev(v, nil) / math.Sqrt(float64(len(v)))
}

// phase selects the recorded times of a slope fit.
type phase struct {
	name string
	keep func(t float64) bool
}

func isEpochEnd(t float64) bool { return math.Abs(t/epoch-math.Round(t/epoch)) < 1e-9 }

var phases = []phase{
	{"epoch ends", isEpochEnd},
	{"mid-epoch", func(t float64) bool { return !isEpochEnd(t) }},
}

// slope fits log y = c + s log t by least squares over the times in [lo, hi] that keep accepts.
func slope(times, y []float64, lo, hi float64, keep func(float64) bool) float64 {
	var xs, ys []float64
	for i, t := range times {
		if t >= lo*(1-1e-12) && t <= hi*(1+1e-12) && keep(t) {
			xs, ys = append(xs, math.Log(t)), append(ys, math.Log(y[i]))
		}
	}
	_, s := stat.LinearRegression(xs, ys, nil, false)
	return s
}

// predicted is the asymptotic exponent of the error for a noise and phase (see the report).
func predicted(beta float64, nz noise, ph phase) float64 {
	switch {
	case nz.epoch == 0:
		return -beta / 2
	case ph.name == "epoch ends":
		return -1.5 * beta
	}
	return -beta
}

// csvTime reports whether the CSV keeps the recorded time t: every one up to 10 epochs, then the
// epoch ends and mid-epochs of the epochs e = round(10·1.1^j) and of every 100th epoch, about 50
// times per decade of t (the fits use every recorded time; the CSV is for plots and checks).
func csvTime(t float64) bool {
	if t <= 10*epoch*(1+1e-12) {
		return true
	}
	e := math.Floor(t/epoch + 1e-9) // the recorded times are k·stepSize, a hair off the epoch ends
	j := math.Round(math.Log(e/10) / math.Log(1.1))
	return e == math.Round(10*math.Pow(1.1, j)) || math.Mod(e, 100) == 0
}

func writeCSV(path string, all []*series) error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "beta,noise,seed,t,mean_norm,median_norm,theory_rms\n")
	for _, s := range all {
		for sd := range s.mean {
			for i, t := range s.times {
				if !csvTime(t) {
					continue
				}
				fmt.Fprintf(&w, "%g,%s,%d,%g,%.6g,%.6g,%.6g\n", s.beta, s.noise.name, seed0+sd, t, s.mean[sd][i], s.med[sd][i], s.theory[i])
			}
		}
	}
	return report.WriteFile(path, w.Bytes())
}

func writeReport(path string, all []*series, chains, seeds int, horizon float64, total time.Duration) error {
	var w bytes.Buffer
	lo, hi := horizon/10, horizon
	fmt.Fprintf(&w, "# SGD without replacement in continuous time: convergence rate, epoched against plain Brownian noise\n\n")
	report.Generated(&w, "sgdwor", date, "float64", "run", total)
	fmt.Fprintf(&w, "Question (docs/math.md §4.4): the noise of SGD without replacement sums to zero over every epoch. Does the model driven by the epoched Brownian motion (a bridge per epoch) converge to the optimum faster than the same flow driven by plain Brownian motion, and at what rate in t?\n\n")
	fmt.Fprintf(&w, "## Setup\n\n")
	fmt.Fprintf(&w, "- Objective: f(θ) = ½‖θ‖² in d = %d (`solvers.Quadratic`, curvature a = 1, θ* = 0); every chain starts at θ_0 = (1, …, 1).\n", dim)
	fmt.Fprintf(&w, "- `solvers.SGDWOR`: θ_{k+1} = θ_k − h u_{t_k} ∇f(θ_k) + σ u_{t_k} ΔB̃_k, u_t = (1 + t)^{−β}, h = %g, σ = %g, epoch τ = %g (%d steps), horizon T = %g (%d steps); noise *epoched* (bridge pinned to 0 at every multiple of τ) or *plain* (Epoch = 0).\n", stepSize, sigma, epoch, int(math.Round(epoch/stepSize)), horizon, int(math.Round(horizon/stepSize)))
	fmt.Fprintf(&w, "- %d seeds (%d…%d) × %d chains per (β, noise). Per seed: the mean and the median of ‖θ_t − θ*‖ over its chains, every half epoch. Intervals: 95%% Student-t over the %d seeds.\n", seeds, seed0, seed0+seeds-1, chains, seeds)
	fmt.Fprintf(&w, "- Slopes: least squares of log(mean ‖θ_t‖) on log t over t ∈ [%g, %g], per seed, at epoch ends (t a multiple of τ) and at mid-epochs (t = e τ + τ/2) separately; *exact* is the slope of the exact RMS √E‖θ_t‖² of the linear recursion (computed step by step with the bridge covariance) over the same times; *asymptotic* the exponent derived below.\n\n", lo, hi)

	fmt.Fprintf(&w, "## Slopes of the distance to the optimum against t (log-log)\n\n")
	fmt.Fprintf(&w, "| β | noise | times | measured slope (mean ‖θ‖) | measured slope (median ‖θ‖) | exact slope (RMS) | asymptotic | last t | mean ‖θ_t‖ there | exact, as a mean | wall |\n|---:|---|---|%s\n", report.Numeric(8))
	for _, s := range all {
		for _, ph := range phases {
			if s.noise.epoch == 0 && ph.name != "epoch ends" {
				continue
			}
			times := "all half epochs"
			keep := func(float64) bool { return true }
			if s.noise.epoch > 0 {
				times, keep = ph.name, ph.keep
			}
			last := len(s.times) - 1 // the last recorded time of the phase
			for !keep(s.times[last]) {
				last--
			}
			var sm, sd []float64
			var final []float64
			for k := range s.mean {
				sm = append(sm, slope(s.times, s.mean[k], lo, hi, keep))
				sd = append(sd, slope(s.times, s.med[k], lo, hi, keep))
				final = append(final, s.mean[k][last])
			}
			mm, mh := ci(sm)
			dm, dh := ci(sd)
			fm, fh := ci(final)
			th := slope(s.times, s.theory, lo, hi, keep)
			fmt.Fprintf(&w, "| %.1f | %s | %s | %.3f ± %.3f | %.3f ± %.3f | %.3f | %.2f | %g | %.3g ± %.2g | %.3g | %v%s |\n", s.beta, s.noise.name, times,
				mm, mh, dm, dh, th, predicted(s.beta, s.noise, ph), s.times[last], fm, fh, s.theory[last]/math.Sqrt(dim)*cdMean(dim),
				s.wall.Round(time.Second), report.NaNNote(s.nanChains))
		}
	}
	fmt.Fprintf(&w, "\n(*exact, as a mean*: the exact RMS at the last t converted to the mean of ‖θ‖ for an isotropic centred Gaussian: RMS·√2 Γ((d+1)/2)/(Γ(d/2)√d).)\n\n")
	fmt.Fprintf(&w, "![mean distance to the optimum against t](sgdwor.png)\n\n")
	fmt.Fprintf(&w, "The curves: mean of ‖θ_t‖ over seeds (points; with epochs, the lower family at epoch ends, the upper at mid-epochs), the exact RMS converted to a mean (lines, one through the epoch ends and one through the mid-epochs). Per-seed values (every recorded time up to 10 epochs, then the epoch ends and mid-epochs of about 50 epochs per decade): `sgdwor.csv`.\n\n")
	fmt.Fprintf(&w, "## Theory (linearised model; exact on this quadratic)\n\n%s\n", theory)
	fmt.Fprintf(&w, "## Reading\n\n%s", reading)
	return report.WriteFile(path, w.Bytes())
}

// cdMean is E‖Z‖/√E‖Z‖² for Z ~ N(0, I_d) times √d: √2 Γ((d+1)/2)/Γ(d/2).
func cdMean(d int) float64 {
	lg1, _ := math.Lgamma(float64(d+1) / 2)
	lg2, _ := math.Lgamma(float64(d) / 2)
	return math.Sqrt2 * math.Exp(lg1-lg2)
}

const theory = "Per coordinate, ε = θ − θ* solves dε = −a u_t ε dt + σ u_t dB̃_t.\n\n" +
	"- *Plain noise.* In the time s = ∫u the equation is an OU process with noise σ√u_t dW_s; the variance tracks its\n" +
	"  quasi-stationary value σ² u_t/(2a) once the relaxation time 1/(a u_t) ≪ t, so ‖ε_t‖ ~ σ √(d u_t/(2a)) ∝ t^{−β/2}.\n" +
	"- *Epoched noise, at epoch ends.* Over one epoch u ≈ u_e. Integrating by parts with B̃ = 0 at both ends,\n" +
	"  ∫ e^{−a u (T_e − s)} σ u dB̃_s = −σ a u² ∫ e^{−a u (T_e − s)} B̃_s ds (plus a term in u' that is smaller by a factor\n" +
	"  β/(a u t) → 0): each epoch injects a variance ≈ σ² a² u⁴ Var(∫_0^τ B̃) = σ² a² u⁴ τ³/12 (for a u τ ≪ 1), and the\n" +
	"  contraction per epoch is e^{−2 a u τ}, so the variance at epoch ends settles at ≈ σ² a u³ τ²/24:\n" +
	"  ‖ε‖ ∝ u^{3/2} ∝ t^{−3β/2}.\n" +
	"- *Epoched noise, inside an epoch.* The bridge itself, σ u B̃_t with Var B̃ = s(τ − s)/τ, dominates the small\n" +
	"  epoch-end residue: ‖ε‖ ≈ σ u √(d s(τ − s)/τ) ∝ t^{−β}; at mid-epoch (s = τ/2) σ u √(dτ)/2.\n" +
	"- The deterministic part θ_0 exp(−a ∫u) decays like exp(−a t^{1−β}/(1−β)), faster than any power, but at β = 0.7\n" +
	"  it is still comparable to the epoch-end noise at t ≈ 100: the exact slope over the fitted window includes it.\n"

// reading is the interpretation of the measured table (written for the settings above; re-read
// it against the table if they change).
var reading = `The epoched noise converges much faster, and every measured rate agrees with the linearised
theory. Over t ∈ [100, 1000] the mean distance to the optimum falls like t^{−0.151 ± 0.003},
t^{−0.251 ± 0.006} and t^{−0.354 ± 0.008} with plain Brownian noise (β = 0.3, 0.5, 0.7; predicted
−β/2 = −0.15, −0.25, −0.35), and with the epoched noise like t^{−0.447 ± 0.003}, t^{−0.743 ± 0.006}
and t^{−1.037 ± 0.012} at epoch ends (predicted −3β/2 = −0.45, −0.75, −1.05) and t^{−0.291 ± 0.001},
t^{−0.495 ± 0.001}, t^{−0.697 ± 0.001} at mid-epochs (predicted −β = −0.30, −0.50, −0.70). The
median gives the same slopes. The measured slopes coincide with the slopes of the exact RMS over
the same window within their intervals (−0.448, −0.745, −1.039; −0.291, −0.495, −0.697; −0.151,
−0.253, −0.359), so the small gaps to the asymptotic exponents (up to 0.013, beyond the intervals
of the mid-epoch rows and, barely, of β = 0.7 at epoch ends) are the finite window, not the
simulation: at t ≈ 100 the mid-epoch value still contains the epoch-end residue, and the
approximation a u τ ≪ 1 behind −3β/2 is only fair (a u τ = 0.25 at t = 100, β = 0.3). At T = 1000
the epoched noise leaves a mean distance 28× (β = 0.3), 110× (β = 0.5) and 460× (β = 0.7) smaller
than plain noise at epoch ends, and 4×, 8×, 16× smaller at mid-epochs.

Caveats: one isotropic quadratic (a = 1, d = 5), one σ, one τ, one h (h = τ/50: the discretisation
error of the variance is O(h), below the Monte-Carlo intervals here); the intervals are over 8
seeds (95% t), each the mean of 200 chains. The rates are properties of the linear model; on a
non-quadratic objective the epoch-end rate needs the same integration by parts with a varying
Hessian.
`

var betaColors = []color.Color{
	color.RGBA{R: 30, G: 90, B: 220, A: 255},
	color.RGBA{R: 0, G: 150, B: 60, A: 255},
	color.RGBA{R: 220, G: 80, B: 20, A: 255},
}

func writePlot(path string, all []*series, horizon float64) error {
	var row []*plot.Plot
	for _, nz := range noises {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("½‖θ‖², d = %d, h = %g, σ = %g: %s noise", dim, stepSize, sigma, nz.name)
		if nz.epoch > 0 {
			p.Title.Text += fmt.Sprintf(" (τ = %g)", nz.epoch)
		}
		p.X.Label.Text = "t (log scale)"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Y.Label.Text = "mean ‖θ_t − θ*‖ (log scale)"
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.X.Min, p.X.Max = 1, horizon
		p.Y.Min, p.Y.Max = 1e-4, 3
		p.Legend.Left, p.Legend.Top = true, false
		for bi, beta := range betas {
			for _, s := range all {
				if s.beta != beta || s.noise != nz {
					continue
				}
				var ends, mids, th, thMids plotter.XYs
				next := 1.0
				for i, t := range s.times {
					if t < 1 {
						continue
					}
					if t >= next { // about 40 points per decade
						var v []float64
						for k := range s.mean {
							v = append(v, s.mean[k][i])
						}
						pt := plotter.XY{X: t, Y: stat.Mean(v, nil)}
						if nz.epoch > 0 && !isEpochEnd(t) {
							mids = append(mids, pt)
						} else {
							ends = append(ends, pt)
						}
						next = math.Max(next*1.06, t)
					}
					pt := plotter.XY{X: t, Y: s.theory[i] / math.Sqrt(dim) * cdMean(dim)}
					if nz.epoch > 0 && !isEpochEnd(t) {
						thMids = append(thMids, pt)
					} else {
						th = append(th, pt)
					}
				}
				for _, xy := range []plotter.XYs{th, thMids} {
					if len(xy) == 0 {
						continue
					}
					l, err := plotter.NewLine(xy)
					if err != nil {
						return err
					}
					l.Color, l.Width = betaColors[bi], vg.Points(0.7)
					p.Add(l)
				}
				sc, err := plotter.NewScatter(ends)
				if err != nil {
					return err
				}
				sc.Color, sc.Radius = betaColors[bi], vg.Points(2)
				p.Add(sc)
				p.Legend.Add(fmt.Sprintf("β = %.1f", beta), sc)
				if len(mids) > 0 {
					sm, err := plotter.NewScatter(mids)
					if err != nil {
						return err
					}
					sm.Color, sm.Radius = betaColors[bi], vg.Points(1.2)
					p.Add(sm)
				}
			}
		}
		row = append(row, p)
	}
	const tile = 5.5 * vg.Inch
	return report.SavePNG(path, [][]*plot.Plot{row}, tile*2, 4.5*vg.Inch, 100)
}
