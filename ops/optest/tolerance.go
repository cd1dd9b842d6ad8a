package optest

import (
	"fmt"
	"math"
)

// Tolerance accepts got when |got − ref| ≤ Atol + Rtol·|ref| element-wise (NaN never passes,
// except where ref is NaN too).
type Tolerance struct {
	Atol, Rtol float64
}

// Exact demands bit-for-bit equality of the values.
var Exact = Tolerance{}

// Mismatch describes how far got is from ref.
type Mismatch struct {
	MaxAbs   float64 // largest |got − ref|
	MaxRel   float64 // largest |got − ref| / |ref| over ref ≠ 0
	Worst    int     // index of the first element out of tolerance, -1 if none
	Got, Ref float64 // the values at Worst
}

// Compare measures got against ref under tol.
func Compare(got, ref []float64, tol Tolerance) (Mismatch, error) {
	m := Mismatch{Worst: -1}
	if len(got) != len(ref) {
		return m, fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	for i := range ref {
		g, r := got[i], ref[i]
		if math.IsNaN(r) && math.IsNaN(g) {
			continue
		}
		d := math.Abs(g - r)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		m.MaxAbs = math.Max(m.MaxAbs, d)
		if r != 0 {
			m.MaxRel = math.Max(m.MaxRel, d/math.Abs(r))
		}
		if !(d <= tol.Atol+tol.Rtol*math.Abs(r)) && m.Worst < 0 {
			m.Worst, m.Got, m.Ref = i, g, r
		}
	}
	if m.Worst >= 0 {
		return m, fmt.Errorf("element %d: got %v, reference %v (tolerance atol %g rtol %g; max abs error %g, max rel error %g)",
			m.Worst, m.Got, m.Ref, tol.Atol, tol.Rtol, m.MaxAbs, m.MaxRel)
	}
	return m, nil
}
