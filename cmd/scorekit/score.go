package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// targetFormatHelp is the target file's format, in the help of score and sample.
const targetFormatHelp = `Targets (T.json):
  {"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]],
   "covariance": "isotropic", "vars": [1.0, 0.25]}
  {"kind": "gmm", ..., "covariance": "diagonal", "diag": [[1, 2], [0.5, 0.5]]}
  {"kind": "gmm", ..., "covariance": "full", "covs": [[[1, 0.3], [0.3, 1]], [[0.5, 0], [0, 0.5]]]}
  {"kind": "empirical", "data": "points.npy"}      (an (M, d) .npy file, relative to T.json)
  {"kind": "empirical", "data": "points.npy", "mixture": {"weights": [0.5, 0.5], "scales": [1, 4]}}
  {"kind": "mlp", "model": "m.safetensors"}        (a learned denoiser, e.g. from scorekit train)
Weights must be positive (they are normalised), variances positive, covariance matrices symmetric
positive definite, shapes consistent. An mlp network has a score and a denoiser at every noise
level > 0 but no log-density and no score at 0: the Langevin methods refuse it. Not in this
version: the constraint kinds as targets.
`

// scoreOutputs are the values of --what, in the order the help lists them.
var scoreOutputs = []string{"logp", "score", "denoiser"}

var scoreHelp = `Usage: scorekit score --target T.json (--sigma S | --time T) --in X.npy --out D.npy
                      [--what logp|score|denoiser] [--dtype f32|f64] [--device auto|cpu|cuda] [--quiet]

Evaluates a target (T.json: a Gaussian mixture or an empirical data set, see below) noised to one
level at every point of X.npy and writes the result to D.npy (NumPy, C order), atomically: a
failed run leaves no file and never overwrites an existing one.

The noised target is the law of x = a·x0 + sqrt(s)·ξ with x0 from the target and ξ ~ N(0, I):
  --sigma S   variance-exploding level σ ≥ 0:     a = 1,     s = σ²
  --time T    variance-preserving (OU) time t ≥ 0: a = e^−t,  s = 1 − e^−2t
(exactly one of them). --sigma 0 (or --time 0) is the target itself, no noise: log p and
∇log p of a mixture — what a Langevin sampler of the target needs — and the identity denoiser
(E[x0 | x] = x). A data set has no noise-free density: it needs σ > 0. What is written (--what):
  logp       log p(x), shape (N)
  score      ∇ log p(x), shape (N, d)
  denoiser   E[x0 | x], shape (N, d) (default); for a mixture (x + s ∇log p(x)) / a (Tweedie),
             for a data set the posterior mean of the data points

Input: X.npy holds N ≥ 1 points of dimension d, shape (N, d), float32 or float64; d must be the
target's dimension. A rank-1 array (L) is one point when L = d, and L points when the target is
one-dimensional (d = 1); any other shape is refused.

` + targetFormatHelp + `
Flags:
  --target T.json  the target (required)
  --sigma S        VE noise level σ, a finite number ≥ 0 (0: the target itself)
  --time T         VP (Ornstein–Uhlenbeck) time t, a finite number ≥ 0 (0: the target itself)
  --in X.npy       the points, (N, d) (required)
  --out D.npy      file to write (required)
  --what W         logp, score or denoiser (default denoiser)
  --dtype T        f32 or f64: the precision of the computation's inputs and outputs (default:
                   the dtype of X.npy; the reference computes in float64 either way)
` + deviceFlagHelp(19) + `  --quiet          say nothing on stderr unless something fails
`

// runScore is `scorekit score`.
func runScore(args []string, stdout, stderr io.Writer) int {
	const name = "scorekit score"
	return exitStatus(stderr, name, score(args, stdout, stderr))
}

// scoreOptions are the parsed, validated flags of `scorekit score`.
type scoreOptions struct {
	target, in, out string
	noise           ops.Noise
	level           string // "σ = 0.5" or "t = 0.1", for messages
	what            string
	dtype           tensor.DType
	dtypeSet        bool
	device          string
	quiet           bool
}

// parseScore parses and validates the flags of `scorekit score`.
func parseScore(args []string, stdout io.Writer) (scoreOptions, error) {
	fs := newFlagSet("scorekit score")
	var (
		o           scoreOptions
		sigma, tau  float64
		dtype, what string
	)
	fs.StringVar(&o.target, "target", "", "")
	fs.Float64Var(&sigma, "sigma", 0, "")
	fs.Float64Var(&tau, "time", 0, "")
	fs.StringVar(&o.in, "in", "", "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&what, "what", "denoiser", "")
	fs.StringVar(&dtype, "dtype", "", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	if err := parse(fs, args, stdout, scoreHelp); err != nil {
		return o, err
	}
	if o.target == "" {
		return o, usagef("--target is required (the target's .json file; see %s --help)", fs.Name())
	}
	hasSigma, hasTime := isSet(fs, "sigma"), isSet(fs, "time")
	switch {
	case hasSigma && hasTime:
		return o, usagef("give either --sigma (VE noise level) or --time (VP time), not both")
	case !hasSigma && !hasTime:
		return o, usagef("a noise level is required: --sigma S (VE) or --time T (VP)")
	case hasSigma:
		if !(sigma >= 0) || math.IsInf(sigma, 0) {
			return o, usagef("--sigma must be a finite number ≥ 0 (got %g)", sigma)
		}
		o.noise, o.level = ops.AtSigma(sigma), fmt.Sprintf("σ = %g", sigma)
	default:
		if !(tau >= 0) || math.IsInf(tau, 0) {
			return o, usagef("--time must be a finite number ≥ 0 (got %g)", tau)
		}
		o.noise, o.level = ops.AtTime(tau), fmt.Sprintf("t = %g", tau)
	}
	if (hasSigma && sigma == 0) || (hasTime && tau == 0) {
		o.noise = ops.NoNoise // the target itself
	}
	o.what = what
	known := false
	for _, w := range scoreOutputs {
		known = known || w == what
	}
	if !known {
		return o, usagef("--what must be %s (got %q)", strings.Join(scoreOutputs, ", "), what)
	}
	if o.noise.Kind == ops.VP && what == "denoiser" && math.Exp(-tau) == 0 {
		return o, usagef("--time %g: the signal scale e^−t underflows to 0, so the denoiser (x + s∇log p)/e^−t "+
			"is undefined; use a smaller --time", tau)
	}
	if dtype != "" || isSet(fs, "dtype") {
		var err error
		if o.dtype, err = parseDTypeFlag(dtype); err != nil {
			return o, err
		}
		o.dtypeSet = true
	}
	if err := checkDeviceFlag(o.device); err != nil {
		return o, err
	}
	if o.in == "" {
		return o, usagef("--in is required (the .npy file of points, shape (N, d))")
	}
	if err := checkOut(o.out); err != nil {
		return o, err
	}
	return o, nil
}

// readPoints reads --in as an (N, d) host tensor for a target of dimension d (see scoreHelp for
// the rank-1 rule) in dtype dt (the file's own when !convert).
func readPoints(path string, d int, dt tensor.DType, convert bool, targetName string) (*tensor.Tensor, error) {
	x, err := tensor.ReadNpy(path)
	if err != nil {
		return nil, usagef("--in: %w", err)
	}
	shape := x.Shape()
	switch {
	case x.Rank() == 2:
		if x.Dim(1) != d {
			return nil, usagef("--in %s has points of dimension %d (shape %s), the target %s has dimension %d",
				path, x.Dim(1), shapeString(shape), targetName, d)
		}
	case x.Rank() == 1 && x.Dim(0) == d:
		x, err = x.Reshape(1, d) // one point
	case x.Rank() == 1 && d == 1:
		x, err = x.Reshape(x.Dim(0), 1) // one value per point
	case x.Rank() == 1:
		return nil, usagef("--in %s has shape %s: a rank-1 input is one point, of the target's dimension %d "+
			"(or, for a 1-D target, one value per point); %s has dimension %d", path, shapeString(shape), d, targetName, d)
	default:
		return nil, usagef("--in %s has shape %s: want (N, %d), N points of the target's dimension", path,
			shapeString(shape), d)
	}
	if err != nil {
		return nil, err
	}
	if x.Dim(0) == 0 {
		return nil, usagef("--in %s holds no points (shape %s)", path, shapeString(shape))
	}
	if !convert || x.DType() == dt {
		return x, nil
	}
	v, err := x.Float64s()
	if err != nil {
		return nil, err
	}
	return tensor.FromFloat64s(dt, v, x.Shape()...)
}

// shapeString writes a shape as NumPy does: (5,), (2, 3), ().
func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = fmt.Sprint(s)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// score evaluates the target at the points of --in and writes the requested output.
func score(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseScore(args, stdout)
	if err != nil {
		return err
	}
	tg, err := target.Load(o.target)
	if err != nil {
		return usagef("--target %w", err)
	}
	if o.noise.Kind == ops.Clean && tg.Kind() == target.KindEmpirical {
		return usagef("%s: the target itself (no noise) has no density for a data set (an empirical target): give a noise level σ > 0 (e.g. --sigma 0.01) or --time t > 0",
			o.level)
	}
	d := tg.Dim()
	xHost, err := readPoints(o.in, d, o.dtype, o.dtypeSet, o.target)
	if err != nil {
		return err
	}
	n, dt := xHost.Dim(0), xHost.DType()

	bs, cleanup, err := openBackends(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	outCols := d
	if o.what == "logp" {
		outCols = 1
	}
	rowBytes := int64(outCols) * int64(dt.Size())
	if bs[0].Device().Kind() != tensor.KindCPU {
		rowBytes += int64(d) * int64(dt.Size()) // the points are copied there
	}
	if err := checkFitsOn(bs, n, rowBytes, fmt.Sprintf("--in %s (%d points) with --what %s in %v", o.in, n, o.what, dt)); err != nil {
		return err
	}

	start := time.Now()
	outShape := func(rows int) []int {
		if o.what == "logp" {
			return []int{rows}
		}
		return []int{rows, d}
	}
	res, err := tensor.New(nil, dt, outShape(n)...)
	if err != nil {
		return fmt.Errorf("allocate %s %v on the host: %w", shapeString(outShape(n)), dt, err)
	}
	defer res.Close()
	// evaluate fills dst (host) with the target's output at the points xh (host) on b.
	evaluate := func(b ops.Backend, xh, dst *tensor.Tensor) error {
		dev := b.Device()
		x, r := xh, dst
		var err error
		if dev.Kind() != tensor.KindCPU {
			if x, err = xh.CopyTo(dev); err != nil {
				return fmt.Errorf("copy the points to %s: %w", dev.Name(), err)
			}
			defer x.Close()
			if r, err = tensor.New(dev, dt, dst.Shape()...); err != nil {
				return fmt.Errorf("allocate %s %v on %s: %w", shapeString(dst.Shape()), dt, dev.Name(), err)
			}
			defer r.Close()
		}
		var out ops.ScoreOutputs
		switch o.what {
		case "logp":
			out.LogP = r
		case "score":
			out.Score = r
		default:
			out.Denoiser = r
		}
		if err := tg.Check(dev, out, x, o.noise); err != nil {
			return usageError{err}
		}
		if err := tg.Evaluate(b, out, x, o.noise); err != nil {
			return err
		}
		if r != dst {
			return dst.CopyFrom(r)
		}
		return nil
	}
	err = solvers.ForEachPart(bs, n, func(_ int, b ops.Backend, lo, hi int) error {
		xh, err := xHost.View(lo*d, hi-lo, d)
		if err != nil {
			return err
		}
		dst, err := res.View(lo*outCols, outShape(hi-lo)...)
		if err != nil {
			return err
		}
		return evaluate(b, xh, dst)
	})
	if err != nil {
		return err // (one part's error reads as itself; usage errors stay usage errors)
	}
	if err := tensor.WriteNpy(o.out, res); err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "scorekit: wrote %s: %s %s %v of %s at %s in %v\n", o.out, o.what, shapeString(outShape(n)),
			dt, tg, o.level, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
