package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// The help of `scorekit sample`: the method paragraphs come from the method registry
// (solvers.Methods), the flags are the command's.

// familyHeaders introduce each family of methods in the help.
var familyHeaders = map[string]string{
	solvers.FamilyLangevin:    "Langevin family (a \"gmm\" target; the chains run on its density from x ~ N(0, I)):",
	solvers.FamilyRTK:         "Reverse transition kernels (a \"gmm\" target):",
	solvers.FamilyDiffusion:   "Diffusion (a \"gmm\" or an \"empirical\" target: every one has an exact denoiser at σ > 0):",
	solvers.FamilyFlow:        "Flows (rectified flow x_t = (1 − t) ξ + t x, ξ ~ N(0, I), the target's denoiser under that noise):",
	solvers.FamilyConstrained: "Constrained (any target, and a domain M: --constraint C.json):",
	solvers.FamilyFractional:  "Fractional (a \"gmm\" or an \"empirical\" target; the exact augmented score):",
}

// methodsHelp lays out the registry's methods by family, each paragraph indented under its name;
// before the noise-level methods, their common grid.
func methodsHelp() string {
	var b strings.Builder
	family := ""
	for _, m := range solvers.Methods() {
		if m.Family != family {
			family = m.Family
			b.WriteString(familyHeaders[family] + "\n")
		}
		if m.Name == solvers.MethodDDIM {
			b.WriteString(`  The methods below run the target's denoiser D(x; σ) down a grid of n + 1 noise levels,
  σ_0 = --sigma-max (default 80) > … > σ_{n−1} = --sigma-min (default 0.002) > σ_n = 0;
  --schedule edm (default: Karras et al.'s polynomial grid, exponent --rho default 7), logsnr
  (uniform in log σ) or time (uniform in σ):
`)
		}
		lines := wrapWords(m.Help, 86)
		if len(m.Name) > 9 { // a long name gets a line of its own
			fmt.Fprintf(&b, "  %s\n", m.Name)
		} else {
			fmt.Fprintf(&b, "  %-9s %s\n", m.Name, lines[0])
			lines = lines[1:]
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "            %s\n", l)
		}
	}
	return b.String()
}

// wrapWords reflows text into lines of at most width characters (a longer word stays whole).
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case len([]rune(line))+1+len([]rune(w)) > width:
			lines = append(lines, line)
			line = w
		default:
			line += " " + w
		}
	}
	return append(lines, line)
}

// methodsTaking lists the methods that take an option (a flag name), for error messages.
func methodsTaking(option string) string {
	var names []string
	for _, m := range solvers.Methods() {
		if m.Takes(option) {
			names = append(names, m.Name)
		}
	}
	return strings.Join(names, ", ")
}

var sampleHelp = `Usage: scorekit sample --target T.json --method M --n N --steps K --seed S --out X.npy
                       [--device auto|cpu|cuda] [--dtype f32|f64] [--trajectory TR.npy]
                       [--plot P.png] [--stats S.json] [--quiet] [method flags]

Runs N chains of a sampler on the target and writes the samples, (N, d), to X.npy (NumPy, C
order). Every output is written atomically: a failed run leaves no file and never overwrites an
existing one. Same --seed: same samples, on the CPU and the GPU (within the ops' tolerance), and
chain i's samples depend only on --seed and i (the first N chains of a larger run are the same).

Methods and what --steps K means. K is the score-evaluation budget per chain, so methods can be
compared at equal cost: each method takes as many steps n as fit in K (a denoiser evaluation
counts as a score evaluation). The exact count is in --stats as score_evals, n as method_steps.
Flags below set each method's knobs (the library's solvers.MethodOptions); λ_min is the smallest
eigenvalue of the mixture's component covariances.

` + methodsHelp() + plannedHelp() + `
The start of the methods that run from noise (rtk-*, ddpm, the noise-level methods): by default
(--init exact) the exact law of the target noised to the start — the mixture noised to σ_0, or to
time T of the OU process, is itself a mixture; a data set noised is a data point plus Gaussian
noise. --init prior starts from the textbook Gaussian instead (σ_0 ξ; N(0, I) at T), which ignores
the target's mean and covariance: on modes far from the origin its samples are biased at any
number of steps (for comparisons with other implementations). lim starts from the data plus
α-stable noise, drawn exactly as a Gaussian given the noise's mixing variable (--init prior: the
noise alone, ρ_0 S). The flows start at t = 0, where the law is N(0, I) exactly, either way.

Flags:
  --target T.json    the target (required; format below)
  --method M         one of the methods above (required)
  --n N              number of chains, 1 ≤ N ≤ 2^32 (required)
  --steps K          score-evaluation budget per chain, K ≥ 1 (required)
  --seed S           Philox key, an unsigned 64-bit integer (default 0)
  --out X.npy        samples, (N, d) (required)
  --dtype T          f32 or f64 (default f32)
` + deviceFlagHelp(21) + `  --trajectory TR.npy  states along the run, (n + 1, N, d), row 0 the initial state and the last
                     row the samples, one row per step of the method: n = K for ula, mala, uld,
                     ddpm, gfdm and metropolis-constrained; n = K + 1 for rf*; n as above for the
                     noise-level methods (row i at σ_i); n = S for rtk-* (x at the grid times
                     t_S = T, …, t_0 = 0: one row per segment)
  --augmented-trajectory A.npy
                     gfdm, gfdm-ode: the augmented state along the run, (n, N, d, K + 1), row i
                     Z = (x, y_1, …, y_K) of every coordinate at the grid's t_i (from t = 1 down
                     to t_min), x first; the samples (t = 0) have no augmented row
  --plot P.png       PNG: for d ≥ 2 the samples (the first two coordinates) over the target's
                     log-density contours (gmm) or its data points (empirical), with the outline
                     of --constraint; for d = 1 their histogram over the target's density (gmm)
                     or the data's histogram (empirical); with --trajectory a second panel draws
                     the trajectories of 30 chains
  --stats S.json     JSON: method, device, dtype, n, d, steps (K), method_steps (n),
                     score_evals (per chain), score_evals_total, wall_seconds, acceptance_rate
                     (mala, rtk-mala), rejection_rate (metropolis-constrained), clamped (lim),
                     step_size, seed, nan_chains, nan_first_chain (when nan_chains > 0)
  --quiet            say nothing on stderr unless something fails or chains turn non-finite
                     (otherwise long runs show a progress bar on a terminal, a line every 10 s
                     elsewhere)
` + shardFlagHelp(19) + `Method flags (each refused by the methods it does not apply to):
  --init S           rtk-*, ddpm, the noise-level methods, rf*: exact (default) or prior, the
                     start (above); metropolis-constrained: X0.npy, the initial states, (N, d), all
                     inside the domain
  --step-size h      ula, mala, uld: the step size (defaults above)
  --friction γ       uld: the friction; rtk-uld: friction in units of 1/σ_k (default 2)
  --segments S       rtk-*: number of equal segments (default 5)
  --step-scale c     rtk-*: inner step-size constant (default 1 for rtk-mala, 0.25 for rtk-uld)
  --horizon T        rtk-*, ddpm, metropolis-constrained: the end time of the forward process
                     (default 5; for metropolis-constrained the noise variance σ² = T, default
                     0.6·D² for a box or ball of diameter D)
  --schedule G       ddpm: geometric or uniform (default geometric); the noise-level methods:
                     edm, logsnr or time (default edm)
  --t-min t          ddpm: first grid time of the geometric schedule (default 0.001);
                     rf-lowdim, rf-stochastic: δ ∈ (0, 1/2) of the grid (default 0.001);
                     gfdm, gfdm-ode: the last grid time, in (0, 1) (default: where the
                     augmented covariance stops being well conditioned, at least 0.001)
  --sigma-min s      the noise-level methods: the smallest positive level (default 0.002)
  --sigma-max s      the noise-level methods: the largest level, σ_0 (default 80)
  --rho ρ            the noise-level methods with --schedule edm: its exponent (default 7)
  --eta η            ddim, lim: the stochasticity, in [0, 1] (default 0)
  --churn S          edm-sde: S_churn > 0 (default 40)
  --s-tmin s, --s-tmax s  edm-sde: the levels that churn (defaults 0.05, 50; --s-tmax may be inf)
  --s-noise s        edm-sde: the factor of the fresh noise (default 1; 1.003 in EDM for learned
                     networks)
  --classic          dpmpp-3m, ipndm: the coefficients of the common implementations
  --alpha A          lim: the stability index of the noise, in (1, 2] (default 1.8; 2 is ddim)
  --clamp C          lim: clip every value of the injected α-stable noise to [−C, C] and report
                     how many were clipped (--stats clamped; default 0: no clip; the reference
                     implementation uses 20)
  --constraint C.json  metropolis-constrained: the domain (required; format below)
  --hurst H          gfdm, gfdm-ode: the Hurst index of the driver, in (0, 1) (default 0.5: the
                     Brownian baseline, as the MA-fBM driver approximates it)
  --k K              gfdm, gfdm-ode: the number of OU processes of the driver, 1 … 5 (default 3)
  --gamma-max γ      gfdm, gfdm-ode: the largest OU speed, > 1 (default 20)

` + targetFormatHelp + `

` + constraintHelp + `
A run whose chains turn NaN or ±Inf still writes its outputs, reports the count and the first
such chain on stderr and in --stats.

Examples:
  # 10,000 samples of a 2-D mixture by RTK-MALA at 100 score evaluations per chain, with
  # their plot and the run's statistics
  cat > t.json <<'JSON'
  {"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]],
   "covariance": "isotropic", "vars": [1.0, 0.25]}
  JSON
  scorekit sample --target t.json --method rtk-mala --n 10000 --steps 100 --seed 1 \
      --out x.npy --stats stats.json --plot samples.png

  # Heun on the EDM grid at 35 evaluations, keeping 2,000 trajectories (36, 2000, 2) and
  # drawing 30 of them over the density; the same --seed with --n 20000 repeats these
  # 2,000 chains as its first rows
  scorekit sample --target t.json --method heun --n 2000 --steps 35 --seed 1 \
      --out h.npy --trajectory tr.npy --plot traj.png
`

// sampleStats is the --stats JSON.
type sampleStats struct {
	Method          string   `json:"method"`
	Device          string   `json:"device"`
	DType           string   `json:"dtype"`
	N               int      `json:"n"`
	D               int      `json:"d"`
	Steps           int      `json:"steps"`
	MethodSteps     int      `json:"method_steps"`
	ScoreEvals      int64    `json:"score_evals"`
	ScoreEvalsTotal int64    `json:"score_evals_total"`
	WallSeconds     float64  `json:"wall_seconds"`
	AcceptanceRate  *float64 `json:"acceptance_rate,omitempty"`
	RejectionRate   *float64 `json:"rejection_rate,omitempty"`
	Clamped         *int64   `json:"clamped,omitempty"`
	StepSize        float64  `json:"step_size,omitempty"`
	Seed            uint64   `json:"seed"`
	NaNChains       int      `json:"nan_chains"`
	NaNFirstChain   *int     `json:"nan_first_chain,omitempty"`
}

// sampleOptions are the parsed flags of `scorekit sample`.
type sampleOptions struct {
	method                         solvers.Method
	run                            solvers.MethodOptions
	target, out, traj, plot, stats string
	augTraj                        string // --augmented-trajectory
	shard                          *shardRun
	constraint, init               string
	n                              int
	dtype                          tensor.DType
	device                         string
	quiet                          bool
}

// Schedules the command checks (the library checks them again).
var (
	ddpmSchedules = []string{solvers.DDPMScheduleGeometric, solvers.DDPMScheduleUniform}
	veSchedules   = solvers.Schedules()
)

// parseSample parses and validates the flags of `scorekit sample`; it loads nothing.
func parseSample(args []string, stdout io.Writer) (sampleOptions, error) {
	fs := newFlagSet("scorekit sample")
	var (
		o                    sampleOptions
		n, steps             int64
		segments             int64
		dtype                string
		stepSize             float64
		friction             float64
		stepScale            float64
		horizon              float64
		tMin                 float64
		schedule             string
		method, targ         string
		sigmaMin, sigmaMax   float64
		rho, eta             float64
		churn, sTMin, sTMax  float64
		sNoise               float64
		alpha, clamp         float64
		classic              bool
		constraint, initFlag string
		seed                 uint64
		hurst, gammaMax      float64
		kOU                  int64
		shard                string
	)
	fs.StringVar(&shard, "shard", "", "")
	fs.StringVar(&targ, "target", "", "")
	fs.StringVar(&method, "method", "", "")
	fs.Int64Var(&n, "n", 0, "")
	fs.Int64Var(&steps, "steps", 0, "")
	fs.Uint64Var(&seed, "seed", 0, "")
	fs.StringVar(&dtype, "dtype", "f32", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&o.traj, "trajectory", "", "")
	fs.StringVar(&o.augTraj, "augmented-trajectory", "", "")
	fs.StringVar(&o.plot, "plot", "", "")
	fs.StringVar(&o.stats, "stats", "", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.Float64Var(&stepSize, "step-size", 0, "")
	fs.Float64Var(&friction, "friction", 0, "")
	fs.Int64Var(&segments, "segments", int64(solvers.DefaultSegments), "")
	fs.Float64Var(&stepScale, "step-scale", 0, "")
	fs.Float64Var(&horizon, "horizon", solvers.DefaultHorizon, "")
	fs.StringVar(&schedule, "schedule", "", "")
	fs.Float64Var(&tMin, "t-min", solvers.DefaultDDPMTMin, "")
	fs.Float64Var(&sigmaMin, "sigma-min", solvers.DefaultSigmaMin, "")
	fs.Float64Var(&sigmaMax, "sigma-max", solvers.DefaultSigmaMax, "")
	fs.Float64Var(&rho, "rho", solvers.DefaultRho, "")
	fs.Float64Var(&eta, "eta", 0, "")
	fs.Float64Var(&churn, "churn", solvers.DefaultSChurn, "")
	fs.Float64Var(&sTMin, "s-tmin", solvers.DefaultSTMin, "")
	fs.Float64Var(&sTMax, "s-tmax", solvers.DefaultSTMax, "")
	fs.Float64Var(&sNoise, "s-noise", solvers.DefaultSNoise, "")
	fs.BoolVar(&classic, "classic", false, "")
	fs.Float64Var(&alpha, "alpha", solvers.DefaultLIMAlpha, "")
	fs.Float64Var(&clamp, "clamp", 0, "")
	fs.StringVar(&constraint, "constraint", "", "")
	fs.StringVar(&initFlag, "init", "", "")
	fs.Float64Var(&hurst, "hurst", solvers.DefaultGFDMHurst, "")
	fs.Int64Var(&kOU, "k", solvers.DefaultGFDMK, "")
	fs.Float64Var(&gammaMax, "gamma-max", solvers.DefaultGFDMGammaMax, "")
	if err := parse(fs, args, stdout, sampleHelp); err != nil {
		return o, err
	}
	if targ == "" {
		return o, usagef("--target is required (a target file, see scorekit score --help)")
	}
	o.target = targ
	available := strings.Join(solvers.MethodNames(), ", ")
	if method == "" {
		return o, usagef("--method is required (available: %s)", available)
	}
	if contains(solvers.PlannedMethods(), method) {
		return o, usagef("--method %s is not available in this version (available: %s)", method, available)
	}
	m, err := solvers.LookupMethod(method)
	if err != nil {
		return o, usagef("--method: %v", err)
	}
	o.method = m
	switch {
	case !isSet(fs, "n"):
		return o, usagef("--n is required (the number of chains)")
	case n < 1 || n > ops.MaxChains:
		return o, usagef("--n must be in [1, 2^32] (got %d)", n)
	case !isSet(fs, "steps"):
		return o, usagef("--steps is required (the score-evaluation budget per chain)")
	case steps < 1:
		return o, usagef("--steps must be ≥ 1 (got %d)", steps)
	case uint64(steps) >= solvers.MaxSteps:
		return o, usagef("--steps must be < %d (got %d)", uint64(solvers.MaxSteps), steps)
	}
	o.n = int(n)
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
	// --init is an option of the methods from noise (exact|prior) and, as a file, of
	// metropolis-constrained (the library's "x0").
	initOption := "init"
	if m.Takes("x0") {
		initOption = "x0"
	}
	for _, c := range []struct {
		name     string
		v        float64
		positive bool
	}{
		{"step-size", stepSize, true}, {"friction", friction, true}, {"step-scale", stepScale, true},
		{"horizon", horizon, true}, {"t-min", tMin, true}, {"segments", float64(segments), true},
		{"sigma-min", sigmaMin, true}, {"sigma-max", sigmaMax, true}, {"rho", rho, true}, {"eta", eta, false},
		{"churn", churn, true}, {"s-tmin", sTMin, false}, {"s-tmax", sTMax, false}, {"s-noise", sNoise, true},
		{"classic", 0, false}, {"constraint", 0, false}, {"init", 0, false}, {"schedule", 0, false},
		{"hurst", 0, false}, {"k", 0, false}, {"gamma-max", 0, false},
		{"alpha", alpha, false}, {"clamp", clamp, false}, {"augmented-trajectory", 0, false},
	} {
		option := c.name
		if option == "init" {
			option = initOption
		}
		if isSet(fs, c.name) && !m.Takes(option) {
			if c.name == "init" {
				return o, usagef("--init applies to %s (exact|prior) and metropolis-constrained (a file), not to --method %s",
					methodsTaking("init"), method)
			}
			return o, usagef("--%s applies to %s, not to --method %s", c.name, methodsTaking(option), method)
		}
		if c.positive {
			if err := positive(c.name, c.v); err != nil {
				return o, err
			}
		}
	}
	if segments > 1<<20 {
		return o, usagef("--segments must be in [1, 2^20] (got %d)", segments)
	}
	noiseLevel := m.Takes("sigma-max")
	switch {
	case method == "ddpm":
		if schedule == "" {
			schedule = solvers.DDPMScheduleGeometric
		}
		if !contains(ddpmSchedules, schedule) {
			return o, usagef("--schedule must be geometric or uniform for ddpm (got %q)", schedule)
		}
		if schedule == solvers.DDPMScheduleGeometric && !(tMin < horizon) {
			return o, usagef("--t-min %g must be below --horizon %g", tMin, horizon)
		}
		if schedule == solvers.DDPMScheduleUniform && isSet(fs, "t-min") {
			return o, usagef("--t-min applies to --schedule geometric, not to --schedule uniform")
		}
	case noiseLevel:
		if schedule == "" {
			schedule = solvers.ScheduleEDM
		}
		if !contains(veSchedules, schedule) {
			return o, usagef("--schedule must be %s for %s (got %q)", strings.Join(veSchedules, ", "), method, schedule)
		}
		if isSet(fs, "rho") && schedule != solvers.ScheduleEDM {
			return o, usagef("--rho applies to --schedule edm, not to --schedule %s", schedule)
		}
		if !(sigmaMin < sigmaMax) {
			return o, usagef("--sigma-min %g must be below --sigma-max %g", sigmaMin, sigmaMax)
		}
	}
	if isSet(fs, "t-min") && m.Family == solvers.FamilyFlow && !(tMin < 0.5) {
		return o, usagef("--t-min must be in (0, 1/2) for %s (got %g)", method, tMin)
	}
	if isSet(fs, "hurst") && !(hurst > 0 && hurst < 1) {
		return o, usagef("--hurst must be in (0, 1) (got %g)", hurst)
	}
	if isSet(fs, "k") && (kOU < 1 || kOU > solvers.MaxGFDMK) {
		return o, usagef("--k must be in [1, %d] (got %d)", solvers.MaxGFDMK, kOU)
	}
	if isSet(fs, "gamma-max") && !(gammaMax > 1 && !math.IsInf(gammaMax, 0)) {
		return o, usagef("--gamma-max must be a finite number > 1 (got %g)", gammaMax)
	}
	if m.Family == solvers.FamilyFractional && isSet(fs, "t-min") && !(tMin < 1) {
		return o, usagef("--t-min must be in (0, 1) for %s (got %g)", method, tMin)
	}
	if isSet(fs, "alpha") && !(alpha > 1 && alpha <= 2) {
		return o, usagef("--alpha must be in (1, 2] for %s (got %g)", method, alpha)
	}
	if isSet(fs, "clamp") && (!(clamp >= 0) || math.IsInf(clamp, 0)) {
		return o, usagef("--clamp must be a finite number ≥ 0 (got %g; 0: no clip)", clamp)
	}
	if isSet(fs, "eta") && !(eta >= 0 && eta <= 1) {
		return o, usagef("--eta must be in [0, 1] (got %g)", eta)
	}
	if method == solvers.MethodEDMSDE {
		if !(sTMin >= 0) || math.IsInf(sTMin, 0) {
			return o, usagef("--s-tmin must be a finite number ≥ 0 (got %g)", sTMin)
		}
		if !(sTMax > sTMin) {
			return o, usagef("--s-tmax %g must be above --s-tmin %g", sTMax, sTMin)
		}
	}
	if m.Takes("constraint") && constraint == "" {
		return o, usagef("--method %s needs --constraint C.json (the domain: a box, ball or polytope)", method)
	}
	if isSet(fs, "init") {
		switch {
		case initOption == "x0":
			if initFlag == solvers.InitExact || initFlag == solvers.InitPrior {
				return o, usagef("--init %s: %s takes its initial states from a file (--init X0.npy), by default the uniform law on the domain",
					initFlag, method)
			}
			o.init = initFlag
		case initFlag != solvers.InitExact && initFlag != solvers.InitPrior:
			return o, usagef("--init must be exact or prior for %s (got %q)", method, initFlag)
		default:
			o.run.Init = initFlag
		}
	}
	// Only what the method takes goes into its options (the library refuses the rest); defaults
	// the command shows in its help are the library's.
	r := &o.run
	r.Budget, r.Seed, r.Trajectory = int(steps), seed, o.traj != ""
	take := func(name string) bool { return m.Takes(name) }
	if take("step-size") {
		r.StepSize = stepSize
	}
	if take("friction") {
		r.Friction = friction
	}
	if take("segments") {
		r.Segments = int(segments)
	}
	if take("step-scale") {
		r.StepScale = stepScale
	}
	if take("horizon") && (isSet(fs, "horizon") || method != "metropolis-constrained") {
		r.Horizon = horizon // metropolis-constrained: 0 is the domain's default
	}
	if take("schedule") {
		r.Schedule = schedule
	}
	if take("t-min") && (isSet(fs, "t-min") || method == "ddpm") {
		if method != "ddpm" || schedule == solvers.DDPMScheduleGeometric {
			r.TMin = tMin
		}
	}
	if noiseLevel {
		r.SigmaMin, r.SigmaMax = sigmaMin, sigmaMax
		if schedule == solvers.ScheduleEDM {
			r.Rho = rho
		}
	}
	if take("eta") {
		r.Eta = eta
	}
	if take("hurst") {
		r.Hurst, r.K, r.GammaMax = hurst, int(kOU), gammaMax
	}
	if take("classic") {
		r.Classic = classic
	}
	if take("alpha") {
		r.Alpha, r.Clamp = alpha, clamp
	}
	r.AugmentedTrajectory = o.augTraj != ""
	if method == solvers.MethodEDMSDE {
		r.Churn, r.STMin, r.STMax, r.SNoise = churn, sTMin, sTMax, sNoise
		if sTMin == 0 { // 0 is the library's "default": the least positive level churns from σ > 0 on
			r.STMin = math.SmallestNonzeroFloat64
		}
	}
	if _, err := m.Steps(*r); err != nil {
		return o, usagef("--steps %d: %v", steps, err)
	}
	o.constraint = constraint
	files := []string{"target", "constraint"}
	if initOption == "x0" {
		files = append(files, "init")
	}
	if o.shard, err = newShardRun("sample", fs, shard, seed, files...); err != nil {
		return o, err
	}
	if err := o.shard.setRows(o.n, "chains"); err != nil {
		return o, err
	}
	o.run.FirstChain = o.shard.first()
	outputs := []namedPath{{"--trajectory", o.traj}, {"--augmented-trajectory", o.augTraj}, {"--plot", o.plot}, {"--stats", o.stats}}
	if err := checkOutputs(o.out, o.shard.manifestOutputs(o.out, outputs)); err != nil {
		return o, err
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

// loadInit reads --init: an (n, d) array whose rows, rounded to dt, lie inside dom.
func loadInit(path string, n, d int, dt tensor.DType, dom *ops.Domain) ([]float64, error) {
	x, err := tensor.ReadNpy(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, usagef("--init %s: cannot read the initial states: %v", path, pe.Err)
		}
		return nil, usagef("--init %v", err)
	}
	defer x.Close()
	if x.Rank() != 2 || x.Dim(0) != n || x.Dim(1) != d {
		return nil, usagef("--init %s has shape %v, want (%d, %d) (--n, the target's dimension)", path, x.Shape(), n, d)
	}
	v, err := x.Float64s()
	if err != nil {
		return nil, usagef("--init %s: %v", path, err)
	}
	r, err := tensor.FromFloat64s(dt, v, n, d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if v, err = r.Float64s(); err != nil {
		return nil, err
	}
	if err := checkInside("--init "+path, dom, v, d); err != nil {
		return nil, err
	}
	return v, nil
}

func sample(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseSample(args, stdout)
	if err != nil {
		return err
	}
	if err := o.shard.resolve(); err != nil {
		return usageError{err}
	}
	n := o.shard.n() // the chains this run computes: o.n, or a shard's part of them
	tgt, err := target.Load(o.target)
	if err != nil {
		return usagef("--target %v", err)
	}
	d := tgt.Dim()
	m := o.method
	if m.Density {
		if _, isGMM := tgt.(target.GMM); !isGMM {
			return usagef("--method %s needs a target with a density at t = 0 (a gmm); the %s target runs with the diffusion, flow and constrained methods",
				m.Name, tgt.Kind())
		}
	}
	if m.Name == solvers.MethodLIM {
		alpha := o.run.Alpha
		if alpha == 0 {
			alpha = solvers.DefaultLIMAlpha
		}
		if _, err := solvers.NewLIMDenoiser(tgt, alpha, 0); err != nil {
			return usagef("--method lim: %v", err)
		}
	}
	if o.constraint != "" {
		if o.run.Domain, err = loadConstraint(o.constraint); err != nil {
			return err
		}
		if o.run.Domain.Dim() != d {
			return usagef("--constraint %s: the %v has dimension %d, the target %d", o.constraint,
				o.run.Domain.Kind(), o.run.Domain.Dim(), d)
		}
	}
	if o.init != "" {
		if o.run.X0, err = loadInit(o.init, o.n, d, o.dtype, o.run.Domain); err != nil {
			return err
		}
		o.run.X0 = o.run.X0[int(o.shard.first())*d : (int(o.shard.first())+n)*d]
	}
	if m.Takes("constraint") && o.run.X0 == nil && o.run.Domain.Kind() == ops.Polytope {
		return usagef("--constraint: a polytope has no direct uniform sampler: give the initial states with --init X0.npy (rows inside the polytope)")
	}
	steps, err := m.Steps(o.run)
	if err != nil {
		return usagef("--steps %d: %v", o.run.Budget, err)
	}
	var g *ops.GMM
	var ref []float64 // the data points of an empirical target, drawn under the samples
	switch tt := tgt.(type) {
	case target.GMM:
		g = tt.Mixture
	case target.Empirical:
		if o.plot != "" {
			ref = empiricalPoints(tt.DataSet, maxRefPoints)
		}
	}
	bs, cleanup, err := openBackends(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	b := bs[0]
	rows := int64(1)
	if o.run.Trajectory {
		rows += int64(steps) + 1
		if m.Takes("sigma-max") {
			rows += int64(steps) // the denoising trajectory, kept while the run lasts
		}
	}
	if o.run.AugmentedTrajectory {
		rows += int64(steps) * int64(o.run.K+1)
	}
	what := fmt.Sprintf("%s × d %d (× %d rows with --trajectory) of %v", o.shard.scope(fmt.Sprintf("--n %d", o.n)), d, rows, o.dtype)
	perRow := rows * int64(d) * int64(o.dtype.Size())
	if m.Name == solvers.MethodGFDM || m.Name == solvers.MethodGFDMODE {
		// The sampler's float64 state on the device: z (K+1 per coordinate; Heun's predictor as
		// much again), the statistics and the denoiser's values; on the CPU also a step's normals
		// (up to K+1 per coordinate), which the GPU draws in registers.
		planes := int64(o.run.K+1) + 2
		if m.Name == solvers.MethodGFDMODE {
			planes += int64(o.run.K + 1)
		}
		if b.Device().Kind() == tensor.KindCPU {
			planes += int64(o.run.K + 1)
		}
		perRow += planes * int64(d) * 8
		what += fmt.Sprintf(", plus the sampler's float64 state (%d values per coordinate)", planes)
	}
	if err := checkFitsOn(bs, n, perRow, what); err != nil {
		return err
	}

	unit := "steps"
	if m.Family == solvers.FamilyRTK {
		unit = "inner steps"
	}
	prog := newProgress(stderr, o.quiet, "scorekit sample: "+m.Name, unit)
	o.run.Progress = prog.report()
	start := time.Now()
	var res *solvers.MethodRun
	if len(bs) > 1 {
		res, err = m.RunOn(bs, tgt, n, o.dtype, o.run)
	} else {
		res, err = m.Run(b, tgt, n, o.dtype, o.run)
	}
	prog.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	defer res.Close()
	if err := b.Device().Synchronize(); err != nil {
		return err
	}
	wall := time.Since(start)

	st := sampleStats{Method: m.Name, Device: deviceNames(bs), DType: o.dtype.String(), N: n, D: d,
		Steps: o.run.Budget, MethodSteps: res.Steps, ScoreEvals: res.ScoreEvals / int64(n),
		ScoreEvalsTotal: res.ScoreEvals, WallSeconds: wall.Seconds(), StepSize: res.StepSize, Seed: o.run.Seed,
		NaNChains: res.NaN.Chains, RejectionRate: res.RejectionRate}
	if m.Takes("clamp") {
		clamped := res.Clamped
		st.Clamped = &clamped
	}
	if res.Accept != nil {
		if a := res.AcceptMean(); !math.IsNaN(a) {
			st.AcceptanceRate = &a
		}
	}
	if res.NaN.Chains > 0 {
		first := o.shard.globalRow(res.NaN.First)
		st.NaNFirstChain = &first
		fmt.Fprintf(stderr, "scorekit sample: warning: %d of %d chains turned NaN or ±Inf (first: chain %d); they are in the output as they are\n",
			res.NaN.Chains, n, first)
	}
	// Everything is rendered before anything is written.
	var statsJSON, png []byte
	if o.stats != "" {
		if statsJSON, err = renderStats(st); err != nil {
			return err
		}
	}
	if o.plot != "" {
		if png, err = samplePlot(o, res, g, ref, d, st.ScoreEvals); err != nil {
			return err
		}
	}
	written, err := o.shard.write([]npyOutput{{o.out, res.Samples, "--out", 0}, {o.traj, res.Trace, "--trajectory", 1},
		{o.augTraj, res.AugmentedTrace, "--augmented-trajectory", 1}},
		[]fileOutput{{o.stats, statsJSON}, {o.plot, png}}, backendKind(b.Device()), st)
	if err != nil {
		return err
	}
	if !o.quiet {
		extra := ""
		if st.AcceptanceRate != nil {
			extra = fmt.Sprintf(", acceptance %.3f", *st.AcceptanceRate)
		}
		if st.RejectionRate != nil {
			extra = fmt.Sprintf(", rejection rate %.3f", *st.RejectionRate)
		}
		if o.run.Clamp > 0 {
			extra = fmt.Sprintf(", %d noise values clipped to [−%g, %g]", res.Clamped, o.run.Clamp, o.run.Clamp)
		}
		fmt.Fprintf(stderr, "scorekit: %s: %s × d %d, %d steps, %d score evaluations per chain%s, %v; wrote %s\n",
			m.Name, o.shard.describe("chains"), d, res.Steps, st.ScoreEvals, extra, wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}

// samplePlot renders --plot: the samples over the density contours (gmm) or the data points
// (empirical) and the constraint's outline; with a trajectory, a second panel of trajectories.
func samplePlot(o sampleOptions, res *solvers.MethodRun, g *ops.GMM, ref []float64, d int, evals int64) ([]byte, error) {
	x, err := res.Samples.Float64s()
	if err != nil {
		return nil, err
	}
	title := fmt.Sprintf("%s, %d score evals/chain", o.method.Name, evals)
	if d == 1 {
		h := histogram1D{title: title, x: x, g: g, ref: ref, domain: o.run.Domain}
		if res.Trace != nil {
			if h.paths, err = tracePaths1D(res.Trace, maxPlotPaths); err != nil {
				return nil, err
			}
		}
		return h.render()
	}
	panels := []scatterPanel{{title: title, x: x, d: d, ref: ref, domain: o.run.Domain}}
	if res.Trace != nil {
		paths, err := tracePaths(res.Trace, maxPlotPaths)
		if err != nil {
			return nil, err
		}
		panels = append(panels, scatterPanel{
			title: fmt.Sprintf("%s: trajectories of %d of %d chains", o.method.Name, len(paths), len(x)/d),
			d:     d, ref: ref, domain: o.run.Domain, paths: paths})
	}
	return renderScatter(panels, g, len(panels))
}

// plannedHelp names the methods of the command's contract that this version does not run (a line
// of the help), or nothing when it runs them all.
func plannedHelp() string {
	planned := solvers.PlannedMethods()
	if len(planned) == 0 {
		return ""
	}
	return "Not in this version: " + strings.Join(planned, ", ") + ".\n"
}
