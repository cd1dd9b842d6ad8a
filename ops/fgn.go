package ops

// FGNPlan holds what Davies–Harte needs for one (Hurst index, length): the square roots of the
// circulant embedding's eigenvalues, computed once (ALGORITHMS §4.1).
type FGNPlan struct {
	hurst float64
	n     int
}

// FGNForm says what FGN writes: unit-step fGn increments (the zero value), increments of a path on
// [0, Horizon] (scaled by (Horizon/n)^H), or, with Path, the fBM path B at t_k = k·Horizon/n,
// k = 1..n (cumulative sums of those increments; Horizon 0 means n, i.e. unit steps).
type FGNForm struct {
	Horizon float64
	Path    bool
}

// NewFGNPlan validates H ∈ (0, 1) and n ≥ 1 and computes the plan.
func NewFGNPlan(hurst float64, n int) (*FGNPlan, error) {
	return nil, errPending("fgn plan")
}
