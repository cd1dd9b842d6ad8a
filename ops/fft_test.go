package ops

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// fftSignals returns batch·n complex values with real and imaginary parts uniform in [−1, 1),
// from a fixed seed.
func fftSignals(seed uint64, batch, n int) []complex128 {
	r := rand.New(rand.NewPCG(seed, 0xff7))
	z := make([]complex128, batch*n)
	for i := range z {
		z[i] = complex(2*r.Float64()-1, 2*r.Float64()-1)
	}
	return z
}

// fftTensor is a host (batch, n, 2) tensor of dt holding z (rounded to float32 for F32).
func fftTensor(t *testing.T, dt tensor.DType, z []complex128, batch, n int) *tensor.Tensor {
	t.Helper()
	v := make([]float64, 2*len(z))
	for i, c := range z {
		v[2*i], v[2*i+1] = real(c), imag(c)
	}
	x, err := tensor.FromFloat64s(dt, v, batch, n, 2)
	require.NoError(t, err)
	return x
}

// fftValues returns the complex values of a host (batch, n, 2) tensor.
func fftValues(t *testing.T, x *tensor.Tensor) []complex128 {
	t.Helper()
	v, err := x.Float64s()
	require.NoError(t, err)
	z := make([]complex128, len(v)/2)
	for i := range z {
		z[i] = complex(v[2*i], v[2*i+1])
	}
	return z
}

// fftRun transforms z (batch signals of length n) on the CPU backend out of place.
func fftRun(t *testing.T, b Backend, dt tensor.DType, z []complex128, batch, n int, inverse bool) []complex128 {
	t.Helper()
	src := fftTensor(t, dt, z, batch, n)
	dst, err := tensor.New(nil, dt, batch, n, 2)
	require.NoError(t, err)
	require.NoError(t, b.FFT(dst, src, inverse))
	return fftValues(t, dst)
}

// fftUnit is e^{sign·2πi m/n} with m reduced modulo n first, so that the angle is accurate for any
// integer m.
func fftUnit(sign float64, m, n int) complex128 {
	m %= n
	if m < 0 {
		m += n
	}
	s, c := math.Sincos(2 * math.Pi * float64(m) / float64(n))
	return complex(c, sign*s)
}

// fftDirect is the O(n²) definition, signal by signal: forward X_k = Σ_j x_j e^{−2πi jk/n},
// inverse x_j = (1/n) Σ_k X_k e^{+2πi jk/n}.
func fftDirect(z []complex128, batch, n int, inverse bool) []complex128 {
	sign, scale := -1.0, 1.0
	if inverse {
		sign, scale = 1, 1/float64(n)
	}
	out := make([]complex128, len(z))
	for b := 0; b < batch; b++ {
		x := z[b*n : (b+1)*n]
		for k := 0; k < n; k++ {
			var s complex128
			for j, v := range x {
				s += v * fftUnit(sign, j*k, n)
			}
			out[b*n+k] = s * complex(scale, 0)
		}
	}
	return out
}

// fftMaxDiff is max_i |a_i − b_i|.
func fftMaxDiff(a, b []complex128) float64 {
	m := 0.0
	for i := range a {
		m = max(m, cmplx.Abs(a[i]-b[i]))
	}
	return m
}

func fftRMS(z []complex128) float64 {
	s := 0.0
	for _, v := range z {
		s += real(v)*real(v) + imag(v)*imag(v)
	}
	return math.Sqrt(s / float64(max(len(z), 1)))
}

func fftLog2(n int) float64 { return math.Max(1, math.Log2(float64(n))) }

const eps64 = 0x1p-52

// The transform is the definition: both directions against the direct O(n²) sum for n ≤ 64.
// Inputs lie in [−1, 1) + i[−1, 1), so outputs are at most 2n in modulus; the direct sum itself
// carries rounding of order n·ε·max|x|, and the FFT's error is far smaller (≈ ε·log₂n·√n), so
// 1e-12·n bounds both with room while still catching any wrong sign, scale or index.
func TestFFTMatchesDirectDFT(t *testing.T) {
	const batch = 3
	for n := 1; n <= 64; n *= 2 {
		for _, inverse := range []bool{false, true} {
			t.Run(fmt.Sprintf("n=%d/inverse=%v", n, inverse), func(t *testing.T) {
				z := fftSignals(uint64(n), batch, n)
				got := fftRun(t, CPU(), tensor.F64, z, batch, n, inverse)
				want := fftDirect(z, batch, n, inverse)
				d := fftMaxDiff(got, want)
				assert.LessOrEqual(t, d, 1e-12*float64(n), "max |FFT − DFT|")
			})
		}
	}
}

// inverse(forward(x)) = x and forward(inverse(x)) = x. Both transforms are backward stable with
// an error of order ε·log₂n relative to the signal's RMS; 8·log₂n·ε per element is that bound
// with a safety factor (the measured worst case is about 0.7·log₂n·ε).
func TestFFTRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 8, 256, 4096, 1 << 16} {
		batch := max(1, 4096/n)
		z := fftSignals(uint64(n)+7, batch, n)
		fwd := fftRun(t, CPU(), tensor.F64, z, batch, n, false)
		back := fftRun(t, CPU(), tensor.F64, fwd, batch, n, true)
		tol := 8 * fftLog2(n) * eps64 * fftRMS(z)
		assert.LessOrEqual(t, fftMaxDiff(back, z), tol, "n=%d: inverse(forward(x)) − x", n)
		inv := fftRun(t, CPU(), tensor.F64, z, batch, n, true)
		again := fftRun(t, CPU(), tensor.F64, inv, batch, n, false)
		assert.LessOrEqual(t, fftMaxDiff(again, z), tol, "n=%d: forward(inverse(x)) − x", n)
	}
}

// Parseval: Σ_k |X_k|² = n Σ_j |x_j|² for every signal, to a relative 1e-13 (the sums of n squares
// round to ≈ n·ε relative at worst, the FFT adds ≈ log₂n·ε).
func TestFFTParseval(t *testing.T) {
	for _, n := range []int{2, 64, 1024, 1 << 15} {
		const batch = 2
		z := fftSignals(uint64(n)+11, batch, n)
		X := fftRun(t, CPU(), tensor.F64, z, batch, n, false)
		for b := 0; b < batch; b++ {
			ex, eX := 0.0, 0.0
			for j := b * n; j < (b+1)*n; j++ {
				ex += real(z[j])*real(z[j]) + imag(z[j])*imag(z[j])
				eX += real(X[j])*real(X[j]) + imag(X[j])*imag(X[j])
			}
			assert.InEpsilon(t, float64(n)*ex, eX, 1e-13, "n=%d signal %d", n, b)
		}
	}
}

// Linearity: F(a x + c y) = a F(x) + c F(y) for complex a, c, within the rounding of the three
// transforms (8·log₂n·ε relative to the output RMS, as in the round trip).
func TestFFTLinearity(t *testing.T) {
	const n, batch = 512, 3
	x, y := fftSignals(21, batch, n), fftSignals(22, batch, n)
	a, c := complex(0.75, -1.5), complex(-2, 0.25)
	mix := make([]complex128, len(x))
	for i := range mix {
		mix[i] = a*x[i] + c*y[i]
	}
	for _, inverse := range []bool{false, true} {
		Fx := fftRun(t, CPU(), tensor.F64, x, batch, n, inverse)
		Fy := fftRun(t, CPU(), tensor.F64, y, batch, n, inverse)
		Fm := fftRun(t, CPU(), tensor.F64, mix, batch, n, inverse)
		comb := make([]complex128, len(x))
		for i := range comb {
			comb[i] = a*Fx[i] + c*Fy[i]
		}
		tol := 8 * fftLog2(n) * eps64 * (cmplx.Abs(a)*fftRMS(Fx) + cmplx.Abs(c)*fftRMS(Fy)) * math.Sqrt(float64(n))
		assert.LessOrEqual(t, fftMaxDiff(Fm, comb), tol, "inverse=%v", inverse)
	}
}

// Closed forms: a delta at p transforms to the phases e^{−2πi pk/n} (inverse: e^{+2πi pj/n}/n);
// a constant to n·δ_k; a pure tone e^{+2πi f j/n} to n·δ_{k,f}. A zero output stays within
// log₂n·ε·n of 0 (the cancellation of n unit terms), a non-zero one within 4·log₂n·ε of its value.
func TestFFTClosedForms(t *testing.T) {
	for _, n := range []int{1, 2, 4, 16, 128, 1 << 12, 1 << 16} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			lg := fftLog2(n)
			p, f := n/3, (2*n)/5
			delta := make([]complex128, n)
			delta[p] = 1
			for _, inverse := range []bool{false, true} {
				sign, scale := -1.0, 1.0
				if inverse {
					sign, scale = 1, 1/float64(n)
				}
				got := fftRun(t, CPU(), tensor.F64, delta, 1, n, inverse)
				want := make([]complex128, n)
				for k := range want {
					want[k] = fftUnit(sign, p*k, n) * complex(scale, 0)
				}
				assert.LessOrEqual(t, fftMaxDiff(got, want), 4*lg*eps64*scale, "delta at %d, inverse=%v", p, inverse)
			}

			constant := make([]complex128, n)
			tone := make([]complex128, n)
			for j := range constant {
				constant[j] = complex(0.5, -0.25)
				tone[j] = fftUnit(1, f*j, n)
			}
			for _, c := range []struct {
				name string
				x    []complex128
				bin  int
				amp  complex128
			}{{"constant", constant, 0, complex(0.5, -0.25)}, {"tone", tone, f, 1}} {
				got := fftRun(t, CPU(), tensor.F64, c.x, 1, n, false)
				want := make([]complex128, n)
				want[c.bin] = complex(float64(n), 0) * c.amp
				assert.LessOrEqual(t, fftMaxDiff(got, want), lg*eps64*float64(n), "%s", c.name)
			}
		})
	}
}

// A real signal has a Hermitian spectrum: X_{n−k} = conj(X_k).
func TestFFTRealInputHermitian(t *testing.T) {
	const n = 1024
	z := fftSignals(5, 1, n)
	for i := range z {
		z[i] = complex(real(z[i]), 0)
	}
	X := fftRun(t, CPU(), tensor.F64, z, 1, n, false)
	tol := 8 * fftLog2(n) * eps64 * fftRMS(X)
	for k := 1; k < n; k++ {
		require.LessOrEqual(t, cmplx.Abs(X[n-k]-cmplx.Conj(X[k])), tol, "k=%d", k)
	}
	assert.LessOrEqual(t, math.Abs(imag(X[0])), tol)
}

// float32 data are widened exactly and transformed by the same float64 computation, then rounded
// once: the f32 result is exactly the f64 result (on the same, f32-representable input) rounded
// to float32.
func TestFFTFloat32IsTheRoundedFloat64Result(t *testing.T) {
	for _, n := range []int{1, 4, 256, 1 << 14} {
		const batch = 3
		z := fftSignals(uint64(n)+3, batch, n)
		for i, v := range z {
			z[i] = complex(float64(float32(real(v))), float64(float32(imag(v))))
		}
		for _, inverse := range []bool{false, true} {
			ref := fftRun(t, CPU(), tensor.F64, z, batch, n, inverse)
			got := fftRun(t, CPU(), tensor.F32, z, batch, n, inverse)
			for i := range ref {
				want := complex(float64(float32(real(ref[i]))), float64(float32(imag(ref[i]))))
				require.Equal(t, want, got[i], "n=%d inverse=%v element %d", n, inverse, i)
			}
		}
	}
}

// dst may be src; the result is the out-of-place one bit for bit, and any number of workers
// computes the same bits (signals are independent).
func TestFFTInPlaceAndWorkers(t *testing.T) {
	const n, batch = 1024, 64
	z := fftSignals(99, batch, n)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		want := fftRun(t, CPUWorkers(1), dt, z, batch, n, false)
		x := fftTensor(t, dt, z, batch, n)
		require.NoError(t, CPUWorkers(4).FFT(x, x, false))
		assert.Equal(t, want, fftValues(t, x), "%v in place, 4 workers", dt)
	}
}

// An empty batch is a no-op.
func TestFFTEmptyBatch(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		x, err := tensor.New(nil, dt, 0, 8, 2)
		require.NoError(t, err)
		assert.NoError(t, CPU().FFT(x, x, false))
	}
}

// Bad arguments are refused with an error naming the problem.
func TestFFTRejectsBadArguments(t *testing.T) {
	mk := func(dt tensor.DType, shape ...int) *tensor.Tensor {
		x, err := tensor.New(nil, dt, shape...)
		require.NoError(t, err)
		return x
	}
	good := mk(tensor.F64, 2, 8, 2)
	closed := mk(tensor.F64, 2, 8, 2)
	require.NoError(t, closed.Close())
	for _, c := range []struct {
		name     string
		dst, src *tensor.Tensor
		want     []string
	}{
		{"nil src", good, nil, []string{"src is nil"}},
		{"nil dst", nil, good, []string{"dst is nil"}},
		{"closed src", good, closed, []string{"src is nil or closed"}},
		{"rank 2", mk(tensor.F64, 8, 2), mk(tensor.F64, 8, 2), []string{"(batch, n, 2)"}},
		{"last dim 3", mk(tensor.F64, 2, 8, 3), mk(tensor.F64, 2, 8, 3), []string{"(batch, n, 2)"}},
		{"n = 1000", mk(tensor.F64, 1, 1000, 2), mk(tensor.F64, 1, 1000, 2),
			[]string{"n = 1000", "not a power of two", "zero-pad", "1024"}},
		{"n = 3", mk(tensor.F64, 1, 3, 2), mk(tensor.F64, 1, 3, 2), []string{"n = 3", "power of two", "n = 4"}},
		{"n = 0", mk(tensor.F64, 1, 0, 2), mk(tensor.F64, 1, 0, 2), []string{"n = 0", "power of two"}},
		{"too long", mk(tensor.F64, 0, 1<<25, 2), mk(tensor.F64, 0, 1<<25, 2), []string{"exceeds the maximum", "16777216"}},
		{"dtype mismatch", mk(tensor.F32, 2, 8, 2), good, []string{"dst is f32", "want f64"}},
		{"shape mismatch", mk(tensor.F64, 3, 8, 2), good, []string{"dst has shape [3 8 2]", "want [2 8 2]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CPU().FFT(c.dst, c.src, false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "fft: ")
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
