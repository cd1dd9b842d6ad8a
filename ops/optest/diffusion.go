package optest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Tolerances of Combine against the float64 reference, per element and relative to the element's
// term scale S = Σ_k |C_k T_k| + noise·|ξ| (scaling by the terms keeps the bound meaningful where
// they cancel). A backend forms the same float64 sum in the same order from the same stored
// inputs and rounds once, so what may differ is:
//   - the normals ξ (with noise): none, they are exact (NormalF32, NormalF64);
//   - FMA contraction of C_k T_k + partial sum (Go contracts on some architectures, a kernel built
//     IEEE-exact does not): each of the at most MaxTerms + 1 additions then rounds differently,
//     by ≤ 2^-53 of a partial sum ≤ S, 7.8e-16 S in all;
//   - for float32, the final rounding: two float64 values a hair apart may round to neighbouring
//     floats, one float32 ulp ≤ 2^-23 |result| ≤ 1.2e-7 S.
//
// Hence, with or without noise, float32 1.2e-7 + 7.8e-16 (checked at 2.5e-7) and float64
// 7.8e-16 (1e-15).
var (
	CombineF32          = 2.5e-7
	CombineF64          = 1e-15
	CombineNoiselessF32 = 2.5e-7
	CombineNoiselessF64 = 1e-15
)

// combineRtol is the tolerance of one Combine case.
func combineRtol(dt tensor.DType, noise float64) float64 {
	switch {
	case dt == tensor.F32 && noise != 0:
		return CombineF32
	case dt == tensor.F32:
		return CombineNoiselessF32
	case noise != 0:
		return CombineF64
	}
	return CombineNoiselessF64
}

// combineCoeffs are the coefficients of the suite's terms, in term order.
var combineCoeffs = [ops.MaxTerms]float64{1.25, -0.75, 2.5, -0.3, 0.6, -1.9}

// combineInput returns the values of term k for (rows, dim): scale_k·sin(0.7 e + phase_k) over the
// flat index e, with a NaN at (1, 0) of term 0 when rows > 2 (it must poison that element only).
func combineInput(rows, dim, k int) []float64 {
	v := make([]float64, rows*dim)
	scale := []float64{1, 3, 0.5, 2, 7, 0.25}[k]
	for e := range v {
		v[e] = scale * math.Sin(0.7*float64(e)+0.9*float64(k)+0.3)
	}
	if k == 0 && rows > 2 {
		v[dim] = math.NaN()
	}
	return v
}

// sameValues compares exactly, NaN equal to NaN; it describes the first difference.
func sameValues(got, ref []float64, width int) error {
	if len(got) != len(ref) {
		return fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	for i := range ref {
		if got[i] != ref[i] && !(math.IsNaN(got[i]) && math.IsNaN(ref[i])) {
			return fmt.Errorf("row %d col %d: got %v, reference %v", i/width, i%width, got[i], ref[i])
		}
	}
	return nil
}

// runCombine runs Combine on be with the terms holding inputs (values exact in dt) and the suite's
// coefficients: every term in its own guarded buffer on be's device, dst term alias (alias ≥ 0) or
// a fresh Sentinel-filled guarded tensor. It returns dst's values
// and an error when a guard band was written or a term other than dst changed.
func runCombine(be ops.Backend, dt tensor.DType, inputs [][]float64, rows, dim, alias int, noise float64, d ops.Draw) ([]float64, error) {
	dev := be.Device()
	nterms := len(inputs)
	bufs := make([]Guarded, nterms)
	defer func() {
		for _, g := range bufs {
			g.close()
		}
	}()
	terms := make([]ops.Term, nterms)
	for k := range terms {
		g, err := NewGuarded(dev, guard, dt, inputs[k], rows, dim)
		if err != nil {
			return nil, err
		}
		bufs[k] = g
		terms[k] = ops.Term{T: g.view, C: combineCoeffs[k]}
	}
	out := Guarded{}
	if alias >= 0 {
		out = bufs[alias]
	} else {
		g, err := NewGuarded(dev, guard, dt, nil, rows, dim)
		if err != nil {
			return nil, err
		}
		defer g.close()
		out = g
	}
	if err := be.Combine(out.view, terms, noise, d); err != nil {
		return nil, err
	}
	if err := dev.Synchronize(); err != nil {
		return nil, err
	}
	for k, g := range bufs {
		if k == alias {
			continue
		}
		v, err := g.values(fmt.Sprintf("term %d", k))
		if err != nil {
			return nil, err
		}
		if err := sameValues(v, inputs[k], dim); err != nil {
			return nil, fmt.Errorf("term %d changed: %w", k, err)
		}
	}
	return out.values("destination")
}

// CheckCombine compares b's Combine with the CPU reference for (rows, dim) tensors of dt, the first
// nterms of the suite's terms, dst = term alias (alias < 0: a separate tensor), noise coefficient
// noise and draw d. Every tensor sits inside guard bands; terms other than dst must not change;
// dst must agree with the reference within CombineF32/F64 (with noise) or CombineNoiselessF32/F64
// of the element's term scale, with NaN exactly where the reference has NaN (an element left
// unwritten in a fresh dst still holds Sentinel and is caught).
func CheckCombine(b ops.Backend, dt tensor.DType, rows, dim, nterms, alias int, noise float64, d ops.Draw) error {
	if nterms < 1 || nterms > ops.MaxTerms || alias >= nterms {
		return fmt.Errorf("check combine: %d terms, alias %d: want 1..%d terms and alias < terms", nterms, alias, ops.MaxTerms)
	}
	// The terms as stored (rounded to dt).
	inputs := make([][]float64, nterms)
	for k := range inputs {
		inputs[k] = combineInput(rows, dim, k)
		if dt == tensor.F32 {
			for e, v := range inputs[k] {
				inputs[k][e] = float64(float32(v))
			}
		}
	}
	got, err := runCombine(b, dt, inputs, rows, dim, alias, noise, d)
	if err != nil {
		return err
	}
	ref, err := runCombine(ops.Reference(), dt, inputs, rows, dim, alias, noise, d)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	// The element scales, from the stored inputs and the reference's normals.
	scale := make([]float64, rows*dim)
	for k, v := range inputs {
		for e, x := range v {
			if !math.IsNaN(x) {
				scale[e] += math.Abs(combineCoeffs[k] * x)
			}
		}
	}
	if noise != 0 && rows*dim > 0 {
		xi, err := fillOn(ops.Reference(), "normal", dt, rows, dim, d)
		if err != nil {
			return err
		}
		for e, z := range xi {
			scale[e] += noise * math.Abs(z)
		}
	}
	rtol := combineRtol(dt, noise)
	for e, want := range ref {
		g := got[e]
		if err := notWritten(g, want, e/dim, e%dim); err != nil {
			return err
		}
		if math.IsNaN(want) || math.IsNaN(g) {
			if math.IsNaN(want) != math.IsNaN(g) {
				return fmt.Errorf("row %d col %d: got %v, reference %v", e/dim, e%dim, g, want)
			}
			continue
		}
		if diff := math.Abs(g - want); !(diff <= rtol*scale[e]) {
			return fmt.Errorf("row %d col %d: got %v, reference %v (|diff| %.3g > rtol %g × term scale %.3g)",
				e/dim, e%dim, g, want, diff, rtol, scale[e])
		}
	}
	return nil
}

// metropolisProposals returns rows proposals in R^d for dom, interior a point inside it, stored as
// dt. Rows cycle through eight kinds: inside near the interior point; far outside; exactly on the
// boundary (box: one coordinate at lo_j or hi_j; ball: center + radius·e_j; polytope: the foot of
// the perpendicular from the interior point on facet i, exact where the numbers are dyadic); that
// boundary point moved one ulp of dt outward, and one inward; a NaN coordinate; an infinite
// coordinate; and points spread over about twice the domain's size, inside or outside.
func metropolisProposals(dom *ops.Domain, interior []float64, rows int, dt tensor.DType) []float64 {
	p := dom.Params()
	d := p.Dim
	out := make([]float64, rows*d)
	// Distances from the interior point to the boundary along the suite's directions.
	near, far := 1.0, 1.0
	switch p.Kind {
	case ops.Box:
		near, far = math.Inf(1), 0
		for j := 0; j < d; j++ {
			h := (p.Hi[j] - p.Lo[j]) / 2
			near, far = math.Min(near, h), math.Max(far, h)
		}
	case ops.Ball:
		near, far = p.Radius, p.Radius
	case ops.Polytope:
		near, far = math.Inf(1), 0
		for i := 0; i < p.M; i++ {
			dist := (p.B[i] - dot(p.A[i*d:(i+1)*d], interior)) / norm(p.A[i*d:(i+1)*d])
			near, far = math.Min(near, dist), math.Max(far, dist)
		}
	}
	round := func(v float64) float64 {
		if dt == tensor.F32 {
			return float64(float32(v))
		}
		return v
	}
	// away moves v by one ulp of dt in the direction of sign.
	away := func(v, sign float64) float64 {
		if dt == tensor.F32 {
			return float64(math.Nextafter32(float32(v), float32(math.Copysign(math.Inf(1), sign))))
		}
		return math.Nextafter(v, math.Copysign(math.Inf(1), sign))
	}
	unit := make([]float64, d)
	for i := 0; i < rows; i++ {
		row := out[i*d : (i+1)*d]
		s := 0.0
		for j := range unit {
			unit[j] = math.Sin(0.7*float64(i*d+j) + 0.3)
			s += unit[j] * unit[j]
		}
		s = math.Sqrt(s)
		if s == 0 {
			s, unit[0] = 1, 1
		}
		for j := range unit {
			unit[j] /= s
		}
		copy(row, interior)
		j := i % d
		switch kind := i % 8; kind {
		case 0: // inside
			for q := range row {
				row[q] += 0.25 * near * unit[q]
			}
		case 1: // far outside
			for q := range row {
				row[q] += 4 * far * math.Sqrt(float64(d)) * unit[q]
			}
		case 2, 3, 4: // on the boundary, then one ulp outward or inward
			var grad []float64 // outward direction of the boundary at the point
			switch p.Kind {
			case ops.Box:
				grad = make([]float64, d)
				if (i/8)%2 == 0 {
					row[j], grad[j] = p.Hi[j], 1
				} else {
					row[j], grad[j] = p.Lo[j], -1
				}
			case ops.Ball:
				copy(row, p.Center)
				row[j] += p.Radius
				grad = make([]float64, d)
				grad[j] = 1
			case ops.Polytope:
				c := (i / 8) % p.M
				a := p.A[c*d : (c+1)*d]
				t := (p.B[c] - dot(a, interior)) / dot(a, a)
				for q := range row {
					row[q] = interior[q] + t*a[q]
				}
				grad = a
			}
			for q := range row {
				row[q] = round(row[q])
			}
			if kind != 2 {
				sign := 1.0
				if kind == 4 {
					sign = -1
				}
				for q := range row {
					if grad[q] != 0 {
						row[q] = away(row[q], sign*grad[q])
					}
				}
			}
		case 5:
			row[j] = math.NaN()
		case 6:
			row[j] = math.Copysign(math.Inf(1), unit[j])
		case 7: // spread: radius 0.25..1.75 × the far distance
			r := far * (0.25 + 1.5*math.Mod(float64(i)*0.618034, 1))
			for q := range row {
				row[q] += r * unit[q]
			}
		}
	}
	return out
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

// runMetropolis runs MetropolisStep on be with x and the rejection counts inside guard bands
// and returns their values after the step.
func runMetropolis(be ops.Backend, dt tensor.DType, dom *ops.Domain, x, prop, rej []float64) ([]float64, []float64, error) {
	rows, d := len(rej), dom.Dim()
	dev := be.Device()
	xg, err := NewGuarded(dev, guard, dt, x, rows, d)
	if err != nil {
		return nil, nil, err
	}
	defer xg.close()
	rg, err := NewGuarded(dev, guard, tensor.F64, rej, rows)
	if err != nil {
		return nil, nil, err
	}
	defer rg.close()
	pt, err := onDevice(dev, dt, prop, rows, d)
	if err != nil {
		return nil, nil, err
	}
	defer pt.Close()
	if err := be.MetropolisStep(xg.view, pt, dom, rg.view); err != nil {
		return nil, nil, err
	}
	if err := dev.Synchronize(); err != nil {
		return nil, nil, err
	}
	xv, err := xg.values("x")
	if err != nil {
		return nil, nil, err
	}
	rv, err := rg.values("rejection counts")
	if err != nil {
		return nil, nil, err
	}
	return xv, rv, nil
}

// CheckMetropolisStep compares b's MetropolisStep with the CPU reference for rows proposals of dt
// around the point interior of dom (see metropolisProposals: points inside, outside, exactly on the
// boundary and one ulp either side of it, NaN and infinite coordinates). Decisions are taken in
// float64 on the same stored values on every backend, so x and the rejection counts must agree
// exactly; x and the counts sit inside guard bands. Counts start at i mod 3, so that a backend
// must add to them.
func CheckMetropolisStep(b ops.Backend, dt tensor.DType, rows int, dom *ops.Domain, interior []float64) error {
	if dom == nil || len(interior) != dom.Dim() || !dom.Contains(interior) {
		return fmt.Errorf("check metropolis step: the interior point must be a point of the domain")
	}
	d := dom.Dim()
	x := make([]float64, rows*d)
	for e := range x {
		x[e] = interior[e%d] + 0.1*math.Cos(float64(e))
	}
	prop := metropolisProposals(dom, interior, rows, dt)
	rej := make([]float64, rows)
	for i := range rej {
		rej[i] = float64(i % 3)
	}
	gx, gr, err := runMetropolis(b, dt, dom, x, prop, rej)
	if err != nil {
		return err
	}
	rx, rr, err := runMetropolis(ops.Reference(), dt, dom, x, prop, rej)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if err := sameValues(gr, rr, 1); err != nil {
		return fmt.Errorf("rejection counts: %w", err)
	}
	if err := sameValues(gx, rx, d); err != nil {
		return fmt.Errorf("x: %w", err)
	}
	return nil
}

// diffusionDomain is one domain of the suite with a point inside it.
type diffusionDomain struct {
	name     string
	dom      *ops.Domain
	interior []float64
	large    bool // also checked with the large size (LargeRows, or EmulatedLargeRows)
}

// diffusionDomains returns the suite's domains: boxes, balls and polytopes whose numbers are
// dyadic (so that the boundary points are exactly on the boundary in float32 too), in dimensions
// that give one thread per row (d ≤ 4) and a group of lanes per row (d ≥ 5) on the GPU, where
// decisions near the boundary are re-taken in the reference's summation order.
func diffusionDomains() ([]diffusionDomain, error) {
	var out []diffusionDomain
	var errs []error
	add := func(name string, dom *ops.Domain, err error, interior []float64) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		out = append(out, diffusionDomain{name: name, dom: dom, interior: interior})
	}
	for _, d := range []int{1, 3, 64} {
		lo, hi, c := make([]float64, d), make([]float64, d), make([]float64, d)
		for j := range lo {
			lo[j], hi[j] = -1-0.25*float64(j%3), 0.5+0.125*float64(j%5)
			c[j] = 0.25 * float64(j%3)
		}
		box, err := ops.NewBox(lo, hi)
		add(fmt.Sprintf("box d=%d", d), box, err, make([]float64, d))
		ball, err := ops.NewBall(c, 1.5)
		add(fmt.Sprintf("ball d=%d", d), ball, err, c)
	}
	{
		ball, err := ops.NewBall([]float64{0.5, -0.25, 1, 0, 0.75}, 2)
		add("ball d=5", ball, err, []float64{0.5, -0.25, 1, 0, 0.75})
		if err == nil {
			out[len(out)-1].large = true
		}
	}
	// The triangle x ≥ 0, y ≥ 0, x + y ≤ 1 and the square |x| + |y| ≤ 2 (as four half-planes).
	tri, err := ops.NewPolytope([][]float64{{-1, 0}, {0, -1}, {1, 1}}, []float64{0, 0, 1})
	add("polytope d=2 m=3", tri, err, []float64{0.25, 0.25})
	diamond, err := ops.NewPolytope([][]float64{{1, 1}, {1, -1}, {-1, 1}, {-1, -1}}, []float64{2, 2, 2, 2})
	add("polytope d=2 m=4", diamond, err, []float64{0, 0})
	// A simplex-like polytope in d = 33: x_j ≥ −1 for j < 6, Σ x_j ≤ 4, and x_0 − x_1 ≤ 0.5.
	{
		const d = 33
		var a [][]float64
		var bv []float64
		for j := 0; j < 6; j++ {
			row := make([]float64, d)
			row[j] = -1
			a, bv = append(a, row), append(bv, 1)
		}
		sum := make([]float64, d)
		for j := range sum {
			sum[j] = 1
		}
		diff := make([]float64, d)
		diff[0], diff[1] = 1, -1
		a, bv = append(a, sum, diff), append(bv, 4, 0.5)
		poly, err := ops.NewPolytope(a, bv)
		add("polytope d=33 m=8", poly, err, make([]float64, d))
		if err == nil {
			out[len(out)-1].large = true
		}
	}
	return out, errors.Join(errs...)
}

// combineDims are the row widths of the Combine checks: below, at and above one Philox block in
// either precision, and odd.
var combineDims = []int{1, 2, 3, 5, 33}

// RunDiffusion runs the checks of the diffusion samplers' ops (Combine, MetropolisStep) against b
// as subtests: every edge size and both dtypes, terms 1, 3 and MaxTerms (every count from 1 to
// MaxTerms at one size), dst separate or aliasing the last term, with and without noise; every
// suite domain with every edge size (and the large one for two of them); and the rejections of bad
// input. It does not close b.
func RunDiffusion(t *testing.T, b ops.Backend) {
	t.Run("combine", func(t *testing.T) {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			large := largeRows(b)
			for _, rows := range append(append([]int(nil), Rows...), large) {
				dims, counts := combineDims, []int{1, 3, ops.MaxTerms}
				switch {
				case rows == large:
					dims, counts = []int{7}, []int{3}
				case rows == 33:
					counts = []int{1, 2, 3, 4, 5, 6}
				}
				for _, dim := range dims {
					for _, k := range counts {
						for _, alias := range []int{-1, k - 1} {
							for _, noise := range []float64{0, 0.7} {
								d := ops.Draw{Seed: 0xc0b1 + uint64(dim), Site: 1<<32 + uint64(rows), FirstChain: uint64(rows % 5)}
								if err := CheckCombine(b, dt, rows, dim, k, alias, noise, d); err != nil {
									t.Fatalf("%v (%d, %d), %d terms, alias %d, noise %g: %v", dt, rows, dim, k, alias, noise, err)
								}
							}
						}
					}
				}
			}
		}
	})
	t.Run("metropolis step", func(t *testing.T) {
		doms, err := diffusionDomains()
		if err != nil {
			t.Fatal(err)
		}
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			for _, dd := range doms {
				rows := append([]int(nil), Rows...)
				if dd.large {
					rows = append(rows, largeRows(b))
				}
				for _, n := range rows {
					if err := CheckMetropolisStep(b, dt, n, dd.dom, dd.interior); err != nil {
						t.Fatalf("%v %s, %d rows: %v", dt, dd.name, n, err)
					}
				}
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if err := CheckDiffusionRejections(b); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckDiffusionRejections checks that b refuses what the CPU reference refuses, with an error,
// for Combine and MetropolisStep.
func CheckDiffusionRejections(b ops.Backend) error {
	dev := b.Device()
	alloc := func(dt tensor.DType, shape ...int) *tensor.Tensor {
		x, err := tensor.New(dev, dt, shape...)
		if err != nil {
			return nil
		}
		return x
	}
	x, y, wrong, f64, flat := alloc(tensor.F32, 4, 3), alloc(tensor.F32, 4, 3), alloc(tensor.F32, 3, 3),
		alloc(tensor.F64, 4, 3), alloc(tensor.F32, 12)
	rej, rej32, rejShort := alloc(tensor.F64, 4), alloc(tensor.F32, 4), alloc(tensor.F64, 3)
	all := []*tensor.Tensor{x, y, wrong, f64, flat, rej, rej32, rejShort}
	defer func() {
		for _, t := range all {
			if t != nil {
				t.Close()
			}
		}
	}()
	for _, t := range all {
		if t == nil {
			return fmt.Errorf("allocate the rejection cases' tensors on %s", dev.Name())
		}
	}
	box3, err := ops.NewBox([]float64{-1, -1, -1}, []float64{1, 1, 1})
	if err != nil {
		return err
	}
	box2, err := ops.NewBox([]float64{-1, -1}, []float64{1, 1})
	if err != nil {
		return err
	}
	many := make([]ops.Term, ops.MaxTerms+1)
	for i := range many {
		many[i] = ops.Term{T: y, C: 1}
	}
	cases := []struct {
		name string
		err  error
	}{
		{"combine: nil destination", b.Combine(nil, []ops.Term{{T: y, C: 1}}, 0, ops.Draw{})},
		{"combine: rank-1 destination", b.Combine(flat, []ops.Term{{T: flat, C: 1}}, 0, ops.Draw{})},
		{"combine: no terms", b.Combine(x, nil, 0, ops.Draw{})},
		{"combine: too many terms", b.Combine(x, many, 0, ops.Draw{})},
		{"combine: term shape", b.Combine(x, []ops.Term{{T: wrong, C: 1}}, 0, ops.Draw{})},
		{"combine: term dtype", b.Combine(x, []ops.Term{{T: f64, C: 1}}, 0, ops.Draw{})},
		{"combine: NaN coefficient", b.Combine(x, []ops.Term{{T: y, C: math.NaN()}}, 0, ops.Draw{})},
		{"combine: negative noise", b.Combine(x, []ops.Term{{T: y, C: 1}}, -0.5, ops.Draw{})},
		{"combine: chains beyond 2^32", b.Combine(x, []ops.Term{{T: y, C: 1}}, 1, ops.Draw{FirstChain: ops.MaxChains - 2})},
		{"metropolis: nil domain", b.MetropolisStep(x, y, nil, rej)},
		{"metropolis: dimension", b.MetropolisStep(x, y, box2, rej)},
		{"metropolis: proposal shape", b.MetropolisStep(x, wrong, box3, rej)},
		{"metropolis: proposal dtype", b.MetropolisStep(x, f64, box3, rej)},
		{"metropolis: float32 counts", b.MetropolisStep(x, y, box3, rej32)},
		{"metropolis: counts length", b.MetropolisStep(x, y, box3, rejShort)},
	}
	if dev.Kind() != tensor.KindCPU {
		host, err := tensor.New(nil, tensor.F32, 4, 3)
		if err != nil {
			return err
		}
		cases = append(cases,
			struct {
				name string
				err  error
			}{"combine: host term on a device backend", b.Combine(x, []ops.Term{{T: host, C: 1}}, 0, ops.Draw{})},
			struct {
				name string
				err  error
			}{"metropolis: host proposal on a device backend", b.MetropolisStep(x, host, box3, rej)})
	}
	var errs []error
	for _, c := range cases {
		if c.err == nil {
			errs = append(errs, fmt.Errorf("%s: accepted, want an error", c.name))
		}
	}
	return errors.Join(errs...)
}
