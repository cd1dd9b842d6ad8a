package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

var bridgeHelp = `Usage: scorekit bridge fit --snapshots t0.npy,t1.npy,… --times 0,1,… --out M.safetensors [flags]
       scorekit bridge sample --model M.safetensors --from T --to T --in X.npy --out Y.npy [flags]

Multi-marginal Schrödinger bridges (docs/bridge.md): from unpaired snapshots of a population at
several times (cells sequenced on several days, frames without identities), the stochastic
process closest to Brownian motion with diffusion ε that passes through every snapshot. fit
learns it (CPU; not in the CUDA build); sample moves points along it between any two times of
the fitted range, forward or backward, on the CPU or the GPU.

  scorekit bridge fit --snapshots day0.npy,day2.npy,day5.npy --times 0,2,5 --out b.safetensors
  scorekit bridge sample --model b.safetensors --from 0 --to 5 --in day0.npy --out x5.npy \
      --trajectory path.npy

Run "scorekit bridge fit --help" or "scorekit bridge sample --help" for the flags.
`

var bridgeSampleHelp = `Usage: scorekit bridge sample --model M.safetensors --from T --to T --in X.npy --out Y.npy
                             [--steps S] [--seed S] [--trajectory TR.npy] [--dtype f32|f64]
                             [--device auto|cpu|cuda] [--stats S.json] [--quiet]

Moves the points of X.npy (N, d) from time --from to time --to along a fitted bridge (from
scorekit bridge fit) and writes where they arrive, (N, d). --from < --to runs the forward
networks, --from > --to the backward ones; both times lie in the fitted range [t_0, t_M] and need
not be observed times (a time between two snapshots gives the interpolated population there).
Each step predicts the interval's endpoint with the network and takes the exact Brownian-bridge
transition toward it (docs/bridge.md). Same --seed: the same result on every device, within the
op tolerance.

Flags:
  --model M           the bridge file (required)
  --from T, --to T    start and end times, within the fitted range (required)
  --in X.npy          the starting points, (N, d) float32 or float64 (required)
  --out Y.npy         the end points, (N, d) (required)
  --steps S           steps per whole interval between observed times (default 40); a part of an
                      interval gets its share, rounded up
  --seed S            the noise (default 0)
  --trajectory TR     every state, (steps + 1, N, d); the times are in --stats ("times")
  --dtype T           f32 or f64 (default: the dtype of X.npy)
` + deviceFlagHelp(22) + `  --stats S.json      JSON: model, device, n, d, from, to, steps, score_evals, wall_seconds,
                      seed, eps, times (of the trajectory's rows)
  --quiet             say nothing on stderr unless something fails
`

func runBridge(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(stderr, bridgeHelp)
			return 2
		}
		fmt.Fprint(stdout, bridgeHelp)
		return 0
	}
	switch args[0] {
	case "fit":
		return runBridgeFit(args[1:], stdout, stderr)
	case "sample":
		return exitStatus(stderr, "scorekit bridge sample", bridgeSample(args[1:], stdout, stderr))
	}
	fmt.Fprintf(stderr, "scorekit bridge: unknown subcommand %q: want fit or sample (scorekit bridge --help)\n", args[0])
	return 2
}

// parseTimes parses --times: comma-separated finite numbers.
func parseTimes(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, usagef("--times %q: %q is not a finite number", s, f)
		}
		out = append(out, v)
	}
	return out, nil
}

type bridgeSampleStats struct {
	Model       string    `json:"model"`
	Device      string    `json:"device"`
	N           int       `json:"n"`
	D           int       `json:"d"`
	From        float64   `json:"from"`
	To          float64   `json:"to"`
	Steps       int       `json:"steps"`
	ScoreEvals  int64     `json:"score_evals"`
	WallSeconds float64   `json:"wall_seconds"`
	Seed        uint64    `json:"seed"`
	Eps         float64   `json:"eps"`
	Times       []float64 `json:"times,omitempty"`
}

func bridgeSample(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("scorekit bridge sample")
	var model, in, out, trajectory, statsPath, dtypeName, device string
	var from, to float64
	var steps int
	var seed uint64
	var quiet bool
	fs.StringVar(&model, "model", "", "")
	fs.Float64Var(&from, "from", 0, "")
	fs.Float64Var(&to, "to", 0, "")
	fs.StringVar(&in, "in", "", "")
	fs.StringVar(&out, "out", "", "")
	fs.IntVar(&steps, "steps", 40, "")
	fs.Uint64Var(&seed, "seed", 0, "")
	fs.StringVar(&trajectory, "trajectory", "", "")
	fs.StringVar(&dtypeName, "dtype", "", "")
	fs.StringVar(&device, "device", "auto", "")
	fs.StringVar(&statsPath, "stats", "", "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := parse(fs, args, stdout, bridgeSampleHelp); err != nil {
		return err
	}
	for _, req := range []struct{ flag, what string }{{"model", "the bridge file from scorekit bridge fit"},
		{"from", "the start time"}, {"to", "the end time"}, {"in", "the starting points, a .npy file"}} {
		if !isSet(fs, req.flag) {
			return usagef("--%s is required (%s)", req.flag, req.what)
		}
	}
	if steps < 1 {
		return usagef("--steps must be ≥ 1 (got %d)", steps)
	}
	if err := checkDeviceFlag(device); err != nil {
		return err
	}
	var dt tensor.DType
	if isSet(fs, "dtype") {
		if dt, err = parseDTypeFlag(dtypeName); err != nil {
			return err
		}
	}
	if err := checkOutputs(out, []namedPath{{"--trajectory", trajectory}, {"--stats", statsPath}}); err != nil {
		return err
	}
	br, _, err := solvers.LoadBridge(model)
	if err != nil {
		return usagef("--model: %w", err)
	}
	cfg := solvers.BridgeSimConfig{From: from, To: to, Steps: steps, Seed: seed, Trajectory: trajectory != ""}
	grid, err := br.Grid(cfg)
	if err != nil {
		return usagef("%v (the model's times are %v)", err, br.Times())
	}
	x, err := tensor.ReadNpy(in)
	if err != nil {
		return usagef("--in: %w", err)
	}
	d := br.Dim()
	if x.Rank() != 2 || x.Dim(0) == 0 || x.Dim(1) != d {
		return usagef("--in %s has shape %s: the bridge needs (N, %d), at least one point", in, shapeString(x.Shape()), d)
	}
	if ok, i := x.HasNaN(); ok {
		return usagef("--in %s: point %d has a coordinate that is NaN or infinite", in, i/d)
	}
	if isSet(fs, "dtype") && dt != x.DType() {
		v, err := x.Float64s()
		if err != nil {
			return err
		}
		if x, err = tensor.FromFloat64s(dt, v, x.Dim(0), d); err != nil {
			return err
		}
	}
	n, dt := x.Dim(0), x.DType()
	bs, cleanup, err := openBackends(device, quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	b := bs[0]
	dev := b.Device()
	rowBytes := 3 * int64(d) * int64(dt.Size())
	if trajectory != "" {
		rowBytes += int64(len(grid)+1) * int64(d) * int64(dt.Size())
	}
	if err := checkFitsOn(bs, n, rowBytes, fmt.Sprintf("%d points × d %d in %v over %d steps", n, d, dt, len(grid))); err != nil {
		return err
	}
	if dev.Kind() != tensor.KindCPU && len(bs) == 1 {
		dx, err := x.CopyTo(dev)
		if err != nil {
			return fmt.Errorf("copy the points to %s: %w", dev.Name(), err)
		}
		defer dx.Close()
		x = dx
	}
	prog := newProgress(stderr, quiet, "scorekit bridge sample", "steps")
	cfg.Progress = prog.report()
	start := time.Now()
	var res *solvers.Result
	if len(bs) > 1 {
		res, err = br.SimulateOn(bs, x, cfg)
	} else {
		res, err = br.Simulate(b, x, cfg)
	}
	prog.finish()
	if err != nil {
		return err
	}
	defer res.Close()
	wall := time.Since(start)
	var stats []byte
	if statsPath != "" {
		st := bridgeSampleStats{Model: model, Device: deviceNames(bs), N: n, D: d, From: from, To: to, Steps: len(grid),
			ScoreEvals: res.ScoreEvals, WallSeconds: wall.Seconds(), Seed: seed, Eps: br.Eps(), Times: res.BridgeTimes}
		if stats, err = renderStats(st); err != nil {
			return err
		}
	}
	final, trace := res.Samples, res.Trace
	for _, t := range []**tensor.Tensor{&final, &trace} {
		if *t != nil && !(*t).OnHost() {
			h, err := (*t).CopyTo(tensor.CPU())
			if err != nil {
				return fmt.Errorf("copy the result to the host: %w", err)
			}
			*t = h
		}
	}
	written, err := writeOutputs([]npyOutput{{path: out, t: final}, {path: trajectory, t: trace}}, []fileOutput{{statsPath, stats}})
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(stderr, "scorekit: bridge sample: %d points × d %d from t = %g to t = %g in %d steps (%v); wrote %s\n",
			n, d, from, to, len(grid), wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}
