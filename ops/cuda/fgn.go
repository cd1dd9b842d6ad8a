//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Launcher of kernels/fgn.cu: fractional Gaussian noise by Davies–Harte (ops/fgn.go has the math).
//
// Float increments of a multi-pass transform (m > 4096): per chunk of paths, fgn_r<R>_f32 runs the
// FFT's first pass over every pair's signal, drawing and forming the signal in the pass itself
// (no spectrum buffer), and the FFT's remaining passes follow, the last writing the increments:
// the traffic of n = 2^16 × 1024 paths is 1.34 GB (2.42 GB with the spectrum written and read).
// The path form of those plans then sums the increments in place (fgn_cumsum, a read and a write
// of the output: 1.88 GB in all, where the spectrum, the transform kept in the buffer and
// fgn_path reading it back took 3.22 GB).
// The bits are those of the general pipeline below (fgnSpectrumPass forces it, for the tests).
//
// Otherwise, per chunk of paths: fgn_spectrum writes, for every pair of paths (2q, 2q + 1), the
// complex signal V^{2q} + i V^{2q+1} of their Hermitian vectors V = w∘W into a complex scratch
// buffer (pairs, m) from the normals it draws itself (the draw layout of Backend.Normal, so the
// numbers are those of the CPU reference); fftBatch transforms it in place (forward,
// unnormalised), which leaves path 2q in the real and path 2q + 1 in the imaginary parts (FFT(V)
// is real). The increments, the first n values scaled by (T/n)^H, are written by the FFT's last
// pass itself in the float multi-pass plans above, with no complex output; otherwise the FFT's
// output stays in the buffer and fgn_increments writes them, or fgn_path their running sums.
// Everything runs in the destination's precision (the FFT of a float32 destination is a float32
// FFT).
//
// Memory. The weights w (n_e + 1 values per (H, n_e) and dtype, see fgnWeights) are uploaded once
// and kept until Close. The scratch holds m complex values per pair of paths (n_e·(8 or 16) bytes
// per path), chunks hold an even number of paths (so the pairs are those of one whole call),
// at most fgnMaxScratchBytes and at most the free device memory — half of it when the FFT's passes
// ping-pong with a scratch buffer of the same size; the float plans whose first pass generates the
// signal and whose last writes the increments, two passes in all, have none (fgnFFTScratch), so
// their chunks may take all of it; it is kept between calls (grown when too small) and
// freed by Close. When all paths do not fit, they are processed in chunks; when not even one
// path's buffer fits, FGN returns an error naming the bytes.

// fgnSpectrumPass, a test knob, writes the signal with fgn_spectrum and transforms it with the
// FFT's own first pass where fgn_r<R>_f32 would generate it in that pass.
var fgnSpectrumPass = false

// fgnWeightsOwner keys the uploaded weights: they are a function of (H, n_e) alone.
type fgnWeightsOwner struct {
	hurst float64
	ne    int
}

// FGN: see ops.Backend. The call does not synchronise at the end: callers do before reading dst.
func (b *Backend) FGN(dst *tensor.Tensor, p *ops.FGNPlan, form ops.FGNForm, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckFGN(b.dev, dst, p, form, d); err != nil {
		return err
	}
	paths, n := dst.Dim(0), dst.Dim(1)
	ne := p.EmbedSize()
	m := 2 * ne
	if m > ops.MaxFFTLength {
		return fmt.Errorf("fgn: length n = %d needs a circulant of m = %d points; the GPU's FFT takes at most %d (n ≤ %d)",
			n, m, ops.MaxFFTLength, ops.MaxFFTLength/2)
	}
	if paths == 0 {
		return nil
	}
	dt := dst.DType()
	wrap := func(err error) error {
		return fmt.Errorf("fgn (paths=%d, n=%d, H=%g, %v): %w", paths, n, p.Hurst(), dt, err)
	}
	// Float increments of a multi-pass transform come from the FFT's last pass (fftExtract), and
	// the path form sums them in place (fgn_cumsum); otherwise a finishing kernel reads the
	// transformed buffer. The same plans generate the signal in the FFT's first pass
	// (fgn_r<R>_f32) instead of writing it with fgn_spectrum.
	fused := fftExtracts(dt, m)
	generate := fused && !fgnSpectrumPass
	var kSpec, kFirst tensor.Kernel
	var tw *tensor.Tensor
	var err error
	if generate {
		if kFirst, err = b.kernel("fgn", fgnFirstPassEntry(m)); err != nil {
			return wrap(err)
		}
		if tw, err = b.fftTwiddles(dt); err != nil {
			return wrap(err)
		}
	} else if kSpec, err = b.typedKernel("fgn", "fgn_spectrum", dt); err != nil {
		return wrap(err)
	}
	finish := "fgn_increments"
	if form.Path {
		finish = "fgn_path"
	}
	if fused {
		finish = "fgn_cumsum"
	}
	var kFinish tensor.Kernel
	if !fused || form.Path {
		if kFinish, err = b.typedKernel("fgn", finish, dt); err != nil {
			return wrap(err)
		}
	}
	// sum runs fgn_cumsum over the increments the last pass wrote into out (the path form).
	sum := func(out *tensor.Tensor, first, rows int) error {
		if !form.Path {
			return nil
		}
		err := b.launch(kFinish, fgnScanGrid(b, rows), fgnCumsumArgs{Dst: out, Paths: int64(rows), N: int64(n)})
		if err != nil {
			return wrap(fmt.Errorf("running sums of paths %d..%d: %w", first, first+rows, err))
		}
		return nil
	}
	w, err := b.fgnWeights(p, dt)
	if err != nil {
		return wrap(err)
	}

	scratch, chunk, err := b.fgnScratch(dt, paths, n, m, fgnFFTScratch(dt, m, fused, generate))
	if err != nil {
		return err
	}
	scale := form.Scale(p.Hurst(), n)
	for first := 0; first < paths; first += chunk {
		rows := min(chunk, paths-first)
		pairs := (rows + 1) / 2
		buf, err := scratch.View(0, pairs, m, 2)
		if err != nil {
			return wrap(err)
		}
		out, err := dst.View(first*n, rows, n)
		if err != nil {
			return wrap(err)
		}
		chain0 := d.FirstChain + uint64(first)
		if generate {
			err = b.launch(kFirst, fftGrid(b.sms(), dt, pairs, m, fgnFirstLogRadix(m)), fgnFirstPassArgs{Dst: buf, W: w, TW: tw,
				Paths: int64(rows), NE: int64(ne), Seed: d.Seed, Site: d.Site, Chain0: chain0})
			if err != nil {
				return wrap(fmt.Errorf("first FFT pass of paths %d..%d: %w", first, first+rows, err))
			}
			if err := b.fftFrom(buf, buf, pairs, m, false, &fftExtract{Out: out, N: n, Paths: rows, Scale: scale}, 1); err != nil {
				return wrap(err)
			}
			if err := sum(out, first, rows); err != nil {
				return err
			}
			continue
		}
		err = b.launch(kSpec, b.gridFor(int64(pairs)*fgnSpectrumLanes(dt, ne)), fgnSpectrumArgs{Buf: buf, W: w, Paths: int64(rows),
			NE: int64(ne), Seed: d.Seed, Site: d.Site, Chain0: chain0})
		if err != nil {
			return wrap(fmt.Errorf("spectrum of paths %d..%d: %w", first, first+rows, err))
		}
		if fused {
			if err := b.fftBatch(buf, pairs, m, false, &fftExtract{Out: out, N: n, Paths: rows, Scale: scale}); err != nil {
				return wrap(err)
			}
			if err := sum(out, first, rows); err != nil {
				return err
			}
			continue
		}
		if err := b.fftBatch(buf, pairs, m, false, nil); err != nil {
			return wrap(err)
		}
		cfg := b.gridFor(int64(rows) * int64(n))
		if form.Path {
			cfg = fgnScanGrid(b, rows)
		}
		err = b.launch(kFinish, cfg, fgnExtractArgs{Dst: out, Buf: buf, Paths: int64(rows), N: int64(n), M: int64(m),
			Scale: scale})
		if err != nil {
			return wrap(fmt.Errorf("%s of paths %d..%d: %w", finish, first, first+rows, err))
		}
	}
	return nil
}

// fgnScanGrid is the grid of a block scan over rows paths (fgn_path, fgn_cumsum): one block of
// fgnScanThreads per path, at most 16 per SM (blocks stride over the rest).
func fgnScanGrid(b *Backend, rows int) tensor.LaunchConfig {
	return tensor.Grid1D(min(rows, max(b.dev.Info().SMs, 1)*16), fgnScanThreads)
}

// fgnWeights returns the device copy (dtype dt) of the kernel's weights for the plan: w_0 = s_0,
// w_{n_e} = s_{n_e} and w_j = s_j/√2 for 0 < j < n_e, computed in float64 (the CPU reference forms
// the same products) and rounded once. They depend on (H, n_e) only, so plans sharing those share
// one upload, kept in the table cache.
func (b *Backend) fgnWeights(p *ops.FGNPlan, dt tensor.DType) (*tensor.Tensor, error) {
	key := paramKey{fgnWeightsOwner{p.Hurst(), p.EmbedSize()}, "fgn weights", dt}
	if e := b.table(key); e != nil {
		return e.t, nil
	}
	s := p.SqrtEigenvalues()
	ne := len(s) - 1
	w := make([]float64, len(s))
	for j, v := range s {
		w[j] = v
		if j > 0 && j < ne {
			w[j] = v / math.Sqrt2
		}
	}
	return b.upload(key.owner, key.name, dt, w, len(w))
}

// fgnScratch returns the complex scratch buffer for FGN and the number of paths it holds at once
// (at least 1, at most paths; even unless it is all of them). The buffer is the one kept from an
// earlier call when it holds the chunk this call wants (all paths, or what fgnMaxScratchBytes
// allows); otherwise it is replaced by one sized from the free memory less fgnHeadroom: all of it,
// or half when the transform takes the FFT's own scratch (fftScratch), the other half left to it.
func (b *Backend) fgnScratch(dt tensor.DType, paths, n, m int, fftScratch bool) (*tensor.Tensor, int, error) {
	elems := func(chunk int64) int64 { return fgnPairs(chunk) * int64(2*m) }
	pairBytes := int64(2*m) * int64(dt.Size())
	want := fgnWantPaths(paths, m, dt, fgnMaxScratchBytes)
	const name = "fgn scratch"
	old := b.scratch.held(name, dt)
	ok := old != nil
	if ok && int64(old.Len()) >= elems(want) {
		return old, int(want), nil
	}
	free, total, err := freeMemory(b)
	if err != nil {
		return nil, 0, fmt.Errorf("fgn: query free memory: %w", err)
	}
	if ok {
		free += old.Bytes() // it is given back before the new one is allocated
	}
	free += b.tables.evictable() // tables of earlier calls make room when needed
	fit := fgnFitPaths(m, dt, free, fftScratch)
	if fit < 1 {
		again := ""
		if fftScratch {
			again = " and as much again for the FFT"
		}
		return nil, 0, fmt.Errorf("fgn: a pair of paths of n = %d needs a complex buffer of m = %d values (%s)%s; %s of %s free on %s",
			n, m, tensor.HumanBytes(pairBytes), again, tensor.HumanBytes(max(free, 0)), tensor.HumanBytes(total), b.dev.Name())
	}
	chunk := min(want, fit)
	if ok {
		if int64(old.Len()) >= elems(chunk) {
			return old, int(chunk), nil
		}
		// Queued launches of earlier calls may still use the old buffer: drop drains first.
		if err := b.scratch.drop(name, dt); err != nil {
			return nil, 0, fmt.Errorf("fgn: %w", err)
		}
	}
	bytes := elems(chunk) * int64(dt.Size())
	if err := b.ensureFree(fgnBuffers(fftScratch)*bytes + fgnHeadroom); err != nil {
		return nil, 0, fmt.Errorf("fgn: %w", err)
	}
	t, err := b.scratch.get(name, dt, int(elems(chunk)))
	if err != nil {
		return nil, 0, fmt.Errorf("fgn: scratch for %d paths of m = %d complex values (two per transform): %w", chunk, m, err)
	}
	return t, int(chunk), nil
}
