package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

var sdeHelp = `Usage: scorekit sde simulate --spec S.json --out X.npy [--trajectory TR.npy] [--plot P.png]
                           [--stats S.json] [--dtype f32|f64] [--device auto|cpu|cuda] [--quiet]
       scorekit sde grad --spec S.json --loss terminal-mean|terminal-var [--wrt-x0] [--json]

Neural-SDE tools on reversible Heun (docs/math.md §4.7, §4.8): the Stratonovich SDE
dX = f(X) dt + g(X) ∘ dW of the spec's family is integrated over [0, T] with K uniform steps
h = T/K, every path from the same start x0, its Brownian motion from Brownian intervals of the
spec's seed (path c, coordinate j is Brownian path c·d + j). Same spec: same numbers.

simulate: runs the paths and writes their terminal states, (N, d), to X.npy (NumPy, C order),
and on request the trajectory, the fan plot and statistics. Every family runs on --device with
its fused reversible Heun op (the state in --dtype between fused calls of 256 steps): ou and gbm
one thread per coordinate, gmm-langevin one thread per path. Every output is written atomically, and
all of them only after the run succeeded: a failed run leaves no file and never overwrites an
existing one.

grad: runs the paths in float64, then the discrete adjoint (the exact gradient of the
discretised solve, memory independent of K), and prints the loss and its gradient with respect
to the family's parameters (with --wrt-x0, also x0), one per line. By default on the host
(solvers Solve and Adjoint); with --device (or the spec's device), both passes run on that one
device with the fused ops (solvers SolveOn and AdjointOn: one fused call per chunk of 256 steps;
the gradient equals the host's to round-off):

  # scorekit sde grad: <family>, loss <loss>, N paths × d, K steps, horizon T, seed S, on <where>
  loss<TAB><value>
  <parameter><TAB><dL/dparameter>
  ...
  x0[j]<TAB><dL/dx0_j>            (--wrt-x0; x0 is shared by all paths: the sum over them)

values in %.17g (they read back to the same float64). Parameter names: ou: theta, mu, sigma;
gbm: mu, sigma; gmm-langevin: means[k][j] (row by row), then logits[k]. With --json the same as
one JSON object: {"family", "loss", "paths", "d", "steps", "horizon", "seed", "device", "value",
"params": [names], "gradient": [values], "x0_gradient": [values] (with --wrt-x0)}.
Losses: terminal-mean = the mean of X_T over the paths and coordinates; terminal-var = the
variance of X_T over the paths (divided by N) averaged over the coordinates. A spec's dtype
applies to simulate only (grad runs in float64); its device to both.

Spec (S.json), strictly checked: an unknown field or family, a missing field, a value of the wrong
type or out of range exits with status 2 and one line naming the field.
  {"family": "ou", "theta": 1.5, "mu": 0.5, "sigma": 0.8, "dim": 2, "x0": [2, -1],
   "paths": 1000, "steps": 200, "horizon": 2, "seed": 7}
        Ornstein–Uhlenbeck dX = θ(μ − X) dt + σ dW per coordinate (θ, μ finite, σ ≥ 0)
  {"family": "gbm", "mu": 0.1, "sigma": 0.4, "paths": 1000, "steps": 200, "horizon": 1}
        geometric Brownian motion of Itô form dX = μX dt + σX dW per coordinate (σ ≥ 0),
        integrated in its Stratonovich form f = (μ − σ²/2)x, g = σx
  {"family": "gmm-langevin", "means": [[-2, 0], [2, 0]], "vars": [0.5, 0.5], "logits": [0, 0],
   "paths": 500, "steps": 400, "horizon": 4}
        overdamped Langevin dX = ∇log p(X) dt + √2 dW of the isotropic Gaussian mixture
        p ∝ Σ_k exp(α_k) N(μ_k, v_k I) (means K×d, vars > 0, logits α default 0: equal weights)
(these three are cmd/scorekit/testdata/sde-*.json in the source tree)
Fields of every family:
  paths       N ≥ 1, with N·d ≤ 2^32 (required)
  steps       K ≥ 1 (required)
  horizon     T, a finite number > 0 (required)
  seed        Philox key, an unsigned 64-bit integer (default 0)
  x0          the start, d numbers (default: the origin; ones for gbm)
  dim         d (ou, gbm: default the length of x0, else 1; gmm-langevin: that of the means)
  save_every  --trajectory and --plot keep the state every E steps, E dividing K (default: the
              smallest divisor of K that keeps at most 200 intervals)
  dtype       f32 or f64 (default f32), as --dtype; the flag wins when both are given
  device      auto, cpu, cuda or cuda:N (default auto), as --device; the flag wins when both are given

Flags:
  --spec S.json       the spec (required)
  --out X.npy         simulate: terminal states, (N, d) (required)
  --trajectory TR.npy simulate: the states every save_every steps, (K/E + 1, N, d), row j at
                      t = j·E·h (row 0: x0)
  --plot P.png        simulate: PNG fan of the first coordinate of up to 50 paths against t, with
                      the sample mean ± SD over all paths and, for ou and gbm, the exact mean ± SD
  --stats S.json      simulate: JSON: family, device, dtype, n, d, steps, horizon, seed, save_every,
                      wall_seconds, terminal_mean (per coordinate), terminal_var (per coordinate,
                      divided by N)
  --dtype T           simulate: f32 or f64 (default f32): the outputs' precision and the state's
                      between fused calls
` + deviceFlagHelp(22) + `  --quiet             simulate: say nothing on stderr unless something fails
  --loss L            grad: terminal-mean or terminal-var (required)
  --wrt-x0            grad: also print the gradient with respect to x0
  --json              grad: print JSON instead of text
`

// SDE families of a spec.
const (
	familyOU          = "ou"
	familyGBM         = "gbm"
	familyGMMLangevin = "gmm-langevin"
)

var sdeFamilies = []string{familyOU, familyGBM, familyGMMLangevin}

// sdeCommon are the fields every family takes.
var sdeCommon = []string{"family", "paths", "steps", "horizon", "seed", "x0", "dim", "save_every", "dtype", "device"}

var sdeFamilyFields = map[string][]string{
	familyOU:          {"theta", "mu", "sigma"},
	familyGBM:         {"mu", "sigma"},
	familyGMMLangevin: {"means", "vars", "logits"},
}

// sdeSpecFile is the JSON of a spec.
type sdeSpecFile struct {
	Family    string      `json:"family"`
	Paths     *int64      `json:"paths"`
	Steps     *int64      `json:"steps"`
	Horizon   *float64    `json:"horizon"`
	Seed      uint64      `json:"seed"`
	X0        []float64   `json:"x0"`
	Dim       *int        `json:"dim"`
	SaveEvery *int64      `json:"save_every"`
	DType     string      `json:"dtype"`
	Device    string      `json:"device"`
	Theta     *float64    `json:"theta"`
	Mu        *float64    `json:"mu"`
	Sigma     *float64    `json:"sigma"`
	Means     [][]float64 `json:"means"`
	Vars      []float64   `json:"vars"`
	Logits    []float64   `json:"logits"`
}

// sdeSpec is a checked spec.
type sdeSpec struct {
	family    string
	params    solvers.ParametricSDE // the family as a ParametricSDE (the adjoint's)
	names     []string              // the parameters' names, in Params order
	paths, d  int
	steps     int
	horizon   float64
	seed      uint64
	x0        []float64 // d values
	saveEvery int
	dtype     string // "" when not given
	device    string // "" when not given
	// OU, GBM parameters for the exact fan envelope; the mixture's number of components
	theta, mu, sigma float64
	components       int
}

// solver is the reversible Heun solve of the spec: its family (every family has a fused path:
// ou and gbm through their AffineFamily, gmm-langevin through its mixture).
func (s *sdeSpec) solver() solvers.ReversibleHeun {
	return solvers.ReversibleHeun{SDE: s.params, Horizon: s.horizon, Steps: s.steps, Seed: s.seed}
}

// deviceGradBytes is the device memory of a fused gradient (SolveOn, AdjointOn) in float64: the
// state, its cotangents and a chunk of increments, N·d each, and the per-coordinate coefficient
// cotangents (ou, gbm) or the per-path parameter cotangents and work vectors (gmm-langevin).
func (s *sdeSpec) deviceGradBytes() int64 {
	n, d, chunk := int64(s.paths), int64(s.d), int64(solvers.RevHeunChunk)
	if s.family != familyGMMLangevin {
		return 8 * (6 + 4 + chunk) * n * d
	}
	k := int64(s.components)
	return 8 * n * ((11+chunk)*d + 2*k + k*d + k)
}

// solveOnDevices solves the SDE of s for its paths spread over the backends (SplitRange;
// part k's paths are chains FirstChain = lo onward, so its Brownian paths are the whole solve's),
// at once, and gathers the final states and, when traced, the saved states (rows, paths, d) in
// path order: the one-device solve's values.
func solveOnDevices(bs []ops.Backend, s *sdeSpec, dt tensor.DType, x0 []float64, traced bool) (solvers.RevHeunState, []float64, error) {
	parts := min(len(bs), s.paths)
	finals := make([]solvers.RevHeunState, parts)
	traces := make([][]float64, parts)
	err := solvers.ForEachPart(bs, s.paths, func(k int, b ops.Backend, lo, hi int) error {
		var record solvers.RevHeunRecord
		if traced {
			record = func(_ int, y []float64) error {
				traces[k] = append(traces[k], y...)
				return nil
			}
		}
		r := s.solver()
		r.FirstChain = uint64(lo)
		var err error
		if finals[k], err = r.SolveTraceOn(b, dt, x0[lo*s.d:hi*s.d], hi-lo, s.saveEvery, record); err != nil {
			return fmt.Errorf("%s (paths %d…%d): %w", b.Device().Name(), lo, hi-1, err)
		}
		return nil
	})
	if err != nil {
		return solvers.RevHeunState{}, nil, err
	}
	var out solvers.RevHeunState
	for _, f := range finals {
		out.Y, out.Z = append(out.Y, f.Y...), append(out.Z, f.Z...)
		out.N += f.N
	}
	var trace []float64
	if traced {
		rows := len(traces[0]) / ((finals[0].N) * s.d)
		for r := 0; r < rows; r++ {
			for k := range traces {
				slab := finals[k].N * s.d
				trace = append(trace, traces[k][r*slab:(r+1)*slab]...)
			}
		}
	}
	return out, trace, nil
}

// start is x0 repeated for every path, (N, d).
func (s *sdeSpec) start() []float64 {
	v := make([]float64, 0, s.paths*s.d)
	for range s.paths {
		v = append(v, s.x0...)
	}
	return v
}

func finiteValue(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// parseSDESpec reads a spec from JSON: an error names the field and the problem.
func parseSDESpec(data []byte) (*sdeSpec, error) {
	var f sdeSpecFile
	if _, err := decodeTagged(data, "family", sdeFamilies, func(family string) ([]string, bool) {
		own, ok := sdeFamilyFields[family]
		return append(append([]string(nil), own...), sdeCommon...), ok
	}, &f); err != nil {
		return nil, err
	}
	s := &sdeSpec{family: f.Family, seed: f.Seed, dtype: f.DType, device: f.Device}
	for _, req := range []struct {
		name string
		set  bool
		what string
	}{
		{"paths", f.Paths != nil, "the number of paths, ≥ 1"}, {"steps", f.Steps != nil, "the number of steps, ≥ 1"},
		{"horizon", f.Horizon != nil, "the time horizon T, > 0"},
	} {
		if !req.set {
			return nil, fmt.Errorf("%q is missing (%s)", req.name, req.what)
		}
	}
	switch {
	case *f.Steps < 1:
		return nil, fmt.Errorf(`"steps" must be ≥ 1 (got %d)`, *f.Steps)
	case uint64(*f.Steps) > solvers.MaxSteps:
		return nil, fmt.Errorf(`"steps" must be ≤ %d (got %d)`, uint64(solvers.MaxSteps), *f.Steps)
	case !(*f.Horizon > 0) || math.IsInf(*f.Horizon, 0):
		return nil, fmt.Errorf(`"horizon" must be a finite number > 0 (got %g)`, *f.Horizon)
	case *f.Paths < 1:
		return nil, fmt.Errorf(`"paths" must be ≥ 1 (got %d)`, *f.Paths)
	case *f.Paths > ops.MaxChains:
		return nil, fmt.Errorf(`"paths" must be ≤ 2^32 (got %d)`, *f.Paths)
	}
	s.paths, s.steps, s.horizon = int(*f.Paths), int(*f.Steps), *f.Horizon
	if f.DType != "" {
		if _, err := tensor.ParseDType(f.DType); err != nil {
			return nil, fmt.Errorf(`"dtype" must be f32 or f64 (got %q)`, f.DType)
		}
	}
	if f.Device != "" {
		if checkDeviceFlag(f.Device) != nil {
			return nil, fmt.Errorf(`"device" must be auto, cpu, cuda or cuda:N (got %q)`, f.Device)
		}
	}
	for i, v := range f.X0 {
		if !finiteValue(v) {
			return nil, fmt.Errorf(`"x0"[%d] must be finite (got %g)`, i, v)
		}
	}
	if f.X0 != nil && len(f.X0) == 0 {
		return nil, fmt.Errorf(`"x0" is empty (want d numbers)`)
	}
	if f.Dim != nil && *f.Dim < 1 {
		return nil, fmt.Errorf(`"dim" must be ≥ 1 (got %d)`, *f.Dim)
	}
	if f.Dim != nil && *f.Dim > 1<<20 {
		return nil, fmt.Errorf(`"dim" must be ≤ 2^20 (got %d)`, *f.Dim)
	}
	param := func(name string, v *float64, nonNegative bool) (float64, error) {
		if v == nil {
			return 0, fmt.Errorf("%q is missing (family %s takes %s)", name, f.Family, strings.Join(sdeFamilyFields[f.Family], ", "))
		}
		if !finiteValue(*v) || nonNegative && *v < 0 {
			if nonNegative {
				return 0, fmt.Errorf("%q must be a finite number ≥ 0 (got %g)", name, *v)
			}
			return 0, fmt.Errorf("%q must be finite (got %g)", name, *v)
		}
		return *v, nil
	}
	var err error
	switch f.Family {
	case familyOU, familyGBM:
		s.d = 1
		switch {
		case f.Dim != nil:
			s.d = *f.Dim
		case f.X0 != nil:
			s.d = len(f.X0)
		}
		if f.Family == familyOU {
			if s.theta, err = param("theta", f.Theta, false); err != nil {
				return nil, err
			}
		}
		if s.mu, err = param("mu", f.Mu, false); err != nil {
			return nil, err
		}
		if s.sigma, err = param("sigma", f.Sigma, true); err != nil {
			return nil, err
		}
		if f.Family == familyOU {
			fam, err := solvers.NewOUFamily(s.theta, s.mu, s.sigma, s.d)
			if err != nil {
				return nil, err
			}
			s.params, s.names = fam, []string{"theta", "mu", "sigma"}
		} else {
			fam, err := solvers.NewGBMFamily(s.mu, s.sigma, s.d)
			if err != nil {
				return nil, err
			}
			s.params, s.names = fam, []string{"mu", "sigma"}
		}
	case familyGMMLangevin:
		if f.Means == nil {
			return nil, fmt.Errorf(`"means" is missing (K rows of d numbers)`)
		}
		if f.Vars == nil {
			return nil, fmt.Errorf(`"vars" is missing (K variances > 0)`)
		}
		k := len(f.Means)
		if k == 0 || len(f.Means[0]) == 0 {
			return nil, fmt.Errorf(`"means" must hold K ≥ 1 rows of d ≥ 1 numbers`)
		}
		s.d = len(f.Means[0])
		var means []float64
		for i, row := range f.Means {
			if len(row) != s.d {
				return nil, fmt.Errorf(`"means"[%d] has %d numbers, "means"[0] has %d`, i, len(row), s.d)
			}
			for j, v := range row {
				if !finiteValue(v) {
					return nil, fmt.Errorf(`"means"[%d][%d] must be finite (got %g)`, i, j, v)
				}
			}
			means = append(means, row...)
		}
		if len(f.Vars) != k {
			return nil, fmt.Errorf(`"vars" has %d values for %d means`, len(f.Vars), k)
		}
		for i, v := range f.Vars {
			if !(v > 0) || math.IsInf(v, 0) {
				return nil, fmt.Errorf(`"vars"[%d] must be a finite number > 0 (got %g)`, i, v)
			}
		}
		logits := f.Logits
		if logits == nil {
			logits = make([]float64, k)
		}
		if len(logits) != k {
			return nil, fmt.Errorf(`"logits" has %d values for %d means`, len(logits), k)
		}
		for i, v := range logits {
			if !finiteValue(v) {
				return nil, fmt.Errorf(`"logits"[%d] must be finite (got %g)`, i, v)
			}
		}
		if f.Dim != nil && *f.Dim != s.d {
			return nil, fmt.Errorf(`"dim" %d does not match the means' dimension %d`, *f.Dim, s.d)
		}
		fam, err := solvers.NewGMMLangevinFamily(s.d, means, logits, f.Vars)
		if err != nil {
			return nil, err
		}
		s.params, s.components = fam, k
		for i := range k {
			for j := range s.d {
				s.names = append(s.names, fmt.Sprintf("means[%d][%d]", i, j))
			}
		}
		for i := range k {
			s.names = append(s.names, fmt.Sprintf("logits[%d]", i))
		}
	}
	if f.Dim != nil && f.X0 != nil && len(f.X0) != *f.Dim {
		return nil, fmt.Errorf(`"x0" has %d numbers, "dim" is %d`, len(f.X0), *f.Dim)
	}
	switch {
	case f.X0 != nil && len(f.X0) != s.d:
		return nil, fmt.Errorf(`"x0" has %d numbers, the dimension is %d`, len(f.X0), s.d)
	case f.X0 != nil:
		s.x0 = f.X0
	default:
		s.x0 = make([]float64, s.d)
		if f.Family == familyGBM {
			for j := range s.x0 {
				s.x0[j] = 1
			}
		}
	}
	if uint64(s.paths)*uint64(s.d) > ops.MaxChains {
		return nil, fmt.Errorf(`"paths" %d × dimension %d is more than 2^32 Brownian paths (one per path and coordinate)`, s.paths, s.d)
	}
	if f.SaveEvery != nil {
		e := *f.SaveEvery
		if e < 1 || e > *f.Steps || *f.Steps%e != 0 {
			return nil, fmt.Errorf(`"save_every" must divide "steps" %d (got %d)`, *f.Steps, e)
		}
		s.saveEvery = int(e)
	} else {
		s.saveEvery = defaultSaveEvery(s.steps)
	}
	// What the solver itself refuses (a step size that underflows, …), found before anything runs.
	if _, err := s.solver().Solve(nil, 0); err != nil {
		return nil, err
	}
	return s, nil
}

// defaultSaveEvery is the smallest divisor of steps that keeps at most 200 intervals (a traced
// step ends a fused call, and a plot draws no more).
func defaultSaveEvery(steps int) int {
	e := max(1, (steps+199)/200)
	for steps%e != 0 {
		e++
	}
	return e
}

// loadSDESpec reads and parses the spec file.
func loadSDESpec(path string) (*sdeSpec, error) { return loadFlagFile("spec", path, parseSDESpec) }

// runSDE is `scorekit sde simulate|grad ...`.
func runSDE(args []string, stdout, stderr io.Writer) int {
	const name = "scorekit sde"
	if len(args) == 0 {
		return exitStatus(stderr, name, usagef("which action? want simulate or grad (see %s --help)", name))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, sdeHelp)
		return 0
	case "simulate":
		return exitStatus(stderr, name+" simulate", sdeSimulate(args[1:], stdout, stderr))
	case "grad":
		return exitStatus(stderr, name+" grad", sdeGrad(args[1:], stdout, stderr))
	}
	return exitStatus(stderr, name, usagef("unknown action %q (available: simulate, grad)", args[0]))
}

// sdeStats is the --stats JSON of simulate.
type sdeStats struct {
	Family       string    `json:"family"`
	Device       string    `json:"device"`
	DType        string    `json:"dtype"`
	N            int       `json:"n"`
	D            int       `json:"d"`
	Steps        int       `json:"steps"`
	Horizon      float64   `json:"horizon"`
	Seed         uint64    `json:"seed"`
	SaveEvery    int       `json:"save_every"`
	WallSeconds  float64   `json:"wall_seconds"`
	TerminalMean []float64 `json:"terminal_mean"`
	TerminalVar  []float64 `json:"terminal_var"`
}

// sdeSimulate is `scorekit sde simulate`.
func sdeSimulate(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("scorekit sde simulate")
	var specPath, out, trajectory, plotPath, statsPath, dtypeName, device string
	var quiet bool
	fs.StringVar(&specPath, "spec", "", "")
	fs.StringVar(&out, "out", "", "")
	fs.StringVar(&trajectory, "trajectory", "", "")
	fs.StringVar(&plotPath, "plot", "", "")
	fs.StringVar(&statsPath, "stats", "", "")
	fs.StringVar(&dtypeName, "dtype", "f32", "")
	fs.StringVar(&device, "device", "auto", "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := parse(fs, args, stdout, sdeHelp); err != nil {
		return err
	}
	if !isSet(fs, "spec") {
		return usagef("--spec is required (the SDE spec file)")
	}
	if err := checkOutputs(out, []namedPath{{"--trajectory", trajectory}, {"--plot", plotPath}, {"--stats", statsPath}}); err != nil {
		return err
	}
	s, err := loadSDESpec(specPath)
	if err != nil {
		return err
	}
	if !isSet(fs, "dtype") && s.dtype != "" {
		dtypeName = s.dtype
	}
	if !isSet(fs, "device") && s.device != "" {
		device = s.device
	}
	dt, err := parseDTypeFlag(dtypeName)
	if err != nil {
		return err
	}
	traced := trajectory != "" || plotPath != ""
	rows := 1
	if traced {
		rows += s.steps / s.saveEvery
	}
	if err := checkFits(tensor.CPU(), 8*int64(rows+2)*int64(s.paths)*int64(s.d),
		fmt.Sprintf("%d paths × d %d (× %d saved states with --trajectory or --plot) in float64 on the host", s.paths, s.d, rows)); err != nil {
		return err
	}
	bs, cleanup, err := openBackends(device, quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	b := bs[0]

	var trace []float64
	var record solvers.RevHeunRecord
	if traced {
		trace = make([]float64, 0, rows*s.paths*s.d)
		record = func(k int, y []float64) error {
			trace = append(trace, y...)
			return nil
		}
	}
	x0 := s.start()
	start := time.Now()
	var final solvers.RevHeunState
	where := b.Device().Name()
	switch {
	case len(bs) > 1:
		where = deviceNames(bs)
		final, trace, err = solveOnDevices(bs, s, dt, x0, traced)
	default:
		final, err = s.solver().SolveTraceOn(b, dt, x0, s.paths, s.saveEvery, record)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.family, err)
	}
	wall := time.Since(start)

	finalT, err := tensor.FromFloat64s(dt, final.Y, s.paths, s.d)
	if err != nil {
		return err
	}
	var traceT *tensor.Tensor
	if trajectory != "" {
		if traceT, err = tensor.FromFloat64s(dt, trace, rows, s.paths, s.d); err != nil {
			return err
		}
	}
	// What is written is what was rounded to dtype.
	yv, err := finalT.Float64s()
	if err != nil {
		return err
	}
	mean, variance := columnMoments(yv, s.paths, s.d)
	var statsJSON, png []byte
	if statsPath != "" {
		st := sdeStats{Family: s.family, Device: where, DType: dt.String(), N: s.paths, D: s.d, Steps: s.steps,
			Horizon: s.horizon, Seed: s.seed, SaveEvery: s.saveEvery, WallSeconds: wall.Seconds(),
			TerminalMean: mean, TerminalVar: variance}
		if statsJSON, err = renderStats(st); err != nil {
			return err
		}
	}
	if plotPath != "" {
		if png, err = renderFan(sdeFan(s, trace, rows)); err != nil {
			return err
		}
	}
	written, err := writeOutputs([]npyOutput{{path: out, t: finalT}, {path: trajectory, t: traceT}},
		[]fileOutput{{statsPath, statsJSON}, {plotPath, png}})
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(stderr, "scorekit: sde %s: %d paths × d %d, %d steps to T = %g on %s, %v; wrote %s\n",
			s.family, s.paths, s.d, s.steps, s.horizon, where, wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}

// columnMoments returns the mean and the variance (divided by n) of each of the d columns of x
// (n, d).
func columnMoments(x []float64, n, d int) (mean, variance []float64) {
	mean, variance = make([]float64, d), make([]float64, d)
	for i, v := range x {
		mean[i%d] += v
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i, v := range x {
		e := v - mean[i%d]
		variance[i%d] += e * e
	}
	for j := range variance {
		variance[j] /= float64(n)
	}
	return mean, variance
}

// sdeFan is the fan of the first coordinate of the traced paths (trace: rows × (N, d)), with the
// exact mean ± SD of ou and gbm.
func sdeFan(s *sdeSpec, trace []float64, rows int) fan {
	length := rows - 1
	values := make([]float64, s.paths*length)
	for p := range s.paths {
		for j := 1; j < rows; j++ {
			values[p*length+j-1] = trace[(j*s.paths+p)*s.d]
		}
	}
	f := fan{values: values, paths: s.paths, length: length, horizon: s.horizon, start: s.x0[0], centered: true,
		xLabel: "t", yLabel: "X₁(t)"}
	x0 := s.x0[0]
	switch s.family {
	case familyOU:
		th, mu, sg := s.theta, s.mu, s.sigma
		f.title = fmt.Sprintf("ou: θ = %g, μ = %g, σ = %g, %d paths, %d steps", th, mu, sg, s.paths, s.steps)
		f.mean = func(t float64) float64 { return mu + (x0-mu)*math.Exp(-th*t) }
		f.sd = func(t float64) float64 {
			if th == 0 {
				return sg * math.Sqrt(t)
			}
			return sg * math.Sqrt(-math.Expm1(-2*th*t)/(2*th))
		}
		f.sdLabel = "exact mean ± SD"
	case familyGBM:
		mu, sg := s.mu, s.sigma
		f.title = fmt.Sprintf("gbm: μ = %g, σ = %g, %d paths, %d steps", mu, sg, s.paths, s.steps)
		f.mean = func(t float64) float64 { return x0 * math.Exp(mu*t) }
		f.sd = func(t float64) float64 { return math.Abs(x0) * math.Exp(mu*t) * math.Sqrt(math.Expm1(sg*sg*t)) }
		f.sdLabel = "exact mean ± SD"
	default:
		f.title = fmt.Sprintf("%s: %d components, %d paths, %d steps", s.family, s.components, s.paths, s.steps)
	}
	return f
}

// sdeLosses are the losses of grad.
var sdeLosses = map[string]func(y []float64, n, d int) (float64, []float64, error){
	"terminal-mean": solvers.TerminalMeanLoss,
	"terminal-var":  solvers.TerminalVarianceLoss,
}

// sdeGradJSON is grad's --json output.
type sdeGradJSON struct {
	Family     string    `json:"family"`
	Loss       string    `json:"loss"`
	Paths      int       `json:"paths"`
	D          int       `json:"d"`
	Steps      int       `json:"steps"`
	Horizon    float64   `json:"horizon"`
	Seed       uint64    `json:"seed"`
	Device     string    `json:"device"`
	Value      float64   `json:"value"`
	Params     []string  `json:"params"`
	Gradient   []float64 `json:"gradient"`
	X0Gradient []float64 `json:"x0_gradient,omitempty"`
}

// sdeGradient is the loss of spec s and its gradient: dL/dθ and dL/dx0 (summed over the paths,
// which share x0). With b both passes run on it through the fused ops in float64; without, on the
// host.
func sdeGradient(s *sdeSpec, loss string, b ops.Backend) (value float64, params, x0 []float64, err error) {
	lossFn := sdeLosses[loss]
	r := s.solver()
	var final solvers.RevHeunState
	if b != nil {
		final, err = r.SolveOn(b, tensor.F64, s.start(), s.paths)
	} else {
		final, err = r.Solve(s.start(), s.paths)
	}
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", s.family, err)
	}
	value, cot, err := lossFn(final.Y, s.paths, s.d)
	if err != nil {
		return 0, nil, nil, err
	}
	var g solvers.RevHeunGradient
	if b != nil {
		g, err = r.AdjointOn(b, tensor.F64, final, cot, nil)
	} else {
		g, err = r.Adjoint(final, cot, nil)
	}
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", s.family, err)
	}
	x0 = make([]float64, s.d)
	for i, v := range g.X0 {
		x0[i%s.d] += v
	}
	return value, g.Params, x0, nil
}

// sdeGrad is `scorekit sde grad`.
func sdeGrad(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("scorekit sde grad")
	var specPath, loss, device string
	var wrtX0, asJSON bool
	fs.StringVar(&specPath, "spec", "", "")
	fs.StringVar(&loss, "loss", "", "")
	fs.StringVar(&device, "device", "", "")
	fs.BoolVar(&wrtX0, "wrt-x0", false, "")
	fs.BoolVar(&asJSON, "json", false, "")
	if err := parse(fs, args, stdout, sdeHelp); err != nil {
		return err
	}
	switch {
	case !isSet(fs, "spec"):
		return usagef("--spec is required (the SDE spec file)")
	case !isSet(fs, "loss"):
		return usagef("--loss is required (terminal-mean or terminal-var)")
	case sdeLosses[loss] == nil:
		return usagef("--loss must be terminal-mean or terminal-var (got %q)", loss)
	}
	s, err := loadSDESpec(specPath)
	if err != nil {
		return err
	}
	if err := checkFits(tensor.CPU(), 8*6*int64(s.paths)*int64(s.d),
		fmt.Sprintf("%d paths × d %d in float64 on the host", s.paths, s.d)); err != nil {
		return err
	}
	if !isSet(fs, "device") {
		device = s.device
	}
	var b ops.Backend
	where := "the host"
	if device != "" {
		var bs []ops.Backend
		var cleanup func() error
		if bs, cleanup, err = openBackends(device, true, stderr); err != nil {
			return err
		}
		defer closeBackend(cleanup, &err) // the named result: a failed release is the command's error
		if len(bs) > 1 {
			return usagef("--device %s: grad runs on one device (got %d)", device, len(bs))
		}
		b = bs[0]
		where = b.Device().Name()
		if err := checkFits(b.Device(), s.deviceGradBytes(),
			fmt.Sprintf("%d paths × d %d in float64 with a chunk of %d increments", s.paths, s.d, solvers.RevHeunChunk)); err != nil {
			return err
		}
	}
	value, grad, gx0, err := sdeGradient(s, loss, b)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if asJSON {
		j := sdeGradJSON{Family: s.family, Loss: loss, Paths: s.paths, D: s.d, Steps: s.steps, Horizon: s.horizon,
			Seed: s.seed, Device: where, Value: value, Params: s.names, Gradient: grad}
		if wrtX0 {
			j.X0Gradient = gx0
		}
		b, err := json.MarshalIndent(j, "", "  ")
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	} else {
		fmt.Fprintf(&buf, "# scorekit sde grad: %s, loss %s, %d paths × d %d, %d steps, horizon %g, seed %d, on %s\n",
			s.family, loss, s.paths, s.d, s.steps, s.horizon, s.seed, where)
		fmt.Fprintf(&buf, "loss\t%.17g\n", value)
		for i, name := range s.names {
			fmt.Fprintf(&buf, "%s\t%.17g\n", name, grad[i])
		}
		if wrtX0 {
			for j, v := range gx0 {
				fmt.Fprintf(&buf, "x0[%d]\t%.17g\n", j, v)
			}
		}
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write the gradient: %w", err)
	}
	return nil
}
