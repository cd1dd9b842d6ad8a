package optest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The fused reversible Heun ops of the Langevin SDE of a Gaussian mixture
// (ops.Backend.LangevinMixtureHeun and LangevinMixtureHeunAdjoint, docs/math.md §4.8). A backend
// performs the reference's float64 operations one for one except exp, whose last bit may differ
// (the device's against Go's), so the checks compare to a tolerance: |got − want| ≤
// LMHeunTol·(1 + |want|) and, in float32, one float32 rounding step (2⁻²³·|want|) on top, because
// two float64 values a hair apart may round to neighbouring float32 values. Under host
// execution the largest difference over the whole suite (64 steps, 1025 rows, the adjoint's
// parameter gradients included) was 1.4e-15·(1 + |want|); a step size off by a relative 1e-9 moves
// the state by far more than the tolerance and is caught (TestLangevinMixtureHeunChecksCatch…).

// LMHeunTol is the relative tolerance of the checks (see above): about 70 times the largest
// difference measured under host execution.
const LMHeunTol = 1e-13

// LMHeunMixtures are the mixtures the checks run: one component in one dimension, and four
// components of different variances and logits in three dimensions.
func LMHeunMixtures() []struct {
	Name string
	M    *ops.LangevinMixture
} {
	one, err := ops.NewLangevinMixture(1, []float64{0.3}, []float64{0}, []float64{0.8})
	if err != nil {
		panic(err)
	}
	four, err := ops.NewLangevinMixture(3, []float64{-1, 0.5, 0.2, 1.2, -0.4, 0.8, 0, 0, -1, 0.6, 1.1, -0.7},
		[]float64{0.2, -0.5, 1, 0}, []float64{0.5, 1.2, 0.8, 2})
	if err != nil {
		panic(err)
	}
	return []struct {
		Name string
		M    *ops.LangevinMixture
	}{{"one", one}, {"four", four}}
}

// lmHeunInputs returns start states y0, z0 (count values spread over [−2, 2], z0 a little off
// y0) and increments (count, q) of about the size of steps h = 0.01.
func lmHeunInputs(count, q int) (y0, z0, dw []float64) {
	y0, z0, dw = make([]float64, count), make([]float64, count), make([]float64, count*q)
	for i := range y0 {
		y0[i] = -2 + math.Mod(0.37*float64(i), 4)
		z0[i] = y0[i] + 0.01*math.Cos(float64(i))
	}
	for i := range dw {
		dw[i] = 0.1 * math.Sin(0.37*float64(i)+1)
	}
	return y0, z0, dw
}

// closeValues compares got with want element by element: |got − want| ≤ tol·(1 + |want|) +
// f32·|want| (f32 = 2⁻²³ for float32 values, else 0); NaN equal to NaN.
func closeValues(got, want []float64, width int, tol, f32 float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("length %d, reference has %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if math.IsNaN(w) || math.IsNaN(g) {
			if math.IsNaN(w) != math.IsNaN(g) {
				return fmt.Errorf("row %d col %d: got %v, reference %v", i/width, i%width, g, w)
			}
			continue
		}
		if math.Abs(g-w) > tol*(1+math.Abs(w))+f32*math.Abs(w) {
			return fmt.Errorf("row %d col %d: got %v, reference %v (difference %.3g)", i/width, i%width, g, w, g-w)
		}
	}
	return nil
}

// f32Step is one float32 rounding step relative to a value (0 for float64).
func f32Step(dt tensor.DType) float64 {
	if dt == tensor.F32 {
		return 0x1p-23
	}
	return 0
}

// CheckLangevinMixtureHeun runs b's LangevinMixtureHeun of m on (rows, d) states in dt with q
// steps of size h in direction dir, y and z inside guard bands, and compares y and z with the CPU
// reference's (LMHeunTol); the increments must come back unchanged.
func CheckLangevinMixtureHeun(b ops.Backend, dt tensor.DType, m *ops.LangevinMixture, rows, q int, h float64, dir ops.HeunDirection) error {
	dim := m.Dim()
	y0, z0, w := lmHeunInputs(rows*dim, q)
	return checkHeunOp(b, dt, rows, dim, q, y0, z0, w, func(be ops.Backend, y, z, dw *tensor.Tensor) error {
		return be.LangevinMixtureHeun(y, z, dw, m, h, dir)
	}, func(got, want []float64, width int) error {
		return closeValues(got, want, width, LMHeunTol, f32Step(dt))
	})
}

// CheckLangevinMixtureHeunAdjoint runs b's LangevinMixtureHeunAdjoint of m on (rows, d) states in
// dt with q steps of size h, with nonzero cotangents and parameter gradients to add into, every
// tensor inside guard bands, and compares the state, the cotangents and the parameter gradient
// with the CPU reference's (LMHeunTol).
func CheckLangevinMixtureHeunAdjoint(b ops.Backend, dt tensor.DType, m *ops.LangevinMixture, rows, q int, h float64) error {
	dev, dim, np := b.Device(), m.Dim(), m.NumParams()
	count := rows * dim
	y0, z0, w := lmHeunInputs(count, q)
	a0, c0, g0 := make([]float64, count), make([]float64, count), make([]float64, np*rows)
	for i := range a0 {
		a0[i] = math.Sin(0.7*float64(i) + 0.3)
		c0[i] = 0.1 * math.Cos(1.3*float64(i))
	}
	for i := range g0 {
		g0[i] = 0.01 * float64(i%7)
	}
	type buf struct {
		name  string
		dt    tensor.DType
		vals  []float64
		shape []int
		g     Guarded
		ref   *tensor.Tensor
	}
	bufs := []*buf{{name: "y", dt: dt, vals: y0, shape: []int{rows, dim}}, {name: "z", dt: dt, vals: z0, shape: []int{rows, dim}},
		{name: "cotangent of y", dt: tensor.F64, vals: a0, shape: []int{rows, dim}},
		{name: "cotangent of z", dt: tensor.F64, vals: c0, shape: []int{rows, dim}},
		{name: "parameter gradient", dt: tensor.F64, vals: g0, shape: []int{np, rows}},
		{name: "increments", dt: tensor.F64, vals: w, shape: []int{count, q}}}
	for _, x := range bufs {
		var err error
		if x.g, err = NewGuarded(dev, guard, x.dt, x.vals, x.shape...); err != nil {
			return err
		}
		defer x.g.close()
		if x.ref, err = tensor.FromFloat64s(x.dt, x.vals, x.shape...); err != nil {
			return err
		}
	}
	if err := b.LangevinMixtureHeunAdjoint(bufs[0].g.view, bufs[1].g.view, bufs[2].g.view, bufs[3].g.view,
		bufs[4].g.view, bufs[5].g.view, m, h); err != nil {
		return err
	}
	if err := dev.Synchronize(); err != nil {
		return err
	}
	if err := ops.Reference().LangevinMixtureHeunAdjoint(bufs[0].ref, bufs[1].ref, bufs[2].ref, bufs[3].ref,
		bufs[4].ref, bufs[5].ref, m, h); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	for _, x := range bufs {
		got, err := x.g.values(x.name)
		if err != nil {
			return err
		}
		want, err := x.ref.Float64s()
		if err != nil {
			return err
		}
		if err := closeValues(got, want, x.shape[1], LMHeunTol, f32Step(x.dt)); err != nil {
			return fmt.Errorf("%s: %w", x.name, err)
		}
	}
	return nil
}

// RunLangevinMixtureHeun runs the checks of both ops against b as subtests: LMHeunMixtures ×
// both dtypes × q ∈ {1, 7, 64} over the edge row counts (Rows), forward, inverse and adjoint;
// then the rejections of bad input. It does not close b.
func RunLangevinMixtureHeun(t *testing.T, b ops.Backend) {
	t.Run("checks", func(t *testing.T) {
		for _, mix := range LMHeunMixtures() {
			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				for _, rows := range Rows {
					for _, q := range RevHeunSteps {
						for _, dir := range []ops.HeunDirection{ops.HeunForward, ops.HeunInverse} {
							if err := CheckLangevinMixtureHeun(b, dt, mix.M, rows, q, 0.01, dir); err != nil {
								t.Fatalf("%s %v %v rows %d q %d: %v", mix.Name, dt, dir, rows, q, err)
							}
						}
						if err := CheckLangevinMixtureHeunAdjoint(b, dt, mix.M, rows, q, 0.01); err != nil {
							t.Fatalf("adjoint %s %v rows %d q %d: %v", mix.Name, dt, rows, q, err)
						}
					}
				}
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if err := CheckLangevinMixtureHeunRejections(b); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckLangevinMixtureHeunRejections checks that b refuses, with an error: no mixture, a state
// whose width is not the mixture's dimension, a bad step, y and z the same tensor, a parameter
// gradient of the wrong shape or dtype, a cotangent that is also the state, and (on a device
// backend) host tensors.
func CheckLangevinMixtureHeunRejections(b ops.Backend) error {
	dev := b.Device()
	r := &rejectionTensors{dev: dev}
	defer r.close()
	alloc := r.alloc
	m := LMHeunMixtures()[1].M // d = 3, K = 4: 16 parameters
	y, z, ay, az := alloc(tensor.F64, 2, 3), alloc(tensor.F64, 2, 3), alloc(tensor.F64, 2, 3), alloc(tensor.F64, 2, 3)
	y2, z2, dw2 := alloc(tensor.F64, 3, 2), alloc(tensor.F64, 3, 2), alloc(tensor.F64, 6, 4)
	dw, grad, gradT, grad32 := alloc(tensor.F64, 6, 4), alloc(tensor.F64, 16, 2), alloc(tensor.F64, 2, 16), alloc(tensor.F32, 16, 2)
	if err := r.ok(); err != nil {
		return err
	}
	fwd := ops.HeunForward
	type rejection struct {
		name string
		err  error
	}
	cases := []rejection{
		{"no mixture", b.LangevinMixtureHeun(y, z, dw, nil, 0.1, fwd)},
		{"width 2 for a mixture in 3-D", b.LangevinMixtureHeun(y2, z2, dw2, m, 0.1, fwd)},
		{"zero step", b.LangevinMixtureHeun(y, z, dw, m, 0, fwd)},
		{"NaN step", b.LangevinMixtureHeun(y, z, dw, m, math.NaN(), ops.HeunInverse)},
		{"unknown direction", b.LangevinMixtureHeun(y, z, dw, m, 0.1, ops.HeunDirection(2))},
		{"y and z the same tensor", b.LangevinMixtureHeun(y, y, dw, m, 0.1, fwd)},
		{"adjoint: no mixture", b.LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw, nil, 0.1)},
		{"adjoint: negative step", b.LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw, m, -0.1)},
		{"adjoint: gradient (N, P)", b.LangevinMixtureHeunAdjoint(y, z, ay, az, gradT, dw, m, 0.1)},
		{"adjoint: f32 gradient", b.LangevinMixtureHeunAdjoint(y, z, ay, az, grad32, dw, m, 0.1)},
		{"adjoint: cotangent of y is y", b.LangevinMixtureHeunAdjoint(y, z, y, az, grad, dw, m, 0.1)},
		{"adjoint: cotangents the same tensor", b.LangevinMixtureHeunAdjoint(y, z, ay, ay, grad, dw, m, 0.1)},
	}
	if dev.Kind() != tensor.KindCPU {
		hg, err := tensor.New(nil, tensor.F64, 16, 2)
		if err != nil {
			return err
		}
		hw, err := tensor.New(nil, tensor.F64, 6, 4)
		if err != nil {
			return err
		}
		cases = append(cases,
			rejection{"host increments on a device backend", b.LangevinMixtureHeun(y, z, hw, m, 0.1, fwd)},
			rejection{"adjoint: host gradient on a device backend", b.LangevinMixtureHeunAdjoint(y, z, ay, az, hg, dw, m, 0.1)})
	}
	var errs []error
	for _, c := range cases {
		if c.err == nil {
			errs = append(errs, fmt.Errorf("langevin mixture heun: %s: accepted, want an error", c.name))
		}
	}
	return errors.Join(errs...)
}
