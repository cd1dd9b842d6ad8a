package optest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// TestCPUConformance (optest_test.go) runs RunNoise on the reference with two workers.

// brokenNoise wraps the CPU backend and breaks one noise op in one way, to prove the checks notice.
type brokenNoise struct {
	ops.Backend
	fftPerturb  float64 // add fftPerturb·(1 + |v|) to the last value v of every FFT output
	fftClobber  bool    // transform out of place by transforming src in place and copying it
	fgnSkipLast bool    // leave the last FGN path unwritten
	stableCount int64   // add to Stable's clamp count when a clamp is set
	horizon     float64 // scale the Brownian horizon by 1 + horizon
	stride      bool    // draw MAFBM at site stride + 1
	intervalEnd bool    // answer BrownianIncrements with t moved by one grid cell toward s
	accept      bool    // accept bad input (nil FGN plan, invalid Stable spec, zero Brownian horizon, depth > 40)
}

// bump adds rel·(1 + |v|) to the last element v of a host tensor.
func bump(x *tensor.Tensor, rel float64) {
	if x.Len() == 0 {
		return
	}
	if v, err := x.F32(); err == nil {
		w := float64(v[len(v)-1])
		v[len(v)-1] = float32(w + rel*(1+math.Abs(w)))
	}
	if v, err := x.F64(); err == nil {
		w := v[len(v)-1]
		v[len(v)-1] = w + rel*(1+math.Abs(w))
	}
}

func (b brokenNoise) FFT(dst, src *tensor.Tensor, inverse bool) error {
	if b.fftClobber && dst != src && src != nil && dst != nil {
		if err := b.Backend.FFT(src, src, inverse); err != nil {
			return err
		}
		return dst.CopyFrom(src)
	}
	if err := b.Backend.FFT(dst, src, inverse); err != nil {
		return err
	}
	if b.fftPerturb != 0 {
		bump(dst, b.fftPerturb)
	}
	return nil
}

func (b brokenNoise) FGN(dst *tensor.Tensor, p *ops.FGNPlan, form ops.FGNForm, d ops.Draw) error {
	if b.accept && p == nil {
		return nil
	}
	if b.fgnSkipLast && dst != nil && dst.Rank() == 2 && dst.Dim(0) > 0 {
		dst = headRows(dst)
	}
	return b.Backend.FGN(dst, p, form, d)
}

func (b brokenNoise) Stable(dst *tensor.Tensor, s ops.StableSpec, d ops.Draw) (int64, error) {
	if b.accept && s.Validate() != nil {
		return 0, nil
	}
	n, err := b.Backend.Stable(dst, s, d)
	if err == nil && s.Clamp > 0 {
		n += b.stableCount
	}
	return n, err
}

func (b brokenNoise) Brownian(dst *tensor.Tensor, s ops.BrownianSpec, d ops.Draw) error {
	if b.accept && s.Horizon == 0 {
		return nil
	}
	s.Horizon *= 1 + b.horizon
	return b.Backend.Brownian(dst, s, d)
}

func (b brokenNoise) BrownianIncrements(dst, s, t *tensor.Tensor, spec ops.BrownianIntervalSpec, d ops.Draw) error {
	if b.accept && spec.Depth > ops.MaxBrownianIntervalDepth {
		return nil
	}
	if b.intervalEnd && t != nil && s != nil {
		sv, _ := s.F64()
		tv, _ := t.F64()
		moved := make([]float64, len(tv))
		for i, v := range tv {
			moved[i] = max(v-spec.Resolution(), (v+sv[min(i, len(sv)-1)])/2)
		}
		mt, err := tensor.FromF64(moved, t.Shape()...)
		if err != nil {
			return err
		}
		t = mt
	}
	return b.Backend.BrownianIncrements(dst, s, t, spec, d)
}

func (b brokenNoise) MAFBM(dst, y *tensor.Tensor, m *ops.MAFBM, h float64, d ops.Draw, stride uint64) error {
	if b.stride {
		stride++
	}
	return b.Backend.MAFBM(dst, y, m, h, d, stride)
}

func TestNoiseChecksCatchBrokenBackends(t *testing.T) {
	cpu := ops.CPU()
	dts := []tensor.DType{tensor.F32, tensor.F64}
	for _, dt := range dts {
		// FFT: an output value off by 1e-3 (relative, plus 1e-3 absolute) is caught at every length;
		// in float64 so is 1e-10.
		for _, n := range []int{1, 8, 1024} {
			require.NoError(t, CheckFFT(cpu, dt, 3, n), "%v n %d", dt, n)
			err := CheckFFT(brokenNoise{Backend: cpu, fftPerturb: 1e-3}, dt, 3, n)
			assert.ErrorContains(t, err, "signal 2 value", "%v n %d", dt, n)
			if dt == tensor.F64 {
				err := CheckFFT(brokenNoise{Backend: cpu, fftPerturb: 1e-10}, dt, 3, n)
				assert.ErrorContains(t, err, "signal 2 value", "%v n %d: 1e-10", dt, n)
			}
		}
		err := CheckFFT(brokenNoise{Backend: cpu, fftClobber: true}, dt, 3, 8)
		assert.ErrorContains(t, err, "src changed", "%v", dt)

		// FGN: a skipped last path stays NaN, in every form.
		d := ops.Draw{Seed: 5, Site: 9, FirstChain: 1}
		for _, form := range FGNForms {
			require.NoError(t, CheckFGN(cpu, dt, 0.3, 1000, 33, form, d), "%v %+v", dt, form)
			err := CheckFGN(brokenNoise{Backend: cpu, fgnSkipLast: true}, dt, 0.3, 1000, 33, form, d)
			assert.ErrorContains(t, err, "row 32 col 0: not written", "%v %+v", dt, form)
		}

		// Stable: one value too many in the clamp count (the case has no near-ties).
		for _, s := range []ops.StableSpec{
			{Kind: ops.StableSymmetric, Alpha: 0.8, Clamp: 5},
			{Kind: ops.StableIsotropic, Alpha: 1.1, Clamp: 2},
		} {
			d := ops.Draw{Seed: 0xfeed, Site: 3}
			require.NoError(t, CheckStable(cpu, dt, s, 1025, 5, d), "%v %+v", dt, s)
			err := CheckStable(brokenNoise{Backend: cpu, stableCount: 1}, dt, s, 1025, 5, d)
			assert.ErrorContains(t, err, "clamp count", "%v %+v", dt, s)
			err = CheckStable(brokenNoise{Backend: cpu, stableCount: -1}, dt, s, 1025, 5, d)
			assert.ErrorContains(t, err, "clamp count", "%v %+v", dt, s)
		}

		// MAFBM: the draw at the wrong sites.
		m, err := ops.NewMAFBM(0.35, 5, 20, 1)
		require.NoError(t, err)
		require.NoError(t, CheckMAFBM(cpu, dt, m, 33, 7, 0.01, d, 16), "%v", dt)
		assert.ErrorContains(t, CheckMAFBM(brokenNoise{Backend: cpu, stride: true}, dt, m, 33, 7, 0.01, d, 16), "dst", "%v", dt)
	}

	// Brownian: a horizon off by a relative 1e-5 (f32) or 1e-12 (f64) is caught, plain and bridged.
	for _, s := range []ops.BrownianSpec{{Horizon: 2.5}, {Horizon: 2.5, Epoch: 50}, {Horizon: 2.5, Epoch: 3, Increments: true}} {
		d := ops.Draw{Seed: 123, Site: 45, FirstChain: 77}
		for _, dt := range dts {
			require.NoError(t, CheckBrownian(cpu, dt, s, 33, 100, d), "%+v %v", s, dt)
			rel := pick(dt, 1e-5, 1e-12)
			err := CheckBrownian(brokenNoise{Backend: cpu, horizon: rel}, dt, s, 33, 100, d)
			assert.Error(t, err, "%+v %v", s, dt)
		}
	}

	// BrownianIncrements: the end time one grid cell early (at most halfway to s) is caught at every
	// depth but 0 (where a cell is the whole horizon and the halfway point rounds back to T).
	for _, depth := range BrownianIntervalDepths[1:] {
		spec := ops.BrownianIntervalSpec{Horizon: 1.75, Depth: depth}
		d := ops.Draw{Seed: 3, Site: 5, FirstChain: 2}
		for _, dt := range dts {
			require.NoError(t, CheckBrownianIncrements(cpu, dt, spec, 7, 33, false, d), "depth %d %v", depth, dt)
			err := CheckBrownianIncrements(brokenNoise{Backend: cpu, intervalEnd: true}, dt, spec, 7, 33, false, d)
			assert.ErrorContains(t, err, "(rows: paths, cols: queries) row 0", "depth %d %v", depth, dt)
		}
	}

	require.NoError(t, CheckNoiseRejections(cpu))
	err := CheckNoiseRejections(brokenNoise{Backend: cpu, accept: true})
	for _, name := range []string{"fgn: nil plan", "stable: α = 0", "stable: |β| > 1", "brownian: zero horizon", "brownian increments: depth 41"} {
		assert.ErrorContains(t, err, name+": accepted")
	}
	assert.NotContains(t, err.Error(), "fft:", "the FFT was not broken")
}

// The tolerances follow their stated rules.
func TestNoiseTolerances(t *testing.T) {
	assert.Equal(t, 0x1p-23, FFTUnit(tensor.F32, 1), "n = 1 counts one level")
	assert.Equal(t, 0x1p-23, FFTUnit(tensor.F32, 2))
	assert.Equal(t, 10*0x1p-52, FFTUnit(tensor.F64, 1024))
	assert.InDelta(t, 4*12*0x1p-24+2e-7, FGNRtol(tensor.F32, 4096), 1e-20)
	assert.InDelta(t, 4*2*0x1p-53+1e-15, FGNRtol(tensor.F64, 4), 1e-25)
	assert.InDelta(t, 2.5e-7, MAFBMF32, 1e-18)   // float32 normals are exact: only the roundings remain
	assert.InDelta(t, 4e-14, BrownianF64, 1e-26) // exact normals: only the float64 arithmetic remains
	// α = 1: a floor for the cancelling terms; the isotropic law at α = 2 only rounds its normals.
	rtol, floor := StableTolerance(ops.StableSpec{Kind: ops.StableSkewed, Alpha: 1, Beta: 0.8}, tensor.F32)
	assert.Equal(t, StableMargin*8*0x1p-23, rtol)
	assert.Equal(t, 25.0, floor)
	rtol, floor = StableTolerance(ops.StableSpec{Kind: ops.StableIsotropic, Alpha: 2}, tensor.F64)
	assert.InDelta(t, StableMargin*(0x1p-52+NormalF64.Rtol), rtol, 1e-28)
	assert.Zero(t, floor)
	rtol, _ = StableTolerance(ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 0.5}, tensor.F32)
	assert.InDelta(t, StableMargin*((15*0.5+28)/0.5+12)*0x1p-23, rtol, 1e-15)
}
