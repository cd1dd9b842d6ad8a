package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

const demoHelp = `Usage: scorekit demo [--dir DIR] [--device auto|cpu|cuda] [--quiet]

Draws 10^6 × 2 standard normals (float32, fixed seed) on the best device, times the draw and
checks the numbers: per coordinate the mean, the variance and the Kolmogorov–Smirnov distance to
N(0, 1), and the correlation of the two coordinates, each against its 0.1% critical value. On a
GPU the same draw is repeated on the CPU reference and the largest difference is reported
(parity: within 1e-6 relative, a few float32 ulp). Writes DIR/normals.npy. Exit status 1 if a
check fails.

The demo will grow into the sampler comparison of the command's contract: a built-in 2-D
Gaussian mixture, several samplers at equal score-evaluation budget, their wall time,
sliced-Wasserstein distance and mode-weight error, DIR/samples-<method>.npy and DIR/demo.png.
The samplers are not in this version; for now it shows the random numbers they will stand on.

Flags:
  --dir DIR      directory to write normals.npy into, created if needed (default demo)
` + deviceFlagHelp + `  --quiet        do not say which device is used
`

const (
	demoN    = 1_000_000
	demoDim  = 2
	demoSeed = 20260101
	// z999 is the two-sided 0.1% critical value of the standard normal.
	z999 = 3.2905
	// ks999 is the asymptotic 0.1% critical value of √n·D for the Kolmogorov–Smirnov distance D.
	ks999 = 1.95
	// parityRtol is the CPU/GPU tolerance of float32 normals (ops/optest.NormalF32).
	parityRtol = 1e-6
)

// runDemo is `scorekit demo`.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scorekit demo")
	dir := fs.String("dir", "demo", "")
	device := fs.String("device", "auto", "")
	quiet := fs.Bool("quiet", false, "")
	err := parse(fs, args, stdout, demoHelp)
	if err == nil {
		err = checkDeviceFlag(*device)
	}
	if err == nil && *dir == "" {
		err = usagef("--dir must not be empty")
	}
	if err == nil {
		err = demo(*dir, *device, *quiet, stdout, stderr)
	}
	return exitStatus(stderr, fs.Name(), err)
}

// demoDraw is one timed draw of the demo's normals, copied to the host.
type demoDraw struct {
	device string
	wall   time.Duration
	x      *tensor.Tensor // (demoN, demoDim) f32 on the host
}

// drawNormals draws the demo's normals on b, timing the draw alone (after a small draw that loads
// the kernels), and returns them on the host.
func drawNormals(b ops.Backend) (demoDraw, error) {
	dev := b.Device()
	d := ops.Draw{Seed: demoSeed}
	warm, err := tensor.New(dev, tensor.F32, 1, demoDim)
	if err != nil {
		return demoDraw{}, err
	}
	err = b.Normal(warm, d)
	warm.Close()
	if err != nil {
		return demoDraw{}, err
	}
	if err := dev.Synchronize(); err != nil {
		return demoDraw{}, err
	}
	x, err := tensor.New(dev, tensor.F32, demoN, demoDim)
	if err != nil {
		return demoDraw{}, err
	}
	defer x.Close()
	start := time.Now()
	if err := b.Normal(x, d); err != nil {
		return demoDraw{}, err
	}
	if err := dev.Synchronize(); err != nil {
		return demoDraw{}, err
	}
	wall := time.Since(start)
	h, err := x.CopyTo(tensor.CPU())
	if err != nil {
		return demoDraw{}, fmt.Errorf("copy normals to the host: %w", err)
	}
	return demoDraw{device: b.Name(), wall: wall, x: h}, nil
}

func demo(dir, device string, quiet bool, stdout, stderr io.Writer) (err error) {
	b, cleanup, err := openBackend(device, quiet, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	best, err := drawNormals(b)
	if err != nil {
		return fmt.Errorf("draw on %s: %w", b.Name(), err)
	}
	draws := []demoDraw{best}
	if b.Device().Kind() != tensor.KindCPU {
		ref, err := drawNormals(ops.CPU())
		if err != nil {
			return fmt.Errorf("draw on cpu: %w", err)
		}
		draws = append(draws, ref)
	}

	fmt.Fprintf(stdout, "scorekit demo: %d × %d standard normals (f32, seed %d)\n\n", demoN, demoDim, demoSeed)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "device\tn × d\twall ms\tnormals/s\t\n")
	for _, d := range draws {
		fmt.Fprintf(tw, "%s\t%d × %d\t%.2f\t%.3g\t\n", d.device, demoN, demoDim,
			float64(d.wall.Microseconds())/1e3, demoN*demoDim/d.wall.Seconds())
	}
	tw.Flush()
	fmt.Fprintf(stdout, "(wall: the draw alone, after a small warm-up draw that loads the kernels)\n")

	vals, _ := best.x.F32()
	checks := normalChecks(vals, demoN, demoDim)
	if len(draws) > 1 {
		ref, _ := draws[1].x.F32()
		checks = append(checks, parityCheck(vals, ref))
	}
	fmt.Fprintf(stdout, "\nchecks on the %s draw (critical values at the 0.1%% level)\n\n", best.device)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "check\tvalue\taccept\tresult\n")
	failed := 0
	for _, c := range checks {
		result := "pass"
		if !c.pass {
			result = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%.4g\t%s\t%s\n", c.name, c.value, c.limit, result)
	}
	tw.Flush()

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create --dir: %w", err)
	}
	out := filepath.Join(dir, "normals.npy")
	if err := tensor.WriteNpy(out, best.x); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s: (%d, %d) f32 from %s (written atomically)\n", out, demoN, demoDim, best.device)
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(checks))
	}
	return nil
}

// check is one statistical or parity check with its verdict.
type check struct {
	name  string
	value float64
	limit string // the acceptance region, as printed
	pass  bool
}

// normalChecks tests that the columns of x (n × dim, row-major) look like independent N(0, 1)
// samples: for each column the mean (standard error 1/√n), the variance (standard error √(2/n))
// and the Kolmogorov–Smirnov distance to Φ (0.1% critical value 1.95/√n), and the correlation of
// the first two columns (standard error 1/√n). Each check alone fails a correct generator with
// probability 0.1%; the seed is fixed, so the verdict is the same on every run.
func normalChecks(x []float32, n, dim int) []check {
	sn := math.Sqrt(float64(n))
	within := func(name string, v, target, tol float64) check {
		return check{name, v, fmt.Sprintf("%g ± %.3g", target, tol), math.Abs(v-target) <= tol}
	}
	cols := make([][]float64, dim)
	for j := range cols {
		cols[j] = make([]float64, n)
		for i := range cols[j] {
			cols[j][i] = float64(x[i*dim+j])
		}
	}
	var checks []check
	for j, c := range cols {
		mean, variance := meanVariance(c)
		checks = append(checks,
			within(fmt.Sprintf("mean x%d", j), mean, 0, z999/sn),
			within(fmt.Sprintf("variance x%d", j), variance, 1, z999*math.Sqrt(2/float64(n))))
	}
	if dim >= 2 {
		checks = append(checks, within("correlation x0, x1", correlation(cols[0], cols[1]), 0, z999/sn))
	}
	for j, c := range cols {
		d := ksNormal(c) // sorts c
		checks = append(checks, check{fmt.Sprintf("KS distance x%d to N(0,1)", j), d,
			fmt.Sprintf("≤ %.3g", ks999/sn), d <= ks999/sn})
	}
	return checks
}

// parityCheck compares a device's normals with the CPU reference's: it reports the largest
// |got − ref| and passes when every element is within parityRtol·|ref|.
func parityCheck(got, ref []float32) check {
	maxAbs, pass := 0.0, true
	for i := range ref {
		d := math.Abs(float64(got[i]) - float64(ref[i]))
		maxAbs = max(maxAbs, d)
		pass = pass && d <= parityRtol*math.Abs(float64(ref[i])) // false for NaN
	}
	return check{"max |device − cpu|", maxAbs, fmt.Sprintf("≤ %g·|cpu|", parityRtol), pass}
}

// meanVariance returns the sample mean and the unbiased sample variance.
func meanVariance(x []float64) (mean, variance float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	return mean, variance / float64(len(x)-1)
}

// correlation returns the sample correlation of x and y.
func correlation(x, y []float64) float64 {
	mx, vx := meanVariance(x)
	my, vy := meanVariance(y)
	var cov float64
	for i := range x {
		cov += (x[i] - mx) * (y[i] - my)
	}
	return cov / float64(len(x)-1) / math.Sqrt(vx*vy)
}

// ksNormal returns the Kolmogorov–Smirnov distance sup |F_n − Φ| between the empirical
// distribution of x and the standard normal. It sorts x.
func ksNormal(x []float64) float64 {
	slices.Sort(x)
	n := float64(len(x))
	d := 0.0
	for i, v := range x {
		phi := 0.5 * math.Erfc(-v/math.Sqrt2)
		d = max(d, float64(i+1)/n-phi, phi-float64(i)/n)
	}
	return d
}
