package optest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The CPU backend (the fast forms of score_fast.go) with two workers against the reference.
func TestCPUConformance(t *testing.T) { Run(t, ops.CPUWorkers(2)) }

// The reference with two workers must equal the reference with all of them.
func TestReferenceConformance(t *testing.T) { Run(t, ops.ReferenceWorkers(2)) }

// broken wraps the CPU backend and breaks one thing, to prove the suite notices.
type broken struct {
	ops.Backend
	skipLast bool // leave the last element of the output unwritten (CheckFill fills it with Sentinel)
	perturb  bool // change one normal by 1e-4 relative
	accept   bool // accept bad input
}

func (b broken) Normal(dst *tensor.Tensor, d ops.Draw) error {
	if b.accept && (dst == nil || dst.Rank() != 2) {
		return nil
	}
	if err := b.Backend.Normal(dst, d); err != nil {
		return err
	}
	if dst.Len() == 0 {
		return nil
	}
	v, _ := dst.F64()
	switch {
	case b.skipLast:
		v[len(v)-1] = Sentinel // what the destination held before: the element left unwritten
	case b.perturb:
		v[len(v)/2] *= 1 + 1e-4
	}
	return nil
}

func TestSuiteCatchesBrokenBackends(t *testing.T) {
	d := ops.Draw{Seed: 1}
	require.NoError(t, CheckFill(ops.CPU(), "normal", tensor.F64, 33, 5, d))
	err := CheckFill(broken{Backend: ops.CPU(), skipLast: true}, "normal", tensor.F64, 33, 5, d)
	assert.ErrorContains(t, err, "not written")
	err = CheckFill(broken{Backend: ops.CPU(), perturb: true}, "normal", tensor.F64, 33, 5, d)
	assert.ErrorContains(t, err, "against the CPU reference")
	assert.Error(t, CheckRejections(broken{Backend: ops.CPU(), accept: true}))
	assert.NoError(t, CheckRejections(ops.CPU()))
}

func TestCompare(t *testing.T) {
	_, err := Compare([]float64{1, 2}, []float64{1, 2}, Exact)
	assert.NoError(t, err)
	m, err := Compare([]float64{1, 2.001}, []float64{1, 2}, Tolerance{Rtol: 1e-3})
	assert.NoError(t, err)
	assert.InDelta(t, 5e-4, m.MaxRel, 1e-9)
	_, err = Compare([]float64{1, 2.01}, []float64{1, 2}, Tolerance{Rtol: 1e-3})
	assert.ErrorContains(t, err, "element 1")
	_, err = Compare([]float64{math.NaN()}, []float64{0}, Tolerance{Atol: 1})
	assert.Error(t, err, "NaN never passes")
	_, err = Compare([]float64{1}, []float64{1, 2}, Exact)
	assert.ErrorContains(t, err, "length")
}

// brokenScore perturbs one score element of the CPU reference by 1e-3 relative.
type brokenScore struct{ ops.Backend }

func (b brokenScore) GMMScore(out ops.ScoreOutputs, x *tensor.Tensor, g *ops.GMM, n ops.Noise) error {
	if err := b.Backend.GMMScore(out, x, g, n); err != nil {
		return err
	}
	if out.Score != nil && out.Score.Len() > 0 {
		if v, err := out.Score.F32(); err == nil {
			v[len(v)-1] *= 1.001
		}
		if v, err := out.Score.F64(); err == nil {
			v[len(v)-1] *= 1.001
		}
	}
	return nil
}

func TestScoreSuiteCatchesErrors(t *testing.T) {
	require.NoError(t, CheckGMMScore(ops.CPU(), 33, 3, 2, ops.Diagonal))
	assert.ErrorContains(t, CheckGMMScore(brokenScore{ops.CPU()}, 33, 3, 2, ops.Diagonal), "score")
	assert.Error(t, CompareRows([]float64{1, math.NaN()}, []float64{1, 2}, 2, 1e-3), "NaN where the reference is finite")
	assert.NoError(t, CompareRows([]float64{1, 1e-9}, []float64{1, 0}, 2, 1e-6), "tolerance scales with the row")
}

// nanRowsUnwritten wraps the CPU backend and leaves unwritten the rows of a score op's outputs that
// the reference fills with NaN (invalid levels, NaN coordinates): a kernel that lost its
// invalid-row branch.
type nanRowsUnwritten struct{ ops.Backend }

func (b nanRowsUnwritten) GMMScore(out ops.ScoreOutputs, x *tensor.Tensor, g *ops.GMM, n ops.Noise) error {
	return b.copyValidRows(out, func(tmp ops.ScoreOutputs) error { return b.Backend.GMMScore(tmp, x, g, n) })
}

func (b nanRowsUnwritten) EmpiricalScore(out ops.ScoreOutputs, x *tensor.Tensor, e *ops.Empirical, n ops.Noise) error {
	return b.copyValidRows(out, func(tmp ops.ScoreOutputs) error { return b.Backend.EmpiricalScore(tmp, x, e, n) })
}

// copyValidRows evaluates into fresh tensors and copies every row without NaN into out.
func (nanRowsUnwritten) copyValidRows(out ops.ScoreOutputs, eval func(ops.ScoreOutputs) error) error {
	pairs := []*[2]*tensor.Tensor{{out.LogP}, {out.Score}, {out.Denoiser}, {out.Resp}}
	var tmp ops.ScoreOutputs
	for i, dst := range []**tensor.Tensor{&tmp.LogP, &tmp.Score, &tmp.Denoiser, &tmp.Resp} {
		o := pairs[i][0]
		if o == nil {
			continue
		}
		t, err := tensor.New(nil, o.DType(), o.Shape()...)
		if err != nil {
			return err
		}
		*dst, pairs[i][1] = t, t
	}
	if err := eval(tmp); err != nil {
		return err
	}
	for _, p := range pairs {
		dst, src := p[0], p[1]
		if dst == nil || dst.Dim(0) == 0 {
			continue
		}
		vals, err := src.Float64s()
		if err != nil {
			return err
		}
		w := len(vals) / dst.Dim(0)
		f32, _ := dst.F32()
		f64, _ := dst.F64()
		for r := 0; r < dst.Dim(0); r++ {
			row := vals[r*w : (r+1)*w]
			if math.IsNaN(row[0]) {
				continue
			}
			for j, v := range row {
				if f32 != nil {
					f32[r*w+j] = float32(v)
				} else {
					f64[r*w+j] = v
				}
			}
		}
	}
	return nil
}

// A backend that leaves the NaN rows unwritten fails the score checks: the outputs start as
// Sentinel, not as the NaN the reference expects there.
func TestScoreSuiteCatchesUnwrittenNaNRows(t *testing.T) {
	err := CheckGMMScore(nanRowsUnwritten{ops.CPU()}, 33, 3, 2, ops.Diagonal)
	assert.ErrorContains(t, err, "not written")
	err = CheckEmpiricalScore(nanRowsUnwritten{ops.CPU()}, 33, 100, 2, 1)
	assert.ErrorContains(t, err, "not written")
	assert.Error(t, CompareRows([]float64{Sentinel}, []float64{math.NaN()}, 1, 1e-3), "the fill value where NaN is due")
	assert.Error(t, CompareRows([]float64{Sentinel}, []float64{Sentinel}, 1, 1e-3), "neither side wrote it")
	_, err = CompareRowsScaled([]float64{Sentinel}, []float64{math.NaN()}, []float64{1}, 1, 1e-3)
	assert.Error(t, err, "the fill value where NaN is due")
}

// A guard element overwritten with anything — NaN included — is reported; the view's own
// elements may hold anything.
func TestGuardsCatchAnyWrite(t *testing.T) {
	assert.Equal(t, float64(float32(Sentinel)), Sentinel, "exact in float32")
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, v := range []float64{math.NaN(), math.Inf(-1), 0, Sentinel * (1 + 0x1p-20)} {
			for _, at := range []int{0, 4, 5 + 6, 5 + 6 + 4} { // guard elements: the first, the ones next to the view, the last
				g, err := NewGuarded(tensor.CPU(), 5, dt, nil, 2, 3)
				require.NoError(t, err)
				view, err := g.View().Float64s()
				require.NoError(t, err)
				for _, e := range view {
					assert.True(t, IsSentinel(e), "%v: a fresh view holds the fill value", dt)
				}
				require.NoError(t, g.View().Fill(math.NaN()))
				_, err = g.Values("inside")
				assert.NoError(t, err, "%v: writes inside the view", dt)
				if f, err := g.buf.F32(); err == nil {
					f[at] = float32(v)
				} else {
					f, _ := g.buf.F64()
					f[at] = v
				}
				_, err = g.Values("dst")
				assert.ErrorContains(t, err, "guard band overwritten", "%v: %v at element %d", dt, v, at)
				want := map[int]string{0: "element 5 before", 4: "element 1 before", 11: "element 1 after", 15: "element 5 after"}[at]
				assert.ErrorContains(t, err, want, "%v: %v at element %d", dt, v, at)
				g.Close()
			}
		}
	}
}
