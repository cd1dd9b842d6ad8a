package ops_test

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The denoiser and log-density of a two-component mixture at VE noise level σ = 0.5.
func ExampleBackend_GMMScore() {
	g, err := ops.NewGMM(ops.GMMSpec{
		Weights: []float64{0.3, 0.7},
		Means:   [][]float64{{0, 0}, {4, 1}},
		Vars:    []float64{1.0, 0.25},
	})
	if err != nil {
		panic(err)
	}
	b := ops.CPU() // or cuda.New(gpu) in a -tags cuda build
	x, _ := tensor.FromF64([]float64{0.5, 0.2, 3.5, 1.5}, 2, 2)
	den, _ := tensor.New(b.Device(), tensor.F64, 2, 2)
	logp, _ := tensor.New(b.Device(), tensor.F64, 2)
	if err := b.GMMScore(ops.ScoreOutputs{Denoiser: den, LogP: logp}, x, g, ops.AtSigma(0.5)); err != nil {
		panic(err)
	}
	d, _ := den.F64()
	lp, _ := logp.F64()
	fmt.Printf("D(x0) = (%.4f, %.4f), log p(x0) = %.4f\n", d[0], d[1], lp[0])
	fmt.Printf("D(x1) = (%.4f, %.4f), log p(x1) = %.4f\n", d[2], d[3], lp[1])
	// Output:
	// D(x0) = (0.4000, 0.1600), log p(x0) = -3.3810
	// D(x1) = (3.7492, 1.2500), log p(x1) = -2.0005
}

// One step of Gaussian mean shift: the optimal denoiser of three points.
func ExampleBackend_EmpiricalScore() {
	data, _ := tensor.FromF64([]float64{0, 0, 2, 0, 0, 2}, 3, 2)
	e, err := ops.NewEmpirical(data)
	if err != nil {
		panic(err)
	}
	x, _ := tensor.FromF64([]float64{1.9, 0.1}, 1, 2)
	den, _ := tensor.New(nil, tensor.F64, 1, 2)
	if err := ops.CPU().EmpiricalScore(ops.ScoreOutputs{Denoiser: den}, x, e, ops.AtSigma(0.3)); err != nil {
		panic(err)
	}
	d, _ := den.F64()
	fmt.Printf("D = (%.4f, %.4f)\n", d[0], d[1])
	// Output:
	// D = (2.0000, 0.0000)
}

// Fractional Brownian motion of Hurst index 0.7 on [0, 1]: 1000 paths of 4096 points by
// Davies–Harte. Var B(t) = t^{2H}: 1 at t = 1 and 2^{−1.4} ≈ 0.379 at t = ½ (±4.5 % relative from
// 1000 paths).
func ExampleBackend_FGN() {
	b := ops.CPU()
	plan, err := ops.NewFGNPlan(0.7, 4096) // Davies–Harte spectrum, computed once per (H, n)
	if err != nil {
		panic(err)
	}
	paths, _ := tensor.New(b.Device(), tensor.F32, 1000, 4096)
	defer paths.Close()
	if err := b.FGN(paths, plan, ops.FGNForm{Horizon: 1, Path: true}, ops.Draw{Seed: 7}); err != nil { // fBM on [0, 1]
		panic(err)
	}
	v, _ := paths.Float64s()
	variance := func(k int) float64 { // over the paths, of B(t_k), t_k = (k+1)/4096
		s := 0.0
		for p := 0; p < 1000; p++ {
			s += v[p*4096+k] * v[p*4096+k]
		}
		return s / 1000
	}
	fmt.Printf("Var B(1/2) = %.3f, Var B(1) = %.3f\n", variance(2047), variance(4095))
	// Output:
	// Var B(1/2) = 0.384, Var B(1) = 1.023
}

// Increments of one Brownian path on [0, 1] at a resolution of 2^-30, asked in any order: they add
// up to round-off, and asking again gives the same bits.
func ExampleBrownianInterval() {
	spec := ops.BrownianIntervalSpec{Horizon: 1, Depth: 30}
	w, err := ops.NewBrownianInterval(spec, ops.Draw{Seed: 7, Site: 1}, 0)
	if err != nil {
		panic(err)
	}
	whole, _ := w.Increment(0.25, 0.8)
	second, _ := w.Increment(0.5, 0.8)
	first, _ := w.Increment(0.25, 0.5)
	again, _ := w.Increment(0.25, 0.8)
	fmt.Printf("additive to round-off: %v, reproducible: %v\n", math.Abs(first+second-whole) < 1e-15, again == whole)
	_, err = w.Increment(0.5, 0.25)
	fmt.Println(err)
	// Output:
	// additive to round-off: true, reproducible: true
	// brownian interval: s = 0.5, t = 0.25: need s < t
}
