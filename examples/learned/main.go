//go:build !cuda

// Command learned trains a denoiser network on a 2-D data set made here — two interleaved half
// moons — and samples it with several methods at one budget, writing docs/learned.png (samples
// over the data) and docs/learned-samples.md (the distance of each method's samples to held-out
// data, against the Monte-Carlo floor). A few minutes on 2 CPU cores.
//
//	go run ./examples/learned [-out docs] [-model m.safetensors] [-quick]
//
// Data: 20 000 points, half on the arc (cos t, sin t), half on (1 − cos t, ½ − sin t),
// t ~ U(0, π), plus N(0, 0.06²) noise per coordinate; 2000 more, drawn the same way with another
// seed, are held out. Network: width 64, depth 4, one-layer blocks, depth-μP, 3000 Adam steps at
// η = 1e-2 decaying linearly, batch 256 (package train). Samplers: the registry's methods at a
// budget of 64 denoiser evaluations per chain, 2000 chains each, from the network's
// moment-matched start. Metric: the sliced 2-Wasserstein distance (64 directions) to the held-out
// points; the floor is the same distance between two independent draws of the data of that size.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/nn"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

type settings struct {
	Points, Held, Chains, Steps, Width, Depth, Budget int
}

var full = settings{Points: 20000, Held: 2000, Chains: 2000, Steps: 3000, Width: 64, Depth: 4, Budget: 64}
var quick = settings{Points: 500, Held: 200, Chains: 200, Steps: 30, Width: 16, Depth: 2, Budget: 16}

var methods = []string{solvers.MethodHeun, solvers.MethodDPMPP2M, solvers.MethodDDIM, solvers.MethodEuler,
	solvers.MethodEDMSDE, solvers.MethodRF}

// moons returns n points of the two-moons data set from seed, row-major (n, 2).
func moons(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f6f6e))
	x := make([]float64, 2*n)
	for i := 0; i < n; i++ {
		t := math.Pi * rng.Float64()
		if i%2 == 0 {
			x[2*i], x[2*i+1] = math.Cos(t), math.Sin(t)
		} else {
			x[2*i], x[2*i+1] = 1-math.Cos(t), 0.5-math.Sin(t)
		}
		x[2*i] += 0.06 * rng.NormFloat64()
		x[2*i+1] += 0.06 * rng.NormFloat64()
	}
	return x
}

func main() {
	out := flag.String("out", "docs", "directory of learned.png and learned-samples.md")
	model := flag.String("model", "", "also write the trained network to this .safetensors file")
	q := flag.Bool("quick", false, "a tiny run (seconds), for checking the program")
	flag.Parse()
	if err := run(*out, *model, *q, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

type row struct {
	Method  string
	SW      float64
	Seconds float64
	Samples []float64
}

func run(outDir, modelPath string, isQuick bool, logw io.Writer) error {
	s := full
	if isQuick {
		s = quick
	}
	begin := time.Now()
	data := moons(s.Points, 1)
	held := moons(s.Held, 2)
	other := moons(s.Held, 3)
	src, err := train.FromFlat(data, 2)
	if err != nil {
		return err
	}
	var losses []float64
	cfg := train.Config{Width: s.Width, Depth: s.Depth, BlockLayers: 1, Fourier: 8, Param: train.DepthMuP, LR: 1e-2,
		Batch: 256, Steps: s.Steps, Seed: 1,
		Schedule: func(k int) float64 { return 1 - float64(k)/float64(s.Steps) },
		Progress: func(p train.Progress) error {
			losses = append(losses, p.Loss)
			if p.Step%500 == 0 {
				fmt.Fprintf(logw, "learned: step %d of %d, loss %.4f, %v\n", p.Step, s.Steps, p.Loss, time.Since(begin).Round(time.Second))
			}
			return nil
		}}
	tr, err := train.New(cfg, src)
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := tr.Run(); err != nil {
		return err
	}
	trainTime := time.Since(begin)
	net := tr.Model()
	cov := src.Covariance()
	if modelPath != "" {
		if err := nn.Save(modelPath, net, nn.Meta{Cov: cov, Info: map[string]string{"data": "two moons (examples/learned)"}}); err != nil {
			return err
		}
	}
	tg := target.MLP{Net: net, Cov: cov}
	floor := solvers.SlicedWasserstein(held, other, 2, 64, 9)
	var rows []row
	for _, name := range methods {
		m, err := solvers.LookupMethod(name)
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := m.Run(ops.CPU(), tg, s.Chains, tensor.F64, solvers.MethodOptions{Budget: s.Budget, Seed: 5})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		x, err := res.Samples.F64()
		if err != nil {
			return err
		}
		rows = append(rows, row{Method: name, SW: solvers.SlicedWasserstein(x, held, 2, 64, 9),
			Seconds: time.Since(start).Seconds(), Samples: x})
	}
	total := time.Since(begin)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Sampling a learned denoiser: two moons\n\n")
	if isQuick {
		fmt.Fprintf(&b, "Quick run (-quick): a tiny network and sweep for checking the program, not for reading.\n\n")
	}
	report.Generated(&b, "learned", time.Now().UTC().Format("2006-01-02"), "float64", "run", total)
	fmt.Fprintf(&b, "Training (docs/learned.md): %d points of two moons, width %d, depth %d, one-layer blocks, depth-μP, %d Adam steps at η = 1e-2 decaying linearly, batch 256, in %v; DSM loss %.4f over the first tenth of the steps, %.4f over the last. Sampling: %d chains per method at %d denoiser evaluations per chain, from the network's moment-matched start, on the CPU. SW₂: sliced 2-Wasserstein distance (64 directions) to %d held-out points; the floor, the same distance between two independent draws of the data, is %.4f.\n\n",
		s.Points, s.Width, s.Depth, s.Steps, trainTime.Round(time.Second), tenthMean(losses, false), tenthMean(losses, true), s.Chains, s.Budget, s.Held, floor)
	fmt.Fprintf(&b, "| method | SW₂ to held-out data | SW₂ / floor | seconds |\n|---|%s\n", report.Numeric(3))
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.4f | %.2f | %.2f |\n", r.Method, r.SW, r.SW/floor, r.Seconds)
	}
	fmt.Fprintf(&b, "\n![samples of each method over the data](learned.png)\n")
	if err := report.WriteFile(filepath.Join(outDir, "learned-samples.md"), b.Bytes()); err != nil {
		return err
	}
	return figure(filepath.Join(outDir, "learned.png"), data, rows)
}

// tenthMean is the mean loss of the first (last = false) or last tenth of the run.
func tenthMean(l []float64, last bool) float64 {
	k := max(1, len(l)/10)
	part := l[:k]
	if last {
		part = l[len(l)-k:]
	}
	s := 0.0
	for _, v := range part {
		s += v
	}
	return s / float64(len(part))
}

func scatter(x []float64, max int, c color.Color, r vg.Length) (*plotter.Scatter, error) {
	n := min(len(x)/2, max)
	pts := make(plotter.XYs, n)
	for i := range pts {
		pts[i] = plotter.XY{X: x[2*i], Y: x[2*i+1]}
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: r, Shape: draw.CircleGlyph{}}
	return sc, nil
}

func figure(path string, data []float64, rows []row) error {
	cols := 3
	grid := make([][]*plot.Plot, (len(rows)+cols-1)/cols)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, r := range rows {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s (SW₂ %.3f)", r.Method, r.SW)
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -1.6, 2.6, -1.1, 1.6
		bg, err := scatter(data, 4000, color.RGBA{180, 180, 180, 255}, vg.Points(1))
		if err != nil {
			return err
		}
		fg, err := scatter(r.Samples, 2000, color.RGBA{31, 119, 180, 255}, vg.Points(1.2))
		if err != nil {
			return err
		}
		p.Add(bg, fg)
		grid[i/cols][i%cols] = p
	}
	for i := range grid {
		for j := range grid[i] {
			if grid[i][j] == nil {
				grid[i][j] = plot.New()
			}
		}
	}
	return report.SavePNG(path, grid, 12*vg.Inch, 8*vg.Inch, 96)
}
