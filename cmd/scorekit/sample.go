package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// sampleMethods are the methods `scorekit sample` runs in this version, in the order of the help.
var sampleMethods = []string{"ula", "mala", "uld", "rtk-mala", "rtk-uld", "ddpm"}

// plannedSampleMethods are methods of the command's contract not available in this version.
var plannedSampleMethods = []string{"ddim", "euler", "heun", "dpm2", "dpmpp-2m", "dpmpp-3m", "ipndm",
	"edm-sde", "rf", "rf-lowdim", "rf-stochastic", "gfdm", "gfdm-ode", "lim", "metropolis-constrained"}

// Defaults of `scorekit sample` (see sampleHelp). λ_min is the smallest eigenvalue of the
// mixture's component covariances (the smallest component variance of an isotropic mixture).
const (
	defaultULAStepFactor  = 0.05 // ula:  h = 0.05 λ_min
	defaultMALAStepFactor = 0.5  // mala: initial h = 0.5 λ_min d^{-1/3}, then adapted
	defaultULDStepFactor  = 0.25 // uld:  h = 0.25 √λ_min
	defaultULDFriction    = 2.0  // uld:  γ = 2/√λ_min
	defaultDDPMTMin       = 1e-3 // ddpm: geometric grid from t_1 = 10^-3 to T
)

const sampleHelp = `Usage: scorekit sample --target T.json --method M --n N --steps K --seed S --out X.npy
                       [--device auto|cpu|cuda] [--dtype f32|f64] [--trajectory TR.npy]
                       [--plot P.png] [--stats S.json] [--quiet] [method flags]

Runs N chains of a sampler on the target and writes the samples, (N, d), to X.npy (NumPy, C
order). Every output is written atomically: a failed run leaves no file and never overwrites an
existing one. Same --seed: same samples, on the CPU and the GPU (within the ops' tolerance).

Methods and what --steps K means (K is the score-evaluation budget per chain, so methods can be
compared at equal cost; the exact count is in --stats as score_evals):
  ula       unadjusted Langevin on the target, K steps from x ~ N(0, I), K score evaluations.
            Step size (--step-size) default 0.05·λ_min.
  mala      Metropolis-adjusted Langevin, K steps, K + 1 fused log p + score evaluations. Default:
            the step size adapts by dual averaging (shared by the chains) towards acceptance 0.574
            over the first K/2 steps from h0 = 0.5·λ_min·d^(−1/3), then stays fixed; --step-size h
            fixes h instead.
  uld       underdamped Langevin, K steps, K score evaluations; v ~ N(0, I) (inverse mass 1).
            Step size default 0.25·√λ_min, --friction γ default 2/√λ_min (critical damping of
            the narrowest component).
  rtk-mala  reverse transition kernels (Huang et al. 2024) over --segments S equal segments of
            [0, --horizon T] (defaults 5 and 5), each segment's conditional law sampled by an
            inner MALA chain started at the posterior mean. Per segment: 1 score evaluation for
            the start + 1 for MALA's first state + I inner steps, so I = ⌊K/S⌋ − 2 (K ≥ 3S).
            Inner step size h_k = c·d^(−1/3)·σ_k², --step-scale c default 1 (σ_k: the segment
            sub-target's smallest length scale).
  rtk-uld   as rtk-mala with an inner ULD chain: 1 + I evaluations per segment, I = ⌊K/S⌋ − 1
            (K ≥ 2S); h_k = c·σ_k with --step-scale c default 0.25, friction 2/σ_k
            (--friction sets the 2).
  ddpm      the exponential integrator of the reverse OU SDE from N(0, I) at time T = --horizon
            (default 5), K steps, K score evaluations, on the --schedule grid: geometric (default;
            t_1 = --t-min 10^-3 … t_K = T, then 0) or uniform.
λ_min is the smallest eigenvalue of the mixture's component covariances. ula, mala, uld and rtk-*
need a density at t = 0 (a "gmm" target); an "empirical" target runs with ddpm only.
Not in this version: ` + "ddim, euler, heun, dpm2, dpmpp-2m, dpmpp-3m, ipndm, edm-sde, rf, rf-lowdim,\nrf-stochastic, gfdm, gfdm-ode, lim, metropolis-constrained." + `

Flags:
  --target T.json    the target (required; see scorekit score --help for the format)
  --method M         one of ula, mala, uld, rtk-mala, rtk-uld, ddpm (required)
  --n N              number of chains, 1 ≤ N ≤ 2^32 (required)
  --steps K          score-evaluation budget per chain, K ≥ 1 (required)
  --seed S           Philox key, an unsigned 64-bit integer (default 0)
  --out X.npy        samples, (N, d) (required)
  --dtype T          f32 or f64 (default f32)
` + deviceFlagHelp + `  --trajectory TR.npy  states along the run, (rows, N, d), row 0 the initial state and the last
                 row the samples: rows = K + 1 for ula, mala, uld and ddpm (every step);
                 S + 1 for rtk-* (x at the grid times t_S = T, …, t_0 = 0: one row per segment)
  --plot P.png       PNG: the samples (first two coordinates) over the target's log-density
                 contours (gmm targets, d ≥ 2)
  --stats S.json     JSON: method, device, dtype, n, d, steps, score_evals (per chain),
                 score_evals_total, wall_seconds, acceptance_rate (mala, rtk-mala), step_size,
                 seed, nan_chains, nan_first_chain (when nan_chains > 0)
  --quiet            say nothing on stderr unless something fails or chains turn non-finite
Method flags:
  --step-size h      ula, mala, uld: the step size (defaults above)
  --friction γ       uld: the friction; rtk-uld: friction in units of 1/σ_k (default 2)
  --segments S       rtk-*: number of equal segments (default 5)
  --step-scale c     rtk-*: inner step-size constant (default 1 for rtk-mala, 0.25 for rtk-uld)
  --horizon T        rtk-*, ddpm: end time of the forward OU process (default 5)
  --schedule G       ddpm: geometric or uniform (default geometric)
  --t-min t          ddpm: first grid time of the geometric schedule (default 0.001)

A run whose chains turn NaN or ±Inf still writes its outputs, reports the count and the first
such chain on stderr and in --stats.
`

// samplerSpec is one sampler run: the method and its parameters (zero means default).
type samplerSpec struct {
	method    string
	steps     int
	seed      uint64
	stepSize  float64
	friction  float64
	segments  int
	stepScale float64
	horizon   float64
	schedule  string
	tMin      float64
	trace     bool
}

// lambdaMin is the smallest eigenvalue of the mixture's component covariances.
func lambdaMin(g *ops.GMM) float64 {
	m := math.Inf(1)
	for _, l := range g.Params().Lambda {
		m = math.Min(m, l)
	}
	return m
}

// rtkInnerSteps maps the budget K and S segments to inner steps per segment (see sampleHelp).
func rtkInnerSteps(method string, steps, segments int) (int, error) {
	overhead := 2 // posterior-mean start + MALA's first fused evaluation
	if method == "rtk-uld" {
		overhead = 1
	}
	inner := steps/segments - overhead
	if inner < 1 {
		return 0, usagef("--steps %d is too small for %s with %d segments: need at least %d (%d per segment)",
			steps, method, segments, (overhead+1)*segments, overhead+1)
	}
	return inner, nil
}

// checkSpec validates a spec against the target (usage errors) without running anything.
func checkSpec(s samplerSpec, tgt target.Target) error {
	if s.steps < 1 {
		return usagef("--steps must be ≥ 1 (got %d)", s.steps)
	}
	if _, isGMM := tgt.(target.GMM); !isGMM && s.method != "ddpm" {
		return usagef("--method %s needs a target with a density at t = 0 (a gmm); the %s target runs with ddpm",
			s.method, tgt.Kind())
	}
	if strings.HasPrefix(s.method, "rtk-") {
		_, err := rtkInnerSteps(s.method, s.steps, s.segments)
		return err
	}
	return nil
}

// runSampler runs spec on n chains of tgt in dtype dt on b.
func runSampler(b ops.Backend, tgt target.Target, n int, dt tensor.DType, s samplerSpec) (*solvers.Result, error) {
	if err := checkSpec(s, tgt); err != nil {
		return nil, err
	}
	switch s.method {
	case "ula", "mala", "uld":
		g := tgt.(target.GMM).Mixture
		lmin, d := lambdaMin(g), g.Dim()
		cfg := solvers.LangevinConfig{Method: s.method, Steps: s.steps, StepSize: s.stepSize, Seed: s.seed}
		switch s.method {
		case "ula":
			if cfg.StepSize == 0 {
				cfg.StepSize = defaultULAStepFactor * lmin
			}
		case "mala":
			if cfg.StepSize == 0 {
				cfg.Adapt = s.steps >= 2
				cfg.StepSize = defaultMALAStepFactor * lmin * math.Cbrt(1/float64(d))
			}
		case "uld":
			if cfg.StepSize == 0 {
				cfg.StepSize = defaultULDStepFactor * math.Sqrt(lmin)
			}
			cfg.Friction = s.friction
			if cfg.Friction == 0 {
				cfg.Friction = defaultULDFriction / math.Sqrt(lmin)
			}
		}
		if s.trace {
			cfg.Thin = 1
		}
		x0, err := tensor.New(b.Device(), dt, n, d)
		if err != nil {
			return nil, fmt.Errorf("allocate the initial state (%d, %d): %w", n, d, err)
		}
		defer x0.Close()
		// x0 ~ N(0, I) at Site(0, PurposeInit), the start RTK and DDPM draw too.
		if err := b.Normal(x0, ops.Draw{Seed: s.seed, Site: solvers.Site(0, solvers.PurposeInit)}); err != nil {
			return nil, fmt.Errorf("initial state: %w", err)
		}
		return solvers.Langevin(b, tgt, x0, cfg)
	case "rtk-mala", "rtk-uld":
		inner, _ := rtkInnerSteps(s.method, s.steps, s.segments)
		cfg := solvers.RTKConfig{Inner: strings.TrimPrefix(s.method, "rtk-"), Segments: s.segments,
			Horizon: s.horizon, InnerSteps: inner, InnerStepScale: s.stepScale, Friction: s.friction,
			KeepPath: s.trace, Seed: s.seed}
		res, err := solvers.RTK(b, tgt, n, dt, cfg)
		if err != nil || res.Trace == nil {
			return res, err
		}
		// Row order of the command: row 0 the N(0, I) start, the last row the samples.
		if err := reverseRows(res); err != nil {
			res.Close()
			return nil, err
		}
		return res, nil
	case "ddpm":
		cfg := solvers.DDPMConfig{Seed: s.seed}
		horizon := s.horizon
		if horizon == 0 {
			horizon = solvers.DefaultHorizon
		}
		if s.schedule == "uniform" {
			cfg.Steps, cfg.Horizon = s.steps, horizon
		} else {
			tMin := s.tMin
			if tMin == 0 {
				tMin = defaultDDPMTMin
			}
			grid, err := solvers.GeometricGrid(tMin, horizon, s.steps)
			if err != nil {
				return nil, usagef("--t-min %g, --horizon %g: %v", tMin, horizon, err)
			}
			cfg.Grid = grid
		}
		if s.trace {
			cfg.Thin = 1
		}
		return solvers.DDPM(b, tgt, n, dt, cfg)
	}
	return nil, usagef("unknown method %q", s.method)
}

// reverseRows reverses the rows of res.Trace (on the host; the result's trace becomes a host
// tensor).
func reverseRows(res *solvers.Result) error {
	tr := res.Trace
	h := tr
	if !tr.OnHost() {
		var err error
		if h, err = tr.CopyTo(tensor.CPU()); err != nil {
			return fmt.Errorf("copy the path to the host: %w", err)
		}
		defer h.Close()
	}
	rows, n, d := tr.Dim(0), tr.Dim(1), tr.Dim(2)
	out, err := tensor.New(nil, tr.DType(), rows, n, d)
	if err != nil {
		return fmt.Errorf("allocate the path: %w", err)
	}
	for r := 0; r < rows; r++ {
		src, err := h.View((rows-1-r)*n*d, n, d)
		if err == nil {
			var dst *tensor.Tensor
			if dst, err = out.View(r*n*d, n, d); err == nil {
				err = dst.CopyFrom(src)
			}
		}
		if err != nil {
			out.Close()
			return fmt.Errorf("reverse the path: %w", err)
		}
	}
	tr.Close()
	res.Trace = out
	return nil
}

// sampleStats is the --stats JSON.
type sampleStats struct {
	Method          string   `json:"method"`
	Device          string   `json:"device"`
	DType           string   `json:"dtype"`
	N               int      `json:"n"`
	D               int      `json:"d"`
	Steps           int      `json:"steps"`
	ScoreEvals      int64    `json:"score_evals"`
	ScoreEvalsTotal int64    `json:"score_evals_total"`
	WallSeconds     float64  `json:"wall_seconds"`
	AcceptanceRate  *float64 `json:"acceptance_rate,omitempty"`
	StepSize        float64  `json:"step_size,omitempty"`
	Seed            uint64   `json:"seed"`
	NaNChains       int      `json:"nan_chains"`
	NaNFirstChain   *int     `json:"nan_first_chain,omitempty"`
}

// sampleOptions are the parsed flags of `scorekit sample`.
type sampleOptions struct {
	spec                           samplerSpec
	target, out, traj, plot, stats string
	n                              int
	dtype                          tensor.DType
	device                         string
	quiet                          bool
}

// parseSample parses and validates the flags of `scorekit sample`; it loads nothing.
func parseSample(args []string, stdout io.Writer) (sampleOptions, error) {
	fs := newFlagSet("scorekit sample")
	var (
		o            sampleOptions
		n, steps     int64
		segments     int64
		dtype        string
		stepSize     float64
		friction     float64
		stepScale    float64
		horizon      float64
		tMin         float64
		schedule     string
		method, targ string
	)
	fs.StringVar(&targ, "target", "", "")
	fs.StringVar(&method, "method", "", "")
	fs.Int64Var(&n, "n", 0, "")
	fs.Int64Var(&steps, "steps", 0, "")
	fs.Uint64Var(&o.spec.seed, "seed", 0, "")
	fs.StringVar(&dtype, "dtype", "f32", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&o.traj, "trajectory", "", "")
	fs.StringVar(&o.plot, "plot", "", "")
	fs.StringVar(&o.stats, "stats", "", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.Float64Var(&stepSize, "step-size", 0, "")
	fs.Float64Var(&friction, "friction", 0, "")
	fs.Int64Var(&segments, "segments", int64(solvers.DefaultSegments), "")
	fs.Float64Var(&stepScale, "step-scale", 0, "")
	fs.Float64Var(&horizon, "horizon", solvers.DefaultHorizon, "")
	fs.StringVar(&schedule, "schedule", "geometric", "")
	fs.Float64Var(&tMin, "t-min", defaultDDPMTMin, "")
	if err := parse(fs, args, stdout, sampleHelp); err != nil {
		return o, err
	}
	if targ == "" {
		return o, usagef("--target is required (a target file, see scorekit score --help)")
	}
	o.target = targ
	switch {
	case method == "":
		return o, usagef("--method is required (available: %s)", strings.Join(sampleMethods, ", "))
	case !contains(sampleMethods, method) && contains(plannedSampleMethods, method):
		return o, usagef("--method %s is not available in this version (available: %s)", method,
			strings.Join(sampleMethods, ", "))
	case !contains(sampleMethods, method):
		return o, usagef("--method: unknown method %q (available: %s)", method, strings.Join(sampleMethods, ", "))
	}
	o.spec.method = method
	switch {
	case !isSet(fs, "n"):
		return o, usagef("--n is required (the number of chains)")
	case n < 1 || n > ops.MaxChains:
		return o, usagef("--n must be in [1, 2^32] (got %d)", n)
	case !isSet(fs, "steps"):
		return o, usagef("--steps is required (the score-evaluation budget per chain)")
	case steps < 1 || uint64(steps) > solvers.MaxSteps:
		return o, usagef("--steps must be ≥ 1 (got %d)", steps)
	}
	o.n, o.spec.steps = int(n), int(steps)
	var err error
	if o.dtype, err = parseDTypeFlag(dtype); err != nil {
		return o, err
	}
	if err := checkDeviceFlag(o.device); err != nil {
		return o, err
	}
	positive := func(name string, v float64) error {
		if isSet(fs, name) && !(v > 0 && !math.IsInf(v, 0)) {
			return usagef("--%s must be a finite number > 0 (got %g)", name, v)
		}
		return nil
	}
	only := func(name string, methods ...string) error {
		if isSet(fs, name) && !contains(methods, method) {
			return usagef("--%s applies to %s, not to --method %s", name, strings.Join(methods, ", "), method)
		}
		return nil
	}
	for _, c := range []struct {
		name    string
		v       float64
		methods []string
	}{
		{"step-size", stepSize, []string{"ula", "mala", "uld"}},
		{"friction", friction, []string{"uld", "rtk-uld"}},
		{"step-scale", stepScale, []string{"rtk-mala", "rtk-uld"}},
		{"horizon", horizon, []string{"rtk-mala", "rtk-uld", "ddpm"}},
		{"t-min", tMin, []string{"ddpm"}},
		{"segments", float64(segments), []string{"rtk-mala", "rtk-uld"}},
	} {
		if err := only(c.name, c.methods...); err != nil {
			return o, err
		}
		if err := positive(c.name, c.v); err != nil {
			return o, err
		}
	}
	if err := only("schedule", "ddpm"); err != nil {
		return o, err
	}
	if schedule != "geometric" && schedule != "uniform" {
		return o, usagef("--schedule must be geometric or uniform (got %q)", schedule)
	}
	if segments > 1<<20 {
		return o, usagef("--segments must be in [1, 2^20] (got %d)", segments)
	}
	if schedule == "geometric" && method == "ddpm" && !(tMin < horizon) {
		return o, usagef("--t-min %g must be below --horizon %g", tMin, horizon)
	}
	o.spec.stepSize, o.spec.friction, o.spec.stepScale = stepSize, friction, stepScale
	o.spec.segments, o.spec.horizon, o.spec.schedule, o.spec.tMin = int(segments), horizon, schedule, tMin
	o.spec.trace = o.traj != ""
	if err := checkOut(o.out); err != nil {
		return o, err
	}
	seen := map[string]string{absPath(o.out): "--out"}
	for _, f := range []struct{ name, path string }{{"--trajectory", o.traj}, {"--plot", o.plot}, {"--stats", o.stats}} {
		if f.path == "" {
			continue
		}
		if err := checkOut(f.path); err != nil {
			return o, usagef("%s", strings.Replace(err.Error(), "--out", f.name, 1))
		}
		if prev, dup := seen[absPath(f.path)]; dup {
			return o, usagef("%s and %s name the same file %s", prev, f.name, f.path)
		}
		seen[absPath(f.path)] = f.name
	}
	return o, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runSample is `scorekit sample`.
func runSample(args []string, stdout, stderr io.Writer) int {
	return exitStatus(stderr, "scorekit sample", sample(args, stdout, stderr))
}

func sample(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseSample(args, stdout)
	if err != nil {
		return err
	}
	tgt, err := target.Load(o.target)
	if err != nil {
		return usagef("--target %v", err)
	}
	if err := checkSpec(o.spec, tgt); err != nil {
		return err
	}
	var g *ops.GMM
	if gt, ok := tgt.(target.GMM); ok {
		g = gt.Mixture
	}
	if o.plot != "" && (g == nil || tgt.Dim() < 2) {
		return usagef("--plot draws a gmm target of dimension ≥ 2 (the target is %s)", tgt)
	}
	b, cleanup, err := openBackend(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	d := tgt.Dim()
	rows := int64(1)
	if o.spec.trace {
		rows += int64(o.spec.steps) + 1
	}
	if err := checkFits(b.Device(), rows*int64(o.n)*int64(d)*int64(o.dtype.Size()),
		fmt.Sprintf("--n %d × d %d (× %d rows with --trajectory) of %v", o.n, d, rows, o.dtype)); err != nil {
		return err
	}

	start := time.Now()
	res, err := runSampler(b, tgt, o.n, o.dtype, o.spec)
	if err != nil {
		return fmt.Errorf("%s: %w", o.spec.method, err)
	}
	defer res.Close()
	if err := b.Device().Synchronize(); err != nil {
		return err
	}
	wall := time.Since(start)

	st := sampleStats{Method: o.spec.method, Device: b.Device().Name(), DType: o.dtype.String(), N: o.n, D: d,
		Steps: o.spec.steps, ScoreEvals: res.ScoreEvals / int64(o.n), ScoreEvalsTotal: res.ScoreEvals,
		WallSeconds: wall.Seconds(), StepSize: res.StepSize, Seed: o.spec.seed, NaNChains: res.NaN.Chains}
	if res.Accept != nil {
		if a := res.AcceptMean(); !math.IsNaN(a) {
			st.AcceptanceRate = &a
		}
	}
	if res.NaN.Chains > 0 {
		first := res.NaN.First
		st.NaNFirstChain = &first
		fmt.Fprintf(stderr, "scorekit sample: warning: %d of %d chains turned NaN or ±Inf (first: chain %d); they are in the output as they are\n",
			res.NaN.Chains, o.n, first)
	}
	// Everything is rendered before anything is written.
	var statsJSON, png []byte
	if o.stats != "" {
		if statsJSON, err = json.MarshalIndent(st, "", "  "); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		statsJSON = append(statsJSON, '\n')
	}
	if o.plot != "" {
		x, err := res.Samples.Float64s()
		if err != nil {
			return err
		}
		title := fmt.Sprintf("%s, %d score evals/chain", o.spec.method, st.ScoreEvals)
		if png, err = renderScatter([]scatterPanel{{title: title, x: x, d: d}}, g, 1); err != nil {
			return err
		}
	}
	if err := tensor.WriteNpy(o.out, res.Samples); err != nil {
		return err
	}
	written := []string{o.out}
	if o.traj != "" {
		if err := tensor.WriteNpy(o.traj, res.Trace); err != nil {
			return err
		}
		written = append(written, o.traj)
	}
	if statsJSON != nil {
		if err := tensor.WriteFileAtomic(o.stats, func(w io.Writer) error { _, err := w.Write(statsJSON); return err }); err != nil {
			return err
		}
		written = append(written, o.stats)
	}
	if png != nil {
		if err := tensor.WriteFileAtomic(o.plot, func(w io.Writer) error { _, err := io.Copy(w, bytes.NewReader(png)); return err }); err != nil {
			return err
		}
		written = append(written, o.plot)
	}
	if !o.quiet {
		acc := ""
		if st.AcceptanceRate != nil {
			acc = fmt.Sprintf(", acceptance %.3f", *st.AcceptanceRate)
		}
		fmt.Fprintf(stderr, "scorekit: %s: %d chains × d %d, %d score evaluations per chain%s, %v; wrote %s\n",
			o.spec.method, o.n, d, st.ScoreEvals, acc, wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}
