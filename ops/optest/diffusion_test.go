package optest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The reference with two workers passes the diffusion checks against the reference.
func TestCPUDiffusionConformance(t *testing.T) { RunDiffusion(t, ops.CPUWorkers(2)) }

// brokenDiffusion wraps the CPU backend and breaks Combine or MetropolisStep in one way, to prove
// the checks notice.
type brokenDiffusion struct {
	ops.Backend
	coeff    bool // multiply the last term's coefficient by 1 + 1e-5
	skipLast bool // leave the last row alone
	shrink   bool // decide membership in the domain shrunk by one ulp: boundary points fall outside
	accept   bool // accept bad input
}

// headRows is the view of x's first rows − 1 rows.
func headRows(x *tensor.Tensor) *tensor.Tensor {
	if x.Rank() == 1 {
		v, _ := x.View(0, x.Dim(0)-1)
		return v
	}
	v, _ := x.View(0, x.Dim(0)-1, x.Dim(1))
	return v
}

func (b brokenDiffusion) Combine(dst *tensor.Tensor, terms []ops.Term, noise float64, d ops.Draw) error {
	if b.accept && (len(terms) == 0 || len(terms) > ops.MaxTerms) {
		return nil
	}
	ts := append([]ops.Term(nil), terms...)
	if b.coeff && len(ts) > 0 {
		ts[len(ts)-1].C *= 1 + 1e-5
	}
	if b.skipLast && dst != nil && dst.Rank() == 2 && dst.Dim(0) > 0 {
		for k := range ts {
			ts[k].T = headRows(ts[k].T)
		}
		dst = headRows(dst)
	}
	return b.Backend.Combine(dst, ts, noise, d)
}

// shrunk returns dom moved inward by one ulp on every face.
func shrunk(dom *ops.Domain) (*ops.Domain, error) {
	p := dom.Params()
	down := func(v float64) float64 { return math.Nextafter(v, math.Inf(-1)) }
	switch p.Kind {
	case ops.Box:
		lo, hi := make([]float64, p.Dim), make([]float64, p.Dim)
		for j := range lo {
			lo[j], hi[j] = math.Nextafter(p.Lo[j], math.Inf(1)), down(p.Hi[j])
		}
		return ops.NewBox(lo, hi)
	case ops.Ball:
		return ops.NewBall(p.Center, down(p.Radius))
	}
	a := make([][]float64, p.M)
	b := make([]float64, p.M)
	for i := range a {
		a[i], b[i] = p.A[i*p.Dim:(i+1)*p.Dim], down(p.B[i])
	}
	return ops.NewPolytope(a, b)
}

func (b brokenDiffusion) MetropolisStep(x, prop *tensor.Tensor, dom *ops.Domain, rejected *tensor.Tensor) error {
	if b.accept && dom == nil {
		return nil
	}
	if b.shrink && dom != nil {
		var err error
		if dom, err = shrunk(dom); err != nil {
			return err
		}
	}
	if b.skipLast && x != nil && x.Rank() == 2 && x.Dim(0) > 0 {
		x, prop, rejected = headRows(x), headRows(prop), headRows(rejected)
	}
	return b.Backend.MetropolisStep(x, prop, dom, rejected)
}

func TestDiffusionChecksCatchBrokenBackends(t *testing.T) {
	cpu := ops.CPU()
	draw := ops.Draw{Seed: 11, Site: 3, FirstChain: 2}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, noise := range []float64{0, 0.7} {
			require.NoError(t, CheckCombine(cpu, dt, 33, 5, 3, -1, noise, draw))
			// A coefficient off by 1e-5 relative is far outside every tolerance.
			err := CheckCombine(brokenDiffusion{Backend: cpu, coeff: true}, dt, 33, 5, 3, -1, noise, draw)
			assert.ErrorContains(t, err, "reference", "%v noise %g", dt, noise)
			// A skipped last row stays NaN in a fresh destination ...
			err = CheckCombine(brokenDiffusion{Backend: cpu, skipLast: true}, dt, 33, 5, 3, -1, noise, draw)
			assert.ErrorContains(t, err, "row 32", "%v noise %g", dt, noise)
			// ... and keeps the old values of an aliased one.
			err = CheckCombine(brokenDiffusion{Backend: cpu, skipLast: true}, dt, 33, 5, 3, 2, noise, draw)
			assert.ErrorContains(t, err, "row 32", "%v noise %g alias", dt, noise)
		}
	}

	doms, err := diffusionDomains()
	require.NoError(t, err)
	for _, dd := range doms {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			require.NoError(t, CheckMetropolisStep(cpu, dt, 33, dd.dom, dd.interior), "%s %v", dd.name, dt)
			err := CheckMetropolisStep(brokenDiffusion{Backend: cpu, skipLast: true}, dt, 33, dd.dom, dd.interior)
			assert.Error(t, err, "%s %v: skipped last row", dd.name, dt)
		}
	}
	// The proposals hold points exactly on the boundary: deciding them as outside is caught. (The
	// polytope in d = 33 has its facet points only within rounding of the boundary.)
	for _, dd := range doms {
		if dd.name == "polytope d=33 m=8" {
			continue
		}
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			err := CheckMetropolisStep(brokenDiffusion{Backend: cpu, shrink: true}, dt, 33, dd.dom, dd.interior)
			assert.ErrorContains(t, err, "rejection counts", "%s %v: boundary points rejected", dd.name, dt)
		}
	}

	require.NoError(t, CheckDiffusionRejections(cpu))
	assert.Error(t, CheckDiffusionRejections(brokenDiffusion{Backend: cpu, accept: true}))
}

// The proposals of a box contain each kind the check promises: inside, outside, exactly on the
// boundary, one ulp outside and inside it, NaN and infinite coordinates.
func TestMetropolisProposalsCoverTheCases(t *testing.T) {
	box, err := ops.NewBox([]float64{-1, -2}, []float64{0.5, 1})
	require.NoError(t, err)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		prop := metropolisProposals(box, []float64{0, 0}, 64, dt)
		var inside, outside, boundary, nan, inf int
		for i := 0; i < 64; i++ {
			x := prop[2*i : 2*i+2]
			switch {
			case math.IsNaN(x[0]) || math.IsNaN(x[1]):
				nan++
			case math.IsInf(x[0], 0) || math.IsInf(x[1], 0):
				inf++
			case box.Contains(x):
				inside++
				if x[0] == -1 || x[0] == 0.5 || x[1] == -2 || x[1] == 1 {
					boundary++
				}
			default:
				outside++
			}
		}
		assert.Equal(t, 8, nan, "%v", dt)
		assert.Equal(t, 8, inf, "%v", dt)
		assert.Equal(t, 8, boundary, "%v: exactly on the boundary", dt)
		assert.Greater(t, inside, 8+8, "%v: boundary, one ulp inside and interior points", dt)
		assert.Greater(t, outside, 8+8, "%v: far and one-ulp-outside points", dt)
	}
}
