// Command rtk measures accuracy against cost of RTK-MALA, RTK-ULD and DDPM on Gaussian mixtures
// (the claim of Huang et al. 2024, "Reverse transition kernel: a flexible framework to accelerate
// diffusion inference": RTK-MALA/RTK-ULD reach a given accuracy with fewer score evaluations than
// DDPM) and writes docs/rtk-accuracy.md and docs/rtk-accuracy.png.
//
//	go run ./examples/rtk [-out docs] [-n 8000]
//
// For each dimension d ∈ {2, 10, 50} a mixture of four well-separated isotropic Gaussians with
// unequal weights is sampled by every method at budgets of 25, 50, 100, 200 and 400 score
// evaluations per chain, with N chains on the CPU reference. Accuracy: the sliced 2-Wasserstein
// distance to N exact samples (64 random directions) and the mode-weight error (total variation
// between the fraction of chains nearest each mean and the weights), solvers.SlicedWasserstein and
// solvers.ModeWeightError.
//
// Budget mapping (the command's, see scorekit sample --help): DDPM takes K steps (K evaluations);
// RTK uses 5 equal segments of [0, 5] with I inner steps each, I = ⌊K/5⌋ − 2 for RTK-MALA (one
// evaluation for the posterior-mean start and one fused log p + score for MALA's first state per
// segment) and ⌊K/5⌋ − 1 for RTK-ULD; every other RTK parameter is the library default.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const (
	samplerSeed = 1123 // Philox key of every sampler run
	exactSeed   = 2024 // exact samples: exactSeed (reference) and exactSeed + 1 (the floor)
	targetSeed  = 7    // the mixtures' means
	projections = 64
	segments    = 5
	date        = "2026-11-23"
)

var (
	budgets = []int{25, 50, 100, 200, 400}
	dims    = []int{2, 10, 50}
	methods = []string{"ddpm-uniform", "ddpm-geometric", "rtk-mala", "rtk-uld"}
)

// mixture is the target in dimension d: four isotropic components with weights 0.4, 0.3, 0.2,
// 0.1 and variances 1, 0.5, 0.7, 0.3, means at distance 6 from the origin in random directions
// (PCG seeded with targetSeed, d), pairwise ≥ 6 apart.
func mixture(d int) (*ops.GMM, error) {
	rng := rand.New(rand.NewPCG(targetSeed, uint64(d)))
	spec := ops.GMMSpec{Weights: []float64{0.4, 0.3, 0.2, 0.1}, Vars: []float64{1, 0.5, 0.7, 0.3}}
	for len(spec.Means) < 4 {
		m := make([]float64, d)
		norm := 0.0
		for j := range m {
			m[j] = rng.NormFloat64()
			norm += m[j] * m[j]
		}
		for j := range m {
			m[j] *= 6 / math.Sqrt(norm)
		}
		ok := true
		for _, o := range spec.Means {
			s := 0.0
			for j := range m {
				s += (m[j] - o[j]) * (m[j] - o[j])
			}
			ok = ok && math.Sqrt(s) >= 6
		}
		if ok {
			spec.Means = append(spec.Means, m)
		}
	}
	return ops.NewGMM(spec)
}

type result struct {
	method      string
	d, budget   int
	evals       int64
	wall        time.Duration
	sw, modeErr float64
	nan         int
}

func run(b ops.Backend, tgt target.Target, n int, method string, k int) (*solvers.Result, error) {
	switch method {
	case "ddpm-uniform":
		return solvers.DDPM(b, tgt, n, tensor.F32, solvers.DDPMConfig{Steps: k, Seed: samplerSeed})
	case "ddpm-geometric":
		grid, err := solvers.GeometricGrid(1e-3, solvers.DefaultHorizon, k)
		if err != nil {
			return nil, err
		}
		return solvers.DDPM(b, tgt, n, tensor.F32, solvers.DDPMConfig{Grid: grid, Seed: samplerSeed})
	case "rtk-mala", "rtk-uld":
		inner := k/segments - 2
		if method == "rtk-uld" {
			inner = k/segments - 1
		}
		return solvers.RTK(b, tgt, n, tensor.F32, solvers.RTKConfig{Inner: strings.TrimPrefix(method, "rtk-"),
			Segments: segments, InnerSteps: inner, Seed: samplerSeed})
	}
	return nil, fmt.Errorf("unknown method %q", method)
}

func main() {
	out := flag.String("out", "docs", "directory for rtk-accuracy.md and rtk-accuracy.png")
	n := flag.Int("n", 8000, "chains per run (and exact samples)")
	flag.Parse()
	b := ops.CPU()
	start := time.Now()
	var results []result
	floors := map[int][2]float64{}
	for _, d := range dims {
		g, err := mixture(d)
		if err != nil {
			log.Fatal(err)
		}
		tgt := target.GMM{Mixture: g}
		exact, err := solvers.SampleGMM(g, *n, exactSeed)
		if err != nil {
			log.Fatal(err)
		}
		exact2, err := solvers.SampleGMM(g, *n, exactSeed+1)
		if err != nil {
			log.Fatal(err)
		}
		floors[d] = [2]float64{solvers.SlicedWasserstein(exact2, exact, d, projections, samplerSeed),
			solvers.ModeWeightError(exact2, d, g)}
		for _, m := range methods {
			for _, k := range budgets {
				t0 := time.Now()
				res, err := run(b, tgt, *n, m, k)
				if err != nil {
					log.Fatalf("d = %d, %s, K = %d: %v", d, m, k, err)
				}
				wall := time.Since(t0)
				x, err := res.Samples.Float64s()
				if err != nil {
					log.Fatal(err)
				}
				r := result{method: m, d: d, budget: k, evals: res.ScoreEvals / int64(*n), wall: wall,
					sw:      solvers.SlicedWasserstein(x, exact, d, projections, samplerSeed),
					modeErr: solvers.ModeWeightError(x, d, g), nan: res.NaN.Chains}
				res.Close()
				results = append(results, r)
				fmt.Fprintf(os.Stderr, "d=%-3d %-15s K=%-4d evals=%-4d SW2=%.3f mode=%.3f %v\n", d, m, k, r.evals, r.sw, r.modeErr, wall.Round(time.Millisecond))
			}
		}
	}
	total := time.Since(start)
	if err := writePlot(filepath.Join(*out, "rtk-accuracy.png"), results, floors); err != nil {
		log.Fatal(err)
	}
	if err := writeReport(filepath.Join(*out, "rtk-accuracy.md"), results, floors, *n, total); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "done in %v\n", total.Round(time.Second))
}

// minBudget is the smallest budget at which method m reaches SW2 ≤ level in dimension d (0: none).
func minBudget(results []result, m string, d int, level float64, metric func(result) float64) int {
	for _, r := range results {
		if r.method == m && r.d == d && metric(r) <= level {
			return r.budget
		}
	}
	return 0
}

func writeReport(path string, results []result, floors map[int][2]float64, n int, total time.Duration) error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# RTK vs DDPM: accuracy against score evaluations on Gaussian mixtures\n\n")
	report.Generated(&w, "rtk", date, "float32", "sweep", total)
	fmt.Fprintf(&w, "Claim checked (Huang et al. 2024, ALGORITHMS §3): on Gaussian-mixture targets RTK-MALA and RTK-ULD reach a given accuracy with fewer score evaluations than DDPM.\n\n")
	fmt.Fprintf(&w, "## Setup\n\n")
	fmt.Fprintf(&w, "- Targets: in d = 2, 10, 50, four isotropic Gaussians, weights 0.4/0.3/0.2/0.1, variances 1/0.5/0.7/0.3, means at distance 6 from the origin in random directions (PCG seed %d), pairwise ≥ 6 apart.\n", targetSeed)
	fmt.Fprintf(&w, "- N = %d chains per run; sampler seed %d; exact reference samples `solvers.SampleGMM` seed %d (the floor row compares them with seed %d).\n", n, samplerSeed, exactSeed, exactSeed+1)
	fmt.Fprintf(&w, "- Budget K = score evaluations per chain. DDPM: K exponential-integrator steps of the reverse OU SDE from N(0, I) at T = 5, on a uniform grid (`ddpm-uniform`) or a geometric one from t₁ = 10⁻³ (`ddpm-geometric`, the stronger baseline). RTK: 5 equal segments of [0, 5], posterior-mean start, ⌊K/5⌋ − 2 inner MALA steps or ⌊K/5⌋ − 1 inner ULD steps per segment, library defaults otherwise (inner step h = d^(−1/3)σ² for MALA, 0.25σ for ULD). `evals` is the measured count per chain.\n")
	fmt.Fprintf(&w, "- Metrics: SW2 = sliced 2-Wasserstein distance to the exact samples over %d random directions; mode err = total variation between the fraction of chains nearest each mean and the weights. Both have a Monte-Carlo floor (two exact sample sets), listed per d.\n\n", projections)
	for _, d := range dims {
		fmt.Fprintf(&w, "## d = %d\n\nFloor (exact vs exact): SW2 %.3f, mode err %.3f.\n\n", d, floors[d][0], floors[d][1])
		fmt.Fprintf(&w, "| method | K | evals | wall | SW2 | mode err |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range results {
			if r.d != d {
				continue
			}
			nan := report.NaNNote(r.nan)
			fmt.Fprintf(&w, "| %s | %d | %d | %v | %.3f | %.3f%s |\n", r.method, r.budget, r.evals, r.wall.Round(time.Millisecond), r.sw, r.modeErr, nan)
		}
		fmt.Fprintf(&w, "\n")
	}
	fmt.Fprintf(&w, "## Budget to reach an accuracy\n\nSmallest K in the sweep at which SW2 ≤ 2 × floor and at which mode err ≤ 0.05 (— : not reached by K = 400).\n\n")
	fmt.Fprintf(&w, "| d | metric |")
	for _, m := range methods {
		fmt.Fprintf(&w, " %s |", m)
	}
	fmt.Fprintf(&w, "\n|---|---|%s\n", report.Numeric(len(methods)))
	for _, d := range dims {
		for _, mt := range []struct {
			name  string
			level float64
			f     func(result) float64
		}{
			{"SW2 ≤ 2×floor", 2 * floors[d][0], func(r result) float64 { return r.sw }},
			{"mode err ≤ 0.05", 0.05, func(r result) float64 { return r.modeErr }},
		} {
			fmt.Fprintf(&w, "| %d | %s |", d, mt.name)
			for _, m := range methods {
				if k := minBudget(results, m, d, mt.level, mt.f); k > 0 {
					fmt.Fprintf(&w, " %d |", k)
				} else {
					fmt.Fprintf(&w, " — |")
				}
			}
			fmt.Fprintf(&w, "\n")
		}
	}
	fmt.Fprintf(&w, "\n![error against score evaluations](rtk-accuracy.png)\n\n")
	fmt.Fprintf(&w, "## Reading\n\n%s", reading)
	return report.WriteFile(path, w.Bytes())
}

// reading is the interpretation of the measured tables (written for the seeds above; re-read it
// against the tables if the sweep changes).
const reading = `The claim does not reproduce in this setup. In d = 2 and d = 10 DDPM (either grid) is at least as
accurate as RTK-MALA and RTK-ULD at every budget of the sweep, on both metrics: at K = 25–50 RTK is
clearly worse (its 5 segments leave only 1–8 inner steps each, and the mode-weight error shows
chains left in the wrong basin), and from K = 100 on the RTK errors approach, but do not beat,
DDPM's. In d = 50 the curves cross: below K = 100 DDPM is better, at K = 200–400 RTK-MALA and RTK-ULD
reach SW2 ≈ 0.03, slightly below DDPM's ≈ 0.04–0.05, a gap of the order of the Monte-Carlo floor
(differences below about the floor row are not resolved by N chains; in d = 2 SW2 is dominated by
the binomial fluctuation of the mode weights for every method). So RTK's advantage, if any, shows
only in the highest dimension and at the largest budgets here; it does not show as "fewer score
evaluations for a given accuracy" at low cost.

Caveats: one target family (four well-separated isotropic components), one seed per point, the
library's default RTK settings (5 segments, posterior-mean start, d^(-1/3)σ² and 0.25σ inner
steps) with the budget split evenly between segments; the paper tunes segment counts and inner
steps per experiment and measures other distances. The DDPM baseline here is an exponential
integrator of the OU reverse SDE with exact GMM scores, which is already accurate at ~50 steps on
these targets, leaving little room to improve on it.
`

var colors = map[string]color.Color{
	"ddpm-uniform":   color.RGBA{R: 150, G: 150, B: 150, A: 255},
	"ddpm-geometric": color.RGBA{R: 0, G: 0, B: 0, A: 255},
	"rtk-mala":       color.RGBA{R: 220, G: 40, B: 40, A: 255},
	"rtk-uld":        color.RGBA{R: 30, G: 90, B: 220, A: 255},
}

func writePlot(path string, results []result, floors map[int][2]float64) error {
	metrics := []struct {
		name string
		f    func(result) float64
		fl   int
	}{{"SW2 to exact samples", func(r result) float64 { return r.sw }, 0},
		{"mode-weight error (TV)", func(r result) float64 { return r.modeErr }, 1}}
	plots := make([][]*plot.Plot, len(metrics))
	for i, mt := range metrics {
		plots[i] = make([]*plot.Plot, len(dims))
		for j, d := range dims {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("d = %d: %s", d, mt.name)
			p.X.Label.Text = "score evaluations per chain"
			p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
			p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{}, plot.LogTicks{}
			p.Legend.Top = true
			for _, m := range methods {
				var pts plotter.XYs
				for _, r := range results {
					if r.method == m && r.d == d {
						pts = append(pts, plotter.XY{X: float64(r.evals), Y: math.Max(mt.f(r), 1e-3)})
					}
				}
				l, s, err := plotter.NewLinePoints(pts)
				if err != nil {
					return err
				}
				l.Color, s.Color = colors[m], colors[m]
				l.Width = vg.Points(1.5)
				p.Add(l, s)
				p.Legend.Add(m, l, s)
			}
			fl := math.Max(floors[d][mt.fl], 1e-3)
			floor, err := plotter.NewLine(plotter.XYs{{X: float64(budgets[0]) * 0.9, Y: fl}, {X: float64(budgets[len(budgets)-1]) * 1.1, Y: fl}})
			if err != nil {
				return err
			}
			floor.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			floor.Color = color.RGBA{R: 0, G: 150, B: 0, A: 255}
			p.Add(floor)
			p.Legend.Add("exact floor", floor)
			plots[i][j] = p
		}
	}
	const tile = 4 * vg.Inch
	return report.SavePNG(path, plots, tile*vg.Length(len(dims)), tile*vg.Length(len(metrics)), 100)
}
