package ops

// BrownianSpec is what Backend.Brownian draws: paths on [0, Horizon] sampled at t_k = k·Horizon/n,
// k = 1..n; with Epoch = τ > 0 steps, restarted as a Brownian bridge pinned to 0 at every multiple
// of τ steps (ALGORITHMS §4.4); with Increments, the differences B(t_k) − B(t_{k−1}) instead.
type BrownianSpec struct {
	Horizon    float64
	Epoch      int
	Increments bool
}
