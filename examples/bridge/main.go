//go:build !cuda

// Command bridge measures, on a branching population, whether iterative Markovian fitting (IMF)
// of a multi-marginal Schrödinger bridge (docs/bridge.md) recovers the population at observed and
// at held-out times better than its two single-pass baselines at the same training budget. It
// writes docs/bridge-branching.md, docs/bridge-branching.png and docs/bridge-branching.csv.
//
//	go run ./examples/bridge [-out docs] [-quick]
//
// Ground truth: cells in the plane drift right at unit speed while their second coordinate
// follows a pitchfork,
//
//	dx = dt + 0.2 dW₁,   dy = (1.5 y − y³) dt + 0.3 dW₂,   x₀ ~ N(0, 0.2²), y₀ ~ N(0, 0.15²),
//
// so one cluster at t = 0 splits into two branches (y ≈ ±√1.5 ≈ ±1.22): about half of the cells
// have left the middle by t = 1, three quarters by t = 1.5 and 96% by t = 3. Every cell is simulated by
// Euler–Maruyama with step 0.01 from t = 0, and every time gets its own cells: the snapshots at the
// observed times t = 0, 1, 2, 3 (2000 cells each) are unpaired, as sequencing data are. The
// held-out time t = 1.5, in the middle of the split, is never shown to a fit; it and the observed
// times get fresh cells for scoring. In 50-D the state (x, y) and 48 coordinates of independent
// N(0, 0.3²) noise (drawn afresh for every cell and time: stationary, no dynamics) are rotated by
// one fixed random orthogonal 50 × 50 matrix O, so the structure lives in the 2-D subspace of O's
// first two columns; figures project onto it with their transpose.
//
// Methods, at one budget (width 64, depth 2, batch 256, the same number of Adam steps per
// interval): IMF (train.FitBridge, 4 iterations of S steps: forward, backward, forward,
// backward), plain bridge matching on the independent coupling (1 iteration of 4S steps), and
// independent per-interval flow matching (Flow, 1 iteration of 4S steps). Each method's learning
// rate is the best of a small grid on a tuning seed, scored on an observed time only (sliced
// Wasserstein at t = 3 after simulating forward from the t = 0 snapshot). ε is the default of
// `scorekit bridge fit` (a tenth of the snapshots' mean variance per coordinate per unit of mean
// interval) on the tuning seed's snapshots, the same for the two bridge methods.
//
// Metric: solvers.SlicedWasserstein (64 directions, one fixed projection seed) between the cells
// simulated forward from the t = 0 snapshot and fresh ground-truth cells, at t = 1, 1.5, 2 and 3;
// its floor is the same distance between two independent ground-truth samples of the same sizes.
// Five evaluation seeds, each a fresh data draw and training seed; cells give the mean and the 95%
// confidence half-width 2.776 · sd/√5.
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
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/scorekit/scorekit/examples/internal/report"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

// settings are the study's sizes: full or -quick.
type settings struct {
	Dims     []int
	N        int // cells per snapshot and per fresh sample
	Steps    int // S: Adam steps of one IMF fit; the single-pass methods take 4S
	Width    int
	Depth    int
	Batch    int
	SimSteps int // bridge-integrator steps per unit interval (even, so t = 1.5 is on the grid)
	LRs      []float64
	Seeds    int
	Paths    int // simulated trajectories drawn in the figure
}

var full = settings{Dims: []int{2, 50}, N: 2000, Steps: 400, Width: 64, Depth: 2, Batch: 256, SimSteps: 20,
	LRs: []float64{1e-3, 3e-3, 1e-2}, Seeds: 5, Paths: 100}

var quick = settings{Dims: []int{2, 50}, N: 200, Steps: 10, Width: 16, Depth: 1, Batch: 32, SimSteps: 4,
	LRs: []float64{3e-3, 1e-2}, Seeds: 2, Paths: 10}

// The ground truth's constants (see the package comment).
const (
	emStep   = 0.01 // Euler–Maruyama step of the ground truth
	pitchA   = 1.5  // the pitchfork's a in dy = (a y − y³) dt: branches at ±√a
	xNoise   = 0.2  // diffusion of x
	yNoise   = 0.3  // diffusion of y
	x0SD     = 0.2
	y0SD     = 0.15
	extraSD  = 0.3 // the 48 (d − 2) stationary noise coordinates
	swProj   = 64  // directions of the sliced Wasserstein distance
	swSeed   = 2026
	tuneSeed = 100 // the data and training seed of the learning-rate tuning
)

var (
	observed = []float64{0, 1, 2, 3}
	heldOut  = 1.5
	// scored are the times of the metric, in table order: the held-out one first.
	scored = []float64{1.5, 1, 2, 3}
)

// method is one way of fitting the bridge.
type method struct {
	Name       string
	Iterations int
	StepsMul   int // Adam steps of one fit, in units of S
	Flow       bool
}

var methods = []method{
	{"IMF (4 × S)", 4, 1, false},
	{"bridge matching (1 × 4S)", 1, 4, false},
	{"flow matching (1 × 4S)", 1, 4, true},
}

// world is one dimension's fixed embedding: the orthogonal matrix O (d × d, row-major).
type world struct {
	d int
	o []float64
}

// newWorld draws O by Gram–Schmidt on a Gaussian matrix with a seed fixed per dimension.
func newWorld(d int) world {
	rng := rand.New(rand.NewPCG(uint64(d), 0x6f7274))
	cols := make([][]float64, d)
	for j := range cols {
		v := make([]float64, d)
		for {
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			for _, c := range cols[:j] {
				dot := 0.0
				for i := range v {
					dot += v[i] * c[i]
				}
				for i := range v {
					v[i] -= dot * c[i]
				}
			}
			n := 0.0
			for _, x := range v {
				n += x * x
			}
			if n > 1e-6 {
				for i := range v {
					v[i] /= math.Sqrt(n)
				}
				break
			}
		}
		cols[j] = v
	}
	o := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			o[i*d+j] = cols[j][i]
		}
	}
	return world{d: d, o: o}
}

// cells simulates n independent cells from t = 0 to t and returns their observed states (n × d,
// row-major): (x, y) by Euler–Maruyama, then the noise coordinates, rotated by O.
func (w world) cells(rng *rand.Rand, n int, t float64) []float64 {
	steps := int(math.Round(t / emStep))
	h := t / float64(max(steps, 1))
	out := make([]float64, 0, n*w.d)
	z := make([]float64, w.d)
	for c := 0; c < n; c++ {
		x, y := x0SD*rng.NormFloat64(), y0SD*rng.NormFloat64()
		for s := 0; s < steps; s++ {
			x += h + xNoise*math.Sqrt(h)*rng.NormFloat64()
			y += (pitchA*y-y*y*y)*h + yNoise*math.Sqrt(h)*rng.NormFloat64()
		}
		z[0], z[1] = x, y
		for j := 2; j < w.d; j++ {
			z[j] = extraSD * rng.NormFloat64()
		}
		if w.d == 2 {
			out = append(out, x, y)
			continue
		}
		for i := 0; i < w.d; i++ {
			v := 0.0
			for j := 0; j < w.d; j++ {
				v += w.o[i*w.d+j] * z[j]
			}
			out = append(out, v)
		}
	}
	return out
}

// plane projects observed states onto the branching plane: (x, y) = O[:, :2]ᵀ v per row.
func (w world) plane(v []float64) []float64 {
	if w.d == 2 {
		return append([]float64(nil), v...)
	}
	n := len(v) / w.d
	out := make([]float64, 0, 2*n)
	for r := 0; r < n; r++ {
		row := v[r*w.d : (r+1)*w.d]
		for k := 0; k < 2; k++ {
			s := 0.0
			for i := 0; i < w.d; i++ {
				s += w.o[i*w.d+k] * row[i]
			}
			out = append(out, s)
		}
	}
	return out
}

// data is one seed's draw: the snapshots at the observed times and fresh cells at the scored ones.
type data struct {
	snaps  [][]float64
	fresh  map[float64][]float64
	fresh2 map[float64][]float64 // a second fresh sample: the metric's floor
}

func drawData(w world, n int, seed uint64) data {
	rng := rand.New(rand.NewPCG(seed, uint64(w.d)))
	var dt data
	for _, t := range observed {
		dt.snaps = append(dt.snaps, w.cells(rng, n, t))
	}
	dt.fresh, dt.fresh2 = map[float64][]float64{}, map[float64][]float64{}
	for _, t := range scored {
		dt.fresh[t] = w.cells(rng, n, t)
		dt.fresh2[t] = w.cells(rng, n, t)
	}
	return dt
}

// defaultEps is `scorekit bridge fit`'s default: a tenth of the snapshots' mean variance per
// coordinate per unit of the mean interval.
func defaultEps(snaps [][]float64, d int) float64 {
	v := 0.0
	for _, s := range snaps {
		n := len(s) / d
		for j := 0; j < d; j++ {
			m, m2 := 0.0, 0.0
			for i := 0; i < n; i++ {
				m += s[i*d+j]
			}
			m /= float64(n)
			for i := 0; i < n; i++ {
				m2 += (s[i*d+j] - m) * (s[i*d+j] - m)
			}
			v += m2 / float64(n) / float64(d*len(snaps))
		}
	}
	mean := (observed[len(observed)-1] - observed[0]) / float64(len(observed)-1)
	return 0.1 * v / mean
}

// fitResult is one fit and its scores.
type fitResult struct {
	Phase   string // "tune" or "eval"
	D       int
	Method  int
	LR      float64
	Seed    int
	SW      map[float64]float64 // at the scored times (tuning: t = 3 only)
	PlaneSW map[float64]float64 // the same between the projections onto the branching plane
	Seconds float64
	IterSec []float64 // wall time of every outer iteration
	Failed  string    // the error of a diverged fit
}

// fit trains one method and simulates it forward from the t = 0 snapshot over [0, 3].
func fit(s settings, m method, d int, eps, lr float64, seed uint64, dt data) (*solvers.Bridge, []float64, []float64, []float64, error) {
	steps := s.Steps * m.StepsMul
	var iterSec []float64
	last := time.Now()
	cfg := train.BridgeConfig{
		Net: train.Config{Width: s.Width, Depth: s.Depth, BlockLayers: 1, Fourier: 8, LR: lr, Batch: s.Batch,
			Steps: steps, Seed: seed, Schedule: func(k int) float64 { return 1 - float64(k)/float64(steps) }},
		Eps: eps, Iterations: m.Iterations, SimSteps: s.SimSteps, Flow: m.Flow,
		Workers: len(observed) - 1, // every interval at once: the two cores stay busy
		Progress: func(train.BridgeReport) error {
			now := time.Now()
			iterSec = append(iterSec, now.Sub(last).Seconds())
			last = now
			return nil
		},
	}
	b, err := train.FitBridge(cfg, observed, dt.snaps, d)
	if err != nil {
		return nil, nil, nil, iterSec, err
	}
	tr, times, err := simulate(b, dt.snaps[0], d, s.SimSteps, seed^0x73696d)
	return b, tr, times, iterSec, err
}

// simulate runs b forward from the rows of x0 over [0, 3] and returns the whole trace (rows × n ×
// d) and the time of every row.
func simulate(b *solvers.Bridge, x0 []float64, d, steps int, seed uint64) ([]float64, []float64, error) {
	host, err := tensor.FromF64(append([]float64(nil), x0...), len(x0)/d, d)
	if err != nil {
		return nil, nil, err
	}
	defer host.Close()
	res, err := b.Simulate(ops.CPU(), host, solvers.BridgeSimConfig{From: observed[0], To: observed[len(observed)-1],
		Steps: steps, Seed: seed, Trajectory: true})
	if err != nil {
		return nil, nil, err
	}
	defer res.Close()
	tr, err := res.Trace.Float64s()
	if err != nil {
		return nil, nil, err
	}
	if ok, i := res.Trace.HasNaN(); ok {
		return nil, nil, fmt.Errorf("simulated state %d is not finite", i)
	}
	return tr, append([]float64(nil), res.BridgeTimes...), nil
}

// at is the trace's state at time t (which must be on the grid).
func at(tr, times []float64, n, d int, t float64) ([]float64, error) {
	for i, v := range times {
		if math.Abs(v-t) < 1e-9 {
			return tr[i*n*d : (i+1)*n*d], nil
		}
	}
	return nil, fmt.Errorf("t = %g is not on the simulation grid", t)
}

func main() {
	out := flag.String("out", "docs", "directory of bridge-branching.md, .png and .csv")
	q := flag.Bool("quick", false, "a tiny study (seconds), for checking the program")
	flag.Parse()
	if err := run(*out, *q, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// study holds everything the report needs.
type study struct {
	s       settings
	quick   bool
	eps     map[int]float64
	lr      map[[2]int]float64 // (d, method) → tuned η
	results []fitResult
	floor   map[int]map[float64][]float64 // d → t → per-seed floor
	// planeFloor is the floor of the distance between projections onto the branching plane.
	planeFloor map[int]map[float64][]float64
	paths      map[int][][2][]float64 // d → per observed-time snapshot (plane) and the paths
	total      time.Duration
}

func run(outDir string, isQuick bool, logw io.Writer) error {
	s := full
	if isQuick {
		s = quick
	}
	begin := time.Now()
	st := &study{s: s, quick: isQuick, eps: map[int]float64{}, lr: map[[2]int]float64{},
		floor: map[int]map[float64][]float64{}, planeFloor: map[int]map[float64][]float64{}, paths: map[int][][2][]float64{}}
	nFits := len(s.Dims) * len(methods) * (len(s.LRs) + s.Seeds)
	done := 0
	logFit := func(r fitResult) {
		done++
		sw := r.SW[observed[len(observed)-1]]
		note := ""
		if r.Failed != "" {
			note = " (failed: " + r.Failed + ")"
		}
		fmt.Fprintf(logw, "bridge: %d/%d %s d=%d %s η=%g seed %d: SW(t=3) %.4f, %.0fs%s; %v\n", done, nFits, r.Phase, r.D,
			methods[r.Method].Name, r.LR, r.Seed, sw, r.Seconds, note, time.Since(begin).Round(time.Second))
	}
	for _, d := range s.Dims {
		w := newWorld(d)
		tune := drawData(w, s.N, tuneSeed)
		eps := defaultEps(tune.snaps, d)
		st.eps[d] = eps
		fmt.Fprintf(logw, "bridge: d=%d ε = %.4g\n", d, eps)
		for mi, m := range methods {
			best := math.Inf(1)
			for _, lr := range s.LRs {
				r := fitResult{Phase: "tune", D: d, Method: mi, LR: lr, Seed: tuneSeed, SW: map[float64]float64{}}
				start := time.Now()
				_, tr, times, iterSec, err := fit(s, m, d, eps, lr, tuneSeed, tune)
				r.Seconds, r.IterSec = time.Since(start).Seconds(), iterSec
				t3 := observed[len(observed)-1]
				if err != nil {
					r.Failed, r.SW[t3] = err.Error(), math.Inf(1)
				} else {
					x, err := at(tr, times, s.N, d, t3)
					if err != nil {
						return err
					}
					r.SW[t3] = solvers.SlicedWasserstein(x, tune.fresh[t3], d, swProj, swSeed)
				}
				if r.SW[t3] < best {
					best, st.lr[[2]int{d, mi}] = r.SW[t3], lr
				}
				st.results = append(st.results, r)
				logFit(r)
			}
			if math.IsInf(best, 1) {
				return fmt.Errorf("d = %d, %s: every learning rate of the grid failed", d, m.Name)
			}
		}
		st.floor[d], st.planeFloor[d] = map[float64][]float64{}, map[float64][]float64{}
		for seed := 0; seed < s.Seeds; seed++ {
			dt := drawData(w, s.N, uint64(seed))
			for _, t := range scored {
				st.floor[d][t] = append(st.floor[d][t], solvers.SlicedWasserstein(dt.fresh2[t], dt.fresh[t], d, swProj, swSeed))
				st.planeFloor[d][t] = append(st.planeFloor[d][t], solvers.SlicedWasserstein(w.plane(dt.fresh2[t]), w.plane(dt.fresh[t]), 2, swProj, swSeed))
			}
			for mi, m := range methods {
				lr := st.lr[[2]int{d, mi}]
				r := fitResult{Phase: "eval", D: d, Method: mi, LR: lr, Seed: seed, SW: map[float64]float64{},
					PlaneSW: map[float64]float64{}}
				start := time.Now()
				b, tr, times, iterSec, err := fit(s, m, d, eps, lr, uint64(seed), dt)
				r.Seconds, r.IterSec = time.Since(start).Seconds(), iterSec
				for _, t := range scored {
					r.SW[t], r.PlaneSW[t] = math.NaN(), math.NaN()
					if err != nil {
						continue
					}
					x, err := at(tr, times, s.N, d, t)
					if err != nil {
						return err
					}
					r.SW[t] = solvers.SlicedWasserstein(x, dt.fresh[t], d, swProj, swSeed)
					r.PlaneSW[t] = solvers.SlicedWasserstein(w.plane(x), w.plane(dt.fresh[t]), 2, swProj, swSeed)
				}
				if err != nil { // a diverged fit is kept as a failure: its scores are NaN and counted
					r.Failed = err.Error()
				}
				st.results = append(st.results, r)
				logFit(r)
				if seed == 0 && mi == 0 && err == nil {
					if err := st.keepPaths(w, b, dt, s); err != nil {
						return err
					}
				}
			}
		}
	}
	st.total = time.Since(begin)
	if err := report.WriteFile(filepath.Join(outDir, "bridge-branching.md"), st.markdown()); err != nil {
		return err
	}
	if err := st.figure(filepath.Join(outDir, "bridge-branching.png")); err != nil {
		return err
	}
	return report.WriteFile(filepath.Join(outDir, "bridge-branching.csv"), st.csv())
}

// keepPaths stores, in the branching plane, the snapshots of dt and s.Paths IMF trajectories from
// the first cells of the t = 0 snapshot.
func (st *study) keepPaths(w world, b *solvers.Bridge, dt data, s settings) error {
	d := w.d
	n := min(s.Paths, s.N)
	tr, times, err := simulate(b, dt.snaps[0][:n*d], d, s.SimSteps, 0x7061746873)
	if err != nil {
		return err
	}
	var kept [][2][]float64
	for _, sn := range dt.snaps {
		kept = append(kept, [2][]float64{w.plane(sn), nil})
	}
	// paths: one (times, plane states) pair per row of the trace, stored as rows of the trace.
	for i := range times {
		kept = append(kept, [2][]float64{{times[i]}, w.plane(tr[i*n*d : (i+1)*n*d])})
	}
	st.paths[d] = kept
	return nil
}

// cell is a mean and a 95% confidence half-width over seeds (Student t).
type cell struct{ Mean, Half float64 }

var tQuantile = map[int]float64{1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447}

func summarize(all []float64) cell {
	var x []float64
	for _, v := range all {
		if !math.IsNaN(v) {
			x = append(x, v)
		}
	}
	if len(x) == 0 {
		return cell{math.NaN(), math.NaN()}
	}
	m := 0.0
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	if len(x) < 2 {
		return cell{m, math.NaN()}
	}
	v := 0.0
	for _, xi := range x {
		v += (xi - m) * (xi - m)
	}
	return cell{m, tQuantile[len(x)-1] * math.Sqrt(v/float64(len(x)-1)/float64(len(x)))}
}

// evalSW is the per-seed SW of (d, method, t), in seed order.
func (st *study) evalSW(d, mi int, t float64) []float64 {
	var x []float64
	for _, r := range st.results {
		if r.Phase == "eval" && r.D == d && r.Method == mi {
			x = append(x, r.SW[t])
		}
	}
	return x
}

// evalPlaneSW is evalSW between the projections onto the branching plane.
func (st *study) evalPlaneSW(d, mi int, t float64) []float64 {
	var x []float64
	for _, r := range st.results {
		if r.Phase == "eval" && r.D == d && r.Method == mi {
			x = append(x, r.PlaneSW[t])
		}
	}
	return x
}

// failures counts the evaluation fits of (d, method) that diverged.
func (st *study) failures(d, mi int) int {
	n := 0
	for _, r := range st.results {
		if r.Phase == "eval" && r.D == d && r.Method == mi && r.Failed != "" {
			n++
		}
	}
	return n
}

// diff is IMF's SW minus method mi's, per seed (paired: same data and training seed).
func (st *study) diff(d, mi int, t float64) cell {
	return pairedDiff(st.evalSW(d, 0, t), st.evalSW(d, mi, t))
}

// planeDiff is diff between the projections onto the branching plane.
func (st *study) planeDiff(d, mi int, t float64) cell {
	return pairedDiff(st.evalPlaneSW(d, 0, t), st.evalPlaneSW(d, mi, t))
}

func pairedDiff(a, b []float64) cell {
	x := make([]float64, len(a))
	for i := range a {
		x[i] = a[i] - b[i]
	}
	return summarize(x)
}

// iterSeconds is the mean wall time of one IMF outer iteration (evaluation fits of dimension d).
func (st *study) iterSeconds(d int) float64 {
	var x []float64
	for _, r := range st.results {
		if r.Phase == "eval" && r.D == d && r.Method == 0 {
			x = append(x, r.IterSec...)
		}
	}
	return summarize(x).Mean
}

func (st *study) markdown() []byte {
	s := st.s
	var b bytes.Buffer
	fmt.Fprintf(&b, "# A branching population: IMF against single-pass bridge and flow matching\n\n")
	if st.quick {
		fmt.Fprintf(&b, "Quick run (-quick): tiny sizes for checking the program, not for reading.\n\n")
	}
	report.Generated(&b, "bridge", time.Now().UTC().Format("2006-01-02"), "float64", "run", st.total)
	fmt.Fprintf(&b, "The question (docs/bridge.md): from unpaired snapshots of a population that splits into two branches, does iterative Markovian fitting (IMF, `train.FitBridge` with several iterations) recover the population at the observed times and at a time it never saw better than a single pass of bridge matching or of flow matching, at the same training budget?\n\n")
	fmt.Fprintf(&b, "## Ground truth\n\n")
	fmt.Fprintf(&b, "Cells in the plane: dx = dt + %g dW₁, dy = (%g y − y³) dt + %g dW₂ from x₀ ~ N(0, %g²), y₀ ~ N(0, %g²) — x drifts right at unit speed and y follows a pitchfork, so the single cluster of t = 0 splits into two branches (y ≈ ±%.2f): about half of the cells have left the middle (|y| > half the branch height) by t = 1, three quarters by t = 1.5, 96%% by t = 3. Euler–Maruyama with step %g, every cell simulated from t = 0, a fixed seed per draw. Observed times t = 0, 1, 2, 3 with %d cells each, different cells at every time (unpaired snapshots); held-out time t = %g (mid-split), never shown to a fit. Scoring uses fresh cells at every scored time. In 50-D, (x, y) and 48 coordinates of independent N(0, %g²) noise, drawn afresh for every cell and time, are rotated by one fixed random orthogonal 50 × 50 matrix O: the branching lives in a 2-D subspace (O's first two columns), the rest is stationary noise.\n\n",
		xNoise, pitchA, yNoise, x0SD, y0SD, math.Sqrt(pitchA), emStep, s.N, heldOut, extraSD)
	fmt.Fprintf(&b, "## Methods and budget\n\n")
	fmt.Fprintf(&b, "Every network: width %d, depth %d, one-layer residual blocks, 8 Fourier frequencies, batch %d, Adam with the learning rate decaying linearly to 0 over each fit; the three intervals are fitted at once. S = %d.\n\n", s.Width, s.Depth, s.Batch, s.Steps)
	fmt.Fprintf(&b, "- **IMF**: `FitBridge` with 4 iterations of S steps (forward on the independent coupling, backward on the forward simulation's pairs, forward, backward; each fit continues from its direction's previous network): 2S steps per interval and direction, 4S per interval.\n")
	fmt.Fprintf(&b, "- **Bridge matching**: 1 iteration of 4S steps (the forward networks on the independent coupling: IMF's first iteration, four times longer).\n")
	fmt.Fprintf(&b, "- **Flow matching**: `Flow`, 1 iteration of 4S steps (noise-free interpolants on the independent coupling, deterministic ODE).\n\n")
	fmt.Fprintf(&b, "Simulation (reciprocal projection and scoring): %d bridge-integrator steps per unit interval. ε is the default of `scorekit bridge fit` — a tenth of the snapshots' mean variance per coordinate per unit of mean interval — on the tuning seed's snapshots, the same for IMF and bridge matching (flow matching uses it only for its networks' noise levels):", s.SimSteps)
	for _, d := range s.Dims {
		fmt.Fprintf(&b, " d = %d: ε = %.4f;", d, st.eps[d])
	}
	fmt.Fprintf(&b, " in 50-D the noise coordinates' variance %.2f dominates the mean, hence the smaller ε.\n\n", extraSD*extraSD)
	fmt.Fprintf(&b, "**Learning rates**, tuned per method and dimension on one tuning seed (a separate data draw) using the observed times only: sliced Wasserstein distance at t = 3 between the cells simulated from the t = 0 snapshot and fresh cells at t = 3; the held-out time plays no part.\n\n")
	fmt.Fprintf(&b, "| d | method |")
	for _, lr := range s.LRs {
		fmt.Fprintf(&b, " η = %g |", lr)
	}
	fmt.Fprintf(&b, " chosen η |\n|---:|---|%s\n", report.Numeric(len(s.LRs)+1))
	for _, d := range s.Dims {
		for mi, m := range methods {
			fmt.Fprintf(&b, "| %d | %s |", d, m.Name)
			for _, lr := range s.LRs {
				for _, r := range st.results {
					if r.Phase == "tune" && r.D == d && r.Method == mi && r.LR == lr {
						if r.Failed != "" {
							fmt.Fprintf(&b, " failed |")
						} else {
							fmt.Fprintf(&b, " %.4f |", r.SW[observed[len(observed)-1]])
						}
					}
				}
			}
			lr, edge := st.lr[[2]int{d, mi}], ""
			if len(s.LRs) > 1 && (lr == s.LRs[0] || lr == s.LRs[len(s.LRs)-1]) {
				edge = " (grid edge)"
			}
			fmt.Fprintf(&b, " %g%s |\n", lr, edge)
		}
	}
	fmt.Fprintf(&b, "\n## Results\n\n![snapshots, IMF trajectories and held-out distances](bridge-branching.png)\n\n")
	fmt.Fprintf(&b, "Sliced Wasserstein distance (64 directions, one fixed projection seed) between the %d cells simulated forward from the t = 0 snapshot and %d fresh ground-truth cells; mean ± 95%% confidence half-width over %d evaluation seeds (each a fresh data draw and training seed; t-quantile %.3f with %d degrees of freedom). The floor is the distance between two independent ground-truth samples of the same sizes. t = %g is held out.\n\n",
		s.N, s.N, s.Seeds, tQuantile[s.Seeds-1], s.Seeds-1, heldOut)
	fmt.Fprintf(&b, "| d | method |")
	for _, t := range scored {
		mark := ""
		if t == heldOut {
			mark = " (held out)"
		}
		fmt.Fprintf(&b, " t = %g%s |", t, mark)
	}
	fmt.Fprintf(&b, "\n|---:|---|%s\n", report.Numeric(len(scored)))
	for _, d := range s.Dims {
		for mi, m := range methods {
			fmt.Fprintf(&b, "| %d | %s |", d, m.Name)
			for _, t := range scored {
				c := summarize(st.evalSW(d, mi, t))
				fmt.Fprintf(&b, " %.4f ± %.4f |", c.Mean, c.Half)
			}
			fmt.Fprintf(&b, "\n")
		}
		fmt.Fprintf(&b, "| %d | floor (two ground-truth samples) |", d)
		for _, t := range scored {
			c := summarize(st.floor[d][t])
			fmt.Fprintf(&b, " %.4f ± %.4f |", c.Mean, c.Half)
		}
		fmt.Fprintf(&b, "\n")
	}
	fmt.Fprintf(&b, "\n**Paired differences** (IMF minus the baseline, per seed on the same data; negative: IMF closer), mean ± 95%% half-width:\n\n")
	fmt.Fprintf(&b, "| d | baseline |")
	for _, t := range scored {
		fmt.Fprintf(&b, " t = %g |", t)
	}
	fmt.Fprintf(&b, "\n|---:|---|%s\n", report.Numeric(len(scored)))
	for _, d := range s.Dims {
		for mi := 1; mi < len(methods); mi++ {
			fmt.Fprintf(&b, "| %d | %s |", d, methods[mi].Name)
			for _, t := range scored {
				c := st.diff(d, mi, t)
				fmt.Fprintf(&b, " %+.4f ± %.4f |", c.Mean, c.Half)
			}
			fmt.Fprintf(&b, "\n")
		}
	}
	fmt.Fprintf(&b, "\n**In the branching plane.** In 50-D a random direction puts only about 2/50 of its weight on the plane where the branching happens, so the distance above mostly measures the 48 noise coordinates. The same distance between the projections onto the plane (O's first two columns; in 2-D the plane is the space, so these repeat the table above):\n\n")
	fmt.Fprintf(&b, "| d | method |")
	for _, t := range scored {
		fmt.Fprintf(&b, " t = %g |", t)
	}
	fmt.Fprintf(&b, "\n|---:|---|%s\n", report.Numeric(len(scored)))
	for _, d := range s.Dims {
		if d == 2 {
			continue
		}
		for mi, m := range methods {
			fmt.Fprintf(&b, "| %d | %s |", d, m.Name)
			for _, t := range scored {
				c := summarize(st.evalPlaneSW(d, mi, t))
				fmt.Fprintf(&b, " %.4f ± %.4f |", c.Mean, c.Half)
			}
			fmt.Fprintf(&b, "\n")
		}
		fmt.Fprintf(&b, "| %d | floor (two ground-truth samples) |", d)
		for _, t := range scored {
			c := summarize(st.planeFloor[d][t])
			fmt.Fprintf(&b, " %.4f ± %.4f |", c.Mean, c.Half)
		}
		fmt.Fprintf(&b, "\n")
	}
	fmt.Fprintf(&b, "\nPaired differences in the plane (IMF minus the baseline; negative: IMF closer):\n\n| d | baseline |")
	for _, t := range scored {
		fmt.Fprintf(&b, " t = %g |", t)
	}
	fmt.Fprintf(&b, "\n|---:|---|%s\n", report.Numeric(len(scored)))
	for _, d := range s.Dims {
		if d == 2 {
			continue
		}
		for mi := 1; mi < len(methods); mi++ {
			fmt.Fprintf(&b, "| %d | %s |", d, methods[mi].Name)
			for _, t := range scored {
				c := st.planeDiff(d, mi, t)
				fmt.Fprintf(&b, " %+.4f ± %.4f |", c.Mean, c.Half)
			}
			fmt.Fprintf(&b, "\n")
		}
	}
	for _, d := range s.Dims {
		for mi, m := range methods {
			if n := st.failures(d, mi); n > 0 {
				fmt.Fprintf(&b, "\n%d-D, %s: %d of %d evaluation fits diverged; the cells above are over the others.\n", d, m.Name, n, s.Seeds)
			}
		}
	}
	fmt.Fprintf(&b, "\n**Cost.** Wall time of one IMF outer iteration (the three intervals' fits of %d steps at once, then the reciprocal projection of every snapshot cell), CPU backend, %d logical CPUs shared with other work:", s.Steps, runtime.NumCPU())
	for _, d := range s.Dims {
		fmt.Fprintf(&b, " %.1f s in %d-D;", st.iterSeconds(d), d)
	}
	fmt.Fprintf(&b, " a single-pass fit of 4S steps takes about four iterations' time.\n\n")
	fmt.Fprintf(&b, "## Reading\n\n%s", st.reading())
	return b.Bytes()
}

// verdict compares IMF with baseline mi at (d, t) from the paired difference.
func (st *study) verdict(d, mi int, t float64) string { return verdictOf(st.diff(d, mi, t)) }

func verdictOf(c cell) string {
	switch {
	case math.IsNaN(c.Half):
		return fmt.Sprintf("differs by %+.4f (too few seeds for an interval)", c.Mean)
	case c.Mean+c.Half < 0:
		return fmt.Sprintf("is closer by %.4f ± %.4f", -c.Mean, c.Half)
	case c.Mean-c.Half > 0:
		return fmt.Sprintf("is farther by %.4f ± %.4f", c.Mean, c.Half)
	default:
		return fmt.Sprintf("is not distinguishable (difference %+.4f ± %.4f)", c.Mean, c.Half)
	}
}

// reading states what the tables show, computed from them.
func (st *study) reading() string {
	var b bytes.Buffer
	for _, d := range st.s.Dims {
		for mi := 1; mi < len(methods); mi++ {
			fmt.Fprintf(&b, "- %d-D, against %s: at the held-out t = %g IMF %s; at the observed t = 1, 2, 3 it %s, %s, %s.\n",
				d, methods[mi].Name, heldOut, st.verdict(d, mi, heldOut), st.verdict(d, mi, 1), st.verdict(d, mi, 2), st.verdict(d, mi, 3))
		}
		best, bm := math.Inf(1), 0
		for mi := range methods {
			if c := summarize(st.evalSW(d, mi, heldOut)); c.Mean < best {
				best, bm = c.Mean, mi
			}
		}
		fl := summarize(st.floor[d][heldOut]).Mean
		fmt.Fprintf(&b, "- %d-D: the smallest mean held-out distance is %s's, %.4f, %.1f times the floor %.4f.\n", d, methods[bm].Name, best, best/fl, fl)
		if d == 2 {
			continue
		}
		for mi := 1; mi < len(methods); mi++ {
			fmt.Fprintf(&b, "- %d-D in the branching plane, against %s: at the held-out t = %g IMF %s; at the observed t = 1, 2, 3 it %s, %s, %s.\n",
				d, methods[mi].Name, heldOut, verdictOf(st.planeDiff(d, mi, heldOut)), verdictOf(st.planeDiff(d, mi, 1)),
				verdictOf(st.planeDiff(d, mi, 2)), verdictOf(st.planeDiff(d, mi, 3)))
		}
	}
	return b.String()
}

func (st *study) csv() []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"phase", "d", "method", "lr", "seed", "t", "sw", "plane_sw", "fit_seconds", "failed"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range st.results {
		for _, t := range scored {
			v, ok := r.SW[t]
			if !ok {
				continue
			}
			pv := ""
			if p, ok := r.PlaneSW[t]; ok {
				pv = f(p)
			}
			_ = w.Write([]string{r.Phase, strconv.Itoa(r.D), methods[r.Method].Name, f(r.LR), strconv.Itoa(r.Seed), f(t), f(v), pv,
				strconv.FormatFloat(r.Seconds, 'f', 1, 64), r.Failed})
		}
	}
	for _, d := range st.s.Dims {
		for _, t := range scored {
			for seed, v := range st.floor[d][t] {
				_ = w.Write([]string{"floor", strconv.Itoa(d), "ground truth", "", strconv.Itoa(seed), f(t), f(v),
					f(st.planeFloor[d][t][seed]), "", ""})
			}
		}
	}
	w.Flush()
	return buf.Bytes()
}

var timeColors = []color.RGBA{{31, 119, 180, 255}, {44, 160, 44, 255}, {255, 127, 14, 255}, {214, 39, 40, 255}}

var methodColors = []color.RGBA{{214, 39, 40, 255}, {31, 119, 180, 255}, {44, 160, 44, 255}}

func (st *study) figure(path string) error {
	var top, bottom []*plot.Plot
	for _, d := range st.s.Dims {
		p, err := st.pathPanel(d)
		if err != nil {
			return err
		}
		top = append(top, p)
		q, err := st.swPanel(d)
		if err != nil {
			return err
		}
		bottom = append(bottom, q)
	}
	return report.SavePNG(path, [][]*plot.Plot{top, bottom}, 13*vg.Inch, 11*vg.Inch, 96)
}

// pathPanel draws the snapshots of evaluation seed 0 in the branching plane, coloured by time,
// and IMF trajectories from t = 0 to 3.
func (st *study) pathPanel(d int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d-D: snapshots and %d IMF trajectories (seed 0)", d, min(st.s.Paths, st.s.N))
	if d == 2 {
		p.X.Label.Text, p.Y.Label.Text = "x", "y"
	} else {
		p.X.Label.Text, p.Y.Label.Text = "x = O[:,0]ᵀv", "y = O[:,1]ᵀv"
	}
	kept := st.paths[d]
	nObs := len(observed)
	if len(kept) < nObs { // seed 0's IMF fit diverged: an empty panel
		return p, nil
	}
	for k := 0; k < nObs; k++ {
		pts := make(plotter.XYs, 0, len(kept[k][0])/2)
		for i := 0; i+1 < len(kept[k][0]); i += 2 {
			pts = append(pts, plotter.XY{X: kept[k][0][i], Y: kept[k][0][i+1]})
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		c := timeColors[k%len(timeColors)]
		sc.GlyphStyle.Color = color.NRGBA{R: c.R, G: c.G, B: c.B, A: 110}
		sc.GlyphStyle.Radius = vg.Points(1.2)
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("snapshot t = %g", observed[k]), sc)
	}
	rows := kept[nObs:]
	if len(rows) > 0 {
		n := len(rows[0][1]) / 2
		for c := 0; c < n; c++ {
			pts := make(plotter.XYs, len(rows))
			for i, r := range rows {
				pts[i] = plotter.XY{X: r[1][2*c], Y: r[1][2*c+1]}
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			l.Color = color.NRGBA{A: 170}
			l.Width = vg.Points(0.6)
			p.Add(l)
			if c == 0 {
				p.Legend.Add("IMF trajectory", l)
			}
		}
	}
	p.Legend.Left = true // the lower left corner stays empty: the branches leave it
	return p, nil
}

// swPanel draws the held-out time's distance per method with its confidence bars and the floor.
func (st *study) swPanel(d int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d-D: sliced Wasserstein at held-out t = %g (95%% CI; dashed: floor)", d, heldOut)
	if d > 2 {
		p.Title.Text = fmt.Sprintf("%d-D: SW at held-out t = %g (95%% CI; floors dashed: R^d, dotted: plane)", d, heldOut)
	}
	p.Y.Label.Text = "SW to fresh ground truth"
	type series struct {
		name  string
		sw    func(mi int) []float64
		floor []float64
		dx    float64
		shape draw.GlyphDrawer
	}
	all := []series{{"in R^d", func(mi int) []float64 { return st.evalSW(d, mi, heldOut) }, st.floor[d][heldOut], 0, draw.CircleGlyph{}}}
	if d > 2 {
		all[0].dx = -0.12
		all = append(all, series{"in the branching plane", func(mi int) []float64 { return st.evalPlaneSW(d, mi, heldOut) },
			st.planeFloor[d][heldOut], 0.12, draw.RingGlyph{}})
	}
	var names []string
	for _, m := range methods {
		names = append(names, m.Name)
	}
	for si, se := range all {
		for mi := range methods {
			c := summarize(se.sw(mi))
			half := c.Half
			if math.IsNaN(half) {
				half = 0
			}
			pts := plotter.XYs{{X: float64(mi) + se.dx, Y: c.Mean}}
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle.Color = methodColors[mi]
			sc.GlyphStyle.Radius = vg.Points(4)
			sc.GlyphStyle.Shape = se.shape
			p.Add(sc)
			eb, err := plotter.NewYErrorBars(struct {
				plotter.XYs
				plotter.YErrors
			}{pts, plotter.YErrors{{Low: half, High: half}}})
			if err != nil {
				return nil, err
			}
			eb.Color = methodColors[mi]
			eb.LineStyle.Width = vg.Points(1.5)
			p.Add(eb)
			if mi == 0 && len(all) > 1 {
				p.Legend.Add(se.name, sc)
			}
		}
		fl := summarize(se.floor).Mean
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: fl}, {X: float64(len(methods)) - 0.5, Y: fl}})
		if err != nil {
			return nil, err
		}
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		if si > 0 {
			l.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
		}
		l.Color = color.RGBA{100, 100, 100, 255}
		p.Add(l)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(methods))-0.5
	p.Y.Min = 0
	p.Y.Max *= 1.08
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}
