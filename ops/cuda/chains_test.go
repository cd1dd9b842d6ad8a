//go:build cuda || cudaemu

package cuda

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

// Parity of the fused chains (kernels/chains.cu) with the step-by-step definition.
//
// Each case runs three times from the same inputs (optest.NewChainsInputs: starting rows with a
// NaN coordinate in row 1, per-chain step sizes with h = 0 at row 2 and h = −1 — a NaN chain — at
// row 4), every tensor inside guard bands (optest.RunChains): the fused GMMChains launch, the
// same request through ops.StepByStepChains on this backend (one GMMScore, AddGaussianFactor,
// Step, MALAAccept or ULDStep launch per op and step), and the CPU reference. Tolerance
// (optest.ChainsRtol): after S steps S·ScoreF32 = S·2e-4 (float32) or S·ScoreF64 = S·1e-10
// (float64) of the row's scale — per step the score op's own bound, which dominates the step
// ops' (2e-6, 1e-13), on mixtures and step sizes where an earlier error grows by less than 1.6
// per step (see optest). MALA chains whose acceptance count differs from the reference's are
// decision flips, counted and not compared: at most 0.1 % of the chain-steps plus 3 in float32
// and none in float64 (optest.ChainFlipsAllowed, which derives them). The fused run and the
// step-by-step run on the GPU are compared the same way, and, since the kernel replays the step
// ops' arithmetic operation for operation (see the kernel's header), TestGMMChainsFusedIsBitwise
// requires them to be identical.

// chainsDims are the widths of the parity sweep: every kernel variant and its edges.
var chainsDims = []int{1, 2, 3, 8, 16, 17, 33, 64, 128, 256}

// chainsCases is the parity sweep: for each dtype, method and width, one case with K, N and the
// options (factor, per-chain step sizes, trace: the 8 combinations in turn) rotating, the empty
// batch, 20000 chains at four widths, and mixtures large enough that the component table is
// staged tile by tile in every evaluation. On the emulated device (2 SMs × 32 blocks) the large
// batches shrink to what still turns the grid-stride loops there: 16411 chains at d = 2 (a
// thread-variant block holds 256 chains; the loop is the same template code for every thread
// variant, and at d = 16 the step-by-step run's warp-per-row score would cost a minute), 521 for
// the others (a warp-variant block holds 8 chains); the tiled mixtures run over 33 to 65 rows
// and the sweep's rows are 1, 33 and 129.
func chainsCases() []optest.ChainsCase {
	noises := []ops.Noise{{}, ops.AtSigma(0.5), ops.AtTime(0.4), {Kind: ops.Affine, Scale: 0.9, Var: 0.3}}
	ks := []int{1, 5, 40}
	rows := sized([]int{1, 33, 1025}, []int{1, 33, 129})
	var cs []optest.ChainsCase
	i := 0
	add := func(m ops.ChainMethod, dt tensor.DType, n, k, d int) {
		kind := ops.Isotropic
		if i%2 == 1 {
			kind = ops.Diagonal
		}
		opts := i % 8
		cs = append(cs, optest.ChainsCase{Method: m, DType: dt, Rows: n, K: k, D: d, Kind: kind, Noise: noises[i%4],
			Factor: opts&1 != 0, PerChain: m != ops.ChainULD && opts&2 != 0, Trace: opts&4 != 0,
			Steps: 4 + i%3, Seed: 0xfeed + uint64(i), First: 1<<28 + uint64(7*i)})
		i++
	}
	for _, dt := range lvDTypes {
		for _, m := range []ops.ChainMethod{ops.ChainULA, ops.ChainMALA, ops.ChainULD} {
			add(m, dt, 0, 3, 2)
			for j, d := range chainsDims {
				add(m, dt, rows[(j+int(m))%3], ks[(j+2*int(m))%3], d)
			}
			add(m, dt, sized(20000, 16411), 5, 2)
			for _, d := range []int{16, 33, 128} {
				add(m, dt, sized(20000, 521), 5, d)
			}
			add(m, dt, sized(1025, 65), 1000, 2) // row variants: tile < K
			add(m, dt, sized(257, 33), 200, 16)
			add(m, dt, sized(65, 33), 100, 64) // warp variants: tile < K
		}
	}
	return cs
}

func fusedRun(be ops.Backend, req ops.GMMChains) error { return be.GMMChains(req) }
func stepByStepRun(be ops.Backend, req ops.GMMChains) error {
	return ops.StepByStepChains(be, req)
}

// bitwiseDiffs reports the number of elements where a and b differ (NaN equal to NaN).
func bitwiseDiffs(a, b []float64) int {
	diffs := 0
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			diffs++
		}
	}
	return diffs + int(math.Abs(float64(len(a)-len(b))))
}

func resultDiffs(a, b optest.ChainsResult) int {
	return bitwiseDiffs(a.X, b.X) + bitwiseDiffs(a.V, b.V) + bitwiseDiffs(a.LogP, b.LogP) +
		bitwiseDiffs(a.Score, b.Score) + bitwiseDiffs(a.Accepted, b.Accepted) + bitwiseDiffs(a.Trace, b.Trace)
}

func resultSize(r optest.ChainsResult) int {
	return len(r.X) + len(r.V) + len(r.LogP) + len(r.Score) + len(r.Accepted) + len(r.Trace)
}

// The fused kernel, the step-by-step ops on the GPU and the CPU reference agree within the stated
// tolerance, with rare MALA flips in float32 and none in float64, inside guard bands, and the
// backend frees what it allocated.
func TestGMMChainsParity(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	flips := map[string]int{}
	chainSteps := map[tensor.DType]int{}
	same, total := 0, 0
	for _, c := range chainsCases() {
		label := c.String()
		in, err := optest.NewChainsInputs(c)
		require.NoError(t, err, label)
		fused, err := optest.RunChains(b, c, in, fusedRun)
		require.NoError(t, err, "%s: fused", label)
		sbs, err := optest.RunChains(b, c, in, stepByStepRun)
		require.NoError(t, err, "%s: step by step", label)
		ref, err := optest.RunChains(ops.Reference(), c, in, fusedRun)
		require.NoError(t, err, "%s: reference", label)
		for _, p := range []struct {
			name     string
			got, ref optest.ChainsResult
		}{{"fused vs reference", fused, ref}, {"step-by-step vs reference", sbs, ref}, {"fused vs step-by-step", fused, sbs}} {
			f, err := optest.CompareChains(c, p.got, p.ref)
			require.NoError(t, err, "%s: %s", label, p.name)
			flips[c.DType.String()+" "+p.name] += f
		}
		if c.Method == ops.ChainMALA {
			chainSteps[c.DType] += c.Rows * c.Steps
		}
		same += resultSize(fused) - resultDiffs(fused, sbs)
		total += resultSize(fused)
	}
	for _, dt := range lvDTypes {
		for _, p := range []string{"fused vs reference", "step-by-step vs reference", "fused vs step-by-step"} {
			t.Logf("%v %s: %d of %d MALA decisions differ", dt, p, flips[dt.String()+" "+p], chainSteps[dt])
		}
	}
	t.Logf("fused and step-by-step outputs bit-identical: %d of %d elements", same, total)
}

// The fused run reproduces the step-by-step run on the GPU bit for bit: same numbers, same
// arithmetic, same summation orders (kernels/chains.cu) — for every variant, method and dtype,
// with the factor, per-chain step sizes, the trace and tiled component tables (about 300 chains;
// 9 to 18 on the emulated device, still more than one warp-variant block).
func TestGMMChainsFusedIsBitwise(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	rows, ks := sized(300, 9), []int{3, 40, 700}
	for _, dt := range lvDTypes {
		for _, m := range []ops.ChainMethod{ops.ChainULA, ops.ChainMALA, ops.ChainULD} {
			for i, d := range []int{1, 2, 4, 7, 12, 16, 20, 50, 100, 256} {
				c := optest.ChainsCase{Method: m, DType: dt, Rows: rows + i, K: ks[i%3], D: d,
					Kind: []ops.CovKind{ops.Isotropic, ops.Diagonal}[i%2], Noise: ops.AtTime(0.3), Factor: i%2 == 0,
					PerChain: m != ops.ChainULD && i%3 != 1, Trace: true, Steps: 6, Seed: 0xb175 + uint64(i)}
				in, err := optest.NewChainsInputs(c)
				require.NoError(t, err)
				fused, err := optest.RunChains(b, c, in, fusedRun)
				require.NoError(t, err, "%v: fused", c)
				sbs, err := optest.RunChains(b, c, in, stepByStepRun)
				require.NoError(t, err, "%v: step by step", c)
				assert.Zero(t, resultDiffs(fused, sbs), "%v: elements that differ from the step-by-step run", c)
			}
		}
	}
}

// A chain that starts at NaN stays NaN (ULA, ULD) or never moves (MALA) and leaves every other
// chain exactly as in a run without it, in every kernel variant (row2, row4, row8, row16, warp1,
// warp2, warp4, warp8).
func TestGMMChainsNaNChainIsIsolated(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	for _, dt := range lvDTypes {
		for _, m := range []ops.ChainMethod{ops.ChainULA, ops.ChainMALA, ops.ChainULD} {
			for _, d := range []int{2, 3, 8, 16, 17, 33, 128, 256} {
				c := optest.ChainsCase{Method: m, DType: dt, Rows: 40, K: 5, D: d, Kind: ops.Diagonal,
					Noise: ops.AtSigma(0.3), Factor: true, Steps: 5, Seed: 0x4a4}
				in, err := optest.NewChainsInputs(c) // row 1 holds a NaN coordinate
				require.NoError(t, err)
				poisoned, err := optest.RunChains(b, c, in, fusedRun)
				require.NoError(t, err, "%v", c)
				clean := in
				clean.X = append([]float64(nil), in.X...)
				clean.X[d] = 0.25
				if m == ops.ChainMALA { // log p and score of the clean start, as the reference evaluates them
					clean.LogP, clean.Score = cleanMALAStart(t, c, clean.X, in)
				}
				got, err := optest.RunChains(b, c, clean, fusedRun)
				require.NoError(t, err, "%v", c)
				for i := 0; i < c.Rows; i++ {
					row := func(v []float64, w int) []float64 { return v[i*w : (i+1)*w] }
					if i == 1 {
						x := row(poisoned.X, d)
						if m == ops.ChainMALA {
							assert.Zero(t, bitwiseDiffs(x, row(in.X, d)), "%v: the NaN chain moved", c)
							assert.Equal(t, in.Accepted[1], poisoned.Accepted[1], "%v: the NaN chain accepted", c)
						} else {
							for _, v := range x {
								assert.True(t, math.IsNaN(v), "%v: the NaN chain left NaN", c)
							}
						}
						continue
					}
					assert.Zero(t, bitwiseDiffs(row(poisoned.X, d), row(got.X, d)), "%v: chain %d depends on the NaN chain", c, i)
				}
			}
		}
	}
}

// cleanMALAStart is MALA's starting log p and score for rows x, as the reference evaluates them.
func cleanMALAStart(t *testing.T, c optest.ChainsCase, x []float64, in optest.ChainsInputs) ([]float64, []float64) {
	t.Helper()
	n, d := c.Rows, c.D
	xt := lvHost(t, c.DType, x, n, d)
	lp, err := tensor.New(nil, c.DType, n)
	require.NoError(t, err)
	sc, err := tensor.New(nil, c.DType, n, d)
	require.NoError(t, err)
	out := ops.ScoreOutputs{LogP: lp, Score: sc}
	require.NoError(t, ops.Reference().GMMScore(out, xt, in.G, c.Noise))
	if c.Factor {
		require.NoError(t, ops.Reference().AddGaussianFactor(out, xt, lvHost(t, c.DType, in.Center, n, d), 0.9, 0.4))
	}
	return lvValues(t, lp), lvValues(t, sc)
}

// The conformance checks of optest for the Langevin ops, and the refusals: CheckGMMChains first,
// ErrNotFusable where the reference says so, chain indices beyond 2^32, tensors on the host.
func TestGMMChainsConformance(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	optest.RunLangevin(t, b)
}

// An empty batch launches nothing and changes nothing.
func TestGMMChainsEmpty(t *testing.T) {
	lvLeakCheck(t)
	b := lvBackend(t)
	g, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0, 0}}, Vars: []float64{1}})
	require.NoError(t, err)
	x, err := tensor.New(gpu, tensor.F32, 0, 2)
	require.NoError(t, err)
	defer x.Close()
	n := launchesDuring(func() {
		require.NoError(t, b.GMMChains(ops.GMMChains{Method: ops.ChainULA, Mixture: g, Steps: 3, H: 0.1, X: x,
			Sites: ops.ChainSites{Stride: 16, Accept: 1, ULD: 2}}))
		require.NoError(t, gpu.Synchronize())
	})
	assert.Zero(t, n, "kernel launches for an empty batch")
}
