package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// DenoiseVJP against central differences of gᵀD(x; σ) in every coordinate of x and every
// parameter (data.mean and embed.freq included), for one- and two-layer blocks, with and without
// Fourier features, at small, unit and large σ. Step ε = 1e-6·max(1, |value|): truncation
// ε²|D”'| ≈ 1e-12 and cancellation 1e-16/ε ≈ 1e-10, so |vjp − fd| ≤ 1e-7·(1 + |fd|) is a thousand
// times the expected error, while a dropped term (a SiLU derivative, the residual path, the
// skip connection) is off by O(1). The D it writes, and DenoiseTape's, is DenoiseRow's, bit for bit.
func TestDenoiseVJPMatchesFiniteDifferences(t *testing.T) {
	const eps, tol = 1e-6, 1e-7
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []MLPConfig{
		{Dim: 3, Width: 7, Depth: 2, BlockLayers: 1, Fourier: 2, SigmaData: 0.7, BranchMult: 0.6, OutMult: 1.3},
		{Dim: 2, Width: 5, Depth: 3, BlockLayers: 2, Fourier: 3, SigmaData: 1.4, BranchMult: 1, OutMult: 0.5},
		{Dim: 1, Width: 4, Depth: 1, BlockLayers: 2, Fourier: 0, SigmaData: 1, BranchMult: 1, OutMult: 1},
	} {
		m, err := RandomMLP(c, 3)
		require.NoError(t, err)
		tape := NewMLPTape(c)
		for _, sigma := range []float64{0.05, 1, 7} {
			x, g := make([]float64, c.Dim), make([]float64, c.Dim)
			for i := range x {
				x[i], g[i] = rng.NormFloat64(), rng.NormFloat64()
			}
			inner := func(m *MLP, x []float64) float64 {
				den := make([]float64, c.Dim)
				m.DenoiseRow(den, x, sigma)
				s := 0.0
				for i, v := range den {
					s += g[i] * v
				}
				return s
			}
			gx, gp, den := make([]float64, c.Dim), make([]float64, len(m.Packed())), make([]float64, c.Dim)
			require.NoError(t, m.DenoiseVJP(gx, gp, den, x, g, sigma, tape))
			want := make([]float64, c.Dim)
			m.DenoiseRow(want, x, sigma)
			require.Equal(t, want, den)
			den2 := make([]float64, c.Dim)
			require.NoError(t, m.DenoiseTape(den2, x, sigma, tape))
			require.Equal(t, want, den2, "DenoiseTape is DenoiseRow")
			for i := range x {
				e := eps * math.Max(1, math.Abs(x[i]))
				xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
				xp[i] += e
				xm[i] -= e
				fd := (inner(m, xp) - inner(m, xm)) / (2 * e)
				require.InDelta(t, fd, gx[i], tol*(1+math.Abs(fd)), "%s σ = %g: d/dx[%d]", c, sigma, i)
			}
			p0 := m.Packed()
			for i := range p0 {
				e := eps * math.Max(1, math.Abs(p0[i]))
				pp, pm := append([]float64(nil), p0...), append([]float64(nil), p0...)
				pp[i] += e
				pm[i] -= e
				mp, err := MLPFromPacked(c, pp)
				require.NoError(t, err)
				mm, err := MLPFromPacked(c, pm)
				require.NoError(t, err)
				fd := (inner(mp, x) - inner(mm, x)) / (2 * e)
				require.InDelta(t, fd, gp[i], tol*(1+math.Abs(fd)), "%s σ = %g: d/dθ[%d]", c, sigma, i)
			}
		}
	}
}

func TestDenoiseVJPRejects(t *testing.T) {
	c := MLPConfig{Dim: 2, Width: 4, Depth: 1, BlockLayers: 1, Fourier: 1, SigmaData: 1, BranchMult: 1, OutMult: 1}
	m, err := RandomMLP(c, 1)
	require.NoError(t, err)
	tape := NewMLPTape(c)
	x, g, gx, gp := make([]float64, 2), make([]float64, 2), make([]float64, 2), make([]float64, len(m.Packed()))
	require.ErrorContains(t, m.DenoiseVJP(gx, gp, nil, x, g, 0, tape), "σ = 0")
	require.ErrorContains(t, m.DenoiseVJP(gx, gp, nil, x, g, math.NaN(), tape), "σ = NaN")
	require.ErrorContains(t, m.DenoiseVJP(gx, gp[:3], nil, x, g, 1, tape), "gp has 3 values")
	require.ErrorContains(t, m.DenoiseVJP(gx, gp, nil, x[:1], g, 1, tape), "need 2 values")
	other := c
	other.Width = 5
	require.ErrorContains(t, m.DenoiseVJP(gx, gp, nil, x, g, 1, NewMLPTape(other)), "tape")
	_, err = MLPFromPacked(c, m.Packed()[1:])
	require.ErrorContains(t, err, "packed values")
	_, err = MLPFromPacked(c, append(append([]float64(nil), m.Packed()...), 1))
	require.ErrorContains(t, err, "packed values")
}
