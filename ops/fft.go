package ops

import (
	"fmt"
	"math/bits"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/scorekit/scorekit/tensor"
)

// MaxFFTLength is the longest signal FFT accepts: 2^24 complex values (128 MiB per signal in f32,
// 256 MiB in f64). Longer transforms are refused with an error rather than attempted.
const MaxFFTLength = 1 << 24

// CheckFFT validates FFT's arguments: src and dst open tensors on dev of one dtype and one shape
// (batch, n, 2) — batch ≥ 0 signals of n complex values stored as interleaved (re, im) pairs — with
// n a power of two in [1, MaxFFTLength]. dst may be src.
func CheckFFT(dev tensor.Device, dst, src *tensor.Tensor) error {
	const op = "fft"
	if src == nil || src.Closed() {
		return fmt.Errorf("%s: src is nil or closed", op)
	}
	if src.Rank() != 3 || src.Dim(2) != 2 {
		return fmt.Errorf("%s: src has shape %v, want (batch, n, 2): n complex values as (re, im) pairs per signal",
			op, src.Shape())
	}
	batch, n := src.Dim(0), src.Dim(1)
	if n < 1 {
		return fmt.Errorf("%s: length n = %d: a signal must hold at least one value (n a power of two ≥ 1)", op, n)
	}
	if n > MaxFFTLength {
		return fmt.Errorf("%s: length n = %d exceeds the maximum 2^24 = %d", op, n, MaxFFTLength)
	}
	if n&(n-1) != 0 {
		down := 1 << (bits.Len(uint(n)) - 1)
		return fmt.Errorf("%s: length n = %d is not a power of two: zero-pad each signal to n = %d (or truncate it to %d)",
			op, n, 2*down, down)
	}
	if err := checkSame(op, "src", src, dev, src.DType(), batch, n, 2); err != nil {
		return err
	}
	return checkSame(op, "dst", dst, dev, src.DType(), batch, n, 2)
}

// FFT is the reference discrete Fourier transform of every signal (row) of src, written to dst
// (which may be src). Signal b holds x_j = src[b, j, 0] + i·src[b, j, 1], j = 0..n−1, and
//
//	forward:  X_k = Σ_{j=0}^{n−1} x_j e^{−2πi jk/n}
//	inverse:  x_j = (1/n) Σ_{k=0}^{n−1} X_k e^{+2πi jk/n}
//
// so that the inverse undoes the forward transform and Σ|X_k|² = n Σ|x_j|² (Parseval). n = 1 is
// the identity. Computed in float64 whatever the dtype (gonum's FFTPACK-derived CmplxFFT: its
// Coefficients is the forward sum above, its Sequence the unnormalised inverse sum, scaled here by
// 1/n), rounding once when storing float32 results; signals are transformed in parallel.
func (b cpuBackend) FFT(dst, src *tensor.Tensor, inverse bool) error {
	if err := CheckFFT(tensor.CPU(), dst, src); err != nil {
		return err
	}
	batch, n := src.Dim(0), src.Dim(1)
	if batch == 0 {
		return nil
	}
	rs, rd := signalsOf(src, n), signalsOf(dst, n)
	logn := bits.Len(uint(n)) - 1
	b.parallelRows(batch, 5*n*max(logn, 1), func(lo, hi int) {
		var plan *fourier.CmplxFFT
		if n > 1 {
			pool := fftPlanPool(n)
			plan = pool.Get().(*fourier.CmplxFFT)
			defer pool.Put(plan)
		}
		row := make([]float64, 2*n)
		z := make([]complex128, n)
		scale := 1 / float64(n) // a power of two: scaling is exact
		for i := lo; i < hi; i++ {
			rs.get(i, row)
			for j := range z {
				z[j] = complex(row[2*j], row[2*j+1])
			}
			switch {
			case plan == nil:
			case inverse:
				plan.Sequence(z, z)
			default:
				plan.Coefficients(z, z)
			}
			for j, v := range z {
				re, im := real(v), imag(v)
				if inverse {
					re, im = re*scale, im*scale
				}
				row[2*j], row[2*j+1] = re, im
			}
			rd.set(i, row)
		}
	})
	return nil
}

// fftPlans holds, per length n, a pool of gonum plans (their twiddle tables cost O(n) sines and
// cosines to build; a plan's work buffers make it usable by one goroutine at a time).
var fftPlans sync.Map // int → *sync.Pool of *fourier.CmplxFFT

func fftPlanPool(n int) *sync.Pool {
	if p, ok := fftPlans.Load(n); ok {
		return p.(*sync.Pool)
	}
	p, _ := fftPlans.LoadOrStore(n, &sync.Pool{New: func() any { return fourier.NewCmplxFFT(n) }})
	return p.(*sync.Pool)
}

// signalsOf gives float64 access to the signals of a host (batch, n, 2) tensor: row i is signal i's
// 2n interleaved values.
func signalsOf(t *tensor.Tensor, n int) rows {
	r := rows{w: 2 * n}
	if t.DType() == tensor.F32 {
		r.f32, _ = t.F32()
	} else {
		r.f64, _ = t.F64()
	}
	return r
}
