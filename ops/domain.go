package ops

import (
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

// DomainKind is the shape of a constraint domain (docs/math.md §5.4).
type DomainKind int

const (
	Box      DomainKind = iota + 1 // Lo ≤ x ≤ Hi coordinate-wise
	Ball                           // ‖x − Center‖ ≤ Radius
	Polytope                       // A x ≤ B, A an m × d matrix
)

func (k DomainKind) String() string {
	switch k {
	case Box:
		return "box"
	case Ball:
		return "ball"
	case Polytope:
		return "polytope"
	}
	return fmt.Sprintf("DomainKind(%d)", int(k))
}

// Domain is a closed convex constraint domain in R^d, validated at construction. Membership is
// tested in float64 on every backend (a boundary point belongs to the domain).
type Domain struct {
	kind DomainKind
	d    int
	// Box: lo, hi (d each). Ball: center (d), radius. Polytope: a (m·d, row-major), b (m).
	lo, hi, center []float64
	radius         float64
	a, b           []float64
	m              int
}

// NewBox is the box lo ≤ x ≤ hi; every lo_j < hi_j, all finite.
func NewBox(lo, hi []float64) (*Domain, error) {
	if len(lo) == 0 || len(lo) != len(hi) {
		return nil, fmt.Errorf("box: lo has %d coordinates, hi %d: want the same number ≥ 1", len(lo), len(hi))
	}
	for j := range lo {
		if !finite(lo[j]) || !finite(hi[j]) || !(lo[j] < hi[j]) {
			return nil, fmt.Errorf("box: coordinate %d: need finite lo < hi, have [%g, %g]", j, lo[j], hi[j])
		}
	}
	return &Domain{kind: Box, d: len(lo), lo: append([]float64(nil), lo...), hi: append([]float64(nil), hi...)}, nil
}

// NewBall is the closed ball of the given center and radius > 0.
func NewBall(center []float64, radius float64) (*Domain, error) {
	if len(center) == 0 {
		return nil, fmt.Errorf("ball: empty center")
	}
	for j, c := range center {
		if !finite(c) {
			return nil, fmt.Errorf("ball: center coordinate %d = %g: must be finite", j, c)
		}
	}
	if !(radius > 0) || !finite(radius) {
		return nil, fmt.Errorf("ball: radius %g: must be a finite number > 0", radius)
	}
	return &Domain{kind: Ball, d: len(center), center: append([]float64(nil), center...), radius: radius}, nil
}

// NewPolytope is {x : A x ≤ b} for the m × d matrix a (rows a[i]) and b (m). No row of A may be
// zero; emptiness or unboundedness is not checked here (samplers check that their initial
// states lie inside).
func NewPolytope(a [][]float64, b []float64) (*Domain, error) {
	m := len(a)
	if m == 0 || len(b) != m {
		return nil, fmt.Errorf("polytope: A has %d rows, b %d entries: want the same number ≥ 1", m, len(b))
	}
	d := len(a[0])
	if d == 0 {
		return nil, fmt.Errorf("polytope: A has no columns")
	}
	flat := make([]float64, 0, m*d)
	for i, row := range a {
		if len(row) != d {
			return nil, fmt.Errorf("polytope: row %d of A has %d entries, row 0 has %d", i, len(row), d)
		}
		zero := true
		for j, v := range row {
			if !finite(v) {
				return nil, fmt.Errorf("polytope: A[%d][%d] = %g: must be finite", i, j, v)
			}
			zero = zero && v == 0
		}
		if zero {
			return nil, fmt.Errorf("polytope: row %d of A is zero", i)
		}
		if !finite(b[i]) {
			return nil, fmt.Errorf("polytope: b[%d] = %g: must be finite", i, b[i])
		}
		flat = append(flat, row...)
	}
	return &Domain{kind: Polytope, d: d, a: flat, b: append([]float64(nil), b...), m: m}, nil
}

// Kind, Dim and Constraints (the number of rows m of a polytope; 0 otherwise) describe the domain.
func (dom *Domain) Kind() DomainKind { return dom.kind }
func (dom *Domain) Dim() int         { return dom.d }
func (dom *Domain) Constraints() int { return dom.m }

// DomainParams are a domain's defining numbers, copied, for backends that upload them.
type DomainParams struct {
	Kind           DomainKind
	Dim            int
	Lo, Hi, Center []float64
	Radius         float64
	A, B           []float64 // A row-major (m·d)
	M              int
}

// Params returns a copy of the domain's defining numbers.
func (dom *Domain) Params() DomainParams {
	cp := func(v []float64) []float64 { return append([]float64(nil), v...) }
	return DomainParams{Kind: dom.kind, Dim: dom.d, Lo: cp(dom.lo), Hi: cp(dom.hi), Center: cp(dom.center),
		Radius: dom.radius, A: cp(dom.a), B: cp(dom.b), M: dom.m}
}

// Contains reports whether x (d coordinates) lies in the domain; a NaN coordinate never does, and
// neither does an x with the wrong number of coordinates.
//
//	box       lo_j ≤ x_j ≤ hi_j for every j
//	ball      Σ_j (x_j − c_j)² ≤ r²
//	polytope  Σ_j A_ij x_j ≤ b_i for every i
func (dom *Domain) Contains(x []float64) bool {
	if len(x) != dom.d {
		return false
	}
	switch dom.kind {
	case Box:
		for j, v := range x {
			if !(dom.lo[j] <= v && v <= dom.hi[j]) {
				return false
			}
		}
		return true
	case Ball:
		s := 0.0
		for j, v := range x {
			r := v - dom.center[j]
			s += r * r
		}
		return s <= dom.radius*dom.radius
	case Polytope:
		for i := 0; i < dom.m; i++ {
			s := 0.0
			for j, v := range x {
				s += dom.a[i*dom.d+j] * v
			}
			if !(s <= dom.b[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// CheckMetropolisStep validates MetropolisStep's arguments.
func CheckMetropolisStep(dev tensor.Device, x, prop *tensor.Tensor, dom *Domain, rejected *tensor.Tensor) error {
	const op = "metropolis step"
	if dom == nil {
		return fmt.Errorf("%s: nil domain", op)
	}
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: x must be an open (N, d) tensor", op)
	}
	n, d, dt := x.Dim(0), x.Dim(1), x.DType()
	if d != dom.d {
		return fmt.Errorf("%s: x has dimension %d, the %v domain %d", op, d, dom.kind, dom.d)
	}
	if err := checkSame(op, "x", x, dev, dt, n, d); err != nil {
		return err
	}
	if err := checkSame(op, "proposal", prop, dev, dt, n, d); err != nil {
		return err
	}
	return checkSame(op, "rejection counts", rejected, dev, tensor.F64, n)
}

// MetropolisStep: for every row i, if Contains(prop_i) (evaluated in float64 on the stored values)
// then x_i ← prop_i, else rejected[i] += 1 and x_i stays.
func (b cpuBackend) MetropolisStep(x, prop *tensor.Tensor, dom *Domain, rejected *tensor.Tensor) error {
	if err := CheckMetropolisStep(tensor.CPU(), x, prop, dom, rejected); err != nil {
		return err
	}
	n, d := x.Dim(0), x.Dim(1)
	rx, rp, rr := rowsOf(x), rowsOf(prop), rowsOf(rejected)
	cost := 4 * d
	if dom.kind == Polytope {
		cost = 2 * d * dom.m
	}
	b.parallelRows(n, cost, func(lo, hi int) {
		y := make([]float64, d)
		for i := lo; i < hi; i++ {
			rp.get(i, y)
			if dom.Contains(y) {
				rx.set(i, y)
			} else {
				rr.put(i, rr.at(i)+1)
			}
		}
	})
	return nil
}
