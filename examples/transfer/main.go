//go:build !cuda

// Command transfer measures whether a learning rate tuned on a shallow denoiser network stays good
// on deep ones (docs/learned.md): loss against learning rate for depths
// L ∈ {2, 4, 8, 16}, under the standard parametrization and under depth-μP, with one- and
// two-layer residual blocks (and, for two-layer blocks, depth-μP with the first inner layer's
// learning-rate correction of package train); and the per-layer feature-update norms across depth
// that show the two-layer blocks' collapse and its correction. It writes docs/transfer.md,
// docs/transfer.png and docs/transfer.csv.
//
//	go run ./examples/transfer [-out docs] [-quick]
//
// Data: a 2-D Gaussian mixture (8 components on the circle of radius 2, standard deviation 0.25,
// unequal weights), so that the optimal denoiser D* is known exactly (the mixture op). Each run
// trains a network of width 32 (the μP base width, so the width factors are 1) for a fixed number
// of Adam steps at base learning rate η with a linear decay to 0, batch 128, from its seed; every
// configuration gets the same budget and the same learning-rate grid. The metric is the excess
// denoising loss over the optimum,
//
//	E = mean over probe points of λ(σ)‖D(x; σ) − D*(x; σ)‖²/d,   λ(σ) = (σ² + σd²)/(σ σd)²,
//
// exactly the training loss minus its minimum (no irreducible floor), on one fixed probe of
// points drawn like training batches and shared by every run (paired comparisons). Its
// Monte-Carlo noise is reported next to the seeds' spread. A run that diverges is scored with its
// last finite network (train.Trainer.Model) and marked.
package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

// settings are the sweep's sizes: full or -quick.
type settings struct {
	Depths   []int
	LogLRs   []float64 // log10 η
	Seeds    int
	Steps    int
	Batch    int
	Probe    int
	Features int // steps before the feature-update measurement
}

var full = settings{Depths: []int{2, 4, 8, 16}, LogLRs: []float64{-3.5, -3, -2.5, -2, -1.5, -1, -0.5},
	Seeds: 3, Steps: 400, Batch: 128, Probe: 2048, Features: 20}

var quick = settings{Depths: []int{2, 4}, LogLRs: []float64{-2.5, -1.5}, Seeds: 2, Steps: 20, Batch: 32,
	Probe: 256, Features: 5}

const width = 32

// variant is one parametrization with one block type.
type variant struct {
	Name   string
	Blocks int
	Param  train.Parametrization
}

var variants = []variant{
	{"1-layer, standard", 1, train.Standard},
	{"1-layer, depth-μP", 1, train.DepthMuP},
	{"2-layer, standard", 2, train.Standard},
	{"2-layer, depth-μP", 2, train.DepthMuP},
	{"2-layer, depth-μP corrected", 2, train.DepthMuPCorrected},
}

// result is one training run.
type result struct {
	Variant  int
	Depth    int
	LogLR    float64
	Seed     int
	Excess   float64
	Diverged bool
	Seconds  float64
}

// mixture is the data law.
func mixture() (*ops.GMM, error) {
	spec := ops.GMMSpec{}
	for c := 0; c < 8; c++ {
		a := 2 * math.Pi * float64(c) / 8
		spec.Weights = append(spec.Weights, float64(1+c%3))
		spec.Means = append(spec.Means, []float64{2 * math.Cos(a), 2 * math.Sin(a)})
		spec.Vars = append(spec.Vars, 0.25*0.25)
	}
	return ops.NewGMM(spec)
}

// source draws from the mixture.
func source(g *ops.GMM) (train.Source, error) {
	p := g.Params()
	cum := make([]float64, p.K)
	total := 0.0
	for k, lw := range p.LogWeights {
		total += math.Exp(lw)
		cum[k] = total
	}
	return train.FromSampler(p.D, func(rng *rand.Rand, x []float64) {
		u := rng.Float64() * total
		k := sort.SearchFloat64s(cum, u)
		k = min(k, p.K-1)
		sd := math.Sqrt(p.Lambda[k])
		for j := range x {
			x[j] = p.Means[k*p.D+j] + sd*rng.NormFloat64()
		}
	})
}

// evaluator scores networks on the fixed probe.
type evaluator struct {
	probe  train.Probe
	exact  []float64 // D* at the probe
	lambda []float64
	d      int
}

func newEvaluator(g *ops.GMM, src train.Source, n int) (*evaluator, error) {
	probe, err := train.NewProbe(src, n, 0, 0, 2026)
	if err != nil {
		return nil, err
	}
	d := g.Dim()
	den, err := denoise(func(out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
		return ops.CPU().GMMScore(out, x, g, noise)
	}, probe, d)
	if err != nil {
		return nil, err
	}
	sd := src.SigmaData()
	lam := make([]float64, n)
	for i, s := range probe.Sigma {
		lam[i] = (s*s + sd*sd) / (s * sd * s * sd)
	}
	return &evaluator{probe: probe, exact: den, lambda: lam, d: d}, nil
}

// denoise evaluates a denoiser at the probe's points and per-point levels.
func denoise(eval func(ops.ScoreOutputs, *tensor.Tensor, ops.Noise) error, p train.Probe, d int) ([]float64, error) {
	n := len(p.Sigma)
	x, err := tensor.FromF64(append([]float64(nil), p.X...), n, d)
	if err != nil {
		return nil, err
	}
	levels, err := tensor.FromF64(append([]float64(nil), p.Sigma...), n)
	if err != nil {
		return nil, err
	}
	out, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	if err != nil {
		return nil, err
	}
	if err := eval(ops.ScoreOutputs{Denoiser: out}, x, ops.Noise{Kind: ops.VE, Levels: levels}); err != nil {
		return nil, err
	}
	return out.F64()
}

// excess returns the per-point excess losses of m.
func (e *evaluator) excess(m *ops.MLP) ([]float64, error) {
	den, err := denoise(func(out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
		return ops.CPU().MLPScore(out, x, m, noise)
	}, e.probe, e.d)
	if err != nil {
		return nil, err
	}
	per := make([]float64, len(e.lambda))
	for i := range per {
		s := 0.0
		for j := 0; j < e.d; j++ {
			r := den[i*e.d+j] - e.exact[i*e.d+j]
			s += r * r
		}
		per[i] = e.lambda[i] * s / float64(e.d)
	}
	return per, nil
}

func meanSE(x []float64) (mean, se float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	v := 0.0
	for _, xi := range x {
		v += (xi - mean) * (xi - mean)
	}
	if len(x) > 1 {
		se = math.Sqrt(v / float64(len(x)-1) / float64(len(x)))
	}
	return mean, se
}

type job struct {
	v         int
	depth     int
	logLR     float64
	seed      int
	steps     int
	batch     int
	featureAt int // > 0: measure feature updates after this many steps instead
}

func runJob(j job, src train.Source, ev *evaluator) (result, []train.LayerUpdate, error) {
	v := variants[j.v]
	steps := j.steps
	if j.featureAt > 0 {
		steps = j.featureAt
	}
	cfg := train.Config{Width: width, Depth: j.depth, BlockLayers: v.Blocks, Fourier: 8, Param: v.Param,
		BaseWidth: width, LR: math.Pow(10, j.logLR), Batch: j.batch, Steps: steps, Seed: uint64(1000*j.seed + 17)}
	if j.featureAt == 0 {
		cfg.Schedule = func(s int) float64 { return 1 - float64(s)/float64(steps) }
	}
	start := time.Now()
	tr, err := train.New(cfg, src)
	if err != nil {
		return result{}, nil, err
	}
	defer tr.Close()
	runErr := tr.Run()
	res := result{Variant: j.v, Depth: j.depth, LogLR: j.logLR, Seed: j.seed}
	if runErr != nil {
		if tr.Err() == nil {
			return result{}, nil, runErr
		}
		res.Diverged = true
	}
	if j.featureAt > 0 {
		ups, err := train.FeatureUpdates(tr.Initial(), tr.Model(), ev.probe)
		return res, ups, err
	}
	per, err := ev.excess(tr.Model())
	if err != nil {
		return result{}, nil, err
	}
	res.Excess, _ = meanSE(per)
	res.Seconds = time.Since(start).Seconds()
	return res, nil, nil
}

// featureRow is the mean over blocks and seeds of the first inner layer's own feature update.
type featureRow struct {
	Variant    int
	Depth      int
	InnerOwn   float64
	InnerOwnSE float64
	Stream     float64
}

func main() {
	out := flag.String("out", "docs", "directory of transfer.md, transfer.png and transfer.csv")
	q := flag.Bool("quick", false, "a small sweep (seconds), for checking the program")
	flag.Parse()
	if err := run(*out, *q, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

func run(outDir string, isQuick bool, logw io.Writer) error {
	s := full
	if isQuick {
		s = quick
	}
	begin := time.Now()
	g, err := mixture()
	if err != nil {
		return err
	}
	src, err := source(g)
	if err != nil {
		return err
	}
	ev, err := newEvaluator(g, src, s.Probe)
	if err != nil {
		return err
	}
	var jobs []job
	for vi := range variants {
		for _, depth := range s.Depths {
			for _, lr := range s.LogLRs {
				for seed := 0; seed < s.Seeds; seed++ {
					jobs = append(jobs, job{v: vi, depth: depth, logLR: lr, seed: seed, steps: s.Steps, batch: s.Batch})
				}
			}
		}
	}
	var featJobs []job
	for vi, v := range variants {
		if v.Blocks != 2 || v.Param == train.Standard {
			continue
		}
		for _, depth := range s.Depths {
			for seed := 0; seed < s.Seeds; seed++ {
				featJobs = append(featJobs, job{v: vi, depth: depth, logLR: -2, seed: seed, batch: s.Batch, featureAt: s.Features})
			}
		}
	}
	results := make([]result, len(jobs))
	updates := make([][]train.LayerUpdate, len(featJobs))
	all := append(append([]job(nil), jobs...), featJobs...)
	var mu sync.Mutex
	var firstErr error
	next := 0
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(all) || firstErr != nil {
					return
				}
				r, ups, err := runJob(all[i], src, ev)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s, L = %d, η = 1e%g, seed %d: %w", variants[all[i].v].Name, all[i].depth, all[i].logLR, all[i].seed, err)
				}
				if i < len(jobs) {
					results[i] = r
				} else {
					updates[i-len(jobs)] = ups
				}
				if (i+1)%20 == 0 {
					fmt.Fprintf(logw, "transfer: %d of %d runs, %v\n", i+1, len(all), time.Since(begin).Round(time.Second))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	feats := summarizeFeatures(featJobs, updates)
	start, err := initialNetwork(src)
	if err != nil {
		return err
	}
	initial, err := ev.excess(start)
	if err != nil {
		return err
	}
	initMean, _ := meanSE(initial)
	md, err := writeReport(s, isQuick, results, feats, ev, initMean, time.Since(begin))
	if err != nil {
		return err
	}
	var csvBuf bytes.Buffer
	cw := csv.NewWriter(&csvBuf)
	_ = cw.Write([]string{"variant", "blocks", "parametrization", "depth", "log10_lr", "seed", "excess", "diverged", "seconds"})
	for _, r := range results {
		v := variants[r.Variant]
		_ = cw.Write([]string{v.Name, strconv.Itoa(v.Blocks), string(v.Param), strconv.Itoa(r.Depth),
			strconv.FormatFloat(r.LogLR, 'g', -1, 64), strconv.Itoa(r.Seed), strconv.FormatFloat(r.Excess, 'g', 6, 64),
			strconv.FormatBool(r.Diverged), strconv.FormatFloat(r.Seconds, 'f', 2, 64)})
	}
	cw.Flush()
	if err := report.WriteFile(filepath.Join(outDir, "transfer.md"), md); err != nil {
		return err
	}
	if err := figure(filepath.Join(outDir, "transfer.png"), s, results, feats); err != nil {
		return err
	}
	return report.WriteFile(filepath.Join(outDir, "transfer.csv"), csvBuf.Bytes())
}

// initialNetwork is the function every run starts from: the Gaussian denoiser of the data (a zero
// output layer), whatever the other weights.
func initialNetwork(src train.Source) (*ops.MLP, error) {
	tr, err := train.New(train.Config{Width: width, Depth: 1, BlockLayers: 1, Fourier: 8, LR: 1e-3, Batch: 1}, src)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	return tr.Initial(), nil
}

func summarizeFeatures(jobs []job, ups [][]train.LayerUpdate) []featureRow {
	type key struct{ v, depth int }
	own := map[key][]float64{}
	stream := map[key][]float64{}
	var order []key
	for i, j := range jobs {
		k := key{j.v, j.depth}
		if _, ok := own[k]; !ok {
			order = append(order, k)
		}
		var o []float64
		last := 0.0
		for _, u := range ups[i] {
			if u.Inner {
				o = append(o, u.Own)
			}
			if u.Block >= 0 && !u.Inner {
				last = u.Total
			}
		}
		m, _ := meanSE(o)
		own[k] = append(own[k], m)
		stream[k] = append(stream[k], last)
	}
	var rows []featureRow
	for _, k := range order {
		m, se := meanSE(own[k])
		st, _ := meanSE(stream[k])
		rows = append(rows, featureRow{Variant: k.v, Depth: k.depth, InnerOwn: m, InnerOwnSE: se, Stream: st})
	}
	return rows
}

// cell is the seeds' mean and 95% confidence half-width (Student t) of one (variant, L, η).
type cell struct {
	Mean, Half float64
	Diverged   int
}

var tQuantile = map[int]float64{1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}

func cells(s settings, results []result) map[[3]float64]cell {
	group := map[[3]float64][]result{}
	for _, r := range results {
		k := [3]float64{float64(r.Variant), float64(r.Depth), r.LogLR}
		group[k] = append(group[k], r)
	}
	out := map[[3]float64]cell{}
	for k, rs := range group {
		var x []float64
		c := cell{}
		for _, r := range rs {
			x = append(x, r.Excess)
			if r.Diverged {
				c.Diverged++
			}
		}
		c.Mean, c.Half = meanSE(x)
		c.Half *= tQuantile[len(x)-1]
		out[k] = c
	}
	return out
}

// best is the learning rate of the smallest mean excess of (variant, depth).
func best(s settings, cs map[[3]float64]cell, v, depth int) (float64, cell) {
	bl, bc := math.NaN(), cell{Mean: math.Inf(1)}
	for _, lr := range s.LogLRs {
		c := cs[[3]float64{float64(v), float64(depth), lr}]
		if c.Diverged == 0 && c.Mean < bc.Mean {
			bl, bc = lr, c
		}
	}
	return bl, bc
}

func writeReport(s settings, isQuick bool, results []result, feats []featureRow, ev *evaluator, initMean float64, total time.Duration) ([]byte, error) {
	var b bytes.Buffer
	cs := cells(s, results)
	fmt.Fprintf(&b, "# Learning-rate transfer across depth: standard, depth-μP and the two-layer correction\n\n")
	if isQuick {
		fmt.Fprintf(&b, "Quick run (-quick): a reduced sweep for checking the program, not for reading.\n\n")
	}
	report.Generated(&b, "transfer", time.Now().UTC().Format("2006-01-02"), "float64", "sweep", total)
	fmt.Fprintf(&b, "The question (docs/learned.md): is the learning rate tuned at small depth L still near-optimal at large L? Data: a 2-D mixture of 8 Gaussians (circle of radius 2, standard deviation 0.25, weights 1:2:3), whose exact denoiser D* the mixture op computes. Each run trains width %d (the μP base width), Fourier features 8, %d Adam steps, batch %d, linear decay of η to 0, seeds 0 … %d; every configuration gets the same budget and the same grid of η. Metric: the excess denoising loss over the optimum, E = mean λ(σ)‖D − D*‖²/d on one probe of %d points drawn like the training batches (shared by all runs); the network every run starts from (the Gaussian denoiser of the data) has E = %.4g. Cells: mean over seeds ± 95%% confidence half-width (Student t over %d seeds); the probe's own Monte-Carlo noise is far smaller, since all runs share it.\n\n",
		width, s.Steps, s.Batch, s.Seeds-1, len(ev.lambda), initMean, s.Seeds)

	fmt.Fprintf(&b, "## Best learning rate per depth\n\n")
	fmt.Fprintf(&b, "η* is the grid's η of the smallest mean excess; \"E at η*(L=%d)\" is the excess at depth L when the learning rate tuned at the shallowest depth is reused, and \"regret\" its ratio to the best excess at that depth (1 = perfect transfer).\n\n", s.Depths[0])
	fmt.Fprintf(&b, "| variant | L | log10 η* | E at η* | E at η*(L=%d) | regret | diverged runs |\n|---|---:|%s\n", s.Depths[0], report.Numeric(5))
	for vi, v := range variants {
		lr0, _ := best(s, cs, vi, s.Depths[0])
		for _, depth := range s.Depths {
			lr, c := best(s, cs, vi, depth)
			c0 := cs[[3]float64{float64(vi), float64(depth), lr0}]
			div := 0
			for _, lr := range s.LogLRs {
				div += cs[[3]float64{float64(vi), float64(depth), lr}].Diverged
			}
			fmt.Fprintf(&b, "| %s | %d | %g | %.3g ± %.2g | %.3g ± %.2g | %.2f | %d |\n", v.Name, depth, lr, c.Mean, c.Half, c0.Mean, c0.Half, c0.Mean/c.Mean, div)
		}
	}
	fmt.Fprintf(&b, "\n## Excess against learning rate\n\n![excess loss against learning rate](transfer.png)\n\n")
	fmt.Fprintf(&b, "| variant | L |")
	for _, lr := range s.LogLRs {
		fmt.Fprintf(&b, " η = 1e%g |", lr)
	}
	fmt.Fprintf(&b, "\n|---|---:|%s\n", report.Numeric(len(s.LogLRs)))
	for vi, v := range variants {
		for _, depth := range s.Depths {
			fmt.Fprintf(&b, "| %s | %d |", v.Name, depth)
			for _, lr := range s.LogLRs {
				c := cs[[3]float64{float64(vi), float64(depth), lr}]
				mark := ""
				if c.Diverged > 0 {
					mark = fmt.Sprintf(" (%d div.)", c.Diverged)
				}
				fmt.Fprintf(&b, " %.3g ± %.2g%s |", c.Mean, c.Half, mark)
			}
			fmt.Fprintf(&b, "\n")
		}
	}
	fmt.Fprintf(&b, "\n## Feature updates of two-layer blocks across depth\n\n")
	fmt.Fprintf(&b, "After %d steps at η = 1e-2 (no decay), train.FeatureUpdates on the probe: \"inner own\" is the RMS change of the first inner layer's features caused by its own parameters (input held fixed), averaged over blocks, then over seeds (± standard error); \"stream\" is the total RMS change of the last block's output. Under depth-μP the inner layer's own update should shrink like 1/√L (the collapse); the correction should keep it flat.\n\n", s.Features)
	fmt.Fprintf(&b, "| variant | L | inner own | stream |\n|---|---:|%s\n", report.Numeric(2))
	for _, f := range feats {
		fmt.Fprintf(&b, "| %s | %d | %.3f ± %.3f | %.3f |\n", variants[f.Variant].Name, f.Depth, f.InnerOwn, f.InnerOwnSE, f.Stream)
	}
	fmt.Fprintf(&b, "\n## Reading\n\n%s\n", reading(s, cs, feats))
	return b.Bytes(), nil
}

// reading states what the tables show, computed from them.
func reading(s settings, cs map[[3]float64]cell, feats []featureRow) string {
	var b bytes.Buffer
	lo, hi := s.Depths[0], s.Depths[len(s.Depths)-1]
	for vi, v := range variants {
		lr0, _ := best(s, cs, vi, lo)
		lr1, c1 := best(s, cs, vi, hi)
		c0 := cs[[3]float64{float64(vi), float64(hi), lr0}]
		fmt.Fprintf(&b, "- %s: η* moves from 1e%g at L = %d to 1e%g at L = %d; reusing the L = %d rate at L = %d costs a factor %.2f in excess (%.3g vs %.3g).\n",
			v.Name, lr0, lo, lr1, hi, lo, hi, c0.Mean/c1.Mean, c0.Mean, c1.Mean)
	}
	byKey := map[[2]int]featureRow{}
	for _, f := range feats {
		byKey[[2]int{f.Variant, f.Depth}] = f
	}
	for vi, v := range variants {
		a, ok1 := byKey[[2]int{vi, lo}]
		z, ok2 := byKey[[2]int{vi, hi}]
		if ok1 && ok2 {
			fmt.Fprintf(&b, "- %s: the first inner layer's own feature update goes from %.3f at L = %d to %.3f at L = %d (ratio %.2f; 1/√(%d/%d) = %.2f).\n",
				v.Name, a.InnerOwn, lo, z.InnerOwn, hi, z.InnerOwn/a.InnerOwn, hi, lo, math.Sqrt(float64(lo)/float64(hi)))
		}
	}
	return b.String()
}

var depthColors = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}}

func figure(path string, s settings, results []result, feats []featureRow) error {
	cs := cells(s, results)
	rows := [][]*plot.Plot{make([]*plot.Plot, 3), make([]*plot.Plot, 3)}
	for vi, v := range variants {
		p := plot.New()
		p.Title.Text = v.Name
		p.X.Label.Text = "log10 η"
		p.Y.Label.Text = "log10 excess loss"
		for di, depth := range s.Depths {
			var pts, lo, hi plotter.XYs
			for _, lr := range s.LogLRs {
				c := cs[[3]float64{float64(vi), float64(depth), lr}]
				if !(c.Mean > 0) {
					continue
				}
				pts = append(pts, plotter.XY{X: lr, Y: math.Log10(c.Mean)})
				lo = append(lo, plotter.XY{X: lr, Y: math.Log10(math.Max(c.Mean-c.Half, c.Mean/10))})
				hi = append(hi, plotter.XY{X: lr, Y: math.Log10(c.Mean + c.Half)})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = depthColors[di%len(depthColors)]
			l.Width = vg.Points(1.5)
			p.Add(l)
			for _, band := range []plotter.XYs{lo, hi} {
				bl, err := plotter.NewLine(band)
				if err != nil {
					return err
				}
				bl.Color = l.Color
				bl.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
				p.Add(bl)
			}
			p.Legend.Add(fmt.Sprintf("L = %d", depth), l)
		}
		p.Legend.Top = true
		row, col := 0, vi
		if v.Blocks == 2 {
			row, col = 1, vi-2
		}
		rows[row][col] = p
	}
	fp := plot.New()
	fp.Title.Text = "2-layer blocks: first inner layer's own update"
	fp.X.Label.Text = "depth L"
	fp.Y.Label.Text = "RMS feature update"
	fp.X.Scale = plot.LogScale{}
	fp.X.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, vi := range []int{3, 4} {
		var pts plotter.XYs
		for _, f := range feats {
			if f.Variant == vi {
				pts = append(pts, plotter.XY{X: float64(f.Depth), Y: f.InnerOwn})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = depthColors[(i+2)%len(depthColors)]
		l.Width = vg.Points(1.5)
		fp.Add(l)
		fp.Legend.Add(variants[vi].Name, l)
	}
	fp.Legend.Top = true
	rows[0][2] = fp
	return report.SavePNG(path, rows, 15*vg.Inch, 9*vg.Inch, 96)
}
