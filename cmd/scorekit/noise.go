package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// noiseKinds are the kinds `scorekit noise` draws.
var noiseKinds = []string{"normal", "uniform", "fgn", "fbm", "stable", "bridge"}

var noiseHelp = `Usage: scorekit noise normal|uniform --n N [--dim D] [--seed S] [--site K] [--dtype f32|f64]
                      [--device auto|cpu|cuda] [--quiet] --out X.npy
       scorekit noise fgn|fbm --hurst H --length L --paths N [--horizon T]
                      [--method davies-harte|cholesky|mafbm] [--k K] [--gamma-max G] [--seed S]
                      [--site K] [--dtype f32|f64] [--device auto|cpu|cuda] [--quiet] --out P.npy
                      [--plot P.png]
       scorekit noise stable --alpha A [--beta B] [--dim D] --n N [--isotropic] [--positive]
                      [--clamp C] [--seed S] [--site K] [--dtype f32|f64] [--device auto|cpu|cuda]
                      [--quiet] --out X.npy [--plot P.png]
       scorekit noise bridge --length L --paths N [--horizon T] --epoch E [--increments] [--seed S]
                      [--site K] [--dtype f32|f64] [--device auto|cpu|cuda] [--quiet] --out P.npy
                      [--plot P.png]

Draws random numbers and writes them to a .npy file (NumPy, C order), atomically: a failed run
leaves no file and never overwrites an existing one; with --plot the PNG is rendered before
anything is written.

  normal   (N, D) standard normals (Box–Muller on Philox4x32-10 uniforms)
  uniform  (N, D) uniforms in [0, 1) (24 random bits in f32, 53 in f64)
  fgn      (paths, L) fractional Gaussian noise of Hurst index H: the increments
           B(t_k) − B(t_{k−1}) of fBM on [0, T], t_k = k·T/L, each of variance (T/L)^{2H}; with
           the default T = L, unit-step fGn (variance 1, lag-k covariance
           ρ(k) = ½(|k+1|^{2H} − 2|k|^{2H} + |k−1|^{2H}))
  fbm      (paths, L) fractional Brownian motion B(t_k), k = 1..L, Var B(t) = t^{2H}; the origin
           B(0) = 0 is implied and not stored (the plot adds it)
  stable   (N, D) α-stable values: symmetric (E e^{itX} = e^{−|t|^α}), skewed S_α(1, β, 0) when
           --beta ≠ 0, positive (--positive, α < 1: E e^{−sA} = e^{−s^α}), or, with --isotropic,
           one sub-Gaussian vector per row (E e^{i⟨t,X⟩} = e^{−(‖t‖²/2)^{α/2}})
  bridge   (paths, L) Brownian motion on [0, T] at t_k = k·T/L, k = 1..L, restarted every E steps as
           a Brownian bridge pinned to 0 at each multiple of E steps (E = 0: plain Brownian
           motion); --increments writes the increments instead

Row i is chain i of the draw (seed, site): its numbers depend only on (seed, site, i, column) and
the law's parameters, so the same seed gives the same numbers on the CPU and the GPU (within the
ops' tolerance), whatever the number of rows.

fgn/fbm methods (--method):
  davies-harte  exact, by circulant embedding and FFT (default)
  cholesky      exact, by the Cholesky factor of the L×L covariance; runs on the host whatever
                --device, L ≤ 4096; the same law as davies-harte, other numbers
  mafbm         Markov approximation of type-II (Riemann–Liouville) fBM by K Ornstein–Uhlenbeck
                processes with speeds from 1/G to G (GFDM): not exact, and type-II fBM has
                Var B(t) = t^{2H} / (2H Γ(H+½)²); the squared relative L² error of its weights on [0, T]
                is printed on stderr

Flags:
  --n N          rows, 1 ≤ N ≤ 2^32 (normal, uniform, stable; required)
  --dim D        columns per row (default 1)
  --paths N      paths, 1 ≤ N ≤ 2^32 (fgn, fbm, bridge; required)
  --length L     points per path, L ≥ 1 (fgn, fbm, bridge; required)
  --horizon T    the paths' time span, a finite number > 0 (default L: unit time steps)
  --hurst H      Hurst index in (0, 1) (fgn, fbm; required)
  --method M     davies-harte, cholesky or mafbm (fgn, fbm; default davies-harte)
  --k K          mafbm: number of OU processes, 1 ≤ K ≤ 16 (default 5)
  --gamma-max G  mafbm: largest OU speed, G > 1 (default 20)
  --alpha A      stability index in (0, 2]; in (0, 1) with --positive (stable; required)
  --beta B       skewness in [−1, 1] (stable, default 0)
  --isotropic    stable: one isotropic α-stable vector of dimension D per row
  --positive     stable: positive stable of index α ∈ (0, 1)
  --clamp C      stable: clip every value to [−C, C] and report how many were clipped (default 0:
                 no clamp)
  --epoch E      bridge: epoch length in steps, E ≥ 0 (required; 0: plain Brownian motion)
  --increments   bridge: write the increments instead of the path
  --seed S       Philox key, an unsigned 64-bit integer (default 0)
  --site K       draw site: different sites give independent draws of one seed (default 0)
  --dtype T      f32 or f64 (default f32); the f32 and f64 streams of one seed differ
` + deviceFlagHelp(17) + `  --quiet        say nothing on stderr unless something fails
                 (otherwise long runs show a progress bar on a terminal, a line every 10 s
                 elsewhere)
  --out X.npy    file to write (required)
  --plot P.png   PNG: a fan of (at most 50) paths with the exact law's ±√Var envelope and the
                 sample standard deviation over all paths (fgn and bridge --increments are summed
                 into paths first); for stable a histogram of the values on a log scale (tails)
` + shardFlagHelp(17)

// runNoise is `scorekit noise <kind> ...`.
func runNoise(args []string, stdout, stderr io.Writer) int {
	const name = "scorekit noise"
	if len(args) == 0 {
		return exitStatus(stderr, name, usagef("which kind? want one of %s (see %s --help)",
			strings.Join(noiseKinds, ", "), name))
	}
	kind := args[0]
	switch kind {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, noiseHelp)
		return 0
	case "normal", "uniform":
		return exitStatus(stderr, name+" "+kind, noise(kind, args[1:], stdout, stderr))
	case "fgn", "fbm":
		return exitStatus(stderr, name+" "+kind, fractionalNoise(kind, args[1:], stdout, stderr))
	case "stable":
		return exitStatus(stderr, name+" "+kind, stableNoise(args[1:], stdout, stderr))
	case "bridge":
		return exitStatus(stderr, name+" "+kind, bridgeNoise(args[1:], stdout, stderr))
	}
	return exitStatus(stderr, name, usagef("unknown kind %q (available: %s)", kind,
		strings.Join(noiseKinds, ", ")))
}

// noiseOptions are the parsed, validated flags of `scorekit noise normal|uniform`.
type noiseOptions struct {
	n, dim     int
	seed, site uint64
	dtype      tensor.DType
	device     string
	quiet      bool
	out        string
	shard      *shardRun
}

// parseNoise parses and validates the flags of `scorekit noise <kind>`.
func parseNoise(kind string, args []string, stdout io.Writer) (noiseOptions, error) {
	fs := newFlagSet("scorekit noise " + kind)
	var (
		o      noiseOptions
		n, dim int64
		dtype  string
		shard  string
	)
	fs.StringVar(&shard, "shard", "", "")
	fs.Int64Var(&n, "n", 0, "")
	fs.Int64Var(&dim, "dim", 1, "")
	fs.Uint64Var(&o.seed, "seed", 0, "")
	fs.Uint64Var(&o.site, "site", 0, "")
	fs.StringVar(&dtype, "dtype", "f32", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.StringVar(&o.out, "out", "", "")
	if err := parse(fs, args, stdout, noiseHelp); err != nil {
		return o, err
	}
	switch {
	case !isSet(fs, "n"):
		return o, usagef("--n is required (the number of rows to draw)")
	case n < 1:
		return o, usagef("--n must be ≥ 1 (got %d)", n)
	case n > ops.MaxChains:
		return o, usagef("--n must be ≤ 2^32 = %d, the number of chain indices of one seed (got %d)",
			int64(ops.MaxChains), n)
	case dim < 1:
		return o, usagef("--dim must be ≥ 1 (got %d)", dim)
	case dim > tensor.MaxElements/n:
		return o, usagef("--n %d × --dim %d is more than 2^40 elements", n, dim)
	}
	o.n, o.dim = int(n), int(dim)
	var err error
	if o.dtype, err = parseDTypeFlag(dtype); err != nil {
		return o, err
	}
	if err := checkDeviceFlag(o.device); err != nil {
		return o, err
	}
	if o.shard, err = newShardRun("noise "+kind, fs, shard, o.seed); err != nil {
		return o, err
	}
	if err := o.shard.setRows(o.n, "rows"); err != nil {
		return o, err
	}
	return o, checkOutputs(o.out, o.shard.manifestOutputs(o.out, nil))
}

// checkOut validates an output path: given, not a directory, in a directory that exists.
func checkOut(out string) error {
	if out == "" {
		return usagef("--out is required (the .npy file to write)")
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return usagef("--out %s is a directory, want a file name", out)
	}
	dir := filepath.Dir(out)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef("--out %s: directory %s does not exist", out, dir)
	}
	return nil
}

// noise draws and writes one (N, D) array of kind normal or uniform.
func noise(kind string, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseNoise(kind, args, stdout)
	if err != nil {
		return err
	}
	bs, cleanup, err := openBackends(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	dev := bs[0].Device()
	rows := o.shard.n()
	bytes := int64(rows) * int64(o.dim) * int64(o.dtype.Size())
	if err := checkFitsOn(bs, rows, int64(o.dim)*int64(o.dtype.Size()), o.shard.scope(fmt.Sprintf("--n %d × --dim %d", o.n, o.dim))+" of "+o.dtype.String()); err != nil {
		return err
	}
	draw := ops.Draw{Seed: o.seed, Site: o.site, FirstChain: o.shard.first()}
	// (the rows are within the 2^32 chains of a draw: --n is checked)
	fill := func(b ops.Backend, x *tensor.Tensor, d ops.Draw) error { return b.Normal(x, d) }
	if kind == "uniform" {
		fill = func(b ops.Backend, x *tensor.Tensor, d ops.Draw) error { return b.Uniform(x, d) }
	}
	start := time.Now()
	prog := newProgress(stderr, o.quiet, "scorekit noise "+kind, "rows")
	x, err := drawRows(bs, false, rows, o.dim, o.dtype, draw, prog, fill)
	prog.finish()
	if err != nil {
		return err
	}
	defer x.Close()
	wall := time.Since(start)
	st := noiseStats{Kind: kind, Rows: rows, Cols: o.dim, DType: o.dtype.String(), Device: deviceNames(bs), Seed: o.seed,
		Site: o.site, WallSeconds: wall.Seconds()}
	written, err := o.shard.write([]npyOutput{{o.out, x, "--out", 0}}, nil, backendKind(dev), st)
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "scorekit: wrote %s: (%d, %d) %v, %s in %v\n", strings.Join(written, ", "), rows, o.dim, o.dtype,
			tensor.HumanBytes(bytes), wall.Round(time.Millisecond))
	}
	return nil
}

// Defaults of the fractional noise kinds.
const (
	defaultMAFBMK        = 5
	defaultMAFBMGammaMax = 20
	choleskyMaxLength    = 4096
	// maxCommandMAFBMStates bounds --k: the OU processes one GPU thread holds per path.
	maxCommandMAFBMStates = 16
)

// drawFlags are the flags every kind but normal/uniform shares.
type drawFlags struct {
	seed, site  uint64
	dtypeName   string
	dtype       tensor.DType
	device      string
	quiet       bool
	out, plot   string
	description string // "--paths 10 × --length 100", for messages
	shardFlag   string
	shard       *shardRun
	cols        int // the length of a row (a path's points, or --dim)
}

// noiseStats are a noise shard's statistics (in its manifests; merge --stats combines them).
type noiseStats struct {
	Kind        string  `json:"kind"`
	Rows        int     `json:"rows"`
	Cols        int     `json:"cols"`
	DType       string  `json:"dtype"`
	Device      string  `json:"device"`
	Seed        uint64  `json:"seed"`
	Site        uint64  `json:"site"`
	WallSeconds float64 `json:"wall_seconds"`
	Clamped     *int64  `json:"clamped,omitempty"`
}

func (c *drawFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&c.seed, "seed", 0, "")
	fs.Uint64Var(&c.site, "site", 0, "")
	fs.StringVar(&c.dtypeName, "dtype", "f32", "")
	fs.StringVar(&c.device, "device", "auto", "")
	fs.BoolVar(&c.quiet, "quiet", false, "")
	fs.StringVar(&c.out, "out", "", "")
	fs.StringVar(&c.plot, "plot", "", "")
	fs.StringVar(&c.shardFlag, "shard", "", "")
}

// check validates --dtype, --device, --shard (of rows × cols), --out and --plot.
func (c *drawFlags) check(fs *flag.FlagSet, rows, cols int) error {
	var err error
	if c.dtype, err = parseDTypeFlag(c.dtypeName); err != nil {
		return err
	}
	if err := checkDeviceFlag(c.device); err != nil {
		return err
	}
	if c.shard, err = newShardRun(strings.TrimPrefix(fs.Name(), "scorekit "), fs, c.shardFlag, c.seed); err != nil {
		return err
	}
	if err := c.shard.setRows(rows, "rows"); err != nil {
		return err
	}
	c.cols = cols
	return checkOutputs(c.out, c.shard.manifestOutputs(c.out, []namedPath{{"--plot", c.plot}}))
}

// namedPath is an optional output file and its flag.
type namedPath struct{ flag, path string }

// checkOutputs validates --out and the optional outputs: each in an existing directory, none a
// directory, no two the same file.
func checkOutputs(out string, optional []namedPath) error {
	if err := checkOut(out); err != nil {
		return err
	}
	seen := map[string]string{absPath(out): "--out"}
	for _, f := range optional {
		if f.path == "" {
			continue
		}
		if err := checkOut(f.path); err != nil {
			return usagef("%s", strings.Replace(err.Error(), "--out", f.flag, 1))
		}
		if prev, dup := seen[absPath(f.path)]; dup {
			return usagef("%s and %s name the same file %s", prev, f.flag, f.path)
		}
		seen[absPath(f.path)] = f.flag
	}
	return nil
}

// checkRowsCols validates a (rows, cols) size given by the flags rowFlag and colFlag.
func checkRowsCols(fs *flag.FlagSet, rowFlag string, rows int64, colFlag string, cols int64, what string) error {
	switch {
	case !isSet(fs, rowFlag):
		return usagef("--%s is required (%s)", rowFlag, what)
	case rows < 1:
		return usagef("--%s must be ≥ 1 (got %d)", rowFlag, rows)
	case rows > ops.MaxChains:
		return usagef("--%s must be ≤ 2^32 = %d, the number of chain indices of one seed (got %d)",
			rowFlag, int64(ops.MaxChains), rows)
	case cols < 1:
		return usagef("--%s must be ≥ 1 (got %d)", colFlag, cols)
	case cols > tensor.MaxElements/rows:
		return usagef("--%s %d × --%s %d is more than 2^40 elements", rowFlag, rows, colFlag, cols)
	}
	return nil
}

// finitePositiveFlag checks that a float flag is a finite number > 0.
func finitePositiveFlag(name string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return usagef("--%s must be a finite number > 0 (got %g)", name, v)
	}
	return nil
}

// fractionalOptions are the parsed flags of `scorekit noise fgn|fbm`.
type fractionalOptions struct {
	drawFlags
	hurst, horizon, gammaMax float64
	paths, length, k         int
	method                   string
}

func parseFractional(kind string, args []string, stdout io.Writer) (fractionalOptions, error) {
	fs := newFlagSet("scorekit noise " + kind)
	var (
		o                fractionalOptions
		paths, length, k int64
	)
	o.register(fs)
	fs.Float64Var(&o.hurst, "hurst", 0, "")
	fs.Int64Var(&length, "length", 0, "")
	fs.Int64Var(&paths, "paths", 0, "")
	fs.Float64Var(&o.horizon, "horizon", 0, "")
	fs.StringVar(&o.method, "method", "davies-harte", "")
	fs.Int64Var(&k, "k", defaultMAFBMK, "")
	fs.Float64Var(&o.gammaMax, "gamma-max", defaultMAFBMGammaMax, "")
	if err := parse(fs, args, stdout, noiseHelp); err != nil {
		return o, err
	}
	switch {
	case !isSet(fs, "hurst"):
		return o, usagef("--hurst is required (the Hurst index, in (0, 1))")
	case !(o.hurst > 0 && o.hurst < 1):
		return o, usagef("--hurst must be in (0, 1) (got %g)", o.hurst)
	case !isSet(fs, "length"):
		return o, usagef("--length is required (the number of points per path)")
	}
	if err := checkRowsCols(fs, "paths", paths, "length", length, "the number of paths"); err != nil {
		return o, err
	}
	o.paths, o.length = int(paths), int(length)
	if !isSet(fs, "horizon") {
		o.horizon = float64(length)
	} else if err := finitePositiveFlag("horizon", o.horizon); err != nil {
		return o, err
	}
	switch o.method {
	case "davies-harte":
		if length > ops.MaxFGNLength {
			return o, usagef("--method davies-harte generates at most --length %d (got %d)", ops.MaxFGNLength, length)
		}
	case "mafbm":
	case "cholesky":
		if length > choleskyMaxLength {
			return o, usagef("--method cholesky generates at most --length %d (got %d; use davies-harte)", choleskyMaxLength, length)
		}
	default:
		return o, usagef("--method must be davies-harte, cholesky or mafbm (got %q)", o.method)
	}
	if o.method != "mafbm" {
		for _, f := range []string{"k", "gamma-max"} {
			if isSet(fs, f) {
				return o, usagef("--%s applies to --method mafbm, not to %s", f, o.method)
			}
		}
	}
	// 16 OU processes per path is what the GPU kernel holds; the same bound on every device keeps a
	// command line valid wherever it runs (GFDM uses K ≤ 5).
	if k < 1 || k > maxCommandMAFBMStates {
		return o, usagef("--k must be in [1, %d] (got %d)", maxCommandMAFBMStates, k)
	}
	o.k = int(k)
	if !(o.gammaMax > 1) || math.IsInf(o.gammaMax, 0) {
		return o, usagef("--gamma-max must be a finite number > 1 (got %g)", o.gammaMax)
	}
	o.description = fmt.Sprintf("--paths %d × --length %d", paths, length)
	return o, o.check(fs, o.paths, o.length)
}

// fractionalNoise draws and writes fGn increments or fBM paths.
func fractionalNoise(kind string, args []string, stdout, stderr io.Writer) error {
	o, err := parseFractional(kind, args, stdout)
	if err != nil {
		return err
	}
	form := ops.FGNForm{Horizon: o.horizon, Path: kind == "fbm"}
	var (
		plan *ops.FGNPlan
		ma   *ops.MAFBM
	)
	switch o.method {
	case "davies-harte":
		if plan, err = ops.NewFGNPlan(o.hurst, o.length); err != nil {
			return usageError{err}
		}
	case "mafbm":
		if ma, err = ops.NewMAFBM(o.hurst, o.k, o.gammaMax, o.horizon); err != nil {
			return usageError{err}
		}
	}
	fill := func(b ops.Backend, x *tensor.Tensor, draw ops.Draw) error {
		switch o.method {
		case "davies-harte":
			return b.FGN(x, plan, form, draw)
		case "cholesky":
			return ops.FGNCholesky(x, o.hurst, form, draw)
		case "mafbm":
			return drawMAFBM(b, x, ma, o, kind == "fgn", draw)
		}
		return nil
	}
	render := func(v []float64) ([]byte, error) {
		sd, law := func(t float64) float64 { return math.Pow(t, o.hurst) }, "exact ±t^H"
		if o.method == "mafbm" {
			c := math.Sqrt(2*o.hurst) * math.Gamma(o.hurst+0.5)
			sd = func(t float64) float64 { return math.Pow(t, o.hurst) / c }
			law = "type-II ±t^H/(√(2H)Γ(H+½))"
		}
		title := fmt.Sprintf("%s, H = %g, %s (%d paths)", kind, o.hurst, o.method, o.paths)
		if kind == "fgn" {
			title = fmt.Sprintf("fgn summed into paths, H = %g, %s (%d paths)", o.hurst, o.method, o.paths)
		}
		return renderFan(fan{title: title, values: v, paths: o.paths, length: o.length,
			horizon: o.horizon, cumulate: kind == "fgn", sd: sd, sdLabel: law})
	}
	note := func() {
		if ma != nil {
			fmt.Fprintf(stderr, "scorekit: mafbm K = %d, γ_max = %g on [0, %g]: squared relative L² error of the weights %.3g (relative L² error %.3g)\n",
				o.k, o.gammaMax, o.horizon, ma.RelErrorSq(), math.Sqrt(ma.RelErrorSq()))
		}
	}
	return drawNoise(o.drawFlags, o.method == "cholesky", stderr, fill, render, note, nil)
}

// drawMAFBM fills x (paths, L; a block of the command's paths) with the MA-fBM approximation at t_k = k·T/L, k = 1..L, or, with
// increments, its differences (B̂(t_0) = 0). Step s draws at site o.site + s.
func drawMAFBM(b ops.Backend, x *tensor.Tensor, ma *ops.MAFBM, o fractionalOptions, increments bool, draw ops.Draw) error {
	paths := x.Dim(0)
	y, err := tensor.New(b.Device(), o.dtype, paths, o.k)
	if err != nil {
		return fmt.Errorf("allocate the mafbm state (%d, %d) %v: %w", paths, o.k, o.dtype, err)
	}
	defer y.Close()
	if err := y.Fill(0); err != nil {
		return err
	}
	if err := b.MAFBM(x, y, ma, o.horizon/float64(o.length), draw, 1); err != nil {
		return err
	}
	if !increments {
		return nil
	}
	v, err := x.Float64s()
	if err != nil {
		return err
	}
	for p := 0; p < paths; p++ {
		row := v[p*o.length : (p+1)*o.length]
		for k := o.length - 1; k > 0; k-- {
			row[k] -= row[k-1]
		}
	}
	h, err := tensor.FromFloat64s(o.dtype, v, paths, o.length)
	if err != nil {
		return err
	}
	defer h.Close()
	return x.CopyFrom(h)
}

// drawNoise draws one (rows, cols) array of o.dtype with fill — the rows of o's shard, the whole
// run without one — and writes it: it opens --device's backend, allocates the array on its device
// (on the host with hostOnly) after checking that it fits, times the draw (to the end of the
// device's work), renders --plot from the drawn values with render, writes --out and the plot
// (and a shard's manifest, its statistics completed by stats), and, unless --quiet, writes note's
// lines and what was written to stderr.
func drawNoise(o drawFlags, hostOnly bool, stderr io.Writer, fill func(b ops.Backend, x *tensor.Tensor, d ops.Draw) error,
	render func(v []float64) ([]byte, error), note func(), stats func(*noiseStats)) (err error) {
	rows, cols := o.shard.n(), o.cols
	bs, cleanup, err := openBackends(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	dev := bs[0].Device()
	if hostOnly {
		dev = tensor.CPU()
	}
	bytes := int64(rows) * int64(cols) * int64(o.dtype.Size())
	what := fmt.Sprintf("%s of %v", o.shard.scope(o.description), o.dtype)
	if hostOnly {
		err = checkFits(dev, bytes, what)
	} else {
		err = checkFitsOn(bs, rows, int64(cols)*int64(o.dtype.Size()), what)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	prog := newProgress(stderr, o.quiet, "scorekit noise", "rows")
	draw := ops.Draw{Seed: o.seed, Site: o.site, FirstChain: o.shard.first()}
	x, err := drawRows(bs, hostOnly, rows, cols, o.dtype, draw, prog, fill)
	prog.finish()
	if err != nil {
		return err
	}
	defer x.Close()
	wall := time.Since(start)
	var png []byte
	if o.plot != "" {
		v, err := x.Float64s()
		if err != nil {
			return err
		}
		if png, err = render(v); err != nil {
			return err
		}
	}
	st := noiseStats{Kind: strings.TrimPrefix(o.shard.command, "noise "), Rows: rows, Cols: cols, DType: o.dtype.String(),
		Device: deviceNames(bs), Seed: o.seed, Site: o.site, WallSeconds: wall.Seconds()}
	if stats != nil {
		stats(&st)
	}
	written, err := o.shard.write([]npyOutput{{o.out, x, "--out", 0}}, []fileOutput{{o.plot, png}}, backendKind(dev), st)
	if err != nil {
		return err
	}
	if !o.quiet {
		if note != nil {
			note()
		}
		reportWritten(stderr, written, o.dtype, x, bytes, wall)
	}
	return nil
}

// drawRows allocates the (rows, cols) array of dt and fills it with fill: on the one backend's
// device (the host with hostOnly, whatever the backends) by fillBlocks, or, with several backends,
// each drawing its part of the rows (solvers.SplitRange; the draw's FirstChain advanced to the
// part's first row) on its own device at once, the parts copied into one host array. Every noise
// op draws row i from chain FirstChain + i alone, so the parts are the rows of one call.
func drawRows(bs []ops.Backend, hostOnly bool, rows, cols int, dt tensor.DType, draw ops.Draw, prog *progress,
	fill func(b ops.Backend, x *tensor.Tensor, d ops.Draw) error) (*tensor.Tensor, error) {
	if len(bs) == 1 || hostOnly {
		b, dev := bs[0], bs[0].Device()
		if hostOnly {
			dev = tensor.CPU()
		}
		x, err := tensor.New(dev, dt, rows, cols)
		if err != nil {
			return nil, fmt.Errorf("allocate (%d, %d) %v on %s: %w", rows, cols, dt, dev.Name(), err)
		}
		if err := fillBlocks(dev, x, draw, prog, func(x *tensor.Tensor, d ops.Draw) error { return fill(b, x, d) }); err != nil {
			x.Close()
			return nil, err
		}
		return x, nil
	}
	x, err := tensor.New(nil, dt, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("allocate (%d, %d) %v on the host: %w", rows, cols, dt, err)
	}
	err = solvers.ForEachPart(bs, rows, func(_ int, b ops.Backend, lo, hi int) error {
		dev := b.Device()
		part, err := tensor.New(dev, dt, hi-lo, cols)
		if err != nil {
			return fmt.Errorf("allocate (%d, %d) %v on %s: %w", hi-lo, cols, dt, dev.Name(), err)
		}
		defer part.Close()
		d := draw
		d.FirstChain += uint64(lo)
		if err := fillBlocks(dev, part, d, nil, func(p *tensor.Tensor, d ops.Draw) error { return fill(b, p, d) }); err != nil {
			return fmt.Errorf("%s (rows %d…%d): %w", dev.Name(), lo, hi-1, err)
		}
		view, err := x.View(lo*cols, hi-lo, cols)
		if err != nil {
			return err
		}
		return view.CopyFrom(part)
	})
	if err != nil {
		x.Close()
		return nil, err
	}
	if prog != nil {
		prog.update(int64(rows), int64(rows))
	}
	return x, nil
}

// fillBlocks fills x (rows, cols) on dev by calls of fill on blocks of rows, the block from row r
// with the draw's FirstChain advanced by r: every noise op draws row i from chain FirstChain + i
// alone, so the blocks are the numbers of one call. With a progress display the rows are split
// into about 100 blocks (of at least 2^16 values) and each finished block is reported; without
// one, x is one block. The device is synchronised before fillBlocks returns.
func fillBlocks(dev tensor.Device, x *tensor.Tensor, draw ops.Draw, prog *progress, fill func(x *tensor.Tensor, d ops.Draw) error) error {
	rows, cols := x.Dim(0), x.Dim(1)
	block := rows
	if prog != nil {
		block = min(rows, max((rows+99)/100, (1<<16+cols-1)/cols))
	}
	for r := 0; r < rows; r += block {
		n := min(block, rows-r)
		v := x
		if n < rows {
			var err error
			if v, err = x.View(r*cols, n, cols); err != nil {
				return err
			}
		}
		d := draw
		d.FirstChain += uint64(r)
		if err := fill(v, d); err != nil {
			if n < rows {
				return fmt.Errorf("rows %d..%d: %w", r, r+n-1, err)
			}
			return err
		}
		if err := dev.Synchronize(); err != nil {
			return err
		}
		if prog != nil {
			prog.update(int64(r+n), int64(rows))
		}
	}
	return nil
}

// reportWritten says on stderr what was written.
func reportWritten(stderr io.Writer, written []string, dt tensor.DType, x *tensor.Tensor, bytes int64, wall time.Duration) {
	fmt.Fprintf(stderr, "scorekit: wrote %s: %s %v, %s in %v\n", strings.Join(written, ", "), shapeString(x.Shape()), dt,
		tensor.HumanBytes(bytes), wall.Round(time.Millisecond))
}

// stableOptions are the parsed flags of `scorekit noise stable`.
type stableOptions struct {
	drawFlags
	spec   ops.StableSpec
	n, dim int
}

func parseStable(args []string, stdout io.Writer) (stableOptions, error) {
	fs := newFlagSet("scorekit noise stable")
	var (
		o                   stableOptions
		n, dim              int64
		alpha, beta, clamp  float64
		isotropic, positive bool
	)
	o.register(fs)
	fs.Float64Var(&alpha, "alpha", 0, "")
	fs.Float64Var(&beta, "beta", 0, "")
	fs.Int64Var(&dim, "dim", 1, "")
	fs.Int64Var(&n, "n", 0, "")
	fs.BoolVar(&isotropic, "isotropic", false, "")
	fs.BoolVar(&positive, "positive", false, "")
	fs.Float64Var(&clamp, "clamp", 0, "")
	if err := parse(fs, args, stdout, noiseHelp); err != nil {
		return o, err
	}
	switch {
	case !isSet(fs, "alpha"):
		return o, usagef("--alpha is required (the stability index, in (0, 2])")
	case !(alpha > 0 && alpha <= 2):
		return o, usagef("--alpha must be in (0, 2] (got %g)", alpha)
	case !(math.Abs(beta) <= 1):
		return o, usagef("--beta must be in [-1, 1] (got %g)", beta)
	case isotropic && positive:
		return o, usagef("--isotropic and --positive exclude each other")
	case (isotropic || positive) && isSet(fs, "beta"):
		return o, usagef("--beta applies to scalar stable laws, not with --isotropic or --positive")
	case positive && !(alpha < 1):
		return o, usagef("--positive needs --alpha in (0, 1) (got %g)", alpha)
	case !(clamp >= 0) || math.IsInf(clamp, 0):
		return o, usagef("--clamp must be a finite number ≥ 0 (got %g; 0: no clamp)", clamp)
	}
	if err := checkRowsCols(fs, "n", n, "dim", dim, "the number of rows to draw"); err != nil {
		return o, err
	}
	o.n, o.dim = int(n), int(dim)
	o.spec = ops.StableSpec{Kind: ops.StableSymmetric, Alpha: alpha, Beta: beta, Clamp: clamp}
	switch {
	case isotropic:
		o.spec.Kind = ops.StableIsotropic
	case positive:
		o.spec.Kind = ops.StablePositive
	case beta != 0:
		o.spec.Kind = ops.StableSkewed
	}
	o.description = fmt.Sprintf("--n %d × --dim %d", n, dim)
	return o, o.check(fs, o.n, o.dim)
}

// stableLawName describes the law of a spec for messages and plot titles.
func stableLawName(s ops.StableSpec) string {
	switch s.Kind {
	case ops.StableIsotropic:
		return fmt.Sprintf("isotropic α-stable, α = %g", s.Alpha)
	case ops.StablePositive:
		return fmt.Sprintf("positive stable, α = %g", s.Alpha)
	case ops.StableSkewed:
		return fmt.Sprintf("S_α(1, β, 0), α = %g, β = %g", s.Alpha, s.Beta)
	}
	return fmt.Sprintf("symmetric α-stable, α = %g", s.Alpha)
}

// stableNoise draws and writes α-stable values.
func stableNoise(args []string, stdout, stderr io.Writer) error {
	o, err := parseStable(args, stdout)
	if err != nil {
		return err
	}
	var clamped atomic.Int64 // the parts of a run on several devices add to it at once
	fill := func(b ops.Backend, x *tensor.Tensor, draw ops.Draw) error {
		c, err := b.Stable(x, o.spec, draw)
		clamped.Add(c)
		return err
	}
	render := func(v []float64) ([]byte, error) {
		if o.spec.Kind == ops.StableIsotropic && o.dim > 1 {
			first := make([]float64, o.n)
			for i := range first {
				first[i] = v[i*o.dim]
			}
			v = first
		}
		return renderStableHistogram(v, o.spec)
	}
	note := func() {
		if o.spec.Clamp > 0 {
			fmt.Fprintf(stderr, "scorekit: clamped %d of %d values to [−%g, %g]\n", clamped.Load(), int64(o.shard.n())*int64(o.dim),
				o.spec.Clamp, o.spec.Clamp)
		}
	}
	stats := func(st *noiseStats) {
		if o.spec.Clamp > 0 {
			c := clamped.Load()
			st.Clamped = &c
		}
	}
	return drawNoise(o.drawFlags, false, stderr, fill, render, note, stats)
}

// bridgeOptions are the parsed flags of `scorekit noise bridge`.
type bridgeOptions struct {
	drawFlags
	spec          ops.BrownianSpec
	paths, length int
}

func parseBridge(args []string, stdout io.Writer) (bridgeOptions, error) {
	fs := newFlagSet("scorekit noise bridge")
	var (
		o                    bridgeOptions
		paths, length, epoch int64
	)
	o.register(fs)
	fs.Int64Var(&length, "length", 0, "")
	fs.Int64Var(&paths, "paths", 0, "")
	fs.Float64Var(&o.spec.Horizon, "horizon", 0, "")
	fs.Int64Var(&epoch, "epoch", 0, "")
	fs.BoolVar(&o.spec.Increments, "increments", false, "")
	if err := parse(fs, args, stdout, noiseHelp); err != nil {
		return o, err
	}
	if !isSet(fs, "length") {
		return o, usagef("--length is required (the number of points per path)")
	}
	if err := checkRowsCols(fs, "paths", paths, "length", length, "the number of paths"); err != nil {
		return o, err
	}
	switch {
	case !isSet(fs, "epoch"):
		return o, usagef("--epoch is required (the epoch length in steps; 0: plain Brownian motion)")
	case epoch < 0:
		return o, usagef("--epoch must be ≥ 0 (got %d; 0: plain Brownian motion)", epoch)
	}
	o.paths, o.length, o.spec.Epoch = int(paths), int(length), int(epoch)
	if !isSet(fs, "horizon") {
		o.spec.Horizon = float64(length)
	} else if err := finitePositiveFlag("horizon", o.spec.Horizon); err != nil {
		return o, err
	}
	o.description = fmt.Sprintf("--paths %d × --length %d", paths, length)
	return o, o.check(fs, o.paths, o.length)
}

// bridgeNoise draws and writes epoched Brownian paths (or their increments).
func bridgeNoise(args []string, stdout, stderr io.Writer) error {
	o, err := parseBridge(args, stdout)
	if err != nil {
		return err
	}
	fill := func(b ops.Backend, x *tensor.Tensor, draw ops.Draw) error {
		return b.Brownian(x, o.spec, draw)
	}
	render := func(v []float64) ([]byte, error) {
		tau := float64(o.spec.Epoch) * o.spec.Horizon / float64(o.length) // epoch length in time
		sd, law := math.Sqrt, "exact ±√t"
		title := fmt.Sprintf("Brownian motion (%d paths)", o.paths)
		if o.spec.Epoch > 0 {
			sd = func(t float64) float64 {
				s := t - tau*math.Floor(t/tau+1e-9)
				return math.Sqrt(math.Max(s*(tau-s)/tau, 0))
			}
			law = "exact ±√(s(τ−s)/τ)"
			title = fmt.Sprintf("Brownian bridge, epoch %d steps (%d paths)", o.spec.Epoch, o.paths)
		}
		if o.spec.Increments {
			title += ", increments summed"
		}
		return renderFan(fan{title: title, values: v, paths: o.paths, length: o.length,
			horizon: o.spec.Horizon, cumulate: o.spec.Increments, sd: sd, sdLabel: law})
	}
	return drawNoise(o.drawFlags, false, stderr, fill, render, nil, nil)
}
