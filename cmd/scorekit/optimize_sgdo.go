package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

var sgdoHelp = `Usage: scorekit optimize sgdo --objective J.json --beta B --step h --sigma s --steps K --n N
                       --epoch T [--x0 x1,x2,...] [--seed S] [--dtype f32|f64]
                       [--device auto|cpu|cuda] [--quiet] --out P.npy [--trace TR.npy] [--thin T]
                       [--stats S.json] [--plot P.png]

sgdo: the continuous-time model of SGD without replacement. N chains, all from x0, each run K
steps of the Euler scheme for dθ = −u_t ∇f(θ) dt + σ u_t dB̃_t, u_t = (1 + t)^{−β}:

  θ_{k+1} = θ_k − h u_{t_k} ∇f(θ_k) + σ u_{t_k} ΔB̃_k,   t_k = k h

where B̃ is the epoched Brownian motion: a Brownian bridge pinned to 0 at every multiple of the
epoch τ (the noise of one epoch sums to zero, as the gradient errors of one pass over the data
do when samples are drawn without replacement); --epoch 0 drives the same flow by plain Brownian
motion, for comparison. One independent path per chain and coordinate; the noise is generated on
--device, f is evaluated on the host. Objectives (J.json) as for fpgd (see scorekit optimize fpgd
--help). Writes the final states, (N, d), to P.npy, atomically. Same --seed: same result.

Flags:
  --objective J.json  the objective (required)
  --beta B            exponent of the learning rate u_t = (1 + t)^{−β}, in (0, 1) (required)
  --step h            time step, a finite number > 0, much smaller than τ (required)
  --sigma s           noise scale, a finite number ≥ 0 (required; 0: the gradient flow)
  --steps K           number of steps, K ≥ 1: the run covers [0, K h] (required)
  --epoch T           epoch length τ, a multiple of h, ≥ h; 0: plain Brownian noise (required)
  --n N               number of chains, 1 ≤ N ≤ 2^32 (required)
  --x0 x1,x2,...      start of every chain, d comma-separated numbers (default: −e1 for a
                      double well, the origin otherwise)
  --seed S            Philox key, an unsigned 64-bit integer (default 0)
  --dtype T           f32 or f64 (default f32): the noise's and the outputs' precision (the
                      recursion runs in float64)
` + deviceFlagHelp(22) + `  --out P.npy         final states, (N, d) (required)
  --trace TR.npy      states every --thin steps, (K/T + 1, N, d), row 0 the start
  --thin T            trace every T steps (default 1)
  --stats S.json      JSON: method, noise (epoched or brownian), objective, device, dtype, n, d,
                      steps, beta, step, sigma, epoch, seed, grad_evals (per chain),
                      wall_seconds, final_value_mean, nan_chains
  --plot P.png        PNG: the final states over contours of f (first two coordinates; a
                      histogram when d = 1) and, with --trace, x1 of up to 50 chains against the
                      step
  --quiet             say nothing on stderr unless something fails or chains turn non-finite
` + shardFlagHelp(22)

// sgdoOptions are the parsed flags of `scorekit optimize sgdo`.
type sgdoOptions struct {
	objective               string
	cfg                     solvers.SGDWORConfig
	n                       int
	x0                      []float64
	dtype                   tensor.DType
	device                  string
	quiet                   bool
	out, trace, stats, plot string
	shard                   *shardRun
}

func parseSGDO(args []string, stdout io.Writer) (sgdoOptions, error) {
	fs := newFlagSet("scorekit optimize sgdo")
	var (
		o              sgdoOptions
		n, steps, thin int64
		x0, dtype      string
		shard          string
	)
	fs.StringVar(&o.objective, "objective", "", "")
	fs.Float64Var(&o.cfg.Beta, "beta", 0, "")
	fs.Float64Var(&o.cfg.StepSize, "step", 0, "")
	fs.Float64Var(&o.cfg.Sigma, "sigma", 0, "")
	fs.Int64Var(&steps, "steps", 0, "")
	fs.Float64Var(&o.cfg.Epoch, "epoch", 0, "")
	fs.Int64Var(&n, "n", 0, "")
	fs.StringVar(&x0, "x0", "", "")
	fs.Uint64Var(&o.cfg.Seed, "seed", 0, "")
	fs.StringVar(&dtype, "dtype", "f32", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&o.trace, "trace", "", "")
	fs.Int64Var(&thin, "thin", 1, "")
	fs.StringVar(&o.stats, "stats", "", "")
	fs.StringVar(&o.plot, "plot", "", "")
	fs.StringVar(&shard, "shard", "", "")
	if err := parse(fs, args, stdout, sgdoHelp); err != nil {
		return o, err
	}
	for _, req := range []struct{ name, what string }{
		{"objective", "the objective file"}, {"beta", "the learning-rate exponent, in (0, 1)"},
		{"step", "the time step h"}, {"sigma", "the noise scale σ"}, {"steps", "the number of steps"},
		{"epoch", "the epoch length τ; 0 for plain Brownian noise"}, {"n", "the number of chains"},
	} {
		if !isSet(fs, req.name) {
			return o, usagef("--%s is required (%s)", req.name, req.what)
		}
	}
	switch {
	case !(o.cfg.Beta > 0 && o.cfg.Beta < 1):
		return o, usagef("--beta must be in (0, 1) (got %g)", o.cfg.Beta)
	case !(o.cfg.StepSize > 0) || math.IsInf(o.cfg.StepSize, 0):
		return o, usagef("--step must be a finite number > 0 (got %g)", o.cfg.StepSize)
	case !(o.cfg.Sigma >= 0) || math.IsInf(o.cfg.Sigma, 0):
		return o, usagef("--sigma must be a finite number ≥ 0 (got %g)", o.cfg.Sigma)
	case steps < 1 || uint64(steps) > solvers.MaxSteps:
		return o, usagef("--steps must be ≥ 1 (got %d)", steps)
	case n < 1 || n > 1<<32:
		return o, usagef("--n must be in [1, 2^32] (got %d)", n)
	case thin < 1 || thin > steps:
		return o, usagef("--thin must be in [1, --steps %d] (got %d)", steps, thin)
	case isSet(fs, "thin") && o.trace == "":
		return o, usagef("--thin applies to --trace")
	}
	o.n, o.cfg.Steps = int(n), int(steps)
	// The epoch's rules (≥ h, a multiple of h) are the library's: ask it.
	if _, err := solvers.SGDWORCheck(solvers.SGDWORConfig{Beta: o.cfg.Beta, StepSize: o.cfg.StepSize,
		Steps: o.cfg.Steps, Epoch: o.cfg.Epoch}); err != nil {
		return o, usagef("--epoch: %v", err)
	}
	var err error
	if o.x0, err = parseStart(x0); err != nil {
		return o, err
	}
	if o.trace != "" {
		o.cfg.Thin = int(thin)
	}
	if o.dtype, err = parseDTypeFlag(dtype); err != nil {
		return o, err
	}
	if err := checkDeviceFlag(o.device); err != nil {
		return o, err
	}
	o.shard, err = descentShard("optimize sgdo", fs, shard, o.cfg.Seed, o.n, &o.cfg.FirstChain, o.out, o.trace, o.stats, o.plot)
	return o, err
}

// sgdoStats is the --stats JSON of sgdo.
type sgdoStats struct {
	Method         string   `json:"method"`
	Noise          string   `json:"noise"`
	Objective      string   `json:"objective"`
	Device         string   `json:"device"`
	DType          string   `json:"dtype"`
	N              int      `json:"n"`
	D              int      `json:"d"`
	Steps          int      `json:"steps"`
	Beta           float64  `json:"beta"`
	Step           float64  `json:"step"`
	Sigma          float64  `json:"sigma"`
	Epoch          float64  `json:"epoch"`
	Seed           uint64   `json:"seed"`
	GradEvals      int64    `json:"grad_evals"`
	WallSeconds    float64  `json:"wall_seconds"`
	FinalValueMean *float64 `json:"final_value_mean,omitempty"`
	NaNChains      int      `json:"nan_chains"`
	NaNFirstChain  *int     `json:"nan_first_chain,omitempty"`
}

// optimizeSGDO is `scorekit optimize sgdo`.
func optimizeSGDO(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseSGDO(args, stdout)
	if err != nil {
		return err
	}
	if err := o.shard.resolve(); err != nil {
		return usageError{err}
	}
	n := o.shard.n() // the chains this run computes: o.n, or a shard's part of them
	f, err := loadObjective(o.objective)
	if err != nil {
		return err
	}
	d := f.Dim()
	if o.x0, err = startFor(f, o.x0, o.n); err != nil {
		return err
	}
	bs, cleanup, err := openBackends(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	b, startDev := bs[0], bs[0].Device()
	if len(bs) > 1 {
		startDev = tensor.CPU() // the parts copy their rows to their devices
	}
	if err := checkDescentFits(n, d, o.cfg.Steps, o.cfg.Thin, o.shard.scope(fmt.Sprintf("--n %d", o.n))); err != nil {
		return err
	}
	x, err := replicatedStart(startDev, o.dtype, o.x0, n)
	if err != nil {
		return err
	}
	defer x.Close()

	start := time.Now()
	prog := newProgress(stderr, o.quiet, "scorekit optimize: sgdo", "chain-steps")
	o.cfg.Progress = prog.report()
	var res *solvers.SGDWORResult
	if len(bs) > 1 {
		res, err = solvers.SGDWOROn(bs, f, x, o.cfg)
	} else {
		res, err = solvers.SGDWOR(b, f, x, o.cfg)
	}
	prog.finish()
	if err != nil {
		return err
	}
	defer res.Close()
	if err := b.Device().Synchronize(); err != nil {
		return err
	}
	wall := time.Since(start)

	final, err := res.Final.Float64s()
	if err != nil {
		return err
	}
	noise := "epoched"
	if o.cfg.Epoch == 0 {
		noise = "brownian"
	}
	st := sgdoStats{Method: "sgdo", Noise: noise, Objective: objectiveName(f), Device: deviceNames(bs),
		DType: o.dtype.String(), N: n, D: d, Steps: o.cfg.Steps, Beta: o.cfg.Beta, Step: o.cfg.StepSize,
		Sigma: o.cfg.Sigma, Epoch: o.cfg.Epoch, Seed: o.cfg.Seed, GradEvals: res.GradEvals / int64(n),
		WallSeconds: wall.Seconds(), NaNChains: res.NaN.Chains}
	if m := meanValue(f, final, d, res.NaN.Rows); !math.IsNaN(m) {
		st.FinalValueMean = &m
	}
	st.NaNFirstChain = warnNaN(stderr, "sgdo", res.NaN, n, o.shard)
	po := optimizePlot{title: fmt.Sprintf("sgdo on %s: β = %g, h = %g, σ = %g, τ = %g, %d steps", objectiveName(f),
		o.cfg.Beta, o.cfg.StepSize, o.cfg.Sigma, o.cfg.Epoch, o.cfg.Steps), final: final, n: n, d: d, f: f}
	written, err := writeDescent(o.out, o.trace, o.stats, o.plot, st, po, res.Final, res.Trace, res.TraceSteps,
		o.shard, backendKind(b.Device()))
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "scorekit: sgdo: %s × d %d, %d steps, %s noise, %v; wrote %s\n",
			o.shard.describe("chains"), d, o.cfg.Steps, noise, wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}
