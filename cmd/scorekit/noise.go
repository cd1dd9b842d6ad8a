package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// noiseKinds are the kinds `scorekit noise` draws in this version.
var noiseKinds = []string{"normal", "uniform"}

// plannedNoiseKinds are the kinds of the command's contract that this version does not draw yet.
var plannedNoiseKinds = []string{"fgn", "fbm", "stable", "bridge"}

const noiseHelp = `Usage: scorekit noise normal|uniform --n N [--dim D] [--seed S] [--site K] [--dtype f32|f64]
                      [--device auto|cpu|cuda] [--quiet] --out X.npy

Draws an (N, D) array of random numbers and writes it to X.npy (NumPy, C order), atomically: a
failed run leaves no file and never overwrites an existing one.

  normal   standard normals (Box–Muller on Philox4x32-10 uniforms)
  uniform  uniforms in [0, 1) (24 random bits in f32, 53 in f64)

Row i is chain i of the draw (seed, site): its numbers depend only on (seed, site, i, column), so
the same seed gives the same numbers on the CPU and the GPU (normals within a few ulp), whatever N.

Flags:
  --n N          number of rows (chains), 1 ≤ N ≤ 2^32 (required)
  --dim D        columns per row (default 1)
  --seed S       Philox key, an unsigned 64-bit integer (default 0)
  --site K       draw site: different sites give independent draws of one seed (default 0)
  --dtype T      f32 or f64 (default f32); the f32 and f64 streams of one seed differ
` + deviceFlagHelp + `  --quiet        say nothing on stderr unless something fails
  --out X.npy    file to write (required)

Not in this version: fgn, fbm, stable, bridge.
`

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
	}
	for _, k := range plannedNoiseKinds {
		if kind == k {
			return exitStatus(stderr, name, usagef("%s is not available in scorekit %s (available: %s)",
				kind, version, strings.Join(noiseKinds, ", ")))
		}
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
}

// parseNoise parses and validates the flags of `scorekit noise <kind>`.
func parseNoise(kind string, args []string, stdout io.Writer) (noiseOptions, error) {
	fs := newFlagSet("scorekit noise " + kind)
	var (
		o      noiseOptions
		n, dim int64
		dtype  string
	)
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
	if err := checkOut(o.out); err != nil {
		return o, err
	}
	return o, nil
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
	b, cleanup, err := openBackend(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	dev := b.Device()
	bytes := int64(o.n) * int64(o.dim) * int64(o.dtype.Size())
	if err := checkFits(dev, bytes, fmt.Sprintf("--n %d × --dim %d of %v", o.n, o.dim, o.dtype)); err != nil {
		return err
	}

	start := time.Now()
	x, err := tensor.New(dev, o.dtype, o.n, o.dim)
	if err != nil {
		return fmt.Errorf("allocate (%d, %d) %v on %s: %w", o.n, o.dim, o.dtype, dev.Name(), err)
	}
	defer x.Close()
	draw := ops.Draw{Seed: o.seed, Site: o.site}
	fill, check := b.Normal, ops.CheckNormal
	if kind == "uniform" {
		fill, check = b.Uniform, ops.CheckUniform
	}
	if err := check(dev, x, draw); err != nil {
		return usageError{err}
	}
	if err := fill(x, draw); err != nil {
		return err
	}
	if err := tensor.WriteNpy(o.out, x); err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "scorekit: wrote %s: (%d, %d) %v, %s in %v\n", o.out, o.n, o.dim, o.dtype,
			tensor.HumanBytes(bytes), time.Since(start).Round(time.Millisecond))
	}
	return nil
}
