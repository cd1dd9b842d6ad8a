//go:build cuda || cudaemu

package cuda

import (
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/optest"
	"github.com/scorekit/scorekit/tensor"
)

var gpu *tensor.CUDADevice

// emulated is set when gpu is the host emulation of the kernels (the cudaemu build): correct, but
// thousands of times slower than a GPU. The tests then pick smaller cases (about 10^3 rows, sizes
// that are not multiples of a block or a warp) that still launch every kernel entry and take every
// path — the variants chosen by d, K, covariance kind and dtype, the empirical score's chunks and
// splits through the package's knobs, every FFT pass count — while a GPU keeps the large ones.
var emulated bool

// sized returns onGPU on a GPU and onEmu on the emulated device.
func sized[T any](onGPU, onEmu T) T {
	if emulated {
		return onEmu
	}
	return onGPU
}

// largeRows is the one large batch of the parity tests: optest.LargeRows on a GPU,
// optest.EmulatedLargeRows (still more than one grid step of the element-wise kernels there) on
// the emulated device.
func largeRows() int { return sized(optest.LargeRows, optest.EmulatedLargeRows) }

func TestMain(m *testing.M) {
	var err error
	gpu, err = tensor.OpenCUDA(0)
	if err != nil {
		// The process only starts where cuInit succeeded, so this is a real device problem.
		println("ops/cuda tests: open GPU 0:", err.Error())
		os.Exit(1)
	}
	emulated = gpu.Info().Emulated
	code := m.Run()
	if code == 0 && !reportKernelCoverage() {
		code = 1
	}
	if err := gpu.Close(); err != nil {
		println("ops/cuda tests: close GPU:", err.Error())
		code = 1
	}
	os.Exit(code)
}

func backend(t *testing.T) ops.Backend {
	trackLaunches(t)
	b, err := New(gpu)
	require.NoError(t, err)
	return b
}

// The conformance suite, every output compared with the CPU reference.
func TestConformance(t *testing.T) { optest.Run(t, backend(t)) }

// The three Random123 known-answer vectors, computed by the philox_kat kernel.
func TestPhiloxKnownAnswersOnDevice(t *testing.T) {
	in := [][6]uint32{
		{0, 0, 0, 0, 0, 0},
		{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
		{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0},
	}
	want := [][4]uint32{
		{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
		{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
		{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
	}
	// Words travel as float32 bit patterns (tensors are f32/f64; copies move bytes).
	words := make([]float32, 0, 6*len(in))
	for _, r := range in {
		for _, w := range r {
			words = append(words, math.Float32frombits(w))
		}
	}
	hin, _ := tensor.FromF32(words, len(in), 6)
	din, err := hin.CopyTo(gpu)
	require.NoError(t, err)
	defer din.Close()
	dout, err := tensor.New(gpu, tensor.F32, len(in), 4)
	require.NoError(t, err)
	defer dout.Close()
	b := backend(t).(*Backend)
	k, err := b.kernel("random", "philox_kat")
	require.NoError(t, err)
	require.NoError(t, gpu.Launch(k, tensor.Grid1D(1, 32), dout, din, int64(len(in))))
	require.NoError(t, gpu.Synchronize())
	hout, err := dout.CopyTo(nil)
	require.NoError(t, err)
	got, _ := hout.F32()
	for r := range in {
		for i := 0; i < 4; i++ {
			assert.Equal(t, want[r][i], math.Float32bits(got[4*r+i]), "vector %d word %d", r, i)
		}
	}
}

// Chain 7's normals are the same whether 8 or 10^5 chains run, and equal the CPU reference's
// within optest.NormalF32 / NormalF64.
func TestBatchInvarianceOnDevice(t *testing.T) {
	b := backend(t)
	draw := ops.Draw{Seed: 3, Site: 11}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		row := func(chains int) []float64 {
			x, err := tensor.New(gpu, dt, chains, 5)
			require.NoError(t, err)
			defer x.Close()
			require.NoError(t, b.Normal(x, draw))
			h, err := x.CopyTo(nil)
			require.NoError(t, err)
			v, _ := h.Float64s()
			return v[7*5 : 8*5]
		}
		few := row(8)
		assert.Equal(t, few, row(100000), "%v", dt)
		ref, err := optest.RefNormals(dt, 8, 5, draw)
		require.NoError(t, err)
		tol := optest.NormalF64
		if dt == tensor.F32 {
			tol = optest.NormalF32
		}
		_, err = optest.Compare(few, ref[7*5:8*5], tol)
		assert.NoError(t, err, "%v: chain 7 against the CPU reference", dt)
	}
}

// Distance of the normals from the CPU reference over 2^24 draws (2^20 emulated), logged: they
// must be equal on every device, the emulated one included, since both sides perform the same
// IEEE operations and fused multiply-adds (no library function but the correctly rounded sqrt).
func TestNormalParityBound(t *testing.T) {
	b := backend(t)
	chains := sized(1<<20, 1<<16)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		const dim = 16
		x, err := tensor.New(gpu, dt, chains, dim)
		require.NoError(t, err)
		require.NoError(t, b.Normal(x, ops.Draw{Seed: 12345, Site: 6}))
		h, err := x.CopyTo(nil)
		require.NoError(t, err)
		x.Close()
		ref, _ := tensor.New(nil, dt, chains, dim)
		require.NoError(t, ops.Reference().Normal(ref, ops.Draw{Seed: 12345, Site: 6}))
		got, _ := h.Float64s()
		want, _ := ref.Float64s()
		tol := optest.NormalF64
		if dt == tensor.F32 {
			tol = optest.NormalF32
		}
		m, err := optest.Compare(got, want, tol)
		t.Logf("%v normals vs CPU reference over %d draws: max abs %.3g, max rel %.3g", dt, chains*dim, m.MaxAbs, m.MaxRel)
		assert.NoError(t, err)
	}
}
