package optest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Rows are the batch sizes that catch edge bugs (partial warps, partial blocks, empty input).
var Rows = []int{0, 1, 3, 31, 32, 33, 1023, 1025}

// LargeRows is the one large size. On a host-emulated CUDA device (Emulated), where the kernels
// run thousands of times slower than on a GPU, EmulatedLargeRows replaces it: a fifth of the rows,
// still more than one grid of the emulated device's element-wise launches covers (2 SMs × 32
// blocks × 256 threads), so that grid-stride loops turn. With -short on an emulated device (the
// AddressSanitizer run of make test, whose subject is out-of-bounds accesses, not loop turning)
// it is EmulatedShortRows. On a host backend -short (the race detector's run of make test, whose
// subject is the workers' concurrency, not the arithmetic the full run checks) takes
// EmulatedLargeRows too: still many rows per worker.
const (
	LargeRows         = 100003
	EmulatedLargeRows = 20011
	EmulatedShortRows = 4099
)

// Emulated reports whether b runs on a host-emulated CUDA device (the cudaemu build's
// tensor.CUDADevice, whose Info().Emulated is set); the suite then takes its smaller sizes.
func Emulated(b ops.Backend) bool { return b.Device().Info().Emulated }

// largeRows is the large size for b: LargeRows, or EmulatedLargeRows on an emulated device or
// with -short, or EmulatedShortRows on an emulated device with -short.
func largeRows(b ops.Backend) int {
	switch {
	case Emulated(b) && testing.Short():
		return EmulatedShortRows
	case Emulated(b), testing.Short():
		return EmulatedLargeRows
	}
	return LargeRows
}

// Dims are the row widths: below, at and above one Philox block (4 words), and odd.
var Dims = []int{1, 2, 3, 4, 5, 7, 33}

// guard is the number of Sentinel elements on each side of an output.
const guard = 37

// Tolerances of the random fills against the CPU reference. Words and uniforms are exact
// (integer arithmetic and exact conversions), and so are normals: the reference and the kernels
// perform the same float32 or float64 operations (IEEE operations and fused multiply-adds, see
// docs/math.md §0, "f32 normals").
var (
	NormalF32 = Exact
	NormalF64 = Exact
)

// allocCounter is implemented by devices that count their live allocations (tensor.CUDADevice).
type allocCounter interface{ Allocated() int64 }

// Run runs the whole suite against b as subtests. When b is not the CPU reference itself, every
// output is also compared with ops.Reference()'s. Run takes ownership of b and closes it at the end
// (backends cache uploaded target parameters until Close); on devices that count allocations it
// then checks that everything allocated during the suite was freed.
func Run(t *testing.T, b ops.Backend) {
	var before int64
	counter, counts := b.Device().(allocCounter)
	if counts {
		before = counter.Allocated()
	}
	for _, kind := range []string{"bits", "uniform", "normal"} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			if kind == "bits" && dt == tensor.F64 {
				continue
			}
			t.Run(fmt.Sprintf("%s/%v", kind, dt), func(t *testing.T) {
				large := largeRows(b)
				for _, rows := range append(append([]int(nil), Rows...), large) {
					dims := Dims
					if rows == large {
						dims = []int{7}
					}
					for _, dim := range dims {
						d := ops.Draw{Seed: 0x5eed0000 + uint64(dim), Site: uint64(rows), FirstChain: uint64(rows % 5)}
						if err := CheckFill(b, kind, dt, rows, dim, d); err != nil {
							t.Fatalf("%s %v (%d, %d): %v", kind, dt, rows, dim, err)
						}
					}
				}
			})
		}
	}
	t.Run("gmm score", func(t *testing.T) {
		// On an emulated device 257 rows instead of 1025, and K = 200 instead of 512 (still
		// several shared-memory tiles of components at d = 33).
		big, manyK := 1025, 512
		if Emulated(b) {
			big, manyK = 257, 200
		}
		for _, c := range []struct{ rows, k, d int }{{0, 3, 2}, {1, 1, 1}, {33, 3, 2}, {31, 8, 9}, {big, 64, 3}, {3, manyK, 33}, {65, 5, 128}} {
			for _, kind := range []ops.CovKind{ops.Isotropic, ops.Diagonal, ops.Full} {
				if kind == ops.Full && c.d > 33 {
					continue
				}
				if err := CheckGMMScore(b, c.rows, c.k, c.d, kind); err != nil {
					t.Fatalf("rows %d K %d d %d %v: %v", c.rows, c.k, c.d, kind, err)
				}
			}
		}
	})
	t.Run("empirical score", func(t *testing.T) {
		for _, c := range []struct{ rows, m, d, q int }{{0, 3, 2, 1}, {1, 1, 1, 1}, {33, 100, 2, 1}, {31, 1025, 17, 1}, {67, 300, 64, 3}} {
			if err := CheckEmpiricalScore(b, c.rows, c.m, c.d, c.q); err != nil {
				t.Fatalf("rows %d M %d d %d Q %d: %v", c.rows, c.m, c.d, c.q, err)
			}
		}
	})
	t.Run("overflowing logits", func(t *testing.T) {
		if err := CheckOverflowingLogits(b); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("determinism", func(t *testing.T) {
		d := ops.Draw{Seed: 7, Site: 1}
		a, err := fillOn(b, "normal", tensor.F32, 1025, 5, d)
		if err != nil {
			t.Fatal(err)
		}
		c, err := fillOn(b, "normal", tensor.F32, 1025, 5, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compare(a, c, Exact); err != nil {
			t.Fatalf("two runs of the same draw differ: %v", err)
		}
	})
	t.Run("langevin", func(t *testing.T) { RunLangevin(t, b) })
	RunDiffusion(t, b)
	t.Run("noise", func(t *testing.T) { RunNoise(t, b) })
	t.Run("reversible heun", func(t *testing.T) { RunReversibleHeun(t, b) })
	t.Run("langevin mixture heun", func(t *testing.T) { RunLangevinMixtureHeun(t, b) })
	t.Run("mlp score", func(t *testing.T) { RunMLP(t, b) })
	t.Run("bad input", func(t *testing.T) {
		if err := CheckRejections(b); err != nil {
			t.Fatal(err)
		}
	})
	if err := b.Close(); err != nil {
		t.Errorf("close backend: %v", err)
	}
	if counts {
		if after := counter.Allocated(); after != before {
			t.Errorf("device memory leak: %d bytes allocated before the suite, %d after closing the backend", before, after)
		}
	}
}

// fillOn runs one fill op on b into a fresh (rows, dim) tensor and returns the values on the host
// (raw words as numbers for "bits").
func fillOn(b ops.Backend, kind string, dt tensor.DType, rows, dim int, d ops.Draw) ([]float64, error) {
	x, err := tensor.New(b.Device(), dt, rows, dim)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	if err := runFill(b, kind, x, d); err != nil {
		return nil, err
	}
	return hostValues(x, kind == "bits")
}

func runFill(b ops.Backend, kind string, x *tensor.Tensor, d ops.Draw) error {
	switch kind {
	case "bits":
		return b.PhiloxBits(x, d)
	case "uniform":
		return b.Uniform(x, d)
	case "normal":
		return b.Normal(x, d)
	}
	return fmt.Errorf("unknown fill %q", kind)
}

// hostValues copies x to the host and returns its values as float64 (float32 bit patterns as
// integers when bits is set, so that NaN-patterned words compare exactly).
func hostValues(x *tensor.Tensor, bits bool) ([]float64, error) {
	h := x
	if !x.OnHost() {
		var err error
		if h, err = x.CopyTo(tensor.CPU()); err != nil {
			return nil, err
		}
		defer h.Close()
	}
	if bits {
		f, err := h.F32()
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(math.Float32bits(v))
		}
		return out, nil
	}
	return h.Float64s()
}

// CheckFill runs one fill op on b into a (rows, dim) window of a Sentinel-filled buffer and checks
// that the guard bands are untouched (bit for bit), every output element was written, and the
// values agree with the CPU reference (exactly: NormalF32/NormalF64 for normals).
func CheckFill(b ops.Backend, kind string, dt tensor.DType, rows, dim int, d ops.Draw) error {
	n := rows * dim
	buf, err := tensor.New(b.Device(), dt, guard+n+guard)
	if err != nil {
		return err
	}
	defer buf.Close()
	if err := buf.Fill(Sentinel); err != nil {
		return err
	}
	out, err := buf.View(guard, rows, dim)
	if err != nil {
		return err
	}
	if err := runFill(b, kind, out, d); err != nil {
		return err
	}
	all, err := hostValues(buf, false)
	if err != nil {
		return err
	}
	if err := CheckGuards(all, guard, kind); err != nil {
		return err
	}
	got, err := hostValues(out, kind == "bits")
	if err != nil {
		return err
	}
	if kind != "bits" { // (a word may take any bit pattern: the exact comparison below catches an unwritten one)
		for i, v := range got {
			if IsSentinel(v) || math.IsNaN(v) {
				return fmt.Errorf("output element %d (row %d, col %d) = %v: not written (the fill value is %v) or not a number", i, i/dim, i%dim, v, Sentinel)
			}
		}
	}
	ref, err := fillOn(ops.Reference(), kind, dt, rows, dim, d)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	tol := Exact
	if kind == "normal" {
		tol = NormalF64
		if dt == tensor.F32 {
			tol = NormalF32
		}
	}
	if _, err := Compare(got, ref, tol); err != nil {
		return fmt.Errorf("against the CPU reference: %w", err)
	}
	return nil
}

// CheckRejections checks that b refuses what the CPU reference refuses, with an error.
func CheckRejections(b ops.Backend) error {
	dev := b.Device()
	x, err := tensor.New(dev, tensor.F32, 4, 3)
	if err != nil {
		return err
	}
	defer x.Close()
	flat, err := tensor.New(dev, tensor.F32, 12)
	if err != nil {
		return err
	}
	defer flat.Close()
	f64, err := tensor.New(dev, tensor.F64, 4, 3)
	if err != nil {
		return err
	}
	defer f64.Close()
	host, err := tensor.New(nil, tensor.F32, 4, 3)
	if err != nil {
		return err
	}
	cases := []struct {
		name string
		err  error
	}{
		{"nil destination", b.Normal(nil, ops.Draw{})},
		{"rank-1 destination", b.Uniform(flat, ops.Draw{})},
		{"chains beyond 2^32", b.Normal(x, ops.Draw{FirstChain: ops.MaxChains - 2})},
		{"bits into f64", b.PhiloxBits(f64, ops.Draw{})},
	}
	if dev.Kind() != tensor.KindCPU {
		cases = append(cases, struct {
			name string
			err  error
		}{"host tensor on a device backend", b.Normal(host, ops.Draw{})})
	}
	var errs []error
	for _, c := range cases {
		if c.err == nil {
			errs = append(errs, fmt.Errorf("%s: accepted, want an error", c.name))
		}
	}
	return errors.Join(errs...)
}
