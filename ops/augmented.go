package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// MaxAugmentedComponents bounds AugmentedMap's M, the components of one coordinate's augmented
// state: x and up to five Ornstein–Uhlenbeck states of a GFDM driver (docs/math.md §5.5).
const MaxAugmentedComponents = 6

// AugmentedSpec describes the per-coordinate affine map of AugmentedStep. Every coordinate e of
// an (N, d) batch carries a state of M components x_e ∈ ℝ^M (and optionally a second one y_e), a
// scalar den_e (a denoiser's output) and R standard normals ξ_e, and the map is
//
//	r     = x_e − Phi·den_e                                   (the residual, when C is set)
//	dst_e = A x_e + C r + Bias·den_e + B y_e + L ξ_e
//	u_e   = (Wᵀ dst_e) / Q                                    (when W is set)
//
// Matrices are row-major float64: A, C and B are M×M, L is M×R; Phi, Bias and W have M entries.
// A nil term is absent (not zero: an absent term reads nothing, so a non-finite value there does
// not matter); Phi is required with C and allowed only with it; R = 0 means no noise (L nil).
//
// The reverse-time steps of generative fractional diffusion are all of this form (solvers'
// GFDMSample): Euler–Maruyama z' = (I − hF) z − h g gᵀΣ⁻¹ (z − φ D) + √h g ξ (R = 1), the
// exponential integrator z' = A (z − φ_i D) + φ_{i+1} D + L ξ (R = M), Heun's predictor and
// corrector (the corrector reads the step's start as y), and the terminal law z = φ ũ + L ξ.
// Writing the score term through the residual z − φD keeps its cancellation out of Σ⁻¹'s large
// entries.
type AugmentedSpec struct {
	M, R            int
	A, C, B         []float64
	Phi, Bias, L, W []float64
	Q               float64
}

// AugmentedMap is a validated AugmentedSpec (NewAugmentedMap); it is immutable, so a backend may
// keep a device copy of it (ops.Release frees that copy).
type AugmentedMap struct {
	s AugmentedSpec
}

// NewAugmentedMap validates spec (M ∈ [1, MaxAugmentedComponents], R ∈ [0, M], every present
// array of its length and finite, Q finite and nonzero when W is set) and copies it.
func NewAugmentedMap(spec AugmentedSpec) (*AugmentedMap, error) {
	const op = "augmented map"
	m, r := spec.M, spec.R
	if m < 1 || m > MaxAugmentedComponents {
		return nil, fmt.Errorf("%s: M = %d components: must be in [1, %d]", op, m, MaxAugmentedComponents)
	}
	if r < 0 || r > m {
		return nil, fmt.Errorf("%s: R = %d noise columns: must be in [0, M = %d]", op, r, m)
	}
	check := func(name string, v []float64, n int, required bool) error {
		if v == nil {
			if required {
				return fmt.Errorf("%s: %s is required", op, name)
			}
			return nil
		}
		if len(v) != n {
			return fmt.Errorf("%s: %s has %d entries, want %d", op, name, len(v), n)
		}
		for i, x := range v {
			if !finite(x) {
				return fmt.Errorf("%s: %s[%d] = %g: must be finite", op, name, i, x)
			}
		}
		return nil
	}
	if spec.Phi != nil && spec.C == nil {
		return nil, fmt.Errorf("%s: Phi is given without C (the residual has no other use)", op)
	}
	for _, a := range []struct {
		name     string
		v        []float64
		n        int
		required bool
	}{
		{"A", spec.A, m * m, false}, {"C", spec.C, m * m, false}, {"Phi", spec.Phi, m, spec.C != nil},
		{"Bias", spec.Bias, m, false}, {"B", spec.B, m * m, false}, {"L", spec.L, m * r, r > 0}, {"W", spec.W, m, false},
	} {
		if err := check(a.name, a.v, a.n, a.required); err != nil {
			return nil, err
		}
	}
	if r == 0 && spec.L != nil {
		return nil, fmt.Errorf("%s: L is given with R = 0 noise columns", op)
	}
	if spec.W != nil && (!finite(spec.Q) || spec.Q == 0) {
		return nil, fmt.Errorf("%s: Q = %g: the projection's divisor must be finite and nonzero", op, spec.Q)
	}
	cp := func(v []float64) []float64 {
		if v == nil {
			return nil
		}
		return append([]float64(nil), v...)
	}
	return &AugmentedMap{s: AugmentedSpec{M: m, R: r, A: cp(spec.A), C: cp(spec.C), B: cp(spec.B),
		Phi: cp(spec.Phi), Bias: cp(spec.Bias), L: cp(spec.L), W: cp(spec.W), Q: spec.Q}}, nil
}

// M is the number of components per coordinate, R the number of normals per coordinate.
func (m *AugmentedMap) M() int { return m.s.M }
func (m *AugmentedMap) R() int { return m.s.R }

// Projects reports whether the map writes the projection u.
func (m *AugmentedMap) Projects() bool { return m.s.W != nil }

// Reads reports which optional inputs the map reads: y (B set) and den (C or Bias set).
func (m *AugmentedMap) Reads() (y, den bool) {
	return m.s.B != nil, m.s.C != nil || m.s.Bias != nil
}

// The bits of AugmentedMap.Packed's mask: which terms are present.
const (
	AugmentedHasA = 1 << iota
	AugmentedHasC
	AugmentedHasBias
	AugmentedHasB
	AugmentedHasW
)

// Packed returns the map as one float64 array and the mask of present terms, the layout of
// kernels/augmented.cu: A (M²), C (M²), Phi (M), Bias (M), B (M²), L (M·R), W (M), 1/Q is not
// stored (Q travels as a parameter); absent arrays are zeros.
func (m *AugmentedMap) Packed() ([]float64, int64) {
	s := m.s
	mm := s.M
	out := make([]float64, 0, 3*mm*mm+3*mm+mm*s.R)
	var mask int64
	put := func(v []float64, n int, bit int64) {
		if v != nil {
			mask |= bit
			out = append(out, v...)
		} else {
			out = append(out, make([]float64, n)...)
		}
	}
	put(s.A, mm*mm, AugmentedHasA)
	put(s.C, mm*mm, AugmentedHasC)
	put(s.Phi, mm, 0)
	put(s.Bias, mm, AugmentedHasBias)
	put(s.B, mm*mm, AugmentedHasB)
	put(s.L, mm*s.R, 0)
	put(s.W, mm, AugmentedHasW)
	return out, mask
}

// Q is the projection's divisor.
func (m *AugmentedMap) Q() float64 { return m.s.Q }

// Apply computes the map for one coordinate, the reference arithmetic (kernels/augmented.cu
// performs the same operations in the same order, fma where this uses math.FMA): dst (M) from x,
// y (M, read when B is set), den and xi (R), and returns u (0 when W is not set). dst may be x or
// y.
func (m *AugmentedMap) Apply(dst, x, y []float64, den float64, xi []float64) float64 {
	s := &m.s
	n := s.M
	var buf, res [MaxAugmentedComponents]float64
	r := res[:n]
	if s.C != nil {
		for c := 0; c < n; c++ {
			r[c] = math.FMA(-s.Phi[c], den, x[c])
		}
	}
	out := buf[:n]
	for a := 0; a < n; a++ {
		v := 0.0
		if s.A != nil {
			for c := 0; c < n; c++ {
				v = math.FMA(s.A[a*n+c], x[c], v)
			}
		}
		if s.C != nil {
			for c := 0; c < n; c++ {
				v = math.FMA(s.C[a*n+c], r[c], v)
			}
		}
		if s.Bias != nil {
			v = math.FMA(s.Bias[a], den, v)
		}
		if s.B != nil {
			for c := 0; c < n; c++ {
				v = math.FMA(s.B[a*n+c], y[c], v)
			}
		}
		for c := 0; c < s.R; c++ {
			v = math.FMA(s.L[a*s.R+c], xi[c], v)
		}
		out[a] = v
	}
	copy(dst[:n], out)
	if s.W == nil {
		return 0
	}
	acc := 0.0
	for c := 0; c < n; c++ {
		acc = math.FMA(s.W[c], out[c], acc)
	}
	return acc / s.Q
}

// CheckAugmentedStep validates AugmentedStep's arguments on dev: a map; dst and x open f64
// (M, N, d) tensors; y of that shape when the map reads it (nil otherwise); den an f64 (N, d)
// tensor when the map reads it; u an f64 (N, d) tensor exactly when the map projects; u
// distinct from every other tensor and dst distinct from den; the draw's chains within range
// when the map draws normals.
func CheckAugmentedStep(dev tensor.Device, dst, x, y, den, u *tensor.Tensor, m *AugmentedMap, d Draw) error {
	const op = "augmented step"
	if m == nil {
		return fmt.Errorf("%s: nil map (build it with NewAugmentedMap)", op)
	}
	if dst == nil || dst.Closed() || dst.Rank() != 3 || dst.Dim(0) != m.s.M {
		return fmt.Errorf("%s: dst must be an open (M = %d, N, d) tensor", op, m.s.M)
	}
	n, dim := dst.Dim(1), dst.Dim(2)
	if err := checkSame(op, "dst", dst, dev, tensor.F64, m.s.M, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "x", x, dev, tensor.F64, m.s.M, n, dim); err != nil {
		return err
	}
	readY, readDen := m.Reads()
	if readY {
		if err := checkSame(op, "y", y, dev, tensor.F64, m.s.M, n, dim); err != nil {
			return err
		}
	} else if y != nil {
		return fmt.Errorf("%s: y is given but the map has no B term", op)
	}
	if readDen {
		if err := checkSame(op, "den", den, dev, tensor.F64, n, dim); err != nil {
			return err
		}
		if den == dst {
			return fmt.Errorf("%s: den and dst are the same tensor", op)
		}
	} else if den != nil {
		return fmt.Errorf("%s: den is given but the map has no C or Bias term", op)
	}
	if m.Projects() {
		if err := checkSame(op, "u", u, dev, tensor.F64, n, dim); err != nil {
			return err
		}
		if u == dst || u == x || u == y || u == den {
			return fmt.Errorf("%s: u must be a tensor of its own", op)
		}
	} else if u != nil {
		return fmt.Errorf("%s: u is given but the map has no projection W", op)
	}
	if m.s.R > 0 {
		if d.FirstChain >= MaxChains || uint64(n) > MaxChains-d.FirstChain {
			return fmt.Errorf("%s: chains %d..%d out of range: chain indices must be below 2^32", op, d.FirstChain, d.FirstChain+uint64(n))
		}
	}
	return nil
}

// AugmentedStep applies m to every coordinate e = (i, j) of the (N, d) batch (see AugmentedSpec):
// the M components of the states are planes, x[a, i, j]; the normals ξ_e are columns j·R … j·R +
// R − 1 of row i of the draw's (N, d·R) float64 normals (the Normal fill's numbers). Everything
// is float64. dst may be x or y.
func (b cpuBackend) AugmentedStep(dst, x, y, den, u *tensor.Tensor, m *AugmentedMap, d Draw) error {
	if err := CheckAugmentedStep(tensor.CPU(), dst, x, y, den, u, m, d); err != nil {
		return err
	}
	mm, r := m.s.M, m.s.R
	n, dim := dst.Dim(1), dst.Dim(2)
	if n == 0 || dim == 0 {
		return nil
	}
	plane := n * dim
	dv, _ := dst.F64()
	xv, _ := x.F64()
	var yv, denv, uv []float64
	if y != nil {
		yv, _ = y.F64()
	}
	if den != nil {
		denv, _ = den.F64()
	}
	if u != nil {
		uv, _ = u.F64()
	}
	b.parallelRows(n, 4*mm*mm*dim, func(lo, hi int) {
		var xs, ys, out [MaxAugmentedComponents]float64
		// Row i's normals: chain FirstChain + i of the float64 stream, d·R of them (what Normal
		// writes into row i of an (N, d·R) tensor), drawn when the row starts.
		var xi []float64
		if r > 0 {
			xi = make([]float64, dim*r)
		}
		for e := lo * dim; e < hi*dim; e++ {
			if r > 0 && e%dim == 0 {
				normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(e/dim)), false)
			}
			for a := 0; a < mm; a++ {
				xs[a] = xv[a*plane+e]
				if yv != nil {
					ys[a] = yv[a*plane+e]
				}
			}
			dn := 0.0
			if denv != nil {
				dn = denv[e]
			}
			var w []float64
			if r > 0 {
				j := e % dim
				w = xi[j*r : (j+1)*r] // columns j·R … of the row
			}
			pu := m.Apply(out[:mm], xs[:mm], ys[:mm], dn, w)
			for a := 0; a < mm; a++ {
				dv[a*plane+e] = out[a]
			}
			if uv != nil {
				uv[e] = pu
			}
		}
	})
	return nil
}
