// Command geometry measures the geometry of VE probability-flow ODE sampling (docs/math.md §5.1; the
// findings of Chen et al., "A geometric perspective on diffusion models") and writes
// docs/geometry.md and docs/geometry.png.
//
//	go run ./examples/geometry [-out docs]
//
// Two data sets, both generated here deterministically (PCG streams with fixed seeds): a 2-D
// spiral of 500 points, and 2000 points on a 2-D torus-like surface embedded in R^64. Each is
// sampled with the VE ODE (EDM schedule, σ from 80 to 0.002, then 0; solvers.Diffusion) by Heun
// (18 steps, 35 denoiser evaluations) and Euler (35 steps, 35 evaluations), with two denoisers:
// the empirical optimal denoiser of the data (target.Empirical, §1.2) and a Gaussian mixture — a
// kernel density estimate of the data (one isotropic component per point, variance h², h the
// median nearest-neighbour spacing). Measured over the recorded trajectories (solvers/geometry.go):
// deviation of the sampling trajectory from its chord, straightness and turning, convergence
// indices of the sampling and denoising trajectories, the mean-shift identity of an Euler step
// to σ = 0, and the distances of the samples to the training points.
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
	"gonum.org/v1/plot/vg/draw"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

const (
	seed     = 5
	convEps  = 0.05 // convergence: within 5% of the data's RMS radius
	memTol   = 0.01 // memorised: within 1% of the median nearest-neighbour spacing
	plotRuns = 14   // chains drawn in the figure
	date     = "2026-11-23"
)

type dataset struct {
	name   string
	d      int
	points []float64
	chains int
}

// spiral is 500 points on r = 0.6 θ, θ ∈ [π/2, 4π], with N(0, 0.1²) jitter.
func spiral() dataset {
	const m = 500
	rng := rand.New(rand.NewPCG(seed, 1))
	p := make([]float64, 0, 2*m)
	for i := 0; i < m; i++ {
		th := math.Pi/2 + 3.5*math.Pi*float64(i)/float64(m-1)
		p = append(p, 0.6*th*math.Cos(th)+0.1*rng.NormFloat64(), 0.6*th*math.Sin(th)+0.1*rng.NormFloat64())
	}
	return dataset{name: "spiral (d = 2, M = 500)", d: 2, points: p, chains: 400}
}

// torus is 2000 points y = A φ(u, v) in R^64: u, v uniform on [0, 2π), features
// φ = (cos u, sin u, cos v, sin v, ½cos(u+v), ½sin(u+v), ½cos 2u, ½sin 2v), A a fixed 64×8
// Gaussian matrix with entries N(0, 1/2): a 2-dimensional surface in R^64.
func torus() dataset {
	const m, d, f = 2000, 64, 8
	rng := rand.New(rand.NewPCG(seed, 2))
	a := make([]float64, d*f)
	for i := range a {
		a[i] = rng.NormFloat64() / math.Sqrt2
	}
	p := make([]float64, 0, m*d)
	for i := 0; i < m; i++ {
		u, v := 2*math.Pi*rng.Float64(), 2*math.Pi*rng.Float64()
		phi := []float64{math.Cos(u), math.Sin(u), math.Cos(v), math.Sin(v), math.Cos(u+v) / 2, math.Sin(u+v) / 2, math.Cos(2*u) / 2, math.Sin(2*v) / 2}
		for r := 0; r < d; r++ {
			s := 0.0
			for c, x := range phi {
				s += a[r*f+c] * x
			}
			p = append(p, s)
		}
	}
	return dataset{name: "torus surface (d = 64, M = 2000)", d: 64, points: p, chains: 200}
}

type row struct {
	data, model, method        string
	steps, evals               int
	maxDevChord, meanDevChord  float64
	maxDevLength, straightness float64
	maxTurn                    float64 // largest mean turning angle along the steps (degrees)
	convSample, convDenoise    float64 // median convergence index / K
	sigSample, sigDenoise      float64 // median σ at the convergence index
	meanShiftDiff, meanShiftMx float64 // mean-shift check (empirical only)
	nearest, spacing, memo     float64
	nan                        int
	wall                       time.Duration
	profileX, profileD         []float64 // DistanceToFinal / scale of both trajectories
}

func main() {
	out := flag.String("out", "docs", "directory for geometry.md and geometry.png")
	flag.Parse()
	b := ops.CPU()
	start := time.Now()
	var rows []row
	var fig *figure
	for _, ds := range []dataset{spiral(), torus()} {
		m := len(ds.points) / ds.d
		scale := solvers.RMSRadius(ds.points, ds.d)
		dataT, err := tensor.FromFloat64s(tensor.F64, ds.points, m, ds.d)
		if err != nil {
			log.Fatal(err)
		}
		set, err := ops.NewEmpirical(dataT)
		if err != nil {
			log.Fatal(err)
		}
		mem0, err := solvers.Memorisation(ds.points[:ds.d], ds.points, ds.d, memTol)
		if err != nil {
			log.Fatal(err)
		}
		h := mem0.MedianSpacing
		spec := ops.GMMSpec{}
		for i := 0; i < m; i++ {
			spec.Weights = append(spec.Weights, 1)
			spec.Means = append(spec.Means, ds.points[i*ds.d:(i+1)*ds.d])
			spec.Vars = append(spec.Vars, h*h)
		}
		kde, err := ops.NewGMM(spec)
		if err != nil {
			log.Fatal(err)
		}
		models := []struct {
			name string
			tg   target.Target
		}{
			{"empirical", target.Empirical{DataSet: set}},
			{fmt.Sprintf("gmm (KDE, h = %.3g)", h), target.GMM{Mixture: kde}},
		}
		for _, md := range models {
			for _, mt := range []struct {
				method string
				steps  int
			}{{solvers.MethodHeun, 18}, {solvers.MethodEuler, 35}} {
				t0 := time.Now()
				res, err := solvers.Diffusion(b, solvers.TargetDenoiser(md.tg), ds.chains, tensor.F64,
					solvers.DiffusionConfig{Method: mt.method, Steps: mt.steps, Seed: seed, Trajectory: true})
				if err != nil {
					log.Fatalf("%s %s %s: %v", ds.name, md.name, mt.method, err)
				}
				r, err := measure(b, ds, set, md.name == "empirical", res, scale)
				if err != nil {
					log.Fatalf("%s %s %s: %v", ds.name, md.name, mt.method, err)
				}
				r.data, r.model, r.method, r.steps = ds.name, md.name, mt.method, mt.steps
				r.evals = int(res.ScoreEvals) / ds.chains
				r.spacing = h
				r.wall = time.Since(t0)
				if ds.d == 2 && md.name == "empirical" && mt.method == solvers.MethodHeun {
					if fig, err = newFigure(ds, res); err != nil {
						log.Fatal(err)
					}
				}
				res.Close()
				rows = append(rows, r)
				fmt.Fprintf(os.Stderr, "%-32s %-22s %-5s dev/chord=%.4f straight=%.4f conv x=%.2f D=%.2f ms=%.1e memo=%.2f %v\n",
					r.data, r.model, r.method, r.maxDevChord, r.straightness, r.convSample, r.convDenoise, r.meanShiftDiff, r.memo, r.wall.Round(time.Millisecond))
			}
		}
	}
	total := time.Since(start)
	if err := fig.write(filepath.Join(*out, "geometry.png"), rows); err != nil {
		log.Fatal(err)
	}
	if err := writeReport(filepath.Join(*out, "geometry.md"), rows, total); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "done in %v\n", total.Round(time.Second))
}

// measure computes every diagnostic of one run.
func measure(b ops.Backend, ds dataset, set *ops.Empirical, empirical bool, res *solvers.Result, scale float64) (row, error) {
	var r row
	K := len(res.Sigmas) - 1
	g, err := solvers.TrajectoryGeometry(res.Trace)
	if err != nil {
		return r, err
	}
	r.maxDevChord, r.meanDevChord, r.maxDevLength, r.straightness = g.MaxDevOverChord, g.MeanDevOverChord, g.MaxDevOverLength, g.Straightness
	for _, a := range g.TurningAngle {
		r.maxTurn = math.Max(r.maxTurn, a*180/math.Pi)
	}
	r.nan = res.NaN.Chains
	cx, err := solvers.ConvergenceSteps(res.Trace, convEps, scale)
	if err != nil {
		return r, err
	}
	cd, err := solvers.ConvergenceSteps(res.Denoised, convEps, scale)
	if err != nil {
		return r, err
	}
	r.convSample, r.convDenoise = medianIndex(cx)/float64(K), medianIndex(cd)/float64(K)
	r.sigSample, r.sigDenoise = medianSigma(cx, res.Sigmas), medianSigma(cd, res.Sigmas)
	if r.profileX, err = solvers.DistanceToFinal(res.Trace); err != nil {
		return r, err
	}
	if r.profileD, err = solvers.DistanceToFinal(res.Denoised); err != nil {
		return r, err
	}
	for i := range r.profileX {
		r.profileX[i] /= scale
	}
	for i := range r.profileD {
		r.profileD[i] /= scale
	}
	x, err := res.Samples.Float64s()
	if err != nil {
		return r, err
	}
	mem, err := solvers.Memorisation(x, ds.points, ds.d, memTol)
	if err != nil {
		return r, err
	}
	r.nearest, r.memo = mem.MedianNearest, mem.Memorised
	r.meanShiftDiff, r.meanShiftMx = math.NaN(), math.NaN()
	if empirical {
		// the identity at four states along the run: x_i at σ_i for i = 0, K/3, 2K/3, K−1
		n := ds.chains
		for _, i := range []int{0, K / 3, 2 * K / 3, K - 1} {
			xi, err := res.Trace.View(i*n*ds.d, n, ds.d)
			if err != nil {
				return r, err
			}
			rep, err := solvers.MeanShiftCheck(b, set, xi, res.Sigmas[i])
			if err != nil {
				return r, err
			}
			r.meanShiftDiff = math.Max(nanZero(r.meanShiftDiff), rep.MaxAbsDiff)
			r.meanShiftMx = math.Max(nanZero(r.meanShiftMx), rep.MaxAbs)
		}
	}
	return r, nil
}

func nanZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// medianIndex is the median of the non-negative indices (−1 marks a non-finite chain).
func medianIndex(idx []int) float64 {
	var v []float64
	for _, i := range idx {
		if i >= 0 {
			v = append(v, float64(i))
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	for i := 1; i < len(v); i++ { // insertion sort: a few hundred values
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// medianSigma is the median over chains of σ at each chain's convergence index.
func medianSigma(idx []int, sigmas []float64) float64 {
	var v []int
	for _, i := range idx {
		if i >= 0 {
			v = append(v, i)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	m := medianIndex(v)
	lo, hi := int(math.Floor(m)), int(math.Ceil(m))
	return (sigmas[lo] + sigmas[hi]) / 2
}

func writeReport(path string, rows []row, total time.Duration) error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# The geometry of VE ODE sampling: straight trajectories, fast denoising, mean shift, memorisation\n\n")
	report.Generated(&w, "geometry", date, "float64", "run", total)
	fmt.Fprintf(&w, "Findings checked (Chen et al., \"A geometric perspective on diffusion models\"; docs/math.md §5.1): the sampling trajectory of the VE probability-flow ODE is quasi-linear; the denoising trajectory D(x_i; σ_i) converges in fewer steps than the sampling trajectory x_i; with the empirical optimal denoiser one Euler step to σ = 0 is one mean-shift iteration, and ODE sampling ends on training points (memorisation).\n\n")
	fmt.Fprintf(&w, "## Setup\n\n")
	fmt.Fprintf(&w, "- Data (generated by the example, PCG seed %d): a 2-D spiral, 500 points on r = 0.6 θ, θ ∈ [π/2, 4π], jitter N(0, 0.1²); and 2000 points y = A φ(u, v) in R^64, (u, v) uniform on the torus, φ eight Fourier features of (u, v), A a fixed Gaussian 64 × 8 matrix — a 2-dimensional surface in R^64.\n", seed)
	fmt.Fprintf(&w, "- Denoisers (`solvers.TargetDenoiser`): the empirical optimal denoiser of the data (`target.Empirical`, docs/math.md §1.2), and a Gaussian mixture that smooths the data: one isotropic component per point with variance h², h = the data's median nearest-neighbour spacing (a kernel density estimate).\n")
	fmt.Fprintf(&w, "- Sampler: `solvers.Diffusion`, EDM schedule (σ from 80 to 0.002, ρ = 7, then 0), Heun with 18 steps and Euler with 35 steps (35 denoiser evaluations per chain each), 400 chains (spiral) and 200 chains (R^64), seed %d, with the trajectories recorded (x_i in Trace, D(x_i; σ_i) in Denoised).\n", seed)
	fmt.Fprintf(&w, "- Diagnostics (`solvers/geometry.go`): dev/chord = mean over chains of max_i dist(x_i, [x_0, x_K]) / ‖x_K − x_0‖ (mean dev/chord: the mean over i instead of the max); dev/length: the max deviation over the path length; straightness = chord / length; max turn = the largest mean turning angle between consecutive steps along the run; conv x and conv D = median over chains of the first step index after which the sampling (resp. denoising) trajectory stays within %g × the data's RMS radius of its own final value, as a fraction of K, with the median σ_i at that index in brackets; mean-shift diff = max |Euler step σ_i → 0 − mean-shift iteration of bandwidth σ_i| over the chains at four states of the run (i = 0, K/3, 2K/3, K − 1), against the largest |value| there; nearest / spacing = median distance of a sample to its nearest training point over the data's median nearest-neighbour spacing; memorised = fraction of samples within %g × the spacing of a training point.\n\n", convEps, memTol)
	fmt.Fprintf(&w, "## Results\n\n")
	fmt.Fprintf(&w, "| data | denoiser | method | K | evals | dev/chord | mean dev/chord | dev/length | straightness | max turn | conv x (σ) | conv D (σ) | mean-shift diff (of max) | nearest / spacing | memorised | wall |\n")
	fmt.Fprintf(&w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		ms := "—"
		if !math.IsNaN(r.meanShiftDiff) {
			ms = fmt.Sprintf("%.1e (%.1f)", r.meanShiftDiff, r.meanShiftMx)
		}
		nan := report.NaNNote(r.nan)
		fmt.Fprintf(&w, "| %s | %s | %s | %d | %d | %.4f | %.4f | %.4f | %.5f | %.1f° | %.2f (%.3g) | %.2f (%.3g) | %s | %.3g | %.2f | %v%s |\n",
			r.data, r.model, r.method, r.steps, r.evals, r.maxDevChord, r.meanDevChord, r.maxDevLength, r.straightness, r.maxTurn,
			r.convSample, r.sigSample, r.convDenoise, r.sigDenoise, ms, r.nearest/r.spacing, r.memo, r.wall.Round(time.Millisecond), nan)
	}
	fmt.Fprintf(&w, "\n![trajectories over the spiral and convergence profiles](geometry.png)\n\n")
	fmt.Fprintf(&w, "Left: 14 sampling trajectories x_i (Heun, empirical denoiser) from their start at σ = 80 to the spiral data (the data and the samples are the cluster at the centre): nearly straight lines; middle: the same chains in the window [−9, 9]² around the data, with their denoising trajectories D(x_i; σ_i) (dashed), which start at the data mean and reach the neighbourhood of their final sample early; right: mean distance to the final value, over the data's RMS radius, along the steps, for the sampling (solid) and denoising (dashed) trajectories of the Heun runs.\n\n")
	fmt.Fprintf(&w, "## Reading\n\n%s", reading)
	return report.WriteFile(path, w.Bytes())
}

// reading is the interpretation of the measured table (written for the settings above; re-read it
// against the table if they change).
const reading = `All four findings reproduce, one of them with a qualification.

- Quasi-linear sampling trajectories. In every run the largest distance of a trajectory from its
  chord is about 1% of the chord (0.0086 – 0.0123) and the chord is 98.4 – 99.9% of the path's
  length: from σ = 80 to the data, the chains travel on nearly straight lines (left panel of the
  figure). In R^64 the paths are straighter (straightness 0.999, largest mean turning angle
  between steps 2.6 – 3.9°) than in the plane (0.984 – 0.988, up to 41°): the turning is
  concentrated in the middle of the run (σ ≈ 0.1 – 3, where a chain commits to a part of the
  spiral), where the remaining distance is already small against the chord.
- The denoising trajectory converges first, for the empirical optimal denoiser: to within 5% of
  the data's RMS radius of its final value at a median σ of 0.59 – 0.80 (spiral and torus), while
  the sampling trajectory needs σ ≈ 0.30 in the plane and σ ≈ 0.02 – 0.04 in R^64 (in d
  dimensions x_i is D(x_i; σ_i) plus noise of norm ≈ σ_i sqrt(d)). With the kernel-density
  mixture in R^64 the two converge together (both at σ ≈ 0.14 – 0.21): below its bandwidth h =
  0.47 that model's denoiser is close to the identity, D(x; σ) ≈ x, so the denoising trajectory
  is the sampling trajectory at the end of the run. The finding is a property of sharply peaked
  data laws (the empirical one), not of every denoiser.
- The mean-shift identity holds to rounding: the Euler step σ_i → 0 computed through the backend
  and the host mean-shift iteration differ by 4e-14 – 6e-14 on values up to 250 – 340 (≈ 1 ulp of
  the largest value in float64), at σ = 80 and at three smaller levels of the run.
- Memorisation: with the empirical optimal denoiser every sample ends on a training point — the
  median distance to the nearest one is 0 to the printed precision and 100% of the samples are
  within 1% of the data's spacing, for both methods and both data sets. The kernel-density
  mixture, the same data smoothed by its own spacing, does not memorise: its samples sit at
  0.8 – 0.85 spacings from the nearest point in the plane and 7 – 8 spacings in R^64 (where the
  isotropic kernel adds noise of norm ≈ h sqrt(64) around a 2-dimensional surface), with none
  within 1% of a spacing.

Caveats: exact denoisers (no learned network), one seed, one schedule (EDM, ρ = 7) at 35
evaluations; the convergence fractions of K depend on the schedule (ρ = 7 puts most steps at
small σ), the σ values in brackets do not.
`

// figure holds what the trajectory panels draw.
type figure struct {
	data        []float64
	traj, den   [][]plotter.XYs // per chain: sampling and denoising paths
	final       plotter.XYs
	spiralScale float64
}

func newFigure(ds dataset, res *solvers.Result) (*figure, error) {
	tr, err := res.Trace.Float64s()
	if err != nil {
		return nil, err
	}
	de, err := res.Denoised.Float64s()
	if err != nil {
		return nil, err
	}
	f := &figure{data: ds.points}
	n, T, K := ds.chains, res.Trace.Dim(0), res.Denoised.Dim(0)
	for c := 0; c < plotRuns; c++ {
		var xs, ds2 plotter.XYs
		for k := 0; k < T; k++ {
			xs = append(xs, plotter.XY{X: tr[(k*n+c)*2], Y: tr[(k*n+c)*2+1]})
		}
		for k := 0; k < K; k++ {
			ds2 = append(ds2, plotter.XY{X: de[(k*n+c)*2], Y: de[(k*n+c)*2+1]})
		}
		f.traj = append(f.traj, []plotter.XYs{xs})
		f.den = append(f.den, []plotter.XYs{ds2})
		f.final = append(f.final, xs[len(xs)-1])
	}
	return f, nil
}

func (f *figure) write(path string, rows []row) error {
	if f == nil {
		return fmt.Errorf("no trajectories to draw")
	}
	grey := color.RGBA{R: 185, G: 185, B: 185, A: 255}
	var dataXY plotter.XYs
	for i := 0; i+1 < len(f.data); i += 2 {
		dataXY = append(dataXY, plotter.XY{X: f.data[i], Y: f.data[i+1]})
	}
	panel := func(title string, lim float64, layers ...[][]plotter.XYs) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		s, err := plotter.NewScatter(dataXY)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Radius = vg.Points(1.2)
		s.GlyphStyle.Color = grey
		p.Add(s)
		for layer, paths := range layers {
			for c, ps := range paths {
				col := palette(c)
				for _, xy := range ps {
					l, pts, err := plotter.NewLinePoints(xy)
					if err != nil {
						return nil, err
					}
					l.Color, pts.Color = col, col
					l.Width = vg.Points(1)
					if layer == 1 {
						l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
						pts.GlyphStyle.Shape = draw.BoxGlyph{}
					}
					pts.GlyphStyle.Radius = vg.Points(1.3)
					p.Add(l, pts)
				}
			}
		}
		fin, err := plotter.NewScatter(f.final)
		if err != nil {
			return nil, err
		}
		fin.GlyphStyle.Shape = draw.CrossGlyph{}
		fin.GlyphStyle.Radius = vg.Points(4)
		p.Add(fin)
		p.Legend.Add("data", s)
		p.Legend.Add("samples", fin)
		p.Legend.Top = true
		if lim > 0 { // after Add, which widens the ranges to the data
			p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -lim, lim, -lim, lim
		}
		return p, nil
	}
	left, err := panel("sampling trajectories x_i (Heun, empirical denoiser)", 0, f.traj)
	if err != nil {
		return err
	}
	mid, err := panel("near the data: x_i (solid), D(x_i; σ_i) (dashed)", 9, f.traj, f.den)
	if err != nil {
		return err
	}
	right := plot.New()
	right.Title.Text = "mean distance to the final value / RMS radius"
	right.X.Label.Text = "step i"
	right.Y.Scale = plot.LogScale{}
	right.Y.Tick.Marker = plot.LogTicks{}
	right.Legend.Top = true
	for _, r := range rows {
		if r.method != solvers.MethodHeun {
			continue
		}
		col := map[[2]bool]color.Color{
			{false, true}:  color.RGBA{R: 220, G: 40, B: 40, A: 255},  // spiral, empirical
			{false, false}: color.RGBA{R: 240, G: 160, B: 60, A: 255}, // spiral, gmm
			{true, true}:   color.RGBA{R: 30, G: 90, B: 220, A: 255},  // torus, empirical
			{true, false}:  color.RGBA{R: 60, G: 170, B: 90, A: 255},  // torus, gmm
		}[[2]bool{strings.HasPrefix(r.data, "torus"), r.model == "empirical"}]
		for k, prof := range [][]float64{r.profileX, r.profileD} {
			var pts plotter.XYs
			for i, v := range prof {
				pts = append(pts, plotter.XY{X: float64(i), Y: math.Max(v, 1e-6)})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = col
			l.Width = vg.Points(1.5)
			name := "x_i"
			if k == 1 {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				name = "D(x_i)"
			}
			right.Add(l)
			right.Legend.Add(fmt.Sprintf("%s %s, %s", name, strings.Fields(r.data)[0], strings.Fields(r.model)[0]), l)
		}
	}
	plots := [][]*plot.Plot{{left, mid, right}}
	const tile = 5 * vg.Inch
	return report.SavePNG(path, plots, 3*tile, tile, 90)
}

func palette(i int) color.Color {
	h := float64(i) / plotRuns
	r, g, b := hsv(h)
	return color.RGBA{R: r, G: g, B: b, A: 255}
}

// hsv converts a hue in [0, 1) at saturation 0.8, value 0.8 to RGB.
func hsv(h float64) (uint8, uint8, uint8) {
	s, v := 0.8, 0.8
	i := math.Floor(h * 6)
	f := h*6 - i
	p, q, t := v*(1-s), v*(1-f*s), v*(1-(1-f)*s)
	var r, g, b float64
	switch int(i) % 6 {
	case 0:
		r, g, b = v, t, p
	case 1:
		r, g, b = q, v, p
	case 2:
		r, g, b = p, v, t
	case 3:
		r, g, b = p, q, v
	case 4:
		r, g, b = t, p, v
	default:
		r, g, b = v, p, q
	}
	return uint8(255 * r), uint8(255 * g), uint8(255 * b)
}
