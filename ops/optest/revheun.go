package optest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The fused reversible Heun op (ops.Backend.ReversibleHeun, docs/math.md §4.7). Its arithmetic is
// fixed operation by operation (float64 fused multiply-adds, a float32 state widened once and
// rounded once), so a backend must return the reference's bits: the checks compare exactly.

// RevHeunSDEs are the affine SDEs the checks run: Ornstein–Uhlenbeck (additive noise),
// geometric Brownian motion (multiplicative), and one with all four coefficients nonzero.
func RevHeunSDEs() []struct {
	Name string
	SDE  ops.AffineSDE
} {
	ou, _ := ops.OrnsteinUhlenbeck(1.5, -0.25, 0.9)
	gbm, _ := ops.GeometricBrownian(0.35, 0.7)
	return []struct {
		Name string
		SDE  ops.AffineSDE
	}{{"ou", ou}, {"gbm", gbm}, {"affine", ops.AffineSDE{A: 0.3, B: -0.8, C: 0.4, E: 0.25}}}
}

// RevHeunSteps are the numbers of steps per call: one, a few, and more than a warp.
var RevHeunSteps = []int{1, 7, 64}

// revHeunInputs returns deterministic start states y0, z0 (count values, z0 a little off y0 as
// after some steps) and increments (count, q) of the size of steps h = 0.01.
func revHeunInputs(count, q int) (y0, z0, dw []float64) {
	y0, z0, dw = make([]float64, count), make([]float64, count), make([]float64, count*q)
	for i := range y0 {
		y0[i] = 0.5 + math.Mod(0.013*float64(i), 1.5)
		z0[i] = y0[i] + 0.01*math.Cos(float64(i))
	}
	for i := range dw {
		dw[i] = 0.2 * math.Sin(0.37*float64(i)+1)
	}
	return y0, z0, dw
}

// CheckReversibleHeun runs b's ReversibleHeun of s on (rows, dim) states in dt with q steps of
// size h in direction dir, y and z inside guard bands, and compares y and z with the CPU
// reference's bit for bit; the increments must come back unchanged.
func CheckReversibleHeun(b ops.Backend, dt tensor.DType, s ops.AffineSDE, rows, dim, q int, h float64, dir ops.HeunDirection) error {
	y0, z0, w := revHeunInputs(rows*dim, q)
	return checkHeunOp(b, dt, rows, dim, q, y0, z0, w, func(be ops.Backend, y, z, dw *tensor.Tensor) error {
		return be.ReversibleHeun(y, z, dw, s, h, dir)
	}, sameValues)
}

// checkHeunOp runs op on b with the states y0, z0 ((rows, dim) in dt) and the increments w
// ((rows·dim, q), f64) in guarded device tensors, then on the CPU reference with host copies, and
// compares y and z with same (width dim); the increments must come back unchanged.
func checkHeunOp(b ops.Backend, dt tensor.DType, rows, dim, q int, y0, z0, w []float64,
	op func(be ops.Backend, y, z, dw *tensor.Tensor) error, same func(got, want []float64, width int) error) error {
	dev := b.Device()
	gy, err := NewGuarded(dev, guard, dt, y0, rows, dim)
	if err != nil {
		return err
	}
	defer gy.close()
	gz, err := NewGuarded(dev, guard, dt, z0, rows, dim)
	if err != nil {
		return err
	}
	defer gz.close()
	gw, err := NewGuarded(dev, guard, tensor.F64, w, rows*dim, q)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := op(b, gy.view, gz.view, gw.view); err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	hy, err := tensor.FromFloat64s(dt, y0, rows, dim)
	if err != nil {
		return err
	}
	hz, err := tensor.FromFloat64s(dt, z0, rows, dim)
	if err != nil {
		return err
	}
	hw, err := tensor.FromF64(w, rows*dim, q)
	if err != nil {
		return err
	}
	if err := op(ops.Reference(), hy, hz, hw); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	for _, x := range []struct {
		name string
		g    Guarded
		ref  *tensor.Tensor
	}{{"y", gy, hy}, {"z", gz, hz}} {
		got, err := x.g.values(x.name)
		if err != nil {
			return err
		}
		want, err := x.ref.Float64s()
		if err != nil {
			return err
		}
		if err := same(got, want, dim); err != nil {
			return fmt.Errorf("%s: %w", x.name, err)
		}
	}
	got, err := gw.values("increments")
	if err != nil {
		return err
	}
	if err := sameValues(got, w, max(q, 1)); err != nil {
		return fmt.Errorf("increments changed: %w", err)
	}
	return nil
}

// rejectionTensors allocates the tensors of a rejection check on one device, each filled with
// 0.5, and closes them together.
type rejectionTensors struct {
	dev tensor.Device
	all []*tensor.Tensor
	err error
}

// alloc returns a new (shape) tensor of dt; a failure is kept for ok and nil returned.
func (r *rejectionTensors) alloc(dt tensor.DType, shape ...int) *tensor.Tensor {
	x, err := tensor.New(r.dev, dt, shape...)
	if err == nil {
		if err = x.Fill(0.5); err != nil {
			x.Close()
		}
	}
	if err != nil {
		r.err = fmt.Errorf("allocate the rejection cases' tensors on %s: %w", r.dev.Name(), err)
		return nil
	}
	r.all = append(r.all, x)
	return x
}

// ok is the first allocation's failure, if any.
func (r *rejectionTensors) ok() error { return r.err }

func (r *rejectionTensors) close() {
	for _, t := range r.all {
		t.Close()
	}
}

// RunReversibleHeun runs the checks of ReversibleHeun against b as subtests: RevHeunSDEs ×
// RevHeunSteps × both directions × both dtypes over the edge row counts (Rows) at widths 1 and 3,
// and the large size at width 1 with one step; then the rejections of bad input. It does not
// close b.
func RunReversibleHeun(t *testing.T, b ops.Backend) {
	t.Run("checks", func(t *testing.T) {
		for _, fam := range RevHeunSDEs() {
			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				for _, dir := range []ops.HeunDirection{ops.HeunForward, ops.HeunInverse} {
					for _, rows := range Rows {
						for _, dim := range []int{1, 3} {
							for _, q := range RevHeunSteps {
								if err := CheckReversibleHeun(b, dt, fam.SDE, rows, dim, q, 0.01, dir); err != nil {
									t.Fatalf("%s %v %v (%d, %d) q %d: %v", fam.Name, dt, dir, rows, dim, q, err)
								}
							}
						}
					}
					if err := CheckReversibleHeun(b, dt, fam.SDE, largeRows(b), 1, 1, 0.01, dir); err != nil {
						t.Fatalf("%s %v %v (%d, 1) q 1: %v", fam.Name, dt, dir, largeRows(b), err)
					}
				}
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if err := CheckReversibleHeunRejections(b); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckReversibleHeunRejections checks that b refuses what the CPU reference refuses, with an
// error: a step that is not a finite number > 0, coefficients that are not finite, an unknown
// direction, y and z the same tensor, dtypes and shapes that do not agree, missing tensors and
// (on a device backend) host tensors.
func CheckReversibleHeunRejections(b ops.Backend) error {
	dev := b.Device()
	r := &rejectionTensors{dev: dev}
	defer r.close()
	alloc := r.alloc
	y, z, z32, zShort, flat := alloc(tensor.F64, 2, 3), alloc(tensor.F64, 2, 3), alloc(tensor.F32, 2, 3),
		alloc(tensor.F64, 1, 3), alloc(tensor.F64, 6)
	dw, dw32, dwRows := alloc(tensor.F64, 6, 4), alloc(tensor.F32, 6, 4), alloc(tensor.F64, 5, 4)
	if err := r.ok(); err != nil {
		return err
	}
	ou, err := ops.OrnsteinUhlenbeck(1, 0, 1)
	if err != nil {
		return err
	}
	fwd := ops.HeunForward
	type rejection struct {
		name string
		err  error
	}
	cases := []rejection{
		{"reversible heun: zero step", b.ReversibleHeun(y, z, dw, ou, 0, fwd)},
		{"reversible heun: negative step", b.ReversibleHeun(y, z, dw, ou, -0.1, fwd)},
		{"reversible heun: NaN step", b.ReversibleHeun(y, z, dw, ou, math.NaN(), fwd)},
		{"reversible heun: infinite step", b.ReversibleHeun(y, z, dw, ou, math.Inf(1), ops.HeunInverse)},
		{"reversible heun: NaN coefficient", b.ReversibleHeun(y, z, dw, ops.AffineSDE{B: math.NaN()}, 0.1, fwd)},
		{"reversible heun: infinite coefficient", b.ReversibleHeun(y, z, dw, ops.AffineSDE{E: math.Inf(-1)}, 0.1, fwd)},
		{"reversible heun: unknown direction", b.ReversibleHeun(y, z, dw, ou, 0.1, ops.HeunDirection(2))},
		{"reversible heun: y and z the same tensor", b.ReversibleHeun(y, y, dw, ou, 0.1, fwd)},
		{"reversible heun: nil y", b.ReversibleHeun(nil, z, dw, ou, 0.1, fwd)},
		{"reversible heun: nil z", b.ReversibleHeun(y, nil, dw, ou, 0.1, fwd)},
		{"reversible heun: nil increments", b.ReversibleHeun(y, z, nil, ou, 0.1, fwd)},
		{"reversible heun: rank-1 y", b.ReversibleHeun(flat, z, dw, ou, 0.1, fwd)},
		{"reversible heun: z dtype", b.ReversibleHeun(y, z32, dw, ou, 0.1, fwd)},
		{"reversible heun: z shape", b.ReversibleHeun(y, zShort, dw, ou, 0.1, fwd)},
		{"reversible heun: f32 increments", b.ReversibleHeun(y, z, dw32, ou, 0.1, fwd)},
		{"reversible heun: increments rows", b.ReversibleHeun(y, z, dwRows, ou, 0.1, fwd)},
	}
	if dev.Kind() != tensor.KindCPU {
		hz, err := tensor.New(nil, tensor.F64, 2, 3)
		if err != nil {
			return err
		}
		hw, err := tensor.New(nil, tensor.F64, 6, 4)
		if err != nil {
			return err
		}
		cases = append(cases,
			rejection{"reversible heun: host z on a device backend", b.ReversibleHeun(y, hz, dw, ou, 0.1, fwd)},
			rejection{"reversible heun: host increments on a device backend", b.ReversibleHeun(y, z, hw, ou, 0.1, fwd)})
	}
	var errs []error
	for _, c := range cases {
		if c.err == nil {
			errs = append(errs, fmt.Errorf("%s: accepted, want an error", c.name))
		}
	}
	return errors.Join(errs...)
}
