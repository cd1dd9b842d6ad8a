//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Parity of kernels/revheun.cu with the CPU reference of ops/revheun.go: the kernel performs the
// reference's float64 operations one for one (fma where the reference uses math.FMA, the state
// widened once and rounded once), so y and z must be the same bits in f32 and f64, forward and
// inverse. Ornstein–Uhlenbeck and geometric Brownian motion; N·d = 0, 1, 31, 33, 93, 1025 and
// many coordinates; q = 1, 7 and 64 steps per call; y and z inside guard bands.
func TestReversibleHeunParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	ou, err := ops.OrnsteinUhlenbeck(1.5, -0.25, 0.9)
	require.NoError(t, err)
	gbm, err := ops.GeometricBrownian(0.35, 0.7)
	require.NoError(t, err)
	for _, c := range []struct{ n, d, q int }{{0, 3, 4}, {1, 1, 1}, {1, 31, 7}, {33, 1, 7}, {3, 31, 64}, {1025, 1, 7}, {manyPaths(), 3, 1}} {
		if c.n == manyPaths() && testing.Short() {
			continue
		}
		count := c.n * c.d
		w := make([]float64, count*c.q)
		for i := range w {
			w[i] = 0.2 * math.Sin(0.37*float64(i)+1)
		}
		hw, err := tensor.FromF64(w, count, c.q)
		require.NoError(t, err)
		dw := lvDevice(t, tensor.F64, w, count, c.q)
		y0, z0 := make([]float64, count), make([]float64, count)
		for i := range y0 {
			y0[i] = 0.5 + math.Mod(0.013*float64(i), 1.5)
			z0[i] = y0[i] + 0.01*math.Cos(float64(i))
		}
		for _, fam := range []struct {
			name string
			sde  ops.AffineSDE
		}{{"ou", ou}, {"gbm", gbm}} {
			for _, dt := range noiseDTypes {
				label := fmt.Sprintf("%s n=%d d=%d q=%d %v", fam.name, c.n, c.d, c.q, dt)
				gy := newGuarded(t, dt, y0, c.n, c.d)
				gz := newGuarded(t, dt, z0, c.n, c.d)
				ry := lvHost(t, dt, y0, c.n, c.d)
				rz := lvHost(t, dt, z0, c.n, c.d)
				for _, dir := range []ops.HeunDirection{ops.HeunForward, ops.HeunInverse} {
					require.NoError(t, b.ReversibleHeun(gy.view, gz.view, dw, fam.sde, 0.01, dir), label)
					require.NoError(t, ops.Reference().ReversibleHeun(ry, rz, hw, fam.sde, 0.01, dir), label)
					for _, p := range []struct {
						what string
						got  lvGuarded
						ref  *tensor.Tensor
					}{{"y", gy, ry}, {"z", gz, rz}} {
						got, want := p.got.values(t, label), lvValues(t, p.ref)
						for k := range want {
							if math.Float64bits(got[k]) != math.Float64bits(want[k]) {
								require.Failf(t, "values differ", "%s %v %s[%d]: gpu %v, reference %v", label, dir, p.what, k, got[k], want[k])
							}
						}
					}
				}
				gy.close()
				gz.close()
			}
		}
		require.NoError(t, dw.Close())
	}
}

// The GPU refuses what the reference refuses, with the same error.
func TestReversibleHeunErrorsOnDevice(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	ou, err := ops.OrnsteinUhlenbeck(1, 0, 1)
	require.NoError(t, err)
	y := lvDevice(t, tensor.F64, make([]float64, 6), 2, 3)
	z := lvDevice(t, tensor.F64, make([]float64, 6), 2, 3)
	dw := lvDevice(t, tensor.F64, make([]float64, 12), 6, 2)
	hz, _ := tensor.New(nil, tensor.F64, 2, 3)
	for _, c := range []struct {
		name  string
		z     *tensor.Tensor
		s     ops.AffineSDE
		h     float64
		dir   ops.HeunDirection
		check string
	}{
		{"h", z, ou, -1, ops.HeunForward, "step size h = -1"},
		{"coefficients", z, ops.AffineSDE{B: math.NaN()}, 0.1, ops.HeunInverse, "must be finite"},
		{"direction", z, ou, 0.1, ops.HeunDirection(2), "HeunDirection(2)"},
		{"aliased", y, ou, 0.1, ops.HeunForward, "the same tensor"},
		{"host z", hz, ou, 0.1, ops.HeunForward, "z is f64 on cpu"},
	} {
		want := ops.CheckReversibleHeun(gpu, y, c.z, dw, c.s, c.h, c.dir)
		require.Error(t, want, c.name)
		got := b.ReversibleHeun(y, c.z, dw, c.s, c.h, c.dir)
		assert.EqualError(t, got, want.Error(), c.name)
		assert.ErrorContains(t, got, c.check, c.name)
	}
	for _, x := range []*tensor.Tensor{y, z, dw} {
		require.NoError(t, x.Close())
	}
}

// Parity of revheun_adjoint with the CPU reference of ops/revheun_adjoint.go: the kernel performs
// the reference's float64 operations one for one, so the reconstructed state (f32 and f64), the
// cotangents and the coefficient cotangents must be the same bits. A general affine SDE (all four
// coefficients nonzero) and OU; N·d = 0, 1, 31, 33, 93, 1025 and many coordinates; q = 1, 7, 64.
func TestReversibleHeunAdjointParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	ou, err := ops.OrnsteinUhlenbeck(1.5, -0.25, 0.9)
	require.NoError(t, err)
	general := ops.AffineSDE{A: 0.3, B: -0.7, C: 0.4, E: 0.25}
	for _, c := range []struct{ n, d, q int }{{0, 3, 4}, {1, 1, 1}, {1, 31, 7}, {33, 1, 7}, {3, 31, 64}, {1025, 1, 7}, {manyPaths(), 3, 1}} {
		if c.n == manyPaths() && testing.Short() {
			continue
		}
		count := c.n * c.d
		w := make([]float64, count*c.q)
		for i := range w {
			w[i] = 0.2 * math.Sin(0.37*float64(i)+1)
		}
		hw, err := tensor.FromF64(w, count, c.q)
		require.NoError(t, err)
		dw := lvDevice(t, tensor.F64, w, count, c.q)
		y0, z0, a0, c0, g0 := make([]float64, count), make([]float64, count), make([]float64, count), make([]float64, count), make([]float64, 4*count)
		for i := range y0 {
			y0[i] = 0.5 + math.Mod(0.013*float64(i), 1.5)
			z0[i] = y0[i] + 0.01*math.Cos(float64(i))
			a0[i] = math.Sin(0.3 * float64(i))
			c0[i] = 0.2 * math.Cos(0.7*float64(i))
		}
		for i := range g0 {
			g0[i] = 0.1 * float64(i%5)
		}
		for _, fam := range []struct {
			name string
			sde  ops.AffineSDE
		}{{"general", general}, {"ou", ou}} {
			for _, dt := range noiseDTypes {
				label := fmt.Sprintf("%s n=%d d=%d q=%d %v", fam.name, c.n, c.d, c.q, dt)
				gy := newGuarded(t, dt, y0, c.n, c.d)
				gz := newGuarded(t, dt, z0, c.n, c.d)
				ga := newGuarded(t, tensor.F64, a0, c.n, c.d)
				gc := newGuarded(t, tensor.F64, c0, c.n, c.d)
				gg := newGuarded(t, tensor.F64, g0, count, 4)
				ry, rz := lvHost(t, dt, y0, c.n, c.d), lvHost(t, dt, z0, c.n, c.d)
				ra, rc := lvHost(t, tensor.F64, a0, c.n, c.d), lvHost(t, tensor.F64, c0, c.n, c.d)
				rg := lvHost(t, tensor.F64, g0, count, 4)
				require.NoError(t, b.ReversibleHeunAdjoint(gy.view, gz.view, ga.view, gc.view, gg.view, dw, fam.sde, 0.01), label)
				require.NoError(t, ops.Reference().ReversibleHeunAdjoint(ry, rz, ra, rc, rg, hw, fam.sde, 0.01), label)
				for _, p := range []struct {
					what string
					got  lvGuarded
					ref  *tensor.Tensor
				}{{"y", gy, ry}, {"z", gz, rz}, {"ay", ga, ra}, {"az", gc, rc}, {"grad", gg, rg}} {
					got, want := p.got.values(t, label), lvValues(t, p.ref)
					for k := range want {
						if math.Float64bits(got[k]) != math.Float64bits(want[k]) {
							require.Failf(t, "values differ", "%s %s[%d]: gpu %v, reference %v", label, p.what, k, got[k], want[k])
						}
					}
					p.got.close()
				}
			}
		}
		require.NoError(t, dw.Close())
	}
}

// The GPU's adjoint refuses what the reference refuses, with the same error.
func TestReversibleHeunAdjointErrorsOnDevice(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	ou, err := ops.OrnsteinUhlenbeck(1, 0, 1)
	require.NoError(t, err)
	dev := func(shape ...int) *tensor.Tensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		return lvDevice(t, tensor.F64, make([]float64, n), shape...)
	}
	y, z, ay, az, grad, dw := dev(2, 3), dev(2, 3), dev(2, 3), dev(2, 3), dev(6, 4), dev(6, 2)
	g3 := dev(6, 3)
	for _, c := range []struct {
		name  string
		az    *tensor.Tensor
		grad  *tensor.Tensor
		h     float64
		check string
	}{
		{"h", az, grad, -1, "step size h = -1"},
		{"aliased", ay, grad, 0.1, "the same tensor"},
		{"grad shape", az, g3, 0.1, "coefficient gradient has shape [6 3]"},
	} {
		want := ops.CheckReversibleHeunAdjoint(gpu, y, z, ay, c.az, c.grad, dw, ou, c.h)
		require.Error(t, want, c.name)
		got := b.ReversibleHeunAdjoint(y, z, ay, c.az, c.grad, dw, ou, c.h)
		assert.EqualError(t, got, want.Error(), c.name)
		assert.ErrorContains(t, got, c.check, c.name)
	}
	for _, x := range []*tensor.Tensor{y, z, ay, az, grad, dw, g3} {
		require.NoError(t, x.Close())
	}
}
