//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math/bits"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Launcher of kernels/fft.cu: the batched complex FFT as a sequence of Stockham passes.
//
// Plan. A signal of n ≤ the block length (4096 in f32, 2048 in f64) is one pass with R = n. Longer
// signals take P = ⌈log₂n / 11⌉ passes — two up to 2^22, three up to MaxFFTLength = 2^24 — with
// radices as equal as possible, larger first, each at most 2^11. The bound keeps C = tile/R ≥ 2
// adjacent columns per tile in f32 and ≥ 1 in f64, so every strided access of a pass moves runs
// of at least 16 bytes, and C divides n/R and, after the first pass, the pass's Ns (the kernel's
// conditions).
//
// Memory traffic. Every pass reads and writes each complex value once: 2·P·batch·n·(8 or 16)
// bytes per transform — P = 1 for n ≤ 4096 (f32) / 2048 (f64), 2 up to 2^22, 3 beyond — plus
// reads of the 8 KiB twiddle table, which stay in cache. An in-place transform with an odd P > 1
// adds one device-to-device copy of the data.
//
// Buffers. Passes ping-pong between dst and a scratch buffer of batch·n values owned by the backend
// (one per dtype, grown on demand, freed by Close), arranged so that the last pass writes dst; a
// single pass may run in place. The inverse is conj(DFT(conj(X)))/n: the first pass conjugates
// its input, the last conjugates and scales its output, so the kernels only compute the forward
// transform.

// fftTables keys the backend's cached twiddle tables.
type fftTables struct{}

// FFT: see ops.Backend.
func (b *Backend) FFT(dst, src *tensor.Tensor, inverse bool) error {
	defer b.enter()()
	if err := ops.CheckFFT(b.dev, dst, src); err != nil {
		return err
	}
	return b.fft(dst, src, src.Dim(0), src.Dim(1), inverse, nil)
}

// fftExtract is the alternative output of a plan's last pass (kernels/fft.cu Extract): values
// k < N of signal s go to rows 2s (real part) and 2s + 1 (imaginary part, when it exists) of Out,
// a (Paths, N) device matrix, scaled by Scale (rounded to the dtype); the buffer keeps the last
// pass's input, not the transform.
type fftExtract struct {
	Out      *tensor.Tensor
	N, Paths int
	Scale    float64
}

// fftBatch transforms batch signals of length n held in buf (a device tensor of either dtype with
// batch·n·2 elements, any shape: signal b's value j at elements 2(b·n + j), 2(b·n + j) + 1) in
// place, forward or inverse, exactly as FFT does; with ex, forward only, the transform's values go
// to ex instead (fftExtract). It is for ops that hold the backend (FGN).
func (b *Backend) fftBatch(buf *tensor.Tensor, batch, n int, inverse bool, ex *fftExtract) error {
	if buf == nil || buf.Closed() {
		return fmt.Errorf("fft: buffer is nil or closed")
	}
	if buf.Device() != tensor.Device(b.dev) {
		return fmt.Errorf("fft: buffer is on %s, want %s", buf.Device().Name(), b.dev.Name())
	}
	if n < 1 || n&(n-1) != 0 || n > ops.MaxFFTLength {
		return fmt.Errorf("fft: length n = %d: must be a power of two in [1, %d]", n, ops.MaxFFTLength)
	}
	if batch < 0 || batch > buf.Len()/(2*n) || buf.Len() != 2*batch*n {
		return fmt.Errorf("fft: buffer of %d elements does not hold batch = %d signals of n = %d complex values",
			buf.Len(), batch, n)
	}
	if ex != nil {
		if !fftExtracts(buf.DType(), n) {
			return fmt.Errorf("fft: an extraction needs a float transform of more than one pass (n > %d), not n = %d in %v",
				1<<fftLogTile(tensor.F32), n, buf.DType())
		}
		if inverse || ex.Out == nil || ex.Out.Closed() || ex.Out.Device() != tensor.Device(b.dev) ||
			ex.Out.DType() != buf.DType() || ex.N < 1 || ex.N > n || ex.Paths < 2*batch-1 || ex.Paths > 2*batch ||
			ex.Out.Len() != ex.Paths*ex.N {
			return fmt.Errorf("fft: extraction of %d values into %d rows of a %v does not match batch = %d, n = %d, %v",
				ex.N, ex.Paths, ex.Out, batch, n, buf.DType())
		}
	}
	return b.fft(buf, buf, batch, n, inverse, ex)
}

// fftTwiddles is the kernels' quarter-wave table for dt on the device (uploaded once).
func (b *Backend) fftTwiddles(dt tensor.DType) (*tensor.Tensor, error) {
	logTile := fftLogTile(dt)
	return b.upload(fftTables{}, "fft twiddles", dt, fftQuarterWave(logTile), 1<<(logTile-2), 2)
}

// fft runs the plan for validated arguments.
func (b *Backend) fft(dst, src *tensor.Tensor, batch, n int, inverse bool, ex *fftExtract) error {
	return b.fftFrom(dst, src, batch, n, inverse, ex, 0)
}

// fftFrom runs the passes of the plan from pass first on: src holds the output of the passes
// before it (fgn's first pass generates its input and runs pass 0 itself; first > 0 only with an
// extraction, so dst is not written by the last pass).
func (b *Backend) fftFrom(dst, src *tensor.Tensor, batch, n int, inverse bool, ex *fftExtract, first int) error {
	dt := src.DType()
	wrap := func(err error) error {
		return fmt.Errorf("fft (batch=%d, n=%d, %v, inverse=%v): %w", batch, n, dt, inverse, err)
	}
	if batch == 0 {
		return nil
	}
	csize := uintptr(2 * dt.Size())
	bytes := uintptr(batch) * uintptr(n) * csize
	ps, pd := src.DevicePtr(), dst.DevicePtr()
	if ps%csize != 0 || pd%csize != 0 {
		return wrap(fmt.Errorf("device data must be aligned to a complex value (%d bytes)", csize))
	}
	inPlace := ps == pd
	if !inPlace && ps < pd+bytes && pd < ps+bytes {
		return wrap(fmt.Errorf("dst and src overlap without being the same tensor"))
	}
	if n == 1 && ex == nil { // the identity (the inverse's 1/n is 1)
		if inPlace {
			return nil
		}
		if err := dst.CopyFrom(src); err != nil {
			return wrap(err)
		}
		return nil
	}

	tw, err := b.fftTwiddles(dt)
	if err != nil {
		return wrap(err)
	}
	plan := fftPlan(bits.Len(uint(n))-1, fftLogTile(dt))
	if first > 0 && (ex == nil || first >= len(plan)) {
		return wrap(fmt.Errorf("passes from %d of %d need an extraction by the last", first, len(plan)))
	}
	kernels := make([]tensor.Kernel, len(plan))
	for i := first; i < len(plan); i++ {
		if kernels[i], err = b.typedKernel("fft", fmt.Sprintf("fft_r%d", 1<<plan[i]), dt); err != nil {
			return wrap(err)
		}
	}

	// The scratch buffer is the backend's (the op holds the backend until all passes are queued).
	// Passes run from first on with an extraction use it only when two or more of them remain.
	var scratch *tensor.Tensor
	if fftScratchNeeded(len(plan), first, ex != nil) {
		if scratch, err = b.scratch.get("fft scratch", dt, 2*batch*n); err != nil {
			return wrap(err)
		}
	}
	// Pass i writes dst when the passes after it number an even count, else the scratch; in place,
	// pass 0 must not write the data it reads, so the passes alternate scratch, dst, … and an odd
	// count ends with a copy. With an extraction the last pass writes ex.Out, so the passes before
	// it alternate scratch, dst, … (from the first pass run) whatever their count.
	p := len(plan)
	in := src
	ns := int64(1)
	for _, logr := range plan[:first] {
		ns <<= logr
	}
	for i := first; i < p; i++ {
		logr := plan[i]
		out := dst
		switch {
		case p == 1:
		case ex != nil && i < p-1:
			if (i-first)%2 == 0 {
				out = scratch
			}
		case ex != nil:
		case inPlace && i%2 == 0, !inPlace && (p-1-i)%2 == 1:
			out = scratch
		}
		args := fftArgs{Dst: out, Src: in, TW: tw, Batch: int64(batch), N: int64(n), NS: ns, Scale: 1}
		if inverse && i == 0 {
			args.Flags |= 1
		}
		if inverse && i == p-1 {
			args.Flags |= 2
			args.Scale = 1 / float64(n)
		}
		if ex != nil && i == p-1 {
			args.XOut, args.NOut, args.Paths, args.Scale = ex.Out, int64(ex.N), int64(ex.Paths), ex.Scale
		}
		if err := b.launch(kernels[i], fftGrid(b.sms(), dt, batch, n, logr), args); err != nil {
			return wrap(err)
		}
		in = out
		ns <<= logr
	}
	if in != dst && ex == nil {
		view, err := in.View(0, dst.Shape()...)
		if err != nil {
			return wrap(err)
		}
		if err := dst.CopyFrom(view); err != nil {
			return wrap(err)
		}
	}
	return nil
}
