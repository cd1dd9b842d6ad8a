package solvers_test

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// RTK-MALA on a two-mode mixture: 10^4 chains, the default 5 segments over [0, 5].
func ExampleRTK() {
	g, _ := ops.NewGMM(ops.GMMSpec{Weights: []float64{0.3, 0.7}, Means: [][]float64{{-4, 0}, {4, 1}}, Vars: []float64{1, 0.25}})
	res, err := solvers.RTK(ops.CPU(), target.GMM{Mixture: g}, 10000, tensor.F64, solvers.RTKConfig{Inner: "mala", Seed: 1})
	if err != nil {
		panic(err)
	}
	defer res.Close()
	x, _ := res.Samples.Float64s()
	fmt.Printf("mode weights %.3f, acceptance %.2f, score evaluations per chain %d\n",
		solvers.ModeWeights(x, 2, g), res.AcceptMean(), res.ScoreEvals/10000)
	// Output:
	// mode weights [0.311 0.689], acceptance 0.77, score evaluations per chain 110
}
