package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// gaussianNetwork is a network whose output layer is zero: its denoiser is exactly that of
// N(μ, σd² I) (the preconditioning's skip path), so every sampler run on it must produce that
// Gaussian. Its stored covariance is σd² I, which makes the exact start exact too.
func gaussianNetwork(t *testing.T) (target.MLP, []float64, float64) {
	t.Helper()
	cfg := ops.MLPConfig{Dim: 2, Width: 16, Depth: 2, BlockLayers: 1, Fourier: 4, SigmaData: 0.6, BranchMult: 1, OutMult: 1}
	r, err := ops.RandomMLP(cfg, 5)
	require.NoError(t, err)
	ps := r.Params()
	for i := range ps {
		if ps[i].Name == "output.weight" || ps[i].Name == "output.bias" {
			clear(ps[i].Data)
		}
		if ps[i].Name == "data.mean" {
			ps[i].Data = []float64{1.5, -0.5}
		}
	}
	m, err := ops.NewMLP(cfg, ps)
	require.NoError(t, err)
	v := cfg.SigmaData * cfg.SigmaData
	return target.MLP{Net: m, Cov: []float64{v, 0, 0, v}}, []float64{1.5, -0.5}, v
}

// Every method that needs only a denoiser samples the network exactly as it samples the mixture
// N(μ, σd² I), whose denoiser the network equals: same seed, same start, the same samples to
// round-off. The Langevin and RTK methods, which need the density at t = 0, and LIM, which needs
// a mixture's or a data set's own structure, refuse the network with an error naming the problem.
// Heun's samples also have the Gaussian's moments (Monte-Carlo tolerance).
func TestMethodsOnANetwork(t *testing.T) {
	tg, mean, v := gaussianNetwork(t)
	g, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{mean}, Vars: []float64{v}})
	require.NoError(t, err)
	twin := target.GMM{Mixture: g}
	const n = 1000
	density := "needs a target with a density"
	refused := map[string]string{MethodULA: density, MethodMALA: density, MethodULD: density,
		"rtk-mala": density, "rtk-uld": density, MethodLIM: "no LIM denoiser for this kind"}
	for _, m := range Methods() {
		if m.Family == FamilyConstrained {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			o := MethodOptions{Budget: 32, Seed: 11}
			res, err := m.Run(ops.CPU(), tg, n, tensor.F64, o)
			if want, ok := refused[m.Name]; ok {
				assert.ErrorContains(t, err, want)
				return
			}
			require.NoError(t, err)
			ref, err := m.Run(ops.CPU(), twin, n, tensor.F64, o)
			require.NoError(t, err)
			x, err := res.Samples.F64()
			require.NoError(t, err)
			y, err := ref.Samples.F64()
			require.NoError(t, err)
			for i := range x {
				require.InDelta(t, y[i], x[i], 1e-9*(1+math.Abs(y[i])), "sample value %d", i)
			}
			if m.Name != MethodHeun {
				return
			}
			for j := 0; j < 2; j++ {
				mu, s2 := 0.0, 0.0
				for i := 0; i < n; i++ {
					mu += x[2*i+j]
				}
				mu /= n
				for i := 0; i < n; i++ {
					s2 += (x[2*i+j] - mu) * (x[2*i+j] - mu)
				}
				s2 /= n - 1
				// 5 standard errors of the Monte-Carlo mean and variance, plus 5% of the variance
				// for the discretisation.
				assert.InDelta(t, mean[j], mu, 5*math.Sqrt(v/n)+0.05*math.Sqrt(v), "mean of coordinate %d", j)
				assert.InDelta(t, v, s2, 5*v*math.Sqrt(2.0/n)+0.05*v, "variance of coordinate %d", j)
			}
		})
	}
}

// The start of an mlp target is N(a μ, a² C + s I) with the stored mean and covariance; a
// checkpoint without a covariance has none.
func TestSampleNoisedNetwork(t *testing.T) {
	tg, mean, _ := gaussianNetwork(t)
	tg.Cov = []float64{2, 0.9, 0.9, 0.6}
	const n = 20000
	a, s := 0.8, 0.3
	x, err := SampleNoised(tg, n, a, s, 3, 0)
	require.NoError(t, err)
	want := []float64{a*a*2 + s, a * a * 0.9, a * a * 0.9, a*a*0.6 + s}
	var m [2]float64
	for i := 0; i < n; i++ {
		m[0] += x[2*i] / n
		m[1] += x[2*i+1] / n
	}
	var c [4]float64
	for i := 0; i < n; i++ {
		d0, d1 := x[2*i]-m[0], x[2*i+1]-m[1]
		c[0] += d0 * d0 / n
		c[1] += d0 * d1 / n
		c[2] += d1 * d0 / n
		c[3] += d1 * d1 / n
	}
	for j := 0; j < 2; j++ {
		assert.InDelta(t, a*mean[j], m[j], 5*math.Sqrt(want[3*j]/n))
	}
	for k := range c {
		i, j := k/2, k%2
		assert.InDelta(t, want[k], c[k], 5*math.Sqrt((want[3*i]*want[3*j]+want[k]*want[k])/n), "cov[%d]", k)
	}
	tg.Cov = nil
	_, err = SampleNoised(tg, 4, a, s, 3, 0)
	assert.ErrorContains(t, err, "holds no data covariance")
}
