package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot/vg"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

var demoHelp = `Usage: scorekit demo [--dir DIR] [--device auto|cpu|cuda] [--n N] [--steps K] [--seed S] [--quiet]

The sampler comparison on a built-in target: a 2-D Gaussian mixture of five well-separated
modes with unequal weights (0.35, 0.25, 0.2, 0.12, 0.08). Runs N chains of

  ddpm       exponential integrator of the reverse OU SDE (geometric grid, T = 5)
  heun       EDM's second-order sampler on the EDM noise-level grid (σ from 80 to 0.002, ρ = 7)
  dpmpp-2m   DPM-Solver++(2M) on the same grid
  edm-sde    EDM's stochastic sampler (S_churn = 40) on the same grid
  rf-lowdim  rectified flow, Euler on the low-dimension-adaptive time grid
  rtk-mala   reverse transition kernels, 5 segments, inner MALA (Huang et al. 2024)
  rtk-uld    reverse transition kernels, 5 segments, inner ULD
  mala       MALA on the target itself from N(0, I), step size adapted (for reference: a local
             sampler that does not move mass between separated modes)

at the same score-evaluation budget K per chain (see scorekit sample --help for each method's
defaults; heun and edm-sde take ⌊(K+1)/2⌋ steps of two evaluations but the last, so they use
K − 1 when K is even) on the best device, and prints for each: the device, the score
evaluations per chain, the wall time, the sliced-Wasserstein distance SW2 (64 random directions) to N exact samples of
the mixture, and the mode-weight error (total variation between the fraction of chains nearest
each mode's mean and the mode's weight). The "exact" row is the Monte-Carlo floor: the same
distances between independent exact sample sets (mean ± standard deviation over 8 pairs); a
method whose distances lie within two standard deviations of the floor's mean is marked "≈ floor":
at this N it cannot be told from exact sampling.

Writes DIR/samples-<method>.npy and DIR/samples-exact.npy ((N, 2) float32) and DIR/demo.png (a
panel per method, samples over the mixture's log-density contours, and a panel of the target's and
each method's mode weights). Exit status 1 only on failure.

Flags:
  --dir DIR      directory to write into, created if needed (default demo)
` + deviceFlagHelp(17) + `  --n N          chains per method (default 10000)
  --steps K      score-evaluation budget per chain (default 100)
  --seed S       Philox key of the samplers (default 20261123); exact samples use S + 1 … S + 9
  --quiet        do not say which device is used
`

const (
	demoChains      = 10000
	demoSteps       = 100
	demoSeed        = 20261123
	demoProjections = 64
	demoFloorPairs  = 8 // exact-vs-exact pairs of the floor
)

// demoMixture is the demo's target: five well-separated isotropic modes with unequal weights
// (smallest distance between means ≈ 8.5, largest standard deviation 1).
var demoMixture = ops.GMMSpec{
	Weights: []float64{0.35, 0.25, 0.20, 0.12, 0.08},
	Means:   [][]float64{{-5, -4}, {5, -4}, {0, 5}, {-8, 4}, {8, 4}},
	Vars:    []float64{1.0, 0.5, 0.8, 0.3, 0.4},
}

// demoMethods are the methods the demo runs, in the order of its table.
var demoMethods = []string{"ddpm", "heun", "dpmpp-2m", "edm-sde", "rf-lowdim", "rtk-mala", "rtk-uld", "mala"}

// runDemo is `scorekit demo`.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scorekit demo")
	dir := fs.String("dir", "demo", "")
	device := fs.String("device", "auto", "")
	quiet := fs.Bool("quiet", false, "")
	n := fs.Int("n", demoChains, "")
	steps := fs.Int("steps", demoSteps, "")
	seed := fs.Uint64("seed", demoSeed, "")
	err := parse(fs, args, stdout, demoHelp)
	if err == nil {
		err = checkDeviceFlag(*device)
	}
	switch {
	case err != nil:
	case *dir == "":
		err = usagef("--dir must not be empty")
	case *n < 1 || *n > 1<<26:
		err = usagef("--n must be in [1, 2^26] (got %d)", *n)
	case *steps < 15:
		err = usagef("--steps must be ≥ 15, the least rtk-mala runs with 5 segments (got %d)", *steps)
	}
	if err == nil {
		err = demo(demoOptions{dir: *dir, device: *device, quiet: *quiet, n: *n, steps: *steps, seed: *seed}, stdout, stderr)
	}
	return exitStatus(stderr, fs.Name(), err)
}

type demoOptions struct {
	dir, device string
	quiet       bool
	n, steps    int
	seed        uint64
}

// demoRow is one line of the demo's table.
type demoRow struct {
	method, device string
	evals          int64
	wall           time.Duration
	sw, modeErr    float64
	swSD, modeSD   float64 // the floor's spread (the exact row)
	accept         float64
	nan            int
	x              []float64
}

// meanSD returns the mean and the sample standard deviation of v.
func meanSD(v []float64) (float64, float64) {
	m := 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	s := 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return m, math.Sqrt(s / float64(len(v)-1))
}

func demo(o demoOptions, stdout, stderr io.Writer) (err error) {
	g, err := ops.NewGMM(demoMixture)
	if err != nil {
		return fmt.Errorf("demo target: %w", err)
	}
	tgt := target.GMM{Mixture: g}
	bs, cleanup, err := openBackends(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	b := bs[0]
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("create --dir: %w", err)
	}
	const d = 2
	exact, err := solvers.SampleGMM(g, o.n, o.seed+1)
	if err != nil {
		return err
	}
	// The floor: the distances of independent exact sets from the reference one, over several
	// draws (one pair says little about the spread).
	var floorSW, floorMode []float64
	for k := 0; k < demoFloorPairs; k++ {
		other, err := solvers.SampleGMM(g, o.n, o.seed+2+uint64(k))
		if err != nil {
			return err
		}
		floorSW = append(floorSW, solvers.SlicedWasserstein(other, exact, d, demoProjections, o.seed))
		floorMode = append(floorMode, solvers.ModeWeightError(other, d, g))
	}
	floor := demoRow{method: "exact", device: "cpu", x: exact, accept: math.NaN()}
	floor.sw, floor.swSD = meanSD(floorSW)
	floor.modeErr, floor.modeSD = meanSD(floorMode)
	rows := []demoRow{floor}
	for _, m := range demoMethods {
		method, err := solvers.LookupMethod(m)
		if err != nil {
			return err
		}
		opts := solvers.MethodOptions{Budget: o.steps, Seed: o.seed}
		if m == solvers.MethodMALA {
			opts.Budget = o.steps - 1 // + 1 fused evaluation of the start: the same budget
		}
		start := time.Now()
		var res *solvers.MethodRun
		if len(bs) > 1 {
			res, err = method.RunOn(bs, tgt, o.n, tensor.F32, opts)
		} else {
			res, err = method.Run(b, tgt, o.n, tensor.F32, opts)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := b.Device().Synchronize(); err != nil {
			res.Close()
			return err
		}
		wall := time.Since(start)
		x, err := res.Samples.Float64s()
		if err == nil {
			err = tensor.WriteNpy(filepath.Join(o.dir, "samples-"+m+".npy"), res.Samples)
		}
		row := demoRow{method: m, device: deviceNames(bs), evals: res.ScoreEvals / int64(o.n), wall: wall, x: x,
			accept: math.NaN(), nan: res.NaN.Chains}
		if res.Accept != nil {
			row.accept = res.AcceptMean()
		}
		res.Close()
		if err != nil {
			return err
		}
		row.sw = solvers.SlicedWasserstein(x, exact, d, demoProjections, o.seed)
		row.modeErr = solvers.ModeWeightError(x, d, g)
		rows = append(rows, row)
	}
	exactT, err := tensor.FromFloat64s(tensor.F32, exact, o.n, d) // float32, as the samplers' files
	if err != nil {
		return err
	}
	if err := tensor.WriteNpy(filepath.Join(o.dir, "samples-exact.npy"), exactT); err != nil {
		return err
	}
	var panels []scatterPanel
	for _, r := range rows {
		title := "exact samples"
		if r.method != "exact" {
			title = fmt.Sprintf("%s: SW2 %.3f, mode err %.3f", r.method, r.sw, r.modeErr)
		}
		panels = append(panels, scatterPanel{title: title, x: r.x, d: d})
	}
	plots, err := scatterPlots(panels, g)
	if err != nil {
		return err
	}
	var series []modeWeightSeries
	for _, r := range rows {
		series = append(series, modeWeightSeries{name: r.method, weights: solvers.ModeWeights(r.x, d, g)})
	}
	weights := make([]float64, len(demoMixture.Weights))
	total := 0.0
	for _, w := range demoMixture.Weights {
		total += w
	}
	for k, w := range demoMixture.Weights {
		weights[k] = w / total
	}
	mw, err := modeWeightPlot(weights, series)
	if err != nil {
		return err
	}
	const tile = 4 * vg.Inch
	pngBytes, err := encodePlots(gridOf(append(plots, mw), 3), tile, tile)
	if err != nil {
		return err
	}
	pngPath := filepath.Join(o.dir, "demo.png")
	if err := tensor.WriteFileAtomic(pngPath, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(pngBytes))
		return err
	}); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "Target: 2-D Gaussian mixture, 5 modes, weights %v; %d chains per method, budget %d score evaluations per chain.\n\n",
		demoMixture.Weights, o.n, o.steps)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tdevice\tscore evals/chain\twall\tSW2 to exact\tmode-weight err\tacceptance\tvs floor\t")
	for _, r := range rows {
		evals, wall, acc, sw, mode, vs := "-", "-", "-", fmt.Sprintf("%.3f", r.sw), fmt.Sprintf("%.3f", r.modeErr), ""
		if r.method == "exact" {
			sw = fmt.Sprintf("%.3f ± %.3f", r.sw, r.swSD)
			mode = fmt.Sprintf("%.3f ± %.3f", r.modeErr, r.modeSD)
			vs = fmt.Sprintf("(%d pairs)", demoFloorPairs)
		} else {
			evals = fmt.Sprint(r.evals)
			wall = r.wall.Round(time.Millisecond).String()
			vs = "above"
			if r.sw <= floor.sw+2*floor.swSD && r.modeErr <= floor.modeErr+2*floor.modeSD {
				vs = "≈ floor"
			}
		}
		if !math.IsNaN(r.accept) {
			acc = fmt.Sprintf("%.3f", r.accept)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.method, r.device, evals, wall, sw, mode, acc, vs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.nan > 0 {
			fmt.Fprintf(stdout, "%s: %d chains turned NaN or ±Inf (excluded from SW2 and mode weights)\n", r.method, r.nan)
		}
	}
	fmt.Fprintf(stdout, "\nThe exact row is the Monte-Carlo floor: independent exact sample sets against the reference set, mean ± standard\n"+
		"deviation over %d pairs; \"≈ floor\": both distances within two standard deviations of it (indistinguishable from exact sampling).\n", demoFloorPairs)
	fmt.Fprintf(stdout, "wrote %s/samples-{%s,exact}.npy and %s\n", o.dir, joinComma(demoMethods), pngPath)
	return nil
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
