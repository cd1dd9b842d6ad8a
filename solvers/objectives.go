package solvers

import (
	"fmt"
	"math"
)

// Objective is a function f: R^d → R that FPGD descends. Value and Grad are evaluated on the
// host, one chain at a time: x and dst have length Dim(), Grad writes ∇f(x) into dst and must not
// keep either slice. Implementations must be safe for concurrent calls on distinct slices (FPGD
// evaluates chains in parallel).
type Objective interface {
	Dim() int
	Value(x []float64) float64
	Grad(dst, x []float64)
}

// DoubleWell is the symmetric double well in R^d
//
//	f(x) = b (x_1² − 1)² + ½ Σ_{j>1} x_j²,   ∇f(x) = (4b x_1 (x_1² − 1), x_2, …, x_d),
//
// with minima f = 0 at ±e_1, a saddle at the origin of height b (the barrier), curvature 8b
// along x_1 at the minima and 1 across. The zero Barrier means b = 1.
type DoubleWell struct {
	D       int
	Barrier float64
}

// NewDoubleWell validates d ≥ 1 and b > 0.
func NewDoubleWell(d int, barrier float64) (DoubleWell, error) {
	if err := checkDim("double well", d); err != nil {
		return DoubleWell{}, err
	}
	if !finitePositive(barrier) {
		return DoubleWell{}, fmt.Errorf("double well: barrier %g: must be a finite number > 0", barrier)
	}
	return DoubleWell{D: d, Barrier: barrier}, nil
}

func (w DoubleWell) b() float64 { return orDefault(w.Barrier, 1) }

func (w DoubleWell) Dim() int { return w.D }

func (w DoubleWell) Value(x []float64) float64 {
	u := x[0]*x[0] - 1
	f := w.b() * u * u
	for _, v := range x[1:w.D] {
		f += 0.5 * v * v
	}
	return f
}

func (w DoubleWell) Grad(dst, x []float64) {
	dst[0] = 4 * w.b() * x[0] * (x[0]*x[0] - 1)
	copy(dst[1:w.D], x[1:w.D])
}

func (w DoubleWell) String() string { return fmt.Sprintf("double-well(d=%d, barrier=%g)", w.D, w.b()) }

// Rastrigin is the Rastrigin function in R^d
//
//	f(x) = A d + Σ_j (x_j² − A cos(2π x_j)),   ∂_j f = 2 x_j + 2π A sin(2π x_j),
//
// global minimum f = 0 at the origin, local minima near every integer point. The zero A means
// A = 10.
type Rastrigin struct {
	D int
	A float64
}

// NewRastrigin validates d ≥ 1 and A ≥ 0.
func NewRastrigin(d int, a float64) (Rastrigin, error) {
	if err := checkDim("rastrigin", d); err != nil {
		return Rastrigin{}, err
	}
	if !(a >= 0) || math.IsInf(a, 0) {
		return Rastrigin{}, fmt.Errorf("rastrigin: a %g: must be a finite number ≥ 0", a)
	}
	return Rastrigin{D: d, A: a}, nil
}

func (r Rastrigin) a() float64 { return orDefault(r.A, 10) }

func (r Rastrigin) Dim() int { return r.D }

func (r Rastrigin) Value(x []float64) float64 {
	a := r.a()
	f := a * float64(r.D)
	for _, v := range x[:r.D] {
		f += v*v - a*math.Cos(2*math.Pi*v)
	}
	return f
}

func (r Rastrigin) Grad(dst, x []float64) {
	a := r.a()
	for j, v := range x[:r.D] {
		dst[j] = 2*v + 2*math.Pi*a*math.Sin(2*math.Pi*v)
	}
}

func (r Rastrigin) String() string { return fmt.Sprintf("rastrigin(d=%d, a=%g)", r.D, r.a()) }

// Quadratic is the separable quadratic
//
//	f(x) = ½ Σ_j a_j (x_j − c_j)²,   ∂_j f = a_j (x_j − c_j),
//
// with curvatures a_j ≥ 0 (a_j = 0: a flat direction) and center c. Gradient descent with step h
// contracts coordinate j by 1 − h a_j per step.
type Quadratic struct {
	Curvatures []float64
	Center     []float64
}

// NewQuadratic validates the curvatures (finite, ≥ 0, at least one) and the center (nil: the
// origin; else of the same length, finite).
func NewQuadratic(curvatures, center []float64) (Quadratic, error) {
	if len(curvatures) == 0 {
		return Quadratic{}, fmt.Errorf("quadratic: no curvatures: the dimension must be ≥ 1")
	}
	for j, a := range curvatures {
		if !(a >= 0) || math.IsInf(a, 0) {
			return Quadratic{}, fmt.Errorf("quadratic: curvature %d = %g: must be a finite number ≥ 0", j, a)
		}
	}
	if center == nil {
		center = make([]float64, len(curvatures))
	}
	if len(center) != len(curvatures) {
		return Quadratic{}, fmt.Errorf("quadratic: center has %d coordinates, the curvatures %d", len(center), len(curvatures))
	}
	for j, c := range center {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return Quadratic{}, fmt.Errorf("quadratic: center coordinate %d = %g: must be finite", j, c)
		}
	}
	return Quadratic{Curvatures: append([]float64(nil), curvatures...), Center: append([]float64(nil), center...)}, nil
}

func (q Quadratic) Dim() int { return len(q.Curvatures) }

func (q Quadratic) center(j int) float64 {
	if q.Center == nil {
		return 0
	}
	return q.Center[j]
}

func (q Quadratic) Value(x []float64) float64 {
	f := 0.0
	for j, a := range q.Curvatures {
		u := x[j] - q.center(j)
		f += 0.5 * a * u * u
	}
	return f
}

func (q Quadratic) Grad(dst, x []float64) {
	for j, a := range q.Curvatures {
		dst[j] = a * (x[j] - q.center(j))
	}
}

func (q Quadratic) String() string { return fmt.Sprintf("quadratic(d=%d)", len(q.Curvatures)) }

// checkDim refuses a dimension below 1 for the objective op.
func checkDim(op string, d int) error {
	if d < 1 {
		return fmt.Errorf("%s: dim %d: must be ≥ 1", op, d)
	}
	return nil
}

// orDefault is v, or def where v is the zero value (a parameter left unset).
func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}
