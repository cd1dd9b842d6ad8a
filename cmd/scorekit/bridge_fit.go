//go:build !cuda

package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

var bridgeFitHelp = `Usage: scorekit bridge fit --snapshots t0.npy,t1.npy,… --times 0,1,… --out M.safetensors
                          [--eps ε] [--iterations K] [--width W] [--depth L] [--blocks 1|2]
                          [--steps N] [--lr η] [--batch B] [--fourier F] [--sim-steps S]
                          [--init independent|minibatch-ot] [--seed S] [--stats S.json] [--quiet]

Fits a multi-marginal Schrödinger bridge (docs/bridge.md) to unpaired snapshots: snapshot k, an
(N_k, d) array, holds points observed at time t_k (any N_k ≥ 1; no point is followed from one
snapshot to the next). The reference is Brownian motion with diffusion ε; the fit is iterative
Markovian fitting per interval between consecutive times: iteration 1 fits forward networks by
bridge matching on independent pairs, then re-pairs every snapshot point with where the fitted
process takes it; iteration 2 fits backward networks on those pairs; and so on. Each network is a
residual MLP (as scorekit train's) predicting the interval's endpoint.

After every iteration the model is written to --out, atomically, and a line gives each
interval's fit: the sliced Wasserstein distance between the snapshot the iteration simulated to
and the simulated points (forward iterations: at t_1 … t_M; backward: at t_0 … t_{M−1}). An
interrupted fit leaves the model of the last complete iteration. Same data, flags and seed: the
same model, bit for bit.

Flags:
  --snapshots F,F,…   the snapshot .npy files, (N_k, d), one per time, d ≤ 64, finite (required)
  --times T,T,…       their times, strictly increasing, as many as snapshots (at least two) (required)
  --out M             the bridge file (safetensors) (required)
  --eps ε             diffusion of the reference, > 0 (default: a tenth of the snapshots' mean
                      variance per coordinate per unit of the mean interval: the reference's own
                      spread over an interval is then about a third of the data's scale)
  --iterations K      iterative Markovian fitting iterations, ≥ 1 (default 4: forward, backward,
                      forward, backward); odd K leaves no backward networks
  --width W           hidden width of each network, 1 … 256 (default 64)
  --depth L           residual blocks, 1 … 16 (default 2)
  --blocks 1|2        linear layers per block (default 1)
  --steps N           Adam steps per network per iteration, ≥ 1 (default 1200; the learning rate
                      decays linearly to 0 over each fit, which starts from the previous one's
                      network)
  --lr η              Adam learning rate, > 0 (default 3e-3)
  --batch B           mini-batch size (default 256)
  --fourier F         Fourier frequencies of the time embedding, 0 … 64 (default 8)
  --sim-steps S       steps per interval when re-pairing (default 40)
  --init C            the first iteration's pairs: independent (default) or minibatch-ot (the
                      independent pairs re-paired by exact optimal transport in blocks of 256)
  --seed S            everything random (default 0)
  --stats S.json      JSON: snapshots, times, n (per snapshot), d, eps, the flags, wall_seconds,
                      iterations_done, and per iteration its direction, seconds, loss and
                      sw (per interval)
  --quiet             say nothing on stderr unless something fails
`

type bridgeIterStats struct {
	Iteration int       `json:"iteration"`
	Direction string    `json:"direction"`
	Seconds   float64   `json:"seconds"`
	Loss      []float64 `json:"loss"`
	SW        []float64 `json:"sw"`
}

type bridgeFitStats struct {
	Snapshots      []string          `json:"snapshots"`
	Times          []float64         `json:"times"`
	N              []int             `json:"n"`
	D              int               `json:"d"`
	Eps            float64           `json:"eps"`
	Iterations     int               `json:"iterations"`
	Width          int               `json:"width"`
	Depth          int               `json:"depth"`
	Blocks         int               `json:"blocks"`
	Steps          int               `json:"steps"`
	LR             float64           `json:"lr"`
	Batch          int               `json:"batch"`
	Fourier        int               `json:"fourier"`
	SimSteps       int               `json:"sim_steps"`
	Init           string            `json:"init"`
	Seed           uint64            `json:"seed"`
	WallSeconds    float64           `json:"wall_seconds"`
	IterationsDone int               `json:"iterations_done"`
	PerIteration   []bridgeIterStats `json:"per_iteration"`
}

func runBridgeFit(args []string, stdout, stderr io.Writer) int {
	return exitStatus(stderr, "scorekit bridge fit", bridgeFit(args, stdout, stderr))
}

func bridgeFit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scorekit bridge fit")
	var snapList, timeList, out, statsPath, initName string
	var eps, lr float64
	var iterations, width, depth, blocks, steps, batch, fourier, simSteps int
	var seed uint64
	var quiet bool
	fs.StringVar(&snapList, "snapshots", "", "")
	fs.StringVar(&timeList, "times", "", "")
	fs.StringVar(&out, "out", "", "")
	fs.Float64Var(&eps, "eps", 0, "")
	fs.IntVar(&iterations, "iterations", 4, "")
	fs.IntVar(&width, "width", 64, "")
	fs.IntVar(&depth, "depth", 2, "")
	fs.IntVar(&blocks, "blocks", 1, "")
	fs.IntVar(&steps, "steps", 1200, "")
	fs.Float64Var(&lr, "lr", 3e-3, "")
	fs.IntVar(&batch, "batch", 256, "")
	fs.IntVar(&fourier, "fourier", 8, "")
	fs.IntVar(&simSteps, "sim-steps", 40, "")
	fs.StringVar(&initName, "init", string(train.InitIndependent), "")
	fs.Uint64Var(&seed, "seed", 0, "")
	fs.StringVar(&statsPath, "stats", "", "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := parse(fs, args, stdout, bridgeFitHelp); err != nil {
		return err
	}
	for _, req := range []struct{ flag, what string }{{"snapshots", "the snapshot .npy files, comma-separated"},
		{"times", "the snapshots' times, comma-separated"}} {
		if !isSet(fs, req.flag) {
			return usagef("--%s is required (%s)", req.flag, req.what)
		}
	}
	switch {
	case iterations < 1:
		return usagef("--iterations must be ≥ 1 (got %d)", iterations)
	case simSteps < 1:
		return usagef("--sim-steps must be ≥ 1 (got %d)", simSteps)
	}
	if err := checkNetFlags(width, depth, blocks, steps, batch, fourier, lr); err != nil {
		return err
	}
	if c := train.Coupling(initName); c != train.InitIndependent && c != train.InitMinibatchOT {
		return usagef("--init %q: want independent or minibatch-ot", initName)
	}
	if isSet(fs, "eps") {
		if err := finitePositiveFlag("eps", eps); err != nil {
			return err
		}
	}
	times, err := parseTimes(timeList)
	if err != nil {
		return err
	}
	paths := strings.Split(snapList, ",")
	if len(paths) < 2 {
		return usagef("--snapshots names %d file: a bridge needs at least two snapshots", len(paths))
	}
	if len(paths) != len(times) {
		return usagef("--snapshots names %d files but --times gives %d times: one time per snapshot", len(paths), len(times))
	}
	if err := solvers.CheckBridgeTimes(times, 1); err != nil {
		return usagef("--times: %v", err)
	}
	if err := checkOutputs(out, []namedPath{{"--stats", statsPath}}); err != nil {
		return err
	}
	snaps := make([][]float64, len(paths))
	ns := make([]int, len(paths))
	d := 0
	for k, p := range paths {
		x, err := tensor.ReadNpy(p)
		if err != nil {
			return usagef("--snapshots: %w", err)
		}
		if x.Rank() != 2 || x.Dim(0) == 0 || x.Dim(1) == 0 {
			return usagef("--snapshots: %s has shape %s: want (N, d) with at least one point", p, shapeString(x.Shape()))
		}
		if k == 0 {
			d = x.Dim(1)
		} else if x.Dim(1) != d {
			return usagef("--snapshots: %s has points of dimension %d, %s has %d: every snapshot needs the same dimension", p, x.Dim(1), paths[0], d)
		}
		if d > ops.MaxMLPDim {
			return usagef("--snapshots: %s has dimension %d: a network takes at most %d", p, d, ops.MaxMLPDim)
		}
		if ok, i := x.HasNaN(); ok {
			return usagef("--snapshots: %s: point %d has a coordinate that is NaN or infinite", p, i/d)
		}
		if snaps[k], err = x.Float64s(); err != nil {
			return err
		}
		ns[k] = x.Dim(0)
	}
	if !isSet(fs, "eps") {
		eps = defaultBridgeEps(snaps, times, d)
		if !(eps > 0) {
			return usagef("--snapshots: every snapshot is a single repeated point (no variance): give --eps")
		}
	}
	cfg := train.BridgeConfig{
		Net: train.Config{Width: width, Depth: depth, BlockLayers: blocks, Fourier: fourier, LR: lr, Batch: batch,
			Steps: steps, Seed: seed, Schedule: func(s int) float64 { return 1 - float64(s)/float64(steps) }},
		Eps: eps, Iterations: iterations, SimSteps: simSteps, Init: train.Coupling(initName),
	}
	st := bridgeFitStats{Snapshots: paths, Times: times, N: ns, D: d, Eps: eps, Iterations: iterations, Width: width,
		Depth: depth, Blocks: blocks, Steps: steps, LR: lr, Batch: batch, Fourier: fourier, SimSteps: simSteps, Init: initName, Seed: seed}
	prog := newProgress(stderr, quiet, "scorekit bridge fit", "steps")
	total := int64(iterations) * int64(len(times)-1) * int64(steps)
	var mu sync.Mutex
	var done int64
	cfg.Net.Progress = func(train.Progress) error {
		mu.Lock()
		defer mu.Unlock()
		done++
		if prog != nil {
			prog.update(done, total)
		}
		return nil
	}
	info := func(it int) map[string]string {
		var base []string
		for _, p := range paths {
			base = append(base, filepath.Base(p))
		}
		return map[string]string{"fitted_by": "scorekit " + version, "iterations": strconv.Itoa(it), "seed": strconv.FormatUint(seed, 10),
			"steps": strconv.Itoa(steps), "lr": strconv.FormatFloat(lr, 'g', -1, 64), "batch": strconv.Itoa(batch),
			"snapshots": strings.Join(base, ","), "init": initName}
	}
	start := time.Now()
	last := start
	cfg.Progress = func(r train.BridgeReport) error {
		if err := solvers.SaveBridge(out, r.Bridge, info(r.Iteration)); err != nil {
			return fmt.Errorf("save the model after iteration %d: %w", r.Iteration, err)
		}
		dir := "backward"
		if r.Forward {
			dir = "forward"
		}
		st.PerIteration = append(st.PerIteration, bridgeIterStats{Iteration: r.Iteration, Direction: dir,
			Seconds: time.Since(last).Seconds(), Loss: r.Loss, SW: r.SW})
		last = time.Now()
		st.IterationsDone = r.Iteration
		if !quiet {
			mu.Lock()
			prog.finish()
			mu.Unlock()
			var parts []string
			for k, v := range r.SW {
				at := times[k+1]
				if !r.Forward {
					at = times[k]
				}
				parts = append(parts, fmt.Sprintf("t=%g %.3g", at, v))
			}
			fmt.Fprintf(stderr, "scorekit: bridge fit: iteration %d/%d (%s): sliced W to the snapshots %s; wrote %s\n",
				r.Iteration, iterations, dir, strings.Join(parts, ", "), out)
		}
		return nil
	}
	_, fitErr := train.FitBridge(cfg, times, snaps, d)
	prog.finish()
	st.WallSeconds = time.Since(start).Seconds()
	if fitErr != nil {
		var what string
		if st.IterationsDone > 0 {
			what = fmt.Sprintf("; %s holds the model of iteration %d", out, st.IterationsDone)
		}
		if errors.Is(fitErr, train.ErrNonFinite) {
			return fmt.Errorf("%w%s (lower --lr)", fitErr, what)
		}
		return fmt.Errorf("%w%s", fitErr, what)
	}
	if statsPath != "" {
		js, err := renderStats(st)
		if err != nil {
			return err
		}
		if _, err := writeOutputs(nil, []fileOutput{{statsPath, js}}); err != nil {
			return err
		}
	}
	if !quiet {
		fmt.Fprintf(stderr, "scorekit: bridge fit: %d snapshots × d %d, ε = %.4g, %d iterations in %v; wrote %s\n",
			len(times), d, eps, iterations, time.Since(start).Round(time.Millisecond), out)
	}
	return nil
}

// defaultBridgeEps is a tenth of the snapshots' mean variance per coordinate per unit of the
// mean interval length.
func defaultBridgeEps(snaps [][]float64, times []float64, d int) float64 {
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
	meanInterval := (times[len(times)-1] - times[0]) / float64(len(times)-1)
	return 0.1 * v / meanInterval
}
