package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// adjointProblem is a small affine solve: n chains of d coordinates, q steps of size h, fixed
// increments, the loss L = Σ c·y_q + Σ e·z_q.
type adjointProblem struct {
	n, d, q int
	h       float64
	x0, dw  []float64
	cy, cz  []float64
}

func newAdjointProblem() adjointProblem {
	p := adjointProblem{n: 3, d: 2, q: 40, h: 0.02}
	nd := p.n * p.d
	p.x0, p.cy, p.cz = make([]float64, nd), make([]float64, nd), make([]float64, nd)
	for i := range p.x0 {
		p.x0[i] = 0.8 + 0.3*math.Sin(float64(i))
		p.cy[i] = 1 + 0.5*math.Cos(float64(i))
		p.cz[i] = 0.3 * math.Sin(2*float64(i)+1)
	}
	p.dw = make([]float64, nd*p.q)
	for i := range p.dw {
		p.dw[i] = math.Sqrt(p.h) * 1.3 * math.Sin(0.77*float64(i)+0.4)
	}
	return p
}

// loss runs the forward solve of s from x0 and returns L.
func (p adjointProblem) loss(t *testing.T, s AffineSDE, x0 []float64) float64 {
	y, _ := tensor.FromF64(append([]float64(nil), x0...), p.n, p.d)
	z, _ := tensor.FromF64(append([]float64(nil), x0...), p.n, p.d)
	dw, _ := tensor.FromF64(p.dw, p.n*p.d, p.q)
	require.NoError(t, Reference().ReversibleHeun(y, z, dw, s, p.h, HeunForward))
	yv, _ := y.F64()
	zv, _ := z.F64()
	l := 0.0
	for i := range yv {
		l += p.cy[i]*yv[i] + p.cz[i]*zv[i]
	}
	return l
}

// run solves forward, then calls the adjoint op over the steps in the given chunks (last chunk
// first); it returns dL/dx0, the coefficient cotangents summed over coordinates, and the
// reconstructed (y, z).
func (p adjointProblem) run(t *testing.T, b Backend, s AffineSDE, chunks []int) (gx []float64, gc [4]float64, y0, z0 []float64) {
	nd := p.n * p.d
	y, _ := tensor.FromF64(append([]float64(nil), p.x0...), p.n, p.d)
	z, _ := tensor.FromF64(append([]float64(nil), p.x0...), p.n, p.d)
	dw, _ := tensor.FromF64(p.dw, nd, p.q)
	require.NoError(t, b.ReversibleHeun(y, z, dw, s, p.h, HeunForward))
	ay, _ := tensor.FromF64(append([]float64(nil), p.cy...), p.n, p.d)
	az, _ := tensor.FromF64(append([]float64(nil), p.cz...), p.n, p.d)
	grad, _ := tensor.New(nil, tensor.F64, nd, 4)
	end := p.q
	for c := len(chunks) - 1; c >= 0; c-- {
		k0 := end - chunks[c]
		part := make([]float64, nd*chunks[c])
		for i := 0; i < nd; i++ {
			copy(part[i*chunks[c]:(i+1)*chunks[c]], p.dw[i*p.q+k0:i*p.q+end])
		}
		pw, _ := tensor.FromF64(part, nd, chunks[c])
		require.NoError(t, b.ReversibleHeunAdjoint(y, z, ay, az, grad, pw, s, p.h))
		end = k0
	}
	require.Zero(t, end)
	a, _ := ay.F64()
	c, _ := az.F64()
	g, _ := grad.F64()
	gx = make([]float64, nd)
	for i := range gx {
		gx[i] = a[i] + c[i]
		for j := 0; j < 4; j++ {
			gc[j] += g[4*i+j]
		}
	}
	y0, _ = y.F64()
	z0, _ = z.F64()
	return gx, gc, y0, z0
}

// The fused adjoint's gradients equal central finite differences of the forward solve (f64,
// step 1e-6 relative: truncation about 1e-12, rounding about 1e-16·|L|/1e-6), with respect to
// every x_0 coordinate and every coefficient of a general affine SDE (all four nonzero, so every
// term of the step's vector–Jacobian product is used), and the backward walk reconstructs x_0 to
// round-off.
func TestReversibleHeunAdjointFiniteDifferences(t *testing.T) {
	p := newAdjointProblem()
	for _, s := range []AffineSDE{{A: 0.3, B: -0.7, C: 0.4, E: 0.25}, {A: -0.2, B: 0.15, C: 0.1, E: -0.35}} {
		gx, gc, y0, z0 := p.run(t, Reference(), s, []int{p.q})
		for i := range p.x0 {
			assert.InDelta(t, p.x0[i], y0[i], 1e-13, "y_0[%d] reconstructed", i)
			assert.InDelta(t, p.x0[i], z0[i], 1e-13, "z_0[%d] reconstructed", i)
		}
		fd := func(f func(e float64) float64, v float64) float64 {
			e := 1e-6 * math.Max(1, math.Abs(v))
			return (f(e) - f(-e)) / (2 * e)
		}
		for i := range p.x0 {
			want := fd(func(e float64) float64 {
				x := append([]float64(nil), p.x0...)
				x[i] += e
				return p.loss(t, s, x)
			}, p.x0[i])
			assert.InDelta(t, want, gx[i], 1e-7*(1+math.Abs(want)), "%+v: dL/dx0[%d]", s, i)
		}
		coef := []*float64{&s.A, &s.B, &s.C, &s.E}
		for j, c := range coef {
			v := *c
			want := fd(func(e float64) float64 {
				*c = v + e
				defer func() { *c = v }()
				return p.loss(t, s, p.x0)
			}, v)
			assert.InDelta(t, want, gc[j], 1e-7*(1+math.Abs(want)), "%+v: dL/d coefficient %d", s, j)
		}
	}
}

// Splitting the steps over several calls (the solvers' chunks) gives the single call's bits, and
// a float32 state gives the float64 run's cotangents to float32 rounding of the state.
func TestReversibleHeunAdjointChunks(t *testing.T) {
	p := newAdjointProblem()
	s := AffineSDE{A: 0.3, B: -0.7, C: 0.4, E: 0.25}
	gx, gc, y0, z0 := p.run(t, Reference(), s, []int{p.q})
	hx, hc, hy, hz := p.run(t, CPU(), s, []int{7, 20, 13})
	require.Equal(t, gx, hx)
	require.Equal(t, gc, hc)
	require.Equal(t, y0, hy)
	require.Equal(t, z0, hz)
}

func TestReversibleHeunAdjointErrors(t *testing.T) {
	f64 := func(shape ...int) *tensor.Tensor { t, _ := tensor.New(nil, tensor.F64, shape...); return t }
	y, z, ay, az, grad, dw := f64(2, 3), f64(2, 3), f64(2, 3), f64(2, 3), f64(6, 4), f64(6, 5)
	ay32, _ := tensor.New(nil, tensor.F32, 2, 3)
	s := AffineSDE{A: 1, B: -1, C: 0.5}
	for _, c := range []struct {
		name                   string
		y, z, ay, az, grad, dw *tensor.Tensor
		s                      AffineSDE
		h                      float64
		check                  string
	}{
		{"h", y, z, ay, az, grad, dw, s, 0, "step size h = 0"},
		{"coefficients", y, z, ay, az, grad, dw, AffineSDE{E: math.Inf(1)}, 0.1, "must be finite"},
		{"ay dtype", y, z, ay32, az, grad, dw, s, 0.1, "cotangent of y is f32"},
		{"az shape", y, z, ay, f64(3, 2), grad, dw, s, 0.1, "cotangent of z has shape [3 2]"},
		{"grad shape", y, z, ay, az, f64(6, 3), dw, s, 0.1, "coefficient gradient has shape [6 3]"},
		{"increments", y, z, ay, az, grad, f64(5, 5), s, 0.1, "increments"},
		{"aliased", y, z, ay, ay, grad, dw, s, 0.1, "the same tensor"},
	} {
		var err error
		require.NotPanics(t, func() { err = Reference().ReversibleHeunAdjoint(c.y, c.z, c.ay, c.az, c.grad, c.dw, c.s, c.h) }, c.name)
		assert.ErrorContains(t, err, c.check, c.name)
	}
}
