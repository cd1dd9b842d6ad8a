package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// The discrete adjoint of reversible Heun for AffineSDE (docs/math.md §4.8), fused: one backward
// step takes the state (y', z') at t_{k+1} and its cotangents (a_y, a_z) to the state (y, z) at
// t_k (ReversibleHeun's inverse) and its cotangents, and adds the step's cotangents of the
// coefficients (A, B, C, E) into g. With f = A + B x, g = C + E x (∂f/∂x = B, ∂g/∂x = E;
// ∂f/∂A = 1, ∂f/∂B = x, ∂g/∂C = 1, ∂g/∂E = x), ΔW the step's increment, h̄ = ½h, the arithmetic,
// fixed because the kernel repeats it bit for bit:
//
//	at z':  v_f = h̄·a_y,  v_g = (½a_y)·ΔW,  ã = fma(E, v_g, fma(B, v_f, a_z))
//	        g += (v_f, v_f·z', v_g, v_g·z')                  (the products as fma into g)
//	        (y, z) = inverse step (ReversibleHeun)
//	at z:   v_f = fma(h, ã, h̄·a_y),  v_g = (½a_y + ã)·ΔW,  d = fma(E, v_g, B·v_f)
//	        g += (v_f, v_f·z, v_g, v_g·z)
//	        a_y ← fma(2, ã, a_y),  a_z ← d − ã
//
// After the first step of the solve, dL/dx_0 = a_y + a_z (y_0 = z_0 = x_0).

// RevHeunAdjointStep is one backward step of one coordinate (the arithmetic above): it returns the
// state and cotangents at t_k from those at t_{k+1} and adds into g.
func RevHeunAdjointStep(s AffineSDE, y1, z1, ay, az, h, dw float64, g *[4]float64) (y, z, ay0, az0 float64) {
	hh := 0.5 * h
	half := 0.5 * ay
	vf := hh * ay
	vg := half * dw
	at := math.FMA(s.E, vg, math.FMA(s.B, vf, az))
	g[0] += vf
	g[1] = math.FMA(vf, z1, g[1])
	g[2] += vg
	g[3] = math.FMA(vg, z1, g[3])
	y, z = RevHeunInverseStep(s, y1, z1, h, dw)
	vf = math.FMA(h, at, float64(hh*ay))
	vg = float64(half+at) * dw
	dx := math.FMA(s.E, vg, float64(s.B*vf))
	g[0] += vf
	g[1] = math.FMA(vf, z, g[1])
	g[2] += vg
	g[3] = math.FMA(vg, z, g[3])
	return y, z, math.FMA(2, at, ay), dx - at
}

// CheckReversibleHeunAdjoint validates ReversibleHeunAdjoint's arguments: those of
// ReversibleHeun (y, z, dw, s, h); ay and az distinct f64 (N, d) tensors on dev; grad an f64
// (N·d, 4) tensor on dev; none of them one of the others.
func CheckReversibleHeunAdjoint(dev tensor.Device, y, z, ay, az, grad, dw *tensor.Tensor, s AffineSDE, h float64) error {
	const op = "reversible heun adjoint"
	if err := CheckReversibleHeun(dev, y, z, dw, s, h, HeunInverse); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	n, dim := y.Dim(0), y.Dim(1)
	return checkHeunAdjointBuffers(op, dev, y, z, ay, az, grad, dw, "coefficient gradient", n*dim, 4)
}

// checkHeunAdjointBuffers validates the cotangents and gradient of a fused adjoint op named op
// whose state y, z and increments dw are already checked: ay and az f64 tensors of y's shape on
// dev, grad an f64 (gradShape) tensor on dev, no tensor passed twice.
func checkHeunAdjointBuffers(op string, dev tensor.Device, y, z, ay, az, grad, dw *tensor.Tensor, gradName string, gradShape ...int) error {
	n, dim := y.Dim(0), y.Dim(1)
	if err := checkSame(op, "cotangent of y", ay, dev, tensor.F64, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "cotangent of z", az, dev, tensor.F64, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, gradName, grad, dev, tensor.F64, gradShape...); err != nil {
		return err
	}
	ts := []*tensor.Tensor{y, z, ay, az, grad, dw}
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if ts[i] == ts[j] {
				return fmt.Errorf("%s: the same tensor is passed twice (the op updates y, z, ay, az and grad in place)", op)
			}
		}
	}
	return nil
}

// ReversibleHeunAdjoint walks back the q reversible Heun steps of the affine SDE s whose
// increments dw (N·d, q) a ReversibleHeun call took, k = q−1 … 0, every coordinate j of every
// chain c with the increments dw[c·d + j, ·]: (y, z) (N, d) become the state before the steps
// (ReversibleHeun's inverse, bit for bit), the cotangents ay and az (f64, (N, d)) of the state
// after them become those of the state before, and grad[c·d + j, ·] (f64) gains that
// coordinate's cotangents of (A, B, C, E) (see RevHeunAdjointStep). A float32 state is widened
// when the op starts and rounded once at its end; the cotangents and grad are float64 throughout.
func (b cpuBackend) ReversibleHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, s AffineSDE, h float64) error {
	if err := CheckReversibleHeunAdjoint(tensor.CPU(), y, z, ay, az, grad, dw, s, h); err != nil {
		return err
	}
	n, dim, q := y.Dim(0), y.Dim(1), dw.Dim(1)
	if n == 0 || dim == 0 || q == 0 {
		return nil
	}
	ry, rz := rowsOf(y), rowsOf(z)
	w, _ := dw.F64()
	a, _ := ay.F64()
	c, _ := az.F64()
	gr, _ := grad.F64()
	b.parallelRows(n, 40*dim*q, func(lo, hi int) {
		for i := lo * dim; i < hi*dim; i++ {
			yv, zv, av, cv := ry.at(i), rz.at(i), a[i], c[i]
			g := [4]float64{gr[4*i], gr[4*i+1], gr[4*i+2], gr[4*i+3]}
			inc := w[i*q : (i+1)*q]
			for k := q - 1; k >= 0; k-- {
				yv, zv, av, cv = RevHeunAdjointStep(s, yv, zv, av, cv, h, inc[k], &g)
			}
			ry.put(i, yv)
			rz.put(i, zv)
			a[i], c[i] = av, cv
			copy(gr[4*i:4*i+4], g[:])
		}
	})
	return nil
}
