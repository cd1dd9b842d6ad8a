package ops

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/scorekit/scorekit/tensor"
)

// StableKind is the law that Backend.Stable draws from (docs/math.md §4.3).
type StableKind int

const (
	StableSymmetric StableKind = iota + 1 // scalar, E e^{itX} = e^{−|t|^α}
	StableSkewed                          // scalar S_α(1, β, 0)
	StablePositive                        // positive stable of index α ∈ (0, 1), E e^{−sA} = e^{−s^α}
	StableIsotropic                       // sub-Gaussian vector per row, E e^{i⟨t,X⟩} = e^{−(‖t‖²/2)^{α/2}}
)

func (k StableKind) String() string {
	switch k {
	case StableSymmetric:
		return "symmetric"
	case StableSkewed:
		return "skewed"
	case StablePositive:
		return "positive"
	case StableIsotropic:
		return "isotropic"
	}
	return fmt.Sprintf("StableKind(%d)", int(k))
}

// StableSpec is the law of Backend.Stable: its kind, index α, skewness β (StableSkewed) and an
// optional clamp: Clamp > 0 clips every value to [−Clamp, Clamp] and counts the values clipped.
//
// The laws, by their characteristic functions (S_α(σ, β, μ) in Samorodnitsky–Taqqu's notation,
// Nolan's "S1" parametrisation):
//
//	Symmetric   α ∈ (0, 2]:           E e^{itX} = e^{−|t|^α}   (α = 2: N(0, 2); α = 1: Cauchy)
//	Skewed      α ∈ (0, 2], |β| ≤ 1:  α ≠ 1: E e^{itX} = exp(−|t|^α (1 − iβ sign(t) tan(πα/2)))
//	                                  α = 1: E e^{itX} = exp(−|t| (1 + iβ (2/π) sign(t) log|t|))
//	                                  (β = 0 is Symmetric; at α = 2, β has no effect)
//	Positive    α ∈ (0, 1):           E e^{−sA} = e^{−s^α}, s ≥ 0 (A > 0; this is
//	                                  cos(πα/2)^{1/α} · S_α(1, 1, 0))
//	Isotropic   α ∈ (0, 2]:           one vector per row, E e^{i⟨t,X⟩} = exp(−(‖t‖²/2)^{α/2}):
//	                                  X = √A · G, G ~ N(0, I_d), A Positive of index α/2; at α = 2,
//	                                  A ≡ 1 and X = G ~ N(0, I) (note: not the scalar Symmetric
//	                                  law at α = 2, which is N(0, 2))
//
// Clamp: 0 (no clamp) or a finite number > 0; a clipped value is stored as ±Clamp rounded to the
// destination's dtype, and the count is of stored values whose magnitude exceeded Clamp (for
// Positive: values above Clamp). Values beyond the dtype's range are ±Inf unless clamped; that
// happens only for small α: the bracket of the map (see stableCMS) is at most about 4e14 with the
// 24-bit uniforms of float32 and 1e32 with the 53-bit ones of float64, and a draw at most S times
// its power 1/α, so float32 overflows only below α ≈ 0.38 and float64 below α ≈ 0.1.
type StableSpec struct {
	Kind        StableKind
	Alpha, Beta float64
	Clamp       float64
}

// StableConstants are the host-computed constants of the Chambers–Mallows–Stuck map (see
// Backend.Stable's reference) for a spec: every backend evaluates the same map with these.
type StableConstants struct {
	// Alpha is the index the map uses: α, or α/2 for the isotropic kind's mixing variable A.
	Alpha float64
	// Beta is the skewness of the α = 1 branch (0 unless Skewed).
	Beta float64
	// Shift is b = B/π, B = arctan(β tan(πα/2))/α: 0 for symmetric laws, ½ for the positive ones.
	Shift float64
	// Scale is S = (1 + β² tan²(πα/2))^{1/(2α)} (1 for symmetric and positive laws).
	Scale float64
	// InvAlpha is 1/Alpha.
	InvAlpha float64
	// Degenerate is set for the isotropic kind at α = 2: A ≡ 1, no map is evaluated.
	Degenerate bool
}

// Validate checks the spec: a known kind, α ∈ (0, 2] (Positive: (0, 1)), |β| ≤ 1 (only Skewed
// uses β; the others require β = 0), Clamp ≥ 0, all finite.
func (s StableSpec) Validate() error {
	const op = "stable"
	switch s.Kind {
	case StableSymmetric, StableSkewed, StablePositive, StableIsotropic:
	default:
		return fmt.Errorf("%s: unknown kind %v", op, s.Kind)
	}
	if !(s.Alpha > 0 && s.Alpha <= 2) {
		return fmt.Errorf("%s: %v: index α = %g: must be in (0, 2]", op, s.Kind, s.Alpha)
	}
	if s.Kind == StablePositive && !(s.Alpha < 1) {
		return fmt.Errorf("%s: positive: index α = %g: must be in (0, 1)", op, s.Alpha)
	}
	if !(math.Abs(s.Beta) <= 1) {
		return fmt.Errorf("%s: %v: skewness β = %g: must be in [−1, 1]", op, s.Kind, s.Beta)
	}
	if s.Kind != StableSkewed && s.Beta != 0 {
		return fmt.Errorf("%s: %v: skewness β = %g: only the skewed kind takes β", op, s.Kind, s.Beta)
	}
	if !(s.Clamp >= 0) || math.IsInf(s.Clamp, 0) {
		return fmt.Errorf("%s: clamp %g: must be 0 (none) or a finite number > 0", op, s.Clamp)
	}
	return nil
}

// Constants returns the map's constants for a valid spec.
func (s StableSpec) Constants() StableConstants {
	switch s.Kind {
	case StablePositive:
		return StableConstants{Alpha: s.Alpha, Shift: 0.5, Scale: 1, InvAlpha: 1 / s.Alpha}
	case StableIsotropic:
		a := s.Alpha / 2
		return StableConstants{Alpha: a, Shift: 0.5, Scale: 1, InvAlpha: 1 / a, Degenerate: s.Alpha == 2}
	case StableSkewed:
		c := StableConstants{Alpha: s.Alpha, Beta: s.Beta, Scale: 1, InvAlpha: 1 / s.Alpha}
		if s.Alpha == 1 || s.Beta == 0 {
			return c
		}
		sn, cs := sinCosPi(s.Alpha / 2)
		tan := sn / cs // tan(πα/2), exactly 0 at α = 2
		switch {
		case math.Abs(s.Beta) == 1 && s.Alpha < 1:
			c.Shift = s.Beta / 2 // arctan(tan(πα/2)) = πα/2, without rounding
		case math.Abs(s.Beta) == 1:
			c.Shift = s.Beta * (0.5 - 1/s.Alpha) // arctan(tan(πα/2)) = πα/2 − π for α ∈ (1, 2]
		default:
			c.Shift = math.Atan(s.Beta*tan) / (math.Pi * s.Alpha)
		}
		c.Scale = math.Pow(1+s.Beta*s.Beta*tan*tan, 1/(2*s.Alpha))
		return c
	}
	return StableConstants{Alpha: s.Alpha, Scale: 1, InvAlpha: 1 / s.Alpha}
}

// CheckStable validates Stable's arguments: dst (rows, d) on dev and a valid spec; the isotropic
// kind also draws at site d.Site+1.
func CheckStable(dev tensor.Device, dst *tensor.Tensor, s StableSpec, d Draw) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := checkFill("stable", dev, dst, d); err != nil {
		return err
	}
	if s.Kind == StableIsotropic && d.Site == math.MaxUint64 {
		return fmt.Errorf("stable: isotropic: site %d: the mixing variable is drawn at site Site+1", d.Site)
	}
	return nil
}

// sinCosPi returns sin(πx) and cos(πx), reducing x exactly to r = x − n/2 ∈ [−¼, ¼],
// n = round(2x), before the one rounded product π·r, so that both are accurate to a few ulp for
// any |x| < 2^50, also where they are close to 0 (the kernels reduce the same way and then call
// sincospi / sincospif).
func sinCosPi(x float64) (s, c float64) {
	n := math.RoundToEven(2 * x)
	r := x - n/2 // exact
	sr, cr := math.Sincos(math.Pi * r)
	switch int64(n) & 3 {
	case 0:
		return sr, cr
	case 1:
		return cr, -sr
	case 2:
		return -sr, -cr
	default:
		return -cr, sr
	}
}

// stableAngle maps the uniform u of a 24-bit (f32) or 53-bit (f64) stream, u = k·2^-bits, to the
// midpoint of its cell minus ½: t = u + 2^-(bits+1) − ½ = (2k + 1 − 2^bits)·2^-(bits+1), an odd
// multiple of 2^-(bits+1) in (−½, ½), symmetric about 0 and exact in the stream's precision.
// V = π t is the CMS angle.
func stableAngle(u float64, bits int) float64 { return (u - 0.5) + math.Ldexp(1, -bits-1) }

// stableExp maps the uniform u of a bits-bit stream to the exponential W = −log(1 − u), with the
// one atom u = 0 (where W would be 0) moved to 2^-(bits+1), the mean of −log(1 − U) over that
// cell to first order, so that W > 0 always.
func stableExp(u float64, bits int) float64 {
	if u == 0 {
		return math.Ldexp(1, -bits-1)
	}
	return -math.Log(1 - u)
}

// stableCMS is the Chambers–Mallows–Stuck map (Weron's form) for the angle t = V/π ∈ (−½, ½) and
// W > 0, with α = c.Alpha, b = c.Shift, S = c.Scale:
//
//	α ≠ 1:  X = S · sin(π α (t + b)) · [ (cos(π (t − α (t + b))) / W)^{1−α} / cos(π t) ]^{1/α}
//	α = 1:  X = (1 + 2βt) tan(π t) − (2β/π) log(W cos(π t) / (1 + 2βt))
//
// which is S · sin(α(V+B)) / cos(V)^{1/α} · (cos(V − α(V+B)) / W)^{(1−α)/α} and
// (2/π)[(π/2 + βV) tan V − β log((π/2) W cos V / (π/2 + βV))] written in half-turns. With b = 0,
// S = 1 it is the symmetric law; with b = ½, S = 1 and α < 1 it is Kanter's positive stable
// variable: sin(α U) / sin(U)^{1/α} · (sin((1−α)U) / W)^{(1−α)/α}, U = π(t + ½). The bracket is
// one nested power so that nothing overflows before the last power (the factors of the textbook
// form can be Inf and 0 at once for small α); a cosine that rounding has pushed below 0 at the
// edge of the support counts as 0, and sin(πα(t + b)) = 0 gives exactly 0.
func stableCMS(t, w float64, c StableConstants) float64 {
	if c.Alpha == 1 {
		s, co := sinCosPi(t)
		p := 1 + 2*c.Beta*t
		x := p * (s / co)
		if c.Beta != 0 {
			x -= 2 * c.Beta / math.Pi * math.Log(w*co/p)
		}
		return x
	}
	u := t + c.Shift
	a1 := c.Alpha * u
	sa, _ := sinCosPi(a1)
	if sa == 0 {
		return 0
	}
	_, c1 := sinCosPi(t - a1)
	_, c0 := sinCosPi(t)
	c1 = math.Max(c1, 0)
	inner := math.Pow(c1/w, 1-c.Alpha) / c0
	return c.Scale * sa * math.Pow(inner, c.InvAlpha)
}

// stableRow fills row with the scalar kind's elements for chain at site: element j takes t from
// uniform column 2j and W from uniform column 2j+1 of the draw (philox.go): f32 stream: lane j/2,
// words 2(j%2) and 2(j%2)+1, 24-bit uniforms; f64 stream: lane j, words (0, 1) and (2, 3),
// 53-bit uniforms.
func stableRow(row []float64, seed, site uint64, chain uint32, f32 bool, c StableConstants) {
	if f32 {
		for l := 0; 2*l < len(row); l++ {
			blk := philoxBlock(seed, site, chain, uint32(l))
			for k := 0; k < 2 && 2*l+k < len(row); k++ {
				u, v := float64(Uniform32(blk[2*k])), float64(Uniform32(blk[2*k+1]))
				row[2*l+k] = stableCMS(stableAngle(u, 24), stableExp(v, 24), c)
			}
		}
		return
	}
	for j := range row {
		blk := philoxBlock(seed, site, chain, uint32(j))
		u, v := Uniform64(blk[0], blk[1]), Uniform64(blk[2], blk[3])
		row[j] = stableCMS(stableAngle(u, 53), stableExp(v, 53), c)
	}
}

// Stable fills dst (rows, d), row i from chain d.FirstChain+i, with α-stable values of the spec
// (see StableSpec for the laws), computed in float64 from the uniforms of dst's precision (24-bit
// for f32, 53-bit for f64) and rounded once. The draw layout, which the kernels follow:
//
//   - Symmetric, Skewed, Positive: element (i, j) = stableCMS(t, W) with t = stableAngle of uniform
//     column 2j and W = stableExp of uniform column 2j+1 of the Uniform fill at site d.Site (f32:
//     Philox lane j/2, words 2(j%2), 2(j%2)+1; f64: lane j, words 0‖1 and 2‖3).
//     Symmetric uses b = 0, S = 1; Skewed the constants of StableSpec.Constants; Positive b = ½,
//     S = 1 (Kanter).
//   - Isotropic: row i = √A · G, G = columns 0..d−1 of the Normal fill at site d.Site (the numbers
//     Normal writes, in dst's precision), A = the Positive map of index α/2 on the uniform columns
//     0 and 1 at site d.Site+1 (element 0 of a Positive fill of that site); A ≡ 1 at α = 2.
//
// Clamp > 0: a value whose stored (rounded) magnitude exceeds Clamp (Positive: which exceeds
// Clamp) is replaced by ±Clamp, rounded to the dtype, and counted; the count is returned.
func (b cpuBackend) Stable(dst *tensor.Tensor, s StableSpec, d Draw) (int64, error) {
	if err := CheckStable(tensor.CPU(), dst, s, d); err != nil {
		return 0, err
	}
	n, dim := dst.Dim(0), dst.Dim(1)
	f32 := dst.DType() == tensor.F32
	c := s.Constants()
	rd := rowsOf(dst)
	clampTo := s.Clamp
	if f32 {
		clampTo = float64(float32(s.Clamp))
	}
	var clamped atomic.Int64
	b.parallelRows(n, 60*dim+60, func(lo, hi int) {
		row, mix := make([]float64, dim), make([]float64, 1)
		var count int64
		for i := lo; i < hi; i++ {
			chain := uint32(d.FirstChain + uint64(i))
			if s.Kind == StableIsotropic {
				normalRow(row, d.Seed, d.Site, chain, f32)
				scale := 1.0
				if !c.Degenerate {
					stableRow(mix, d.Seed, d.Site+1, chain, f32, c)
					scale = math.Sqrt(mix[0])
				}
				for j := range row {
					row[j] *= scale
				}
			} else {
				stableRow(row, d.Seed, d.Site, chain, f32, c)
			}
			for j, v := range row {
				if f32 {
					v = float64(float32(v))
				}
				if s.Clamp > 0 {
					switch {
					case v > s.Clamp:
						v = clampTo
						count++
					case v < -s.Clamp:
						v = -clampTo
						count++
					}
				}
				row[j] = v
			}
			if dim > 0 {
				rd.set(i, row)
			}
		}
		clamped.Add(count)
	})
	return clamped.Load(), nil
}
