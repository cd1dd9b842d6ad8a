package solvers

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/nn"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// randomSPD returns a d × d symmetric positive definite matrix LLᵀ + 0.1 I.
func randomSPD(rng *rand.Rand, d int) []float64 {
	l := make([]float64, d*d)
	for i := range l {
		l[i] = rng.NormFloat64()
	}
	out := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			for k := 0; k < d; k++ {
				out[i*d+j] += l[i*d+k] * l[j*d+k]
			}
			if i == j {
				out[i*d+j] += 0.1
			}
		}
	}
	return out
}

// The Schrödinger coupling's joint density is f(x) g(y) exp(xᵀy/(εT)): the off-diagonal block of
// the joint precision is exactly −I/(εT), and the joint covariance is positive definite.
func TestGaussianSBCouplingIsTheSchrodingerCoupling(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{1, 2, 4} {
		for _, epsT := range []float64{0.05, 1, 7} {
			a, b := randomSPD(rng, d), randomSPD(rng, d)
			c, err := GaussianSBCoupling(a, b, d, epsT)
			require.NoError(t, err)
			joint := mat.NewSymDense(2*d, nil)
			for i := 0; i < d; i++ {
				for j := 0; j < d; j++ {
					joint.SetSym(i, j, a[i*d+j])
					joint.SetSym(d+i, d+j, b[i*d+j])
				}
			}
			for i := 0; i < d; i++ {
				for j := 0; j < d; j++ {
					joint.SetSym(i, d+j, c[i*d+j])
				}
			}
			var ch mat.Cholesky
			require.True(t, ch.Factorize(joint), "d = %d, εT = %g: joint covariance not positive definite", d, epsT)
			var p mat.SymDense
			require.NoError(t, ch.InverseTo(&p))
			for i := 0; i < d; i++ {
				for j := 0; j < d; j++ {
					want := 0.0
					if i == j {
						want = -1 / epsT
					}
					require.InDelta(t, want, p.At(i, d+j), 1e-8*(1+1/epsT), "d = %d, εT = %g: precision block (%d, %d)", d, epsT, i, j)
				}
			}
		}
	}
	// one dimension: C = ½(√(4a²b² + (εT)²) − εT)
	c, err := GaussianSBCoupling([]float64{4}, []float64{0.25}, 1, 0.5)
	require.NoError(t, err)
	require.InDelta(t, 0.5*(math.Sqrt(4*4*0.25+0.25)-0.5), c[0], 1e-14)
}

func TestGaussianBridgeMarginalsAndCross(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d := 2
	times := []float64{0, 0.5, 2}
	means := [][]float64{{0, 1}, {2, -1}, {1, 1}}
	covs := [][]float64{randomSPD(rng, d), randomSPD(rng, d), randomSPD(rng, d)}
	g, err := NewGaussianBridge(times, 0.7, means, covs)
	require.NoError(t, err)
	for k, tau := range times { // the observed marginals are reproduced
		m, c, err := g.Marginal(tau)
		require.NoError(t, err)
		require.InDeltaSlice(t, means[k], m, 1e-12)
		require.InDeltaSlice(t, covs[k], c, 1e-12)
	}
	// Markov chaining: Cov(X_0, X_2) = C_0 Σ_1⁻¹ C_1
	c02, err := g.Cross(0, 2)
	require.NoError(t, err)
	c0, c1 := mat.NewDense(d, d, g.Coupling(0)), mat.NewDense(d, d, g.Coupling(1))
	var s1inv mat.Dense
	require.NoError(t, s1inv.Inverse(mat.NewDense(d, d, covs[1])))
	var want mat.Dense
	want.Product(c0, &s1inv, c1)
	require.InDeltaSlice(t, denseData(&want), c02, 1e-10)
	c01, err := g.Cross(0, 1)
	require.NoError(t, err)
	require.Equal(t, g.Coupling(0), c01)
	_, err = g.Cross(1, 1)
	require.ErrorContains(t, err, "0 ≤ i < j")
	_, _, err = g.Marginal(2.5)
	require.ErrorContains(t, err, "τ = 2.5")
	// a large ε decouples: C → 0; a small one couples monotonically (1-D: C → ab)
	c, _ := GaussianSBCoupling([]float64{1}, []float64{4}, 1, 1e4)
	require.Less(t, c[0], 1e-3)
	c, _ = GaussianSBCoupling([]float64{1}, []float64{4}, 1, 1e-6)
	require.InDelta(t, 2, c[0], 1e-5)
}

// Composing bridge steps toward a fixed endpoint y reproduces the Brownian bridge's law exactly:
// mean x + λ(y − x) and variance ε(τ − s)(t − τ)/T at every grid point, whatever the steps.
func TestBridgeStepCoeffsComposeToTheBrownianBridge(t *testing.T) {
	eps, s, e := 0.8, 1.0, 3.5
	for _, n := range []int{1, 3, 17} {
		mean, v := 0.0, 0.0 // x = 0 at s, y = 1
		for i := 0; i < n; i++ {
			tau := s + (e-s)*float64(i)/float64(n)
			next := s + (e-s)*float64(i+1)/float64(n)
			cx, cd, noise := BridgeStepCoeffs(eps, e-tau, next-tau)
			mean = cx*mean + cd*1
			v = cx*cx*v + noise*noise
			l := (next - s) / (e - s)
			require.InDelta(t, l, mean, 1e-12, "n = %d, step %d: mean", n, i)
			require.InDelta(t, eps*(next-s)*(e-next)/(e-s), v, 1e-12, "n = %d, step %d: variance", n, i)
		}
		require.Equal(t, 0.0, v, "n = %d: the last step lands on the endpoint", n)
	}
}

func bridgeTestNets(t *testing.T, m, d int, seed uint64) []*ops.MLP {
	var nets []*ops.MLP
	for k := 0; k < m; k++ {
		net, err := ops.RandomMLP(ops.MLPConfig{Dim: d, Width: 8, Depth: 1, BlockLayers: 1, Fourier: 2, SigmaData: 1, BranchMult: 1, OutMult: 1}, seed+uint64(k))
		require.NoError(t, err)
		nets = append(nets, net)
	}
	return nets
}

func TestBridgeGrid(t *testing.T) {
	times := []float64{0, 1, 3}
	nets := bridgeTestNets(t, 2, 2, 1)
	b, err := NewBridge(times, 0.5, nets, nets)
	require.NoError(t, err)
	for _, c := range []struct {
		from, to float64
		steps    int
		want     []int // steps per interval, in running order
	}{
		{0, 3, 4, []int{4, 4}},
		{3, 0, 4, []int{4, 4}},
		{0.5, 2, 4, []int{2, 2}},
		{2, 0.25, 10, []int{5, 8}},
		{1, 1, 4, nil},
	} {
		g, err := b.Grid(BridgeSimConfig{From: c.from, To: c.to, Steps: c.steps})
		require.NoError(t, err)
		var counts []int
		at := c.from
		for i, s := range g {
			require.Equal(t, at, s.T0, "%v: step %d starts where the previous ended", c, i)
			at = s.T1
			if i == 0 || g[i-1].K != s.K {
				counts = append(counts, 0)
			}
			counts[len(counts)-1]++
			require.Equal(t, c.to > c.from, s.Forward)
			want := times[s.K]
			if s.Forward {
				want = times[s.K+1]
			}
			require.Equal(t, want, s.End)
			require.Greater(t, math.Abs(s.End-s.T0), 0.0, "%v: step %d starts at its interval's end", c, i)
		}
		require.Equal(t, c.want, counts, "%v", c)
		if len(g) > 0 {
			require.Equal(t, c.to, at)
		}
	}
	for _, c := range []struct {
		cfg  BridgeSimConfig
		want string
	}{
		{BridgeSimConfig{From: -1, To: 1, Steps: 1}, "from = -1"},
		{BridgeSimConfig{From: 0, To: math.NaN(), Steps: 1}, "to = NaN"},
		{BridgeSimConfig{From: 0, To: 1, Steps: 0}, "steps = 0"},
	} {
		_, err := b.Grid(c.cfg)
		require.ErrorContains(t, err, c.want)
	}
	onlyFwd, err := NewBridge(times, 0.5, nets, nil)
	require.NoError(t, err)
	_, err = onlyFwd.Grid(BridgeSimConfig{From: 3, To: 0, Steps: 2})
	require.ErrorContains(t, err, "needs the backward networks")
}

func TestNewBridgeRejects(t *testing.T) {
	nets := bridgeTestNets(t, 2, 2, 1)
	other := bridgeTestNets(t, 1, 3, 5)
	for _, c := range []struct {
		times    []float64
		eps      float64
		fwd, bwd []*ops.MLP
		want     string
	}{
		{[]float64{0}, 1, nets[:0], nil, "need at least two marginals"},
		{[]float64{0, 1, 1}, 1, nets, nil, "strictly increasing"},
		{[]float64{0, 2, 1}, 1, nets, nil, "strictly increasing"},
		{[]float64{0, math.Inf(1), 3}, 1, nets, nil, "must be finite"},
		{[]float64{0, 1, 2}, 0, nets, nil, "diffusion ε = 0"},
		{[]float64{0, 1, 2}, -1, nets, nil, "diffusion ε = -1"},
		{[]float64{0, 1, 2}, 1, nil, nil, "no networks"},
		{[]float64{0, 1, 2}, 1, nets[:1], nil, "1 forward networks for 2 intervals"},
		{[]float64{0, 1, 2}, 1, nets, []*ops.MLP{nets[0], other[0]}, "dimension 3"},
		{[]float64{0, 1, 2}, 1, []*ops.MLP{nets[0], nil}, nil, "forward network 1 is nil"},
	} {
		_, err := NewBridge(c.times, c.eps, c.fwd, c.bwd)
		require.ErrorContains(t, err, c.want)
	}
}

// Simulate is the bridge integrator on the networks: the same numbers as a host loop over
// DenoiseRow with the normals of each step's site, forward and backward.
func TestBridgeSimulateIsTheIntegrator(t *testing.T) {
	times := []float64{0, 1, 2.5}
	d, n := 3, 7
	eps := 0.6
	b, err := NewBridge(times, eps, bridgeTestNets(t, 2, d, 10), bridgeTestNets(t, 2, d, 20))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 6))
	x0 := make([]float64, n*d)
	for i := range x0 {
		x0[i] = rng.NormFloat64()
	}
	for _, cfg := range []BridgeSimConfig{
		{From: 0, To: 2.5, Steps: 5, Seed: 11, FirstChain: 3, Trajectory: true},
		{From: 2.5, To: 0.3, Steps: 4, Seed: 12, Trajectory: true},
	} {
		host, err := tensor.FromF64(slices.Clone(x0), n, d)
		require.NoError(t, err)
		res, err := b.Simulate(ops.CPU(), host, cfg)
		require.NoError(t, err)
		got, err := res.Samples.Float64s()
		require.NoError(t, err)
		grid, err := b.Grid(cfg)
		require.NoError(t, err)
		require.Len(t, res.BridgeTimes, len(grid)+1)
		require.Equal(t, cfg.To, res.BridgeTimes[len(grid)])

		want := slices.Clone(x0)
		den := make([]float64, d)
		xi, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
		require.NoError(t, err)
		for i, s := range grid {
			net := b.Backward(s.K)
			if s.Forward {
				net = b.Forward(s.K)
			}
			require.NoError(t, ops.CPU().Normal(xi, drawAt(cfg.Seed, i, PurposeDiffusion, cfg.FirstChain)))
			z, _ := xi.F64()
			r, h := math.Abs(s.End-s.T0), math.Abs(s.T1-s.T0)
			cx, cd, noise := BridgeStepCoeffs(eps, r, h)
			for row := 0; row < n; row++ {
				x := want[row*d : (row+1)*d]
				net.DenoiseRow(den, x, math.Sqrt(eps*r))
				for j := range x {
					x[j] = cx*x[j] + cd*den[j] + noise*z[row*d+j]
				}
			}
		}
		require.InDeltaSlice(t, want, got, 1e-12, "%+v", cfg)
		res.Close()
	}
}

// A flow bridge integrates the same steps without noise: its paths do not depend on the seed and
// equal the noise-free host loop.
func TestFlowBridgeIsDeterministic(t *testing.T) {
	times := []float64{0, 1}
	d, n := 2, 5
	b, err := NewFlowBridge(times, 0.6, bridgeTestNets(t, 1, d, 3), nil)
	require.NoError(t, err)
	require.True(t, b.Flow())
	x0 := []float64{0.1, -0.2, 1, 2, -1, 0.5, 0.3, 0.3, 2, -2}
	var outs [][]float64
	for _, seed := range []uint64{1, 2} {
		host, err := tensor.FromF64(slices.Clone(x0), n, d)
		require.NoError(t, err)
		res, err := b.Simulate(ops.CPU(), host, BridgeSimConfig{From: 0, To: 1, Steps: 3, Seed: seed})
		require.NoError(t, err)
		v, _ := res.Samples.Float64s()
		outs = append(outs, v)
		res.Close()
	}
	require.Equal(t, outs[0], outs[1])
	want := slices.Clone(x0)
	den := make([]float64, d)
	for i := 0; i < 3; i++ {
		tau, next := float64(i)/3, float64(i+1)/3
		if i == 2 {
			next = 1
		}
		cx, cd, _ := BridgeStepCoeffs(0.6, 1-tau, next-tau)
		for row := 0; row < n; row++ {
			x := want[row*d : (row+1)*d]
			b.Forward(0).DenoiseRow(den, x, math.Sqrt(0.6*(1-tau)))
			for j := range x {
				x[j] = cx*x[j] + cd*den[j]
			}
		}
	}
	require.InDeltaSlice(t, want, outs[0], 1e-12)
	path := t.TempDir() + "/f.safetensors"
	require.NoError(t, SaveBridge(path, b, nil))
	got, _, err := LoadBridge(path)
	require.NoError(t, err)
	require.True(t, got.Flow())
}

func TestBridgeSimulateRejects(t *testing.T) {
	b, err := NewBridge([]float64{0, 1}, 1, bridgeTestNets(t, 1, 2, 1), nil)
	require.NoError(t, err)
	x, err := tensor.New(tensor.CPU(), tensor.F64, 4, 3)
	require.NoError(t, err)
	_, err = b.Simulate(ops.CPU(), x, BridgeSimConfig{From: 0, To: 1, Steps: 2})
	require.ErrorContains(t, err, "want (chains, 2)")
	_, err = b.Simulate(nil, x, BridgeSimConfig{From: 0, To: 1, Steps: 2})
	require.ErrorContains(t, err, "nil backend")
	var nilBridge *Bridge
	_, err = nilBridge.Simulate(ops.CPU(), x, BridgeSimConfig{})
	require.ErrorContains(t, err, "nil bridge")
	x2, err := tensor.New(tensor.CPU(), tensor.F64, 4, 2)
	require.NoError(t, err)
	_, err = b.Simulate(ops.CPU(), x2, BridgeSimConfig{From: 1, To: 0, Steps: 2})
	require.True(t, strings.Contains(err.Error(), "backward networks"), err.Error())
}

func TestBridgeSaveLoad(t *testing.T) {
	dir := t.TempDir()
	times := []float64{0, 0.1, 2.75}
	b, err := NewBridge(times, 1.0/3, bridgeTestNets(t, 2, 2, 1), bridgeTestNets(t, 2, 2, 5))
	require.NoError(t, err)
	path := dir + "/b.safetensors"
	require.NoError(t, SaveBridge(path, b, map[string]string{"iterations": "4"}))
	got, info, err := LoadBridge(path)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"iterations": "4"}, info)
	require.False(t, got.Flow())
	require.Equal(t, times, got.Times())
	require.Equal(t, 1.0/3, got.Eps())
	for k := 0; k < 2; k++ {
		require.Equal(t, b.Forward(k).Packed(), got.Forward(k).Packed())
		require.Equal(t, b.Backward(k).Packed(), got.Backward(k).Packed())
	}
	onlyFwd, err := NewBridge(times, 1, bridgeTestNets(t, 2, 2, 1), nil)
	require.NoError(t, err)
	require.NoError(t, SaveBridge(path, onlyFwd, nil))
	got, _, err = LoadBridge(path)
	require.NoError(t, err)
	require.Nil(t, got.Backward(0))
	require.NotNil(t, got.Forward(1))

	require.ErrorContains(t, SaveBridge(path, b, map[string]string{"eps": "1"}), "reserved")
	// a set that is not a bridge, or lacks an interval's network
	require.NoError(t, nn.SaveSet(path, nn.Set{Names: []string{"fwd-0"}, Nets: []*ops.MLP{b.Forward(0)},
		Info: map[string]string{"kind": BridgeKind, "times": "0,1,2", "eps": "1"}}))
	_, _, err = LoadBridge(path)
	require.ErrorContains(t, err, "1 networks fwd-<k> for 2 intervals")
	require.NoError(t, nn.SaveSet(path, nn.Set{Names: []string{"fwd-0"}, Nets: []*ops.MLP{b.Forward(0)},
		Info: map[string]string{"kind": BridgeKind, "times": "0,1", "eps": "0"}}))
	_, _, err = LoadBridge(path)
	require.ErrorContains(t, err, "diffusion ε = 0")
	require.NoError(t, nn.SaveSet(path, nn.Set{Names: []string{"fwd-0", "x"}, Nets: []*ops.MLP{b.Forward(0), b.Forward(1)},
		Info: map[string]string{"kind": BridgeKind, "times": "0,1", "eps": "1"}}))
	_, _, err = LoadBridge(path)
	require.ErrorContains(t, err, "network \"x\" is not fwd-<k> or bwd-<k>")
	require.NoError(t, nn.SaveSet(path, nn.Set{Names: []string{"fwd-0"}, Nets: []*ops.MLP{b.Forward(0)}}))
	_, _, err = LoadBridge(path)
	require.ErrorContains(t, err, "set kind \"\"")
}
