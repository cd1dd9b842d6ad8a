package ops

// MAFBM is the Markov approximation of type-II fBM by K Ornstein–Uhlenbeck processes driven by
// one Brownian motion (ALGORITHMS §4.2): speeds γ_k, weights ω_k and the relative L² error.
type MAFBM struct {
	hurst, horizon, gammaMax float64
	k                        int
}

// NewMAFBM validates H ∈ (0, 1), K ≥ 1, γ_max > 1 and T > 0 and computes the speeds and weights.
func NewMAFBM(hurst float64, k int, gammaMax, horizon float64) (*MAFBM, error) {
	return nil, errPending("ma-fbm")
}
