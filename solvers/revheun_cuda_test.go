//go:build cuda || cudaemu

package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// A whole reversible Heun solve and its reconstruction on the GPU (BrownianIncrements and the
// revheun kernel per chunk) against the step-by-step solver on the host: the same bits in float64
// (both ops are bit-identical with their references), over two chunks and a partial third; in
// float32 the same values as the CPU's fused float32 path.
func TestReversibleHeunOnDeviceEqualsHost(t *testing.T) {
	b, err := cuda.New(gpu)
	require.NoError(t, err)
	defer func() { assert.NoError(t, b.Close()) }()
	for _, sde := range []AffineFamily{{SDE: testOU(t), D: 3}, {SDE: testGBM(t), D: 2}} {
		const n, steps = 7, 2*RevHeunChunk + 37
		x0 := startValues(n, sde.D)
		r := ReversibleHeun{SDE: sde, Horizon: 1.5, Steps: steps, Seed: 77, FirstChain: 11}
		fin, err := r.Solve(x0, n)
		require.NoError(t, err)
		back, err := r.Reconstruct(fin)
		require.NoError(t, err)
		got, err := r.SolveOn(b, tensor.F64, x0, n)
		require.NoError(t, err)
		requireSameBits(t, fin.Y, got.Y, "device y")
		requireSameBits(t, fin.Z, got.Z, "device z")
		gb, err := r.ReconstructOn(b, tensor.F64, got)
		require.NoError(t, err)
		requireSameBits(t, back.Y, gb.Y, "device reconstructed y")
		requireSameBits(t, back.Z, gb.Z, "device reconstructed z")

		want32, err := r.SolveOn(ops.CPU(), tensor.F32, x0, n)
		require.NoError(t, err)
		got32, err := r.SolveOn(b, tensor.F32, x0, n)
		require.NoError(t, err)
		requireSameBits(t, want32.Y, got32.Y, "f32 y")
		requireSameBits(t, want32.Z, got32.Z, "f32 z")
	}
}

// The fused backward pass on the GPU (BrownianIncrements and revheun_adjoint per chunk) against
// the same pass on the CPU reference: the same bits in float64 and float32 (both ops are
// bit-identical with their references; the coefficient cotangents are summed on the host in the
// same order), over two chunks and a partial third, OU and GBM, a loss that sees y and z.
func TestAdjointOnDeviceEqualsHost(t *testing.T) {
	b, err := cuda.New(gpu)
	require.NoError(t, err)
	defer func() { assert.NoError(t, b.Close()) }()
	for _, fam := range affineFamilies(t) {
		const n, steps = 7, 2*RevHeunChunk + 37
		d := fam.sde.Dim()
		x0 := startValues(n, d)
		r := ReversibleHeun{SDE: fam.sde, Horizon: 1.5, Steps: steps, Seed: 77, FirstChain: 11}
		st, err := r.Solve(x0, n)
		require.NoError(t, err)
		_, cot, err := TerminalVarianceLoss(st.Y, n, d)
		require.NoError(t, err)
		cotZ := make([]float64, len(cot))
		for i := range cotZ {
			cotZ[i] = 0.3 * cot[(i+1)%len(cot)]
		}
		for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			want, err := r.AdjointOn(ops.Reference(), dt, st, cot, cotZ)
			require.NoError(t, err)
			got, err := r.AdjointOn(b, dt, st, cot, cotZ)
			require.NoError(t, err)
			requireSameBits(t, want.X0, got.X0, fam.name+" "+dt.String()+" dL/dx0")
			requireSameBits(t, want.Params, got.Params, fam.name+" "+dt.String()+" dL/dθ")
			requireSameBits(t, want.Start.Y, got.Start.Y, fam.name+" "+dt.String()+" start y")
			requireSameBits(t, want.Start.Z, got.Start.Z, fam.name+" "+dt.String()+" start z")
		}
	}
}

// The Langevin SDE of a mixture on the GPU (BrownianIncrements and the lmheun kernels per chunk)
// against the CPU: the kernel repeats the reference's operations except exp, so the values agree
// to a few ulp of float64 per step carried through the solve (measured: logged): the state and
// the reconstruction within 1e-12·(1 + |value|) of Solve's, the gradient within 1e-12·(1 + |want|)
// of the fused pass on the reference in float64, and float32 within 1e-5.
func TestGMMLangevinOnDevice(t *testing.T) {
	b, err := cuda.New(gpu)
	require.NoError(t, err)
	defer func() { assert.NoError(t, b.Close()) }()
	fam := fusedFamilies(t)[2]
	const n, steps = 7, 2*RevHeunChunk + 37
	d := fam.sde.Dim()
	x0 := startValues(n, d)
	r := ReversibleHeun{SDE: fam.sde, Horizon: 1.5, Steps: steps, Seed: 77, FirstChain: 11}
	fin, err := r.Solve(x0, n)
	require.NoError(t, err)
	got, err := r.SolveOn(b, tensor.F64, x0, n)
	require.NoError(t, err)
	t.Logf("max |device − host|: y %.2e, z %.2e", maxDiff(got.Y, fin.Y), maxDiff(got.Z, fin.Z))
	assert.LessOrEqual(t, maxDiff(got.Y, fin.Y), 1e-12*(1+maxAbsOf(fin.Y)), "device y")
	assert.LessOrEqual(t, maxDiff(got.Z, fin.Z), 1e-12*(1+maxAbsOf(fin.Z)), "device z")
	back, err := r.ReconstructOn(b, tensor.F64, got)
	require.NoError(t, err)
	assert.LessOrEqual(t, maxDiff(back.Y, x0), 1e-12*(1+maxAbsOf(x0)), "device reconstruction of x0")

	_, cot, err := TerminalVarianceLoss(fin.Y, n, d)
	require.NoError(t, err)
	cotZ := make([]float64, len(cot))
	for i := range cotZ {
		cotZ[i] = 0.3 * cot[(i+1)%len(cot)]
	}
	for _, c := range []struct {
		dt  tensor.DType
		tol float64
	}{{tensor.F64, 1e-12}, {tensor.F32, 1e-5}} {
		want, err := r.AdjointOn(ops.Reference(), c.dt, fin, cot, cotZ)
		require.NoError(t, err)
		g, err := r.AdjointOn(b, c.dt, fin, cot, cotZ)
		require.NoError(t, err)
		t.Logf("%v: max |device − reference|: θ %.2e, x0 %.2e", c.dt, maxDiff(g.Params, want.Params), maxDiff(g.X0, want.X0))
		for i := range want.Params {
			assert.InDelta(t, want.Params[i], g.Params[i], c.tol*(1+math.Abs(want.Params[i])), "%v dL/dθ[%d]", c.dt, i)
		}
		for i := range want.X0 {
			assert.InDelta(t, want.X0[i], g.X0[i], c.tol*(1+math.Abs(want.X0[i])), "%v dL/dx0[%d]", c.dt, i)
		}
	}
}
