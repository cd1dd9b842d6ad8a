// Command rf-lowdim measures the error of rectified-flow sampling against the number of steps on
// data supported near a k-dimensional subspace of R^d, on the uniform and on the
// low-dimension-adaptive (U-shaped) time grid, and writes docs/rf-lowdim.md and
// docs/rf-lowdim.png.
//
//	go run ./examples/rf-lowdim [-out docs] [-n 1000]
//
// The claim checked (Roy, Rinaldo & Sarkar; ALGORITHMS §5.3): with the U-shaped grid the error
// against the number of steps depends on the intrinsic dimension k, not on the ambient d; with
// the uniform grid it does not adapt.
//
// Data: k = 2, d ∈ {2, 32, 256}: a mixture of 6 Gaussians with means on the circle of radius 3
// in the first two coordinates, in-plane variance 0.1, variance ε² = 10⁻⁸ in the other d − 2
// coordinates (diagonal covariances). The velocity is exact (solvers.RectifiedFlow's closed form).
// Errors at K = 4 … 256 Euler steps:
//
//   - flow-map error: the median over chains of ‖x_K − x_ref‖, x_ref the same chain (same start
//     x0) run with 2048 steps on the uniform grid — the deterministic discretisation error, free
//     of Monte-Carlo noise — and the fraction of chains that end nearest another mode than
//     their reference (the flow map is discontinuous in effect between modes: a chain near a
//     boundary switches under a small perturbation and moves by a mode distance, which is why the
//     median and not the RMS measures the discretisation);
//   - SW2: the sliced 2-Wasserstein distance (64 directions) to n exact samples, with its
//     Monte-Carlo floor (two exact sample sets); also for the stochastic sampler.
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
	"sort"
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
	k           = 2
	modes       = 6
	radius      = 3.0
	inPlaneVar  = 0.1
	offPlaneVar = 1e-8
	refSteps    = 2048
	samplerSeed = 77
	exactSeed   = 2026
	projections = 64
	date        = "2026-11-23"
)

var (
	dims  = []int{2, 32, 256}
	steps = []int{4, 8, 16, 32, 64, 128, 256}
	runs  = []string{"uniform", "lowdim", "stochastic"}
)

// mixture is the data law in dimension d.
func mixture(d int) (*ops.GMM, error) {
	spec := ops.GMMSpec{}
	for c := 0; c < modes; c++ {
		a := 2 * math.Pi * float64(c) / modes
		m := make([]float64, d)
		m[0], m[1] = radius*math.Cos(a), radius*math.Sin(a)
		v := make([]float64, d)
		for j := range v {
			v[j] = offPlaneVar
			if j < k {
				v[j] = inPlaneVar
			}
		}
		spec.Weights = append(spec.Weights, 1+float64(c%3)) // weights 1, 2, 3, 1, 2, 3
		spec.Means = append(spec.Means, m)
		spec.Diag = append(spec.Diag, v)
	}
	return ops.NewGMM(spec)
}

type point struct {
	run       string
	d, steps  int
	flow, sw  float64
	switched  float64 // fraction of chains nearest another mode than the reference
	offPlane  float64 // RMS of the off-plane coordinates of the samples
	wall      time.Duration
	nanChains int
}

func config(run string, K int) solvers.RFConfig {
	switch run {
	case "uniform":
		return solvers.RFConfig{Grid: solvers.RFGridUniform, Steps: K, Seed: samplerSeed}
	case "lowdim":
		return solvers.RFConfig{Grid: solvers.RFGridLowDim, Steps: K, Seed: samplerSeed}
	}
	return solvers.RFConfig{Grid: solvers.RFGridLowDim, Steps: K, Seed: samplerSeed, Stochastic: true}
}

func sample(b ops.Backend, tg target.Target, n int, cfg solvers.RFConfig) ([]float64, int, error) {
	res, err := solvers.RectifiedFlow(b, tg, n, tensor.F64, cfg)
	if err != nil {
		return nil, 0, err
	}
	defer res.Close()
	x, err := res.Samples.Float64s()
	return x, res.NaN.Chains, err
}

// medianDiff is the median over rows of ‖a_i − b_i‖.
func medianDiff(a, b []float64, d int) float64 {
	dist := make([]float64, len(a)/d)
	for i := range dist {
		s := 0.0
		for j := i * d; j < (i+1)*d; j++ {
			e := a[j] - b[j]
			s += e * e
		}
		dist[i] = math.Sqrt(s)
	}
	sort.Float64s(dist)
	if len(dist)%2 == 1 {
		return dist[len(dist)/2]
	}
	return (dist[len(dist)/2-1] + dist[len(dist)/2]) / 2
}

// switched is the fraction of rows whose nearest mode (by the in-plane angle) differs between a
// and b.
func switched(a, b []float64, d int) float64 {
	mode := func(x []float64) int {
		a := math.Atan2(x[1], x[0])
		return int(math.Round(a/(2*math.Pi/modes))+modes) % modes
	}
	c := 0
	for i := 0; i < len(a)/d; i++ {
		if mode(a[i*d:]) != mode(b[i*d:]) {
			c++
		}
	}
	return float64(c) / float64(len(a)/d)
}

func offPlaneRMS(x []float64, d int) float64 {
	if d == k {
		return 0
	}
	s := 0.0
	for i := range x {
		if i%d >= k {
			s += x[i] * x[i]
		}
	}
	return math.Sqrt(s / float64(len(x)/d))
}

func main() {
	out := flag.String("out", "docs", "directory for rf-lowdim.md and rf-lowdim.png")
	n := flag.Int("n", 1000, "chains per run (and exact samples)")
	flag.Parse()
	b := ops.CPU()
	start := time.Now()
	var points []point
	floors := map[int]float64{}
	for _, d := range dims {
		g, err := mixture(d)
		if err != nil {
			log.Fatal(err)
		}
		tg := target.GMM{Mixture: g}
		exact, err := solvers.SampleGMM(g, *n, exactSeed)
		if err != nil {
			log.Fatal(err)
		}
		exact2, err := solvers.SampleGMM(g, *n, exactSeed+1)
		if err != nil {
			log.Fatal(err)
		}
		floors[d] = solvers.SlicedWasserstein(exact2, exact, d, projections, samplerSeed)
		ref, _, err := sample(b, tg, *n, config("uniform", refSteps))
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range runs {
			for _, K := range steps {
				t0 := time.Now()
				x, nan, err := sample(b, tg, *n, config(r, K))
				if err != nil {
					log.Fatalf("d = %d, %s, K = %d: %v", d, r, K, err)
				}
				p := point{run: r, d: d, steps: K, wall: time.Since(t0), nanChains: nan,
					sw: solvers.SlicedWasserstein(x, exact, d, projections, samplerSeed), offPlane: offPlaneRMS(x, d),
					flow: math.NaN(), switched: math.NaN()}
				if r != "stochastic" {
					p.flow, p.switched = medianDiff(x, ref, d), switched(x, ref, d)
				}
				points = append(points, p)
				fmt.Fprintf(os.Stderr, "d=%-3d %-10s K=%-3d flow=%.2e switched=%.3f SW2=%.3f off=%.1e %v\n", d, r, K, p.flow, p.switched, p.sw, p.offPlane, p.wall.Round(time.Millisecond))
			}
		}
	}
	total := time.Since(start)
	if err := writePlot(filepath.Join(*out, "rf-lowdim.png"), points, floors); err != nil {
		log.Fatal(err)
	}
	if err := writeReport(filepath.Join(*out, "rf-lowdim.md"), points, floors, *n, total); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "done in %v\n", total.Round(time.Second))
}

func find(points []point, run string, d, K int) point {
	for _, p := range points {
		if p.run == run && p.d == d && p.steps == K {
			return p
		}
	}
	return point{flow: math.NaN(), sw: math.NaN()}
}

// slope is the least-squares slope of log error against log K over the sweep.
func slope(points []point, run string, d int, metric func(point) float64) float64 {
	var xs, ys []float64
	for _, K := range steps {
		v := metric(find(points, run, d, K))
		if v > 0 && !math.IsNaN(v) {
			xs = append(xs, math.Log(float64(K)))
			ys = append(ys, math.Log(v))
		}
	}
	mx, my := 0.0, 0.0
	for i := range xs {
		mx += xs[i] / float64(len(xs))
		my += ys[i] / float64(len(xs))
	}
	num, den := 0.0, 0.0
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	return num / den
}

func writeReport(path string, points []point, floors map[int]float64, n int, total time.Duration) error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# Rectified flow on low-dimensional data: uniform vs U-shaped time grid\n\n")
	report.Generated(&w, "rf-lowdim", date, "float64", "sweep", total)
	fmt.Fprintf(&w, "Claim checked (Roy, Rinaldo & Sarkar, ALGORITHMS §5.3): with the U-shaped grid (step sizes ∝ min(t, 1 − t)) the error of the rectified-flow Euler sampler against the number of steps depends on the intrinsic dimension k, not on the ambient dimension d; with the uniform grid it does not adapt.\n\n")
	fmt.Fprintf(&w, "## Setup\n\n")
	fmt.Fprintf(&w, "- Data: k = %d, d ∈ {2, 32, 256}. A mixture of %d Gaussians, weights ∝ 1, 2, 3, 1, 2, 3, means on the circle of radius %g in the first two coordinates, variance %g in those two and ε² = %g in the other d − 2 (diagonal covariances): supported within 10⁻⁴ of a 2-plane. Rectified flow is rotation-equivariant (x0 ~ N(0, I) is isotropic), so a coordinate-aligned plane loses no generality.\n", k, modes, radius, inPlaneVar, offPlaneVar)
	fmt.Fprintf(&w, "- Samplers: `solvers.RectifiedFlow` with the exact velocity (closed-form Gaussian-mixture denoiser under x_t = t x1 + (1 − t) x0), K Euler steps on the uniform grid (`uniform`, method `rf`) or on `solvers.LowDimGrid(K, 10⁻³)` (`lowdim`, method `rf-lowdim`), and the stochastic sampler on the U-shaped grid (`stochastic`, method `rf-stochastic`). N = %d chains, seed %d; K − 1 denoiser evaluations per chain.\n", n, samplerSeed)
	fmt.Fprintf(&w, "- flow err: median over chains of ‖x_K − x_ref‖, x_ref the same chains (same x0) after %d uniform steps — the deterministic discretisation error, without Monte-Carlo noise (the reference's own error, by the first-order scaling of the uniform column, is about its K = 256 entry × 256/%d); switched: fraction of chains whose nearest mode differs from their reference's (the flow map sends chains near a boundary between modes to one mode or the other, so a small error there moves a chain by a mode distance: the median, not the RMS, measures the discretisation).", refSteps, refSteps)
	fmt.Fprintf(&w, "\n- SW2: sliced 2-Wasserstein distance (%d directions) to %d exact samples (`solvers.SampleGMM`, seed %d); its Monte-Carlo floor (exact vs exact, seed %d) is listed per d.\n", projections, n, exactSeed, exactSeed+1)
	fmt.Fprintf(&w, "- off-plane RMS: sqrt(mean over chains of Σ_{j ≥ 2} x_j²) of the samples; exact samples have ε·sqrt(d − 2) (%.1e at d = 32, %.1e at d = 256).\n\n", math.Sqrt(offPlaneVar*30), math.Sqrt(offPlaneVar*254))
	fmt.Fprintf(&w, "## Flow-map error (deterministic samplers): median ‖x_K − x_ref‖ / switched fraction\n\n| K |")
	for _, d := range dims {
		fmt.Fprintf(&w, " uniform d=%d | lowdim d=%d |", d, d)
	}
	fmt.Fprintf(&w, "\n|---:|%s\n", report.Numeric(2*len(dims)))
	for _, K := range steps {
		fmt.Fprintf(&w, "| %d |", K)
		for _, d := range dims {
			for _, r := range runs[:2] {
				p := find(points, r, d, K)
				fmt.Fprintf(&w, " %.2e / %.3f |", p.flow, p.switched)
			}
		}
		fmt.Fprintf(&w, "\n")
	}
	fmt.Fprintf(&w, "| slope |")
	for _, d := range dims {
		fmt.Fprintf(&w, " %.2f | %.2f |", slope(points, "uniform", d, func(p point) float64 { return p.flow }), slope(points, "lowdim", d, func(p point) float64 { return p.flow }))
	}
	fmt.Fprintf(&w, "\n\n(slope: least-squares slope of log median error against log K over the sweep; −1 is first order.)\n\n")
	fmt.Fprintf(&w, "## SW2 to exact samples\n\n| K |")
	for _, d := range dims {
		fmt.Fprintf(&w, " uniform d=%d | lowdim d=%d | stochastic d=%d |", d, d, d)
	}
	fmt.Fprintf(&w, "\n|---:|%s\n", report.Numeric(3*len(dims)))
	for _, K := range steps {
		fmt.Fprintf(&w, "| %d |", K)
		for _, d := range dims {
			for _, r := range runs {
				fmt.Fprintf(&w, " %.3f |", find(points, r, d, K).sw)
			}
		}
		fmt.Fprintf(&w, "\n")
	}
	fmt.Fprintf(&w, "| floor |")
	for _, d := range dims {
		fmt.Fprintf(&w, " %.3f | | |", floors[d])
	}
	fmt.Fprintf(&w, "\n\n## Off-plane RMS of the samples\n\n| K |")
	for _, d := range dims[1:] {
		for _, r := range runs {
			fmt.Fprintf(&w, " %s d=%d |", r, d)
		}
	}
	fmt.Fprintf(&w, "\n|---:|%s\n", report.Numeric(3*(len(dims)-1)))
	for _, K := range steps {
		fmt.Fprintf(&w, "| %d |", K)
		for _, d := range dims[1:] {
			for _, r := range runs {
				fmt.Fprintf(&w, " %.1e |", find(points, r, d, K).offPlane)
			}
		}
		fmt.Fprintf(&w, "\n")
	}
	nan := 0
	for _, p := range points {
		nan += p.nanChains
	}
	fmt.Fprintf(&w, "\nNon-finite chains over the whole sweep: %d.\n\n![error against steps](rf-lowdim.png)\n\n", nan)
	fmt.Fprintf(&w, "## Reading\n\n%s", reading)
	return report.WriteFile(path, w.Bytes())
}

// reading is the interpretation of the measured tables (written for the settings above; re-read
// it against the tables if the sweep changes).
const reading = `Half of the claim reproduces, trivially; the other half does not.

- Independent of d, for both grids. The flow-map errors and the switched fractions are the same
  for d = 2, 32 and 256 to every printed digit, on the uniform grid as on the U-shaped one. This is
  exact, not statistical: every component has the same law (mean 0, variance ε²) in the d − 2
  off-plane coordinates, so those coordinates cancel from the responsibilities, the in-plane
  velocity is the d = 2 velocity, and the in-plane trajectories (which start from the same
  Philox normals for every d) are computed identically. Each off-plane coordinate follows its
  own 1-D linear ODE, v = (D − x)/(1 − t) with D ≈ t ε² x/(1 − t)² ≈ 0, whose solution
  x_t = (1 − t) x0 Euler reproduces exactly on any grid: x_{i+1} = x_i (1 − t_{i+1})/(1 − t_i).
  So with the exact velocity the ambient dimension never enters the discretisation error.
- The uniform grid does not lose to the U-shaped one; it wins at every K of the sweep (median
  error 3 to 5× smaller, fewer mode switches), with the same first-order slope. The U-shaped
  grid spends its steps near t = 0 and t = 1, where the velocity is nearly linear and Euler nearly
  exact, and makes the middle coarse (at K = 64 its steps near t = ½ are 0.11 long, the uniform
  grid's 0.016): the middle of [0, 1] is where the mixture's modes separate and where the
  nonlinearity of the velocity, and so the error, lives. The paper's d-dependence of the uniform
  grid is a worst-case upper bound (total variation, drift known only up to an estimation
  error), which exact velocities on this data do not come near.
- Where d does show: the off-plane scale. Exact samples have off-plane RMS ε·sqrt(d − 2)
  (1.6e-03 at d = 256). Both samplers return almost none of it (4e-05 uniform, 1.6e-04 U-shaped
  at K = 256): the last Euler step returns D(x; t_{K−1}), which shrinks each off-plane
  coordinate to ≈ ε²/(1 − t_{K−1}) times x0 instead of ε x0, so the off-plane error is
  ≈ ε·sqrt(d − 2) for every grid whose last interior time has 1 − t_{K−1} ≫ ε (the U-shaped grid's
  δ = 10⁻³ is ten times ε here). That error grows with d but is the same for both grids and
  shrinks only once 1 − t_{K−1} ≲ ε.
- SW2 falls with d for every sampler and for the exact floor alike: random directions in R^d put
  a fraction ≈ sqrt(2/d) of their length into the plane, so SW2 is comparable across samplers
  within one d, not across d. Within each d the deterministic samplers reach the floor by K ≈ 32
  (uniform) and K ≈ 64 (U-shaped); the stochastic sampler converges more slowly (its SW2 at
  K = 256 is still above the floor at d = 2 and d = 32), as expected of an SDE discretisation of
  the same first order with added noise.

Caveats: one data family (a 2-plane, equal off-plane variance in every component — any data law
that is a product of an in-plane law and an isotropic off-plane Gaussian gives the same
decoupling), exact velocities, one seed; δ = 10⁻³ for the U-shaped grid. A learned velocity with
errors that grow with d, or data curved within its subspace's neighbourhood, are what the
paper's bounds are about and are not tested here.
`

var colors = map[string]color.Color{
	"uniform":    color.RGBA{R: 150, G: 150, B: 150, A: 255},
	"lowdim":     color.RGBA{R: 220, G: 40, B: 40, A: 255},
	"stochastic": color.RGBA{R: 30, G: 90, B: 220, A: 255},
}

var dashes = map[int][]vg.Length{2: nil, 32: {vg.Points(6), vg.Points(3)}, 256: {vg.Points(2), vg.Points(2)}}

func writePlot(path string, points []point, floors map[int]float64) error {
	metrics := []struct {
		name string
		f    func(point) float64
		runs []string
	}{
		{"median flow-map error (vs 2048 uniform steps)", func(p point) float64 { return p.flow }, runs[:2]},
		{"SW2 to exact samples", func(p point) float64 { return p.sw }, runs},
	}
	plots := make([][]*plot.Plot, 1)
	for _, mt := range metrics {
		p := plot.New()
		p.Title.Text = mt.name
		p.X.Label.Text = "Euler steps K"
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{}, plot.LogTicks{}
		p.Legend.Top = true
		for _, r := range mt.runs {
			for _, d := range dims {
				var pts plotter.XYs
				for _, K := range steps {
					v := mt.f(find(points, r, d, K))
					if v > 0 && !math.IsNaN(v) {
						pts = append(pts, plotter.XY{X: float64(K), Y: v})
					}
				}
				l, s, err := plotter.NewLinePoints(pts)
				if err != nil {
					return err
				}
				l.Color, s.Color = colors[r], colors[r]
				l.Dashes = dashes[d]
				l.Width = vg.Points(1.5)
				p.Add(l, s)
				p.Legend.Add(fmt.Sprintf("%s d=%d", r, d), l)
			}
		}
		if mt.runs[len(mt.runs)-1] == "stochastic" {
			fl := floors[dims[len(dims)-1]]
			floor, err := plotter.NewLine(plotter.XYs{{X: float64(steps[0]), Y: fl}, {X: float64(steps[len(steps)-1]), Y: fl}})
			if err != nil {
				return err
			}
			floor.Color = color.RGBA{G: 150, A: 255}
			floor.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(floor)
			p.Legend.Add("exact floor (d=256)", floor)
		}
		plots[0] = append(plots[0], p)
	}
	const tile = 5 * vg.Inch
	return report.SavePNG(path, plots, tile*vg.Length(len(metrics)), tile, 100)
}
