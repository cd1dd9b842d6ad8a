package ops

// StableKind is the law that Backend.Stable draws from (ALGORITHMS §4.3).
type StableKind int

const (
	StableSymmetric StableKind = iota + 1 // scalar, E e^{itX} = e^{−|t|^α}
	StableSkewed                          // scalar S_α(1, β, 0)
	StablePositive                        // positive stable of index α ∈ (0, 1), E e^{−sA} = e^{−s^α}
	StableIsotropic                       // sub-Gaussian vector per row, E e^{i⟨t,X⟩} = e^{−(‖t‖²/2)^{α/2}}
)

// StableSpec is the law of Backend.Stable: its kind, index α, skewness β (StableSkewed) and an
// optional clamp: Clamp > 0 clips every value to [−Clamp, Clamp] and counts the values clipped.
type StableSpec struct {
	Kind        StableKind
	Alpha, Beta float64
	Clamp       float64
}
