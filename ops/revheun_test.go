package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// One inverse step returns the state of one forward step to a few ulp (the products are
// recomputed from the same operands; only the additions' roundings differ), for both families and
// for increments of either sign.
func TestRevHeunInverseStepUndoesForwardStep(t *testing.T) {
	ou, err := OrnsteinUhlenbeck(2, -0.5, 1.3)
	require.NoError(t, err)
	gbm, err := GeometricBrownian(0.4, 0.9)
	require.NoError(t, err)
	for _, s := range []AffineSDE{ou, gbm} {
		for _, c := range [][4]float64{{1, 1, 0.01, 0.1}, {-0.7, 0.2, 0.001, -0.03}, {3, 2.9, 0.1, 0.5}} {
			y1, z1 := RevHeunForwardStep(s, c[0], c[1], c[2], c[3])
			require.NotEqual(t, c[0], y1)
			y, z := RevHeunInverseStep(s, y1, z1, c[2], c[3])
			scale := math.Max(math.Abs(y1), math.Abs(z1)) + math.Abs(c[0]) + math.Abs(c[1])
			assert.InDelta(t, c[0], y, 8*0x1p-52*scale, "%+v %v y", s, c)
			assert.InDelta(t, c[1], z, 8*0x1p-52*scale, "%+v %v z", s, c)
		}
	}
}

// The op applies the scalar steps coordinate by coordinate, row c·d + j of the increments driving
// coordinate j of chain c, and HeunInverse runs them backwards.
func TestReversibleHeunOpIsTheScalarSteps(t *testing.T) {
	s, err := GeometricBrownian(0.2, 0.5)
	require.NoError(t, err)
	const n, d, q, h = 3, 2, 5, 0.05
	yv, zv := []float64{1, 2, 0.5, 0.7, 1.5, 0.9}, []float64{1.1, 2, 0.4, 0.7, 1.5, 1}
	w := make([]float64, n*d*q)
	for i := range w {
		w[i] = 0.1 * math.Sin(float64(i))
	}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		y, err := tensor.FromFloat64s(dt, yv, n, d)
		require.NoError(t, err)
		z, err := tensor.FromFloat64s(dt, zv, n, d)
		require.NoError(t, err)
		dw, err := tensor.FromF64(w, n*d, q)
		require.NoError(t, err)
		y0, _ := y.Float64s()
		z0, _ := z.Float64s()
		require.NoError(t, Reference().ReversibleHeun(y, z, dw, s, h, HeunForward))
		gy, _ := y.Float64s()
		gz, _ := z.Float64s()
		for i := range yv {
			a, b := y0[i], z0[i]
			for k := range q {
				a, b = RevHeunForwardStep(s, a, b, h, w[i*q+k])
			}
			if dt == tensor.F32 {
				a, b = float64(float32(a)), float64(float32(b))
			}
			assert.Equal(t, a, gy[i], "%v y[%d]", dt, i)
			assert.Equal(t, b, gz[i], "%v z[%d]", dt, i)
		}
		require.NoError(t, Reference().ReversibleHeun(y, z, dw, s, h, HeunInverse))
		by, _ := y.Float64s()
		bz, _ := z.Float64s()
		for i := range yv {
			a, b := gy[i], gz[i]
			for k := q - 1; k >= 0; k-- {
				a, b = RevHeunInverseStep(s, a, b, h, w[i*q+k])
			}
			if dt == tensor.F32 {
				a, b = float64(float32(a)), float64(float32(b))
			}
			assert.Equal(t, a, by[i], "%v inverse y[%d]", dt, i)
			assert.Equal(t, b, bz[i], "%v inverse z[%d]", dt, i)
			assert.InDelta(t, y0[i], by[i], 1e-6, "%v back to the start", dt)
		}
	}
}

func TestReversibleHeunOpRejectsBadArguments(t *testing.T) {
	ou, err := OrnsteinUhlenbeck(1, 0, 1)
	require.NoError(t, err)
	mk := func(dt tensor.DType, shape ...int) *tensor.Tensor {
		x, err := tensor.New(nil, dt, shape...)
		require.NoError(t, err)
		return x
	}
	y, z, dw := mk(tensor.F64, 2, 3), mk(tensor.F64, 2, 3), mk(tensor.F64, 6, 4)
	require.NoError(t, Reference().ReversibleHeun(y, z, dw, ou, 0.1, HeunForward))
	for _, c := range []struct {
		name      string
		y, z, dw  *tensor.Tensor
		s         AffineSDE
		h         float64
		dir       HeunDirection
		wantError string
	}{
		{"nil y", nil, z, dw, ou, 0.1, HeunForward, "y must be an open (N, d) tensor"},
		{"z shape", y, mk(tensor.F64, 3, 2), dw, ou, 0.1, HeunForward, "z has shape [3 2]"},
		{"z dtype", y, mk(tensor.F32, 2, 3), dw, ou, 0.1, HeunForward, "z is f32"},
		{"aliased", y, y, dw, ou, 0.1, HeunForward, "the same tensor"},
		{"increments dtype", y, z, mk(tensor.F32, 6, 4), ou, 0.1, HeunForward, "increments is f32"},
		{"increments rows", y, z, mk(tensor.F64, 5, 4), ou, 0.1, HeunForward, "increments has shape [5 4]"},
		{"increments rank", y, z, mk(tensor.F64, 24), ou, 0.1, HeunForward, "increments must be an open (N·d, q) tensor"},
		{"h 0", y, z, dw, ou, 0, HeunForward, "step size h = 0"},
		{"h NaN", y, z, dw, ou, math.NaN(), HeunForward, "step size h = NaN"},
		{"h Inf", y, z, dw, ou, math.Inf(1), HeunForward, "step size h = +Inf"},
		{"coefficients", y, z, dw, AffineSDE{C: math.Inf(1)}, 0.1, HeunForward, "must be finite"},
		{"direction", y, z, dw, ou, 0.1, HeunDirection(7), "HeunDirection(7)"},
	} {
		var err error
		assert.NotPanics(t, func() { err = Reference().ReversibleHeun(c.y, c.z, c.dw, c.s, c.h, c.dir) }, c.name)
		assert.ErrorContains(t, err, c.wantError, c.name)
	}
}
