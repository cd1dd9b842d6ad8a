// Command fpgd measures escape times of gradient descent with fractional noise (fPGD,
// docs/math.md §4.5) from one well of a double well as a function of the Hurst index H, and writes
// docs/fpgd.md and docs/fpgd.png.
//
//	go run ./examples/fpgd [-out docs] [-n 2000] [-steps 8192]
//
// The objective is the one-dimensional double well f(x) = b (x² − 1)² with barrier b = 1 (minima at
// ±1, curvature 8 there). N chains start at x = −1 and run
//
//	x_{n+1} = x_n − h f'(x_n) + σ ΔB^H_n
//
// for K steps with h = 0.05 (solvers.FPGD, exact Davies–Harte fGn on the CPU reference). A chain
// escapes at the first step with x > ½ (solvers.EscapeSpec). Two noise scalings are compared:
//
//   - equal per-step variance: σ = s·h^{−H}, so every step's noise σ ΔB^H_n has standard deviation
//     s whatever H (the comparison the claim is about: only the correlation of the steps differs);
//   - equal σ (the continuous-time SDE dx = −f' dt + σ dB^H at a fixed σ = s·h^{−½}): the per-step
//     standard deviation is σ h^H = s h^{½−H}, smaller for H > ½ since h < 1.
//
// Both coincide at H = ½. For each H: the fraction of chains escaped within K steps, the median
// escape step over all chains (censored chains count as beyond K; "—" when fewer than half
// escaped), the mean over the escaped chains, and the stationary standard deviation of the
// linearised recursion around the well (x_{n+1} + 1 = (1 − 8h)(x_n + 1) + σ ΔB^H_n, exact from the
// fGn autocovariance), which explains most of the differences.
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
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const (
	barrier   = 1.0
	stepSize  = 0.05
	perStepSD = 0.16 // s: the per-step noise standard deviation at H = ½
	threshold = 0.5
	seed      = 4511
	date      = "2026-11-23"
)

var hursts = []float64{0.3, 0.4, 0.5, 0.6, 0.7, 0.8}

// scaling is one way of choosing σ for each H.
type scaling struct {
	name  string
	sigma func(hurst float64) float64
}

var scalings = []scaling{
	{"equal per-step variance", func(hurst float64) float64 { return perStepSD * math.Pow(stepSize, -hurst) }},
	{"equal σ", func(float64) float64 { return perStepSD * math.Pow(stepSize, -0.5) }},
}

type result struct {
	scaling        string
	hurst, sigma   float64
	escape         []int
	fraction, mean float64
	median         float64 // over all chains, NaN when fewer than half escaped
	linearSD       float64
	wall           time.Duration
}

// fgnRho is the unit-step fGn autocovariance.
func fgnRho(hurst float64, k int) float64 {
	a := math.Abs(float64(k))
	return 0.5 * (math.Pow(a+1, 2*hurst) - 2*math.Pow(a, 2*hurst) + math.Pow(math.Abs(a-1), 2*hurst))
}

// linearSD is the stationary standard deviation of y_{n+1} = r y_n + σ h^H ξ_n, ξ unit-step fGn:
// Var = σ² h^{2H} Σ_{k,l ≥ 0} r^{k+l} ρ(k − l), truncated where r^k < 10⁻¹⁰.
func linearSD(hurst, sigma, r float64) float64 {
	n := int(math.Ceil(math.Log(1e-10) / math.Log(math.Abs(r))))
	s := 0.0
	for k := 0; k < n; k++ {
		for l := 0; l < n; l++ {
			s += math.Pow(r, float64(k+l)) * fgnRho(hurst, k-l)
		}
	}
	return sigma * math.Pow(stepSize, hurst) * math.Sqrt(s)
}

// medianAll is the median escape step over all chains, chains that never escaped counting as
// beyond the budget: NaN when fewer than half escaped.
func medianAll(escape []int) float64 {
	t := make([]float64, len(escape))
	for i, s := range escape {
		t[i] = math.Inf(1)
		if s >= 0 {
			t[i] = float64(s)
		}
	}
	slices.Sort(t)
	n := len(t)
	m := t[n/2]
	if n%2 == 0 {
		m = 0.5 * (t[n/2-1] + t[n/2])
	}
	if math.IsInf(m, 0) {
		return math.NaN()
	}
	return m
}

func main() {
	out := flag.String("out", "docs", "directory for fpgd.md and fpgd.png")
	n := flag.Int("n", 2000, "chains per Hurst index")
	steps := flag.Int("steps", 8192, "step budget K")
	flag.Parse()
	b := ops.CPU()
	w, err := solvers.NewDoubleWell(1, barrier)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	var results []result
	for _, sc := range scalings {
		for _, hurst := range hursts {
			if sc.name != scalings[0].name && hurst == 0.5 {
				// The two scalings coincide at H = ½: reuse the run.
				r := results[slices.IndexFunc(results, func(r result) bool { return r.hurst == 0.5 })]
				r.scaling = sc.name
				results = append(results, r)
				continue
			}
			x0, err := tensor.New(nil, tensor.F64, *n, 1)
			if err != nil {
				log.Fatal(err)
			}
			if err := x0.Fill(-1); err != nil {
				log.Fatal(err)
			}
			sigma := sc.sigma(hurst)
			t0 := time.Now()
			res, err := solvers.FPGD(b, w, x0, solvers.FPGDConfig{Hurst: hurst, StepSize: stepSize, Sigma: sigma,
				Steps: *steps, Seed: seed, Escape: &solvers.EscapeSpec{Threshold: threshold}})
			if err != nil {
				log.Fatalf("H = %g: %v", hurst, err)
			}
			r := result{scaling: sc.name, hurst: hurst, sigma: sigma, escape: res.Escape, wall: time.Since(t0),
				linearSD: linearSD(hurst, sigma, 1-8*barrier*stepSize), median: medianAll(res.Escape)}
			r.fraction, r.mean, _ = res.EscapeStats()
			if res.NaN.Chains > 0 {
				log.Fatalf("H = %g: %v", hurst, res.NaN)
			}
			res.Close()
			x0.Close()
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "%-24s H=%.1f σ=%.3f escaped %.3f median %v mean %.0f (%v)\n", sc.name, hurst, sigma,
				r.fraction, r.median, r.mean, r.wall.Round(time.Millisecond))
		}
	}
	total := time.Since(start)
	if err := writePlot(filepath.Join(*out, "fpgd.png"), results, *steps); err != nil {
		log.Fatal(err)
	}
	if err := writeReport(filepath.Join(*out, "fpgd.md"), results, *n, *steps, total); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "done in %v\n", total.Round(time.Second))
}

func orDash(v float64, format string) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

func writeReport(path string, results []result, n, steps int, total time.Duration) error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# fPGD: escape times from a double well against the Hurst index\n\n")
	report.Generated(&w, "fpgd", date, "float64", "sweep", total)
	fmt.Fprintf(&w, "Question (docs/math.md §4.5): does persistent fractional noise (H > ½) make gradient descent leave a local minimum sooner than independent noise (H = ½) of the same per-step variance?\n\n")
	fmt.Fprintf(&w, "## Setup\n\n")
	fmt.Fprintf(&w, "- Objective: f(x) = b (x² − 1)², b = %g, d = 1 (`solvers.DoubleWell`): minima at ±1 with curvature 8b, barrier b at 0.\n", barrier)
	fmt.Fprintf(&w, "- fPGD (`solvers.FPGD`): x_{n+1} = x_n − h f'(x_n) + σ ΔB^H_n, h = %g, exact fGn increments (Davies–Harte), Var ΔB^H_n = h^{2H}; %d chains from x_0 = −1, budget K = %d steps, seed %d (the same for every H).\n", stepSize, n, steps, seed)
	fmt.Fprintf(&w, "- Escape: the first step with x > %g (`solvers.EscapeSpec`), i.e. half way into the other well.\n", threshold)
	fmt.Fprintf(&w, "- Scalings: *equal per-step variance* σ = s·h^{−H} (every step's noise has standard deviation s = %g; only the correlation between steps changes with H) and *equal σ* = s·h^{−½} (the SDE dx = −f' dt + σ dB^H at one σ; the per-step standard deviation s·h^{½−H} shrinks as H grows). They coincide at H = ½.\n", perStepSD)
	fmt.Fprintf(&w, "- Columns: escaped = fraction of chains that escaped within K steps; median = median escape step over all chains (— when fewer than half escaped); mean = mean escape step of the chains that escaped (biased low when many are censored); linear SD = exact stationary standard deviation of the recursion linearised at the minimum, y_{n+1} = (1 − 8bh) y_n + σ ΔB^H_n (from ρ(k)), the spread that the noise builds up inside the well.\n\n")
	for _, sc := range scalings {
		fmt.Fprintf(&w, "## %s\n\n", strings.ToUpper(sc.name[:1])+sc.name[1:])
		fmt.Fprintf(&w, "| H | σ | per-step SD | linear SD | escaped | median step | mean step (escaped) | wall |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range results {
			if r.scaling != sc.name {
				continue
			}
			fmt.Fprintf(&w, "| %.1f | %.3f | %.3f | %.3f | %.3f | %s | %s | %v |\n", r.hurst, r.sigma,
				r.sigma*math.Pow(stepSize, r.hurst), r.linearSD, r.fraction, orDash(r.median, "%.0f"),
				orDash(r.mean, "%.0f"), r.wall.Round(time.Millisecond))
		}
		fmt.Fprintf(&w, "\n")
	}
	fmt.Fprintf(&w, "![fraction of chains not yet escaped against the step](fpgd.png)\n\n")
	fmt.Fprintf(&w, "## Running fPGD yourself\n\n%s\n", usage)
	fmt.Fprintf(&w, "## Reading\n\n%s", reading)
	return report.WriteFile(path, w.Bytes())
}

// usage shows the library call and the command behind the experiment.
const usage = "Library (`solvers.FPGD`; the objective is any Go type with `Dim`, `Value` and `Grad`):\n\n" +
	"```go\n" +
	"w, _ := solvers.NewDoubleWell(1, 1)\n" +
	"x0, _ := tensor.New(nil, tensor.F64, 2000, 1)\n" +
	"x0.Fill(-1)\n" +
	"h, s, hurst := 0.05, 0.16, 0.7\n" +
	"res, err := solvers.FPGD(ops.CPU(), w, x0, solvers.FPGDConfig{Hurst: hurst, StepSize: h,\n" +
	"\tSigma: s * math.Pow(h, -hurst), Steps: 8192, Seed: 4511, Escape: &solvers.EscapeSpec{Threshold: 0.5}})\n" +
	"frac, mean, median := res.EscapeStats() // over the escaped chains\n" +
	"```\n\n" +
	"Command: the H = 0.7 row of the first table (σ = 0.16·0.05^−0.7 = 1.30269…; the escape summary\n" +
	"goes to --stats):\n\n" +
	"```\n" +
	"echo '{\"kind\": \"double-well\", \"dim\": 1, \"barrier\": 1}' > dw.json\n" +
	"scorekit optimize fpgd --objective dw.json --hurst 0.7 --step 0.05 --sigma 1.302689700918094 \\\n" +
	"    --steps 8192 --n 2000 --seed 4511 --dtype f64 --out final.npy --stats stats.json --plot fpgd.png\n" +
	"```\n\n" +
	"The noise paths alone: `scorekit noise fgn|fbm --hurst H --length L --paths N [--horizon T] --out P.npy --plot P.png`.\n"

// reading is the interpretation of the measured tables (written for the settings above; re-read
// it against the tables if they change).
const reading = `At equal per-step variance the claim holds, strongly and monotonically in H: the median escape
step falls from 784 at H = 0.5 to 215, 117 and 88 at H = 0.6, 0.7 and 0.8, while at H = 0.4 only
38% and at H = 0.3 only 0.3% of the chains escape within 8192 steps. The gain flattens between
H = 0.7 and 0.8 (medians 117 and 88, means 186 and 178; the survival curves cross near 300 steps,
the H = 0.8 tail being heavier). Most of the effect is the well acting as a filter: with the
per-step standard deviation fixed, positively correlated steps add up before the drift (a
contraction by 1 − 8bh = 0.6 per step) pulls them back, so the stationary spread in the well
(linear SD) grows from 0.162 at H = 0.3 to 0.295 at H = 0.8, and escape rates depend roughly
exponentially on barrier / spread². It is not only the spread: the equal-σ run at H = 0.3 has the
same linear SD (0.295) as the equal-variance run at H = 0.8, yet its median escape step is 256
against 88. At equal spread inside the well the persistent noise still escapes about three times
sooner: its slow, long excursions carry a chain over the barrier in one push.

At equal σ — the SDE dx = −f' dt + σ dB^H with one noise scale, discretised with h = 0.05 — the
order reverses: the per-step variance σ² h^{2H} shrinks as H grows (h < 1), H = 0.3 escapes
fastest (median 256) and H = 0.8 slowest (median 2756, 82% escaped within the budget). "Persistent
noise escapes faster" is therefore a statement at equal per-step variance; at a fixed
continuous-time σ and a small step the rougher, anti-persistent noise wins.

Caveats: one dimension, one barrier (b = 1), one step size (h = 0.05: the drift forgets a
perturbation within a few steps, so only short-range correlations matter; a smaller h makes the
linear SD, and presumably the escape times, depend more strongly on H at equal per-step variance —
computed, not measured here), one seed. With 2000 chains the escaped fractions have binomial
standard errors ≤ 0.011 and the medians relative errors of a few percent. The mean over escaped
chains is biased low when chains are censored (equal σ, H = 0.8: mean 2606 below the median 2756)
and means little when few escaped (equal per-step variance, H = 0.3: 6 chains).
`

var hurstColors = []color.Color{
	color.RGBA{R: 30, G: 90, B: 220, A: 255},
	color.RGBA{R: 0, G: 170, B: 200, A: 255},
	color.RGBA{R: 0, G: 0, B: 0, A: 255},
	color.RGBA{R: 240, G: 160, B: 0, A: 255},
	color.RGBA{R: 220, G: 80, B: 20, A: 255},
	color.RGBA{R: 170, G: 0, B: 60, A: 255},
}

// survival is the fraction of chains not yet escaped after each of the steps 1..budget, at about
// 100 points per decade (for a logarithmic step axis).
func survival(escape []int, budget int) plotter.XYs {
	counts := make([]int, budget+2)
	for _, s := range escape {
		if s >= 0 {
			counts[s]++
		}
	}
	var pts plotter.XYs
	left := len(escape) - counts[0]
	next := 1.0
	for s := 1; s <= budget; s++ {
		left -= counts[s]
		if float64(s) >= next || s == budget { // about 100 points per decade
			pts = append(pts, plotter.XY{X: float64(s), Y: float64(left) / float64(len(escape))})
			next = math.Max(next*1.023, float64(s+1))
		}
	}
	return pts
}

func writePlot(path string, results []result, budget int) error {
	plots := make([][]*plot.Plot, 1)
	for _, sc := range scalings {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("double well, h = %g: %s", stepSize, sc.name)
		p.X.Label.Text = "step (log scale)"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Y.Label.Text = "fraction of chains not yet escaped"
		p.Y.Min, p.Y.Max = 0, 1
		p.Legend.Left = true
		for i, hurst := range hursts {
			for _, r := range results {
				if r.scaling != sc.name || r.hurst != hurst {
					continue
				}
				l, err := plotter.NewLine(survival(r.escape, budget))
				if err != nil {
					return err
				}
				l.Color = hurstColors[i]
				l.Width = vg.Points(1.5)
				p.Add(l)
				p.Legend.Add(fmt.Sprintf("H = %.1f", hurst), l)
			}
		}
		plots[0] = append(plots[0], p)
	}
	const tile = 5 * vg.Inch
	return report.SavePNG(path, plots, tile*vg.Length(len(plots[0])), 4*vg.Inch, 100)
}
