package solvers_test

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Heun's method (EDM's second-order sampler) on a two-mode mixture, through the mixture's exact
// denoiser: 4000 chains, 18 steps of the EDM grid from σ = 80 to 0. The weights are 0.3 and 0.7;
// 4000 chains estimate them to about ±0.007.
func ExampleDiffusion() {
	g, _ := ops.NewGMM(ops.GMMSpec{Weights: []float64{0.3, 0.7}, Means: [][]float64{{-7, 0}, {3, 0}}, Vars: []float64{1, 0.5}})
	den := solvers.TargetDenoiser(target.GMM{Mixture: g})
	res, err := solvers.Diffusion(ops.CPU(), den, 4000, tensor.F64, solvers.DiffusionConfig{Method: solvers.MethodHeun, Steps: 18, Seed: 1})
	if err != nil {
		panic(err)
	}
	defer res.Close()
	x, _ := res.Samples.Float64s()
	fmt.Printf("mode weights %.2f, denoiser evaluations per chain %d, last levels %.3f\n",
		solvers.ModeWeights(x, 2, g), res.ScoreEvals/4000, res.Sigmas[17:])
	// Output:
	// mode weights [0.31 0.69], denoiser evaluations per chain 35, last levels [0.002 0.000]
}
