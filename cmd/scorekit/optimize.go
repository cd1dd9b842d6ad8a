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

var optimizeHelp = `Usage: scorekit optimize fpgd --objective J.json --hurst H --step h --sigma s --steps K --n N
                       [--x0 x1,x2,...] [--method davies-harte|cholesky|mafbm] [--k K]
                       [--gamma-max G] [--seed S] [--dtype f32|f64] [--device auto|cpu|cuda]
                       [--escape X] [--quiet] --out P.npy [--trace TR.npy] [--thin T]
                       [--stats S.json] [--plot P.png]

fpgd: gradient descent with fractional noise. N chains, all from x0, each run K steps of

  x_{n+1} = x_n − h ∇f(x_n) + σ ΔB^H_n

where ΔB^H_n = B^H((n+1)h) − B^H(nh) are the increments of a fractional Brownian motion of
Hurst index H sampled at step h (variance h^{2H}; one independent path per chain and
coordinate). H = ½ is perturbed gradient descent (per-step variance σ² h); H > ½ gives
persistent noise, H < ½ anti-persistent. To compare H at equal per-step variance v, take
σ = √v · h^{−H}. The noise is generated on --device; f is evaluated on the host.
Writes the final states, (N, d), to P.npy (NumPy, C order). Every output is written atomically:
a failed run leaves no file and never overwrites an existing one. Same --seed: same result.

Objectives (J.json), strictly checked (an unknown field or kind is refused):
  {"kind": "double-well", "dim": 2, "barrier": 1}
        f = b (x1² − 1)² + ½ Σ_{j>1} x_j²: minima at ±e1, barrier b at the origin (default b = 1)
  {"kind": "rastrigin", "dim": 2, "a": 10}
        f = A d + Σ (x_j² − A cos 2πx_j): global minimum at 0, local minima near the integers
        (default A = 10)
  {"kind": "quadratic", "dim": 2, "a": 1, "center": [0, 0]}
  {"kind": "quadratic", "curvatures": [1, 4], "center": [1, -1]}
        f = ½ Σ a_j (x_j − c_j)², curvatures ≥ 0 (one "a" for all, or a list), center default 0

Escape times: for a double well, each chain's first step with x1 beyond ½ on the side opposite to
its start (x1 > ½ from x1(0) ≤ 0, x1 < −½ otherwise); --escape X sets the threshold X for any
objective (crossing from x1(0)'s side of X to the other). Reported in --stats: the fraction of
chains that escaped within K steps and the mean and median escape step of those chains.

Flags:
  --objective J.json  the objective (required)
  --hurst H           Hurst index in (0, 1) (required)
  --step h            step size, a finite number > 0 (required)
  --sigma s           noise scale, a finite number ≥ 0 (required; 0: plain gradient descent)
  --steps K           number of steps, K ≥ 1 (required)
  --n N               number of chains, 1 ≤ N ≤ 2^32 (required)
  --x0 x1,x2,...      start of every chain, d comma-separated numbers (default: −e1 for a
                      double well, the origin otherwise)
  --method M          fractional noise: davies-harte (exact, default), cholesky (exact, host,
                      K ≤ 4096) or mafbm (Markov approximation of type-II fBM, not exact)
  --k K               mafbm: number of OU processes, 1 ≤ K ≤ 16 (default 5)
  --gamma-max G       mafbm: largest OU speed, G > 1 (default 20)
  --seed S            Philox key, an unsigned 64-bit integer (default 0)
  --escape X          escape threshold on x1 (see above)
  --dtype T           f32 or f64 (default f32): the noise's and the outputs' precision (the
                      recursion runs in float64)
` + deviceFlagHelp(22) + `  --out P.npy         final states, (N, d) (required)
  --trace TR.npy      states every --thin steps, (K/T + 1, N, d), row 0 the start
  --thin T            trace every T steps (default 1)
  --stats S.json      JSON: method, noise, objective, device, dtype, n, d, steps, hurst, step,
                      sigma, seed, grad_evals (per chain), wall_seconds, final_value_mean,
                      nan_chains, noise_rel_error_sq (mafbm), escape (fraction, mean and median step)
  --plot P.png        PNG: the final states over contours of f (first two coordinates; a
                      histogram when d = 1) and, with --trace, x1 of up to 50 chains against the
                      step
  --quiet             say nothing on stderr unless something fails or chains turn non-finite
                      (otherwise long runs show a progress bar on a terminal, a line every 10 s
                      elsewhere)
` + shardFlagHelp(22)

// runOptimize is `scorekit optimize <method> ...`.
func runOptimize(args []string, stdout, stderr io.Writer) int {
	const name = "scorekit optimize"
	if len(args) == 0 {
		return exitStatus(stderr, name, usagef("which method? want fpgd or sgdo (see %s --help)", name))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, optimizeHelp+"\n"+sgdoHelp)
		return 0
	case "fpgd":
		return exitStatus(stderr, name+" fpgd", optimizeFPGD(args[1:], stdout, stderr))
	case "sgdo":
		return exitStatus(stderr, name+" sgdo", optimizeSGDO(args[1:], stdout, stderr))
	}
	return exitStatus(stderr, name, usagef("unknown method %q (available: fpgd, sgdo)", args[0]))
}

// objectiveFile is the JSON of every objective kind; kindFields says which fields each takes.
type objectiveFile struct {
	Kind       string    `json:"kind"`
	Dim        *int      `json:"dim"`
	Barrier    *float64  `json:"barrier"`
	A          *float64  `json:"a"`
	Curvatures []float64 `json:"curvatures"`
	Center     []float64 `json:"center"`
}

var objectiveKinds = []string{"double-well", "rastrigin", "quadratic"}

var kindFields = map[string][]string{
	"double-well": {"kind", "dim", "barrier"},
	"rastrigin":   {"kind", "dim", "a"},
	"quadratic":   {"kind", "dim", "a", "curvatures", "center"},
}

// parseObjective reads an objective from JSON: a usage-level error names the field and the
// problem.
func parseObjective(data []byte) (solvers.Objective, error) {
	var o objectiveFile
	if _, err := decodeTagged(data, "kind", objectiveKinds, func(kind string) ([]string, bool) {
		f, ok := kindFields[kind]
		return f, ok
	}, &o); err != nil {
		return nil, err
	}
	if o.Dim != nil && *o.Dim < 1 {
		return nil, fmt.Errorf(`"dim" must be ≥ 1 (got %d)`, *o.Dim)
	}
	if o.Dim != nil && *o.Dim > 1<<20 {
		return nil, fmt.Errorf(`"dim" must be ≤ 2^20 (got %d)`, *o.Dim)
	}
	switch o.Kind {
	case "double-well", "rastrigin":
		if o.Dim == nil {
			return nil, fmt.Errorf(`"dim" is missing (the dimension, ≥ 1)`)
		}
		if o.Kind == "double-well" {
			b := 1.0
			if o.Barrier != nil {
				b = *o.Barrier
			}
			if !(b > 0) || math.IsInf(b, 0) {
				return nil, fmt.Errorf(`"barrier" must be a finite number > 0 (got %g)`, b)
			}
			return solvers.NewDoubleWell(*o.Dim, b)
		}
		a := 10.0
		if o.A != nil {
			a = *o.A
		}
		if !(a >= 0) || math.IsInf(a, 0) {
			return nil, fmt.Errorf(`"a" must be a finite number ≥ 0 (got %g)`, a)
		}
		return solvers.NewRastrigin(*o.Dim, a)
	}
	// quadratic
	curv := o.Curvatures
	switch {
	case curv != nil && o.A != nil:
		return nil, fmt.Errorf(`give "a" (one curvature for all coordinates) or "curvatures", not both`)
	case curv == nil:
		if o.Dim == nil {
			return nil, fmt.Errorf(`"dim" is missing (or give "curvatures")`)
		}
		a := 1.0
		if o.A != nil {
			a = *o.A
		}
		curv = make([]float64, *o.Dim)
		for j := range curv {
			curv[j] = a
		}
	case o.Dim != nil && *o.Dim != len(curv):
		return nil, fmt.Errorf(`"dim" %d does not match the %d "curvatures"`, *o.Dim, len(curv))
	}
	for j, a := range curv {
		if !(a >= 0) || math.IsInf(a, 0) {
			name := `"a"`
			if o.Curvatures != nil {
				name = fmt.Sprintf(`"curvatures"[%d]`, j)
			}
			return nil, fmt.Errorf(`%s must be a finite number ≥ 0 (got %g)`, name, a)
		}
	}
	if o.Center != nil && len(o.Center) != len(curv) {
		return nil, fmt.Errorf(`"center" has %d coordinates, the dimension is %d`, len(o.Center), len(curv))
	}
	return solvers.NewQuadratic(curv, o.Center)
}

// loadObjective reads and parses the objective file.
func loadObjective(path string) (solvers.Objective, error) {
	return loadFlagFile("objective", path, parseObjective)
}

// fpgdOptions are the parsed flags of `scorekit optimize fpgd`.
type fpgdOptions struct {
	objective               string
	cfg                     solvers.FPGDConfig
	n                       int
	x0                      []float64
	escape                  float64
	escapeSet               bool
	dtype                   tensor.DType
	device                  string
	quiet                   bool
	out, trace, stats, plot string
	shard                   *shardRun
}

func parseFPGD(args []string, stdout io.Writer) (fpgdOptions, error) {
	fs := newFlagSet("scorekit optimize fpgd")
	var (
		o                 fpgdOptions
		n, steps, k, thin int64
		x0, dtype, method string
		shard             string
	)
	fs.StringVar(&o.objective, "objective", "", "")
	fs.Float64Var(&o.cfg.Hurst, "hurst", 0, "")
	fs.Float64Var(&o.cfg.StepSize, "step", 0, "")
	fs.Float64Var(&o.cfg.Sigma, "sigma", 0, "")
	fs.Int64Var(&steps, "steps", 0, "")
	fs.Int64Var(&n, "n", 0, "")
	fs.StringVar(&x0, "x0", "", "")
	fs.StringVar(&method, "method", solvers.FGNDaviesHarte, "")
	fs.Int64Var(&k, "k", solvers.DefaultMAFBMOrder, "")
	fs.Float64Var(&o.cfg.GammaMax, "gamma-max", solvers.DefaultMAFBMGammaMax, "")
	fs.Uint64Var(&o.cfg.Seed, "seed", 0, "")
	fs.Float64Var(&o.escape, "escape", 0, "")
	fs.StringVar(&dtype, "dtype", "f32", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&o.trace, "trace", "", "")
	fs.Int64Var(&thin, "thin", 1, "")
	fs.StringVar(&o.stats, "stats", "", "")
	fs.StringVar(&o.plot, "plot", "", "")
	fs.StringVar(&shard, "shard", "", "")
	if err := parse(fs, args, stdout, optimizeHelp); err != nil {
		return o, err
	}
	for _, req := range []struct{ name, what string }{
		{"objective", "the objective file"}, {"hurst", "the Hurst index, in (0, 1)"},
		{"step", "the step size h"}, {"sigma", "the noise scale σ"}, {"steps", "the number of steps"},
		{"n", "the number of chains"},
	} {
		if !isSet(fs, req.name) {
			return o, usagef("--%s is required (%s)", req.name, req.what)
		}
	}
	switch {
	case !(o.cfg.Hurst > 0 && o.cfg.Hurst < 1):
		return o, usagef("--hurst must be in (0, 1) (got %g)", o.cfg.Hurst)
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
	case isSet(fs, "escape") && (math.IsNaN(o.escape) || math.IsInf(o.escape, 0)):
		return o, usagef("--escape must be a finite number (got %g)", o.escape)
	}
	o.n, o.cfg.Steps, o.escapeSet = int(n), int(steps), isSet(fs, "escape")
	switch method {
	case solvers.FGNDaviesHarte, solvers.FGNMAFBM:
	case solvers.FGNCholesky:
		if steps > solvers.FGNCholeskyMaxSteps {
			return o, usagef("--method cholesky generates at most %d steps (got --steps %d; use davies-harte)",
				solvers.FGNCholeskyMaxSteps, steps)
		}
	default:
		return o, usagef("--method must be davies-harte, cholesky or mafbm (got %q)", method)
	}
	o.cfg.Method = method
	if method != solvers.FGNMAFBM {
		for _, f := range []string{"k", "gamma-max"} {
			if isSet(fs, f) {
				return o, usagef("--%s applies to --method mafbm, not to %s", f, method)
			}
		}
	}
	// 16 OU processes per path is what the GPU kernel holds; the same bound on every device keeps a
	// command line valid wherever it runs (GFDM uses K ≤ 5).
	if k < 1 || k > maxCommandMAFBMStates {
		return o, usagef("--k must be in [1, %d] (got %d)", maxCommandMAFBMStates, k)
	}
	o.cfg.K = int(k)
	if !(o.cfg.GammaMax > 1) || math.IsInf(o.cfg.GammaMax, 0) {
		return o, usagef("--gamma-max must be a finite number > 1 (got %g)", o.cfg.GammaMax)
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
	o.shard, err = descentShard("optimize fpgd", fs, shard, o.cfg.Seed, o.n, &o.cfg.FirstChain, o.out, o.trace, o.stats, o.plot)
	return o, err
}

// escapeJSON is the escape summary of --stats.
type escapeJSON struct {
	Coord      int      `json:"coord"`
	Threshold  float64  `json:"threshold"`
	Below      bool     `json:"below"`
	Fraction   float64  `json:"fraction"`
	Escaped    int      `json:"escaped"`
	MeanStep   *float64 `json:"mean_step,omitempty"`
	MedianStep *float64 `json:"median_step,omitempty"`
}

// fpgdStats is the --stats JSON.
type fpgdStats struct {
	Method          string      `json:"method"`
	Noise           string      `json:"noise"`
	Objective       string      `json:"objective"`
	Device          string      `json:"device"`
	DType           string      `json:"dtype"`
	N               int         `json:"n"`
	D               int         `json:"d"`
	Steps           int         `json:"steps"`
	Hurst           float64     `json:"hurst"`
	Step            float64     `json:"step"`
	Sigma           float64     `json:"sigma"`
	Seed            uint64      `json:"seed"`
	GradEvals       int64       `json:"grad_evals"`
	WallSeconds     float64     `json:"wall_seconds"`
	FinalValueMean  *float64    `json:"final_value_mean,omitempty"`
	NaNChains       int         `json:"nan_chains"`
	NaNFirstChain   *int        `json:"nan_first_chain,omitempty"`
	NoiseRelErrorSq *float64    `json:"noise_rel_error_sq,omitempty"`
	Escape          *escapeJSON `json:"escape,omitempty"`
}

func objectiveName(f solvers.Objective) string {
	if s, ok := f.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", f)
}

// optimizeFPGD is `scorekit optimize fpgd`.
func optimizeFPGD(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFPGD(args, stdout)
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
	_, doubleWell := f.(solvers.DoubleWell)
	if o.x0, err = startFor(f, o.x0, o.n); err != nil {
		return err
	}
	switch {
	case o.escapeSet: // from x1(0)'s side of the threshold to the other
		o.cfg.Escape = &solvers.EscapeSpec{Threshold: o.escape, Below: o.x0[0] > o.escape}
	case doubleWell: // half way into the other well
		if o.x0[0] > 0 {
			o.cfg.Escape = &solvers.EscapeSpec{Threshold: -0.5, Below: true}
		} else {
			o.cfg.Escape = &solvers.EscapeSpec{Threshold: 0.5}
		}
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
	prog := newProgress(stderr, o.quiet, "scorekit optimize: fpgd", "chain-steps")
	o.cfg.Progress = prog.report()
	var res *solvers.FPGDResult
	if len(bs) > 1 {
		res, err = solvers.FPGDOn(bs, f, x, o.cfg)
	} else {
		res, err = solvers.FPGD(b, f, x, o.cfg)
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
	st := fpgdStats{Method: "fpgd", Noise: o.cfg.Method, Objective: objectiveName(f), Device: deviceNames(bs),
		DType: o.dtype.String(), N: n, D: d, Steps: o.cfg.Steps, Hurst: o.cfg.Hurst, Step: o.cfg.StepSize,
		Sigma: o.cfg.Sigma, Seed: o.cfg.Seed, GradEvals: res.GradEvals / int64(n), WallSeconds: wall.Seconds(),
		NaNChains: res.NaN.Chains}
	if m := meanValue(f, final, d, res.NaN.Rows); !math.IsNaN(m) {
		st.FinalValueMean = &m
	}
	if o.cfg.Method == solvers.FGNMAFBM && o.cfg.Sigma > 0 {
		e := res.NoiseRelErrorSq
		st.NoiseRelErrorSq = &e
	}
	if e := o.cfg.Escape; e != nil {
		frac, mean, med := res.EscapeStats()
		ej := &escapeJSON{Coord: e.Coord, Threshold: e.Threshold, Below: e.Below, Fraction: frac,
			Escaped: int(math.Round(frac * float64(n)))}
		if !math.IsNaN(mean) {
			ej.MeanStep, ej.MedianStep = &mean, &med
		}
		st.Escape = ej
	}
	st.NaNFirstChain = warnNaN(stderr, "fpgd", res.NaN, n, o.shard)
	po := optimizePlot{title: fmt.Sprintf("fpgd on %s: H = %g, h = %g, σ = %g, %d steps", objectiveName(f),
		o.cfg.Hurst, o.cfg.StepSize, o.cfg.Sigma, o.cfg.Steps), final: final, n: n, d: d, f: f, escape: o.cfg.Escape}
	written, err := writeDescent(o.out, o.trace, o.stats, o.plot, st, po, res.Final, res.Trace, res.TraceSteps,
		o.shard, backendKind(b.Device()))
	if err != nil {
		return err
	}
	if !o.quiet {
		esc := ""
		if st.Escape != nil {
			esc = fmt.Sprintf(", %d of %d chains escaped", st.Escape.Escaped, n)
			if st.Escape.MeanStep != nil {
				esc += fmt.Sprintf(" (mean step %.1f, median %.1f)", *st.Escape.MeanStep, *st.Escape.MedianStep)
			}
		}
		fmt.Fprintf(stderr, "scorekit: fpgd: %s × d %d, %d steps, %s noise%s, %v; wrote %s\n",
			o.shard.describe("chains"), d, o.cfg.Steps, o.cfg.Method, esc, wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}

// meanValue is the mean of f over the rows of x (n × d) not listed in skip (NaN if none).
func meanValue(f solvers.Objective, x []float64, d int, skip []int) float64 {
	bad := make(map[int]bool, len(skip))
	for _, i := range skip {
		bad[i] = true
	}
	s, n := 0.0, 0
	for i := 0; i*d < len(x); i++ {
		if !bad[i] {
			s += f.Value(x[i*d : (i+1)*d])
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}
