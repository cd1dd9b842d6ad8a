package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
)

// testConfigs: two-layer blocks with Fourier features, and one-layer blocks without any (a
// zero-size embed.freq tensor), with multipliers whose decimals do not terminate.
var testConfigs = map[string]ops.MLPConfig{
	"two-layer": {Dim: 3, Width: 16, Depth: 2, BlockLayers: 2, Fourier: 4, SigmaData: 0.5,
		BranchMult: 1 / math.Sqrt2, OutMult: 0.7},
	"one-layer-no-fourier": {Dim: 2, Width: 8, Depth: 3, BlockLayers: 1, Fourier: 0, SigmaData: 1.3,
		BranchMult: 0.1 + 0.2, OutMult: 1},
}

var testSigmas = []float64{0, 0.002, 0.1, 1, 80}

func randomNet(t testing.TB, c ops.MLPConfig, seed uint64) *ops.MLP {
	m, err := ops.RandomMLP(c, seed)
	require.NoError(t, err)
	return m
}

// randomCov is A Aᵀ/d for a standard normal (d, d) matrix A: symmetric positive definite.
func randomCov(d int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 17))
	a := make([]float64, d*d)
	for i := range a {
		a[i] = rng.NormFloat64()
	}
	c := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			s := 0.0
			for k := 0; k < d; k++ {
				s += a[i*d+k] * a[j*d+k]
			}
			c[i*d+j] = s / float64(d)
		}
	}
	return c
}

func testMeta(d int) Meta {
	return Meta{
		Info: map[string]string{"parametrization": "depth-mup", "steps": "20000", "seed": "7",
			"final_loss": "0.031250000000000007", "note": "ünïcode & <angles>"},
		Cov: randomCov(d, 3),
	}
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// outputs evaluates m at a fixed set of points and every test σ, all in one slice.
func outputs(m *ops.MLP) []float64 {
	rng := rand.New(rand.NewPCG(11, 12))
	d := m.Dim()
	var out []float64
	x := make([]float64, d)
	dst := make([]float64, d)
	for range 7 {
		for j := range x {
			x[j] = 2 * rng.NormFloat64()
		}
		for _, s := range testSigmas {
			m.DenoiseRow(dst, x, s)
			out = append(out, dst...)
		}
	}
	return out
}

func TestSaveLoadRoundTripIsBitExact(t *testing.T) {
	for name, c := range testConfigs {
		t.Run(name, func(t *testing.T) {
			m := randomNet(t, c, 5)
			meta := testMeta(c.Dim)
			path := filepath.Join(t.TempDir(), "m.safetensors")
			require.NoError(t, Save(path, m, meta))
			got, gotMeta, err := Load(path)
			require.NoError(t, err)
			assert.Equal(t, c, got.Config())
			assert.True(t, sameBits(m.Packed(), got.Packed()), "parameters differ")
			assert.True(t, sameBits(outputs(m), outputs(got)), "outputs differ")
			assert.Equal(t, meta.Info, gotMeta.Info)
			assert.True(t, sameBits(meta.Cov, gotMeta.Cov), "covariance differs")
			assert.Equal(t, F64, gotMeta.DType)

			// Without covariance or info, both come back nil.
			require.NoError(t, Save(path, m, Meta{}))
			_, gotMeta, err = Load(path)
			require.NoError(t, err)
			assert.Nil(t, gotMeta.Cov)
			assert.Nil(t, gotMeta.Info)
		})
	}
}

func TestSaveF32RoundsEachParameterOnce(t *testing.T) {
	c := testConfigs["two-layer"]
	m := randomNet(t, c, 6)
	meta := testMeta(c.Dim)
	meta.DType = F32
	dir := t.TempDir()
	p32, p64 := filepath.Join(dir, "m32.safetensors"), filepath.Join(dir, "m64.safetensors")
	require.NoError(t, Save(p32, m, meta))
	require.NoError(t, Save(p64, m, Meta{Info: meta.Info, Cov: meta.Cov}))
	got, gotMeta, err := Load(p32)
	require.NoError(t, err)
	assert.Equal(t, F32, gotMeta.DType)
	want := make([]float64, len(m.Packed()))
	rounded := 0
	for i, v := range m.Packed() {
		want[i] = float64(float32(v))
		if want[i] != v {
			rounded++
		}
	}
	assert.True(t, sameBits(want, got.Packed()), "F32 parameters are not the float32-rounded originals")
	assert.Greater(t, rounded, len(want)/2, "the test network's parameters should not be float32 values already")
	wantCov := make([]float64, len(meta.Cov))
	for i, v := range meta.Cov {
		wantCov[i] = float64(float32(v))
	}
	assert.True(t, sameBits(wantCov, gotMeta.Cov))
	s32, err := os.Stat(p32)
	require.NoError(t, err)
	s64, err := os.Stat(p64)
	require.NoError(t, err)
	assert.Less(t, s32.Size(), s64.Size()*6/10, "F32 file should hold half the data bytes")
}

// TestFileLayoutFollowsTheSpec reads the written bytes without the package's reader: header length
// a multiple of 8 (8-byte aligned data), space padding, __metadata__ first, tensors packed in
// offset order, little-endian values where the offsets say.
func TestFileLayoutFollowsTheSpec(t *testing.T) {
	c := testConfigs["two-layer"]
	m := randomNet(t, c, 8)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, m, testMeta(c.Dim)))
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	require.Zero(t, n%8, "header length %d", n)
	header := b[8 : 8+n]
	data := b[8+n:]
	assert.True(t, bytes.HasPrefix(header, []byte(`{"__metadata__":{`)), "%s", header[:40])
	trimmed := bytes.TrimRight(header, " ")
	assert.Less(t, len(header)-len(trimmed), 8)
	assert.Equal(t, byte('}'), trimmed[len(trimmed)-1])

	var h map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(header, &h))
	var md map[string]string
	require.NoError(t, json.Unmarshal(h["__metadata__"], &md))
	assert.Equal(t, map[string]string{
		"format": "scorekit.mlp-denoiser", "format_version": "1", "dim": "3", "width": "16", "depth": "2",
		"block_layers": "2", "fourier": "4", "sigma_data": "0.5", "branch_mult": "0.7071067811865476",
		"out_mult": "0.7", "activation": "silu", "embedding": "fourier(log(sigma)/4)", "preconditioning": "edm",
	}, func() map[string]string {
		out := map[string]string{}
		for _, k := range ReservedKeys() {
			out[k] = md[k]
		}
		return out
	}())
	assert.Equal(t, "20000", md["steps"])

	type entry struct {
		DType       string `json:"dtype"`
		Shape       []int  `json:"shape"`
		DataOffsets []int  `json:"data_offsets"`
	}
	var pos int
	names := append(ops.MLPParamNames(c), CovName)
	for _, name := range names {
		var e entry
		require.NoError(t, json.Unmarshal(h[name], &e), name)
		assert.Equal(t, "F64", e.DType)
		assert.Equal(t, pos, e.DataOffsets[0], "%s: packed in canonical order without gaps", name)
		pos = e.DataOffsets[1]
		if name == CovName {
			continue
		}
		assert.Equal(t, ops.MLPParamShape(c, name), e.Shape)
		want := m.Packed()[m.Offset(name):]
		for i := 0; i < (e.DataOffsets[1]-e.DataOffsets[0])/8; i++ {
			got := math.Float64frombits(binary.LittleEndian.Uint64(data[e.DataOffsets[0]+8*i:]))
			require.Equal(t, math.Float64bits(want[i]), math.Float64bits(got), "%s[%d]", name, i)
		}
	}
	assert.Equal(t, len(data), pos, "data ends where the last tensor ends")
	assert.Len(t, h, len(names)+1)
}

func TestSaveRejects(t *testing.T) {
	c := testConfigs["two-layer"]
	m := randomNet(t, c, 9)
	huge := withParam(t, m, "input.bias", func(v []float64) { v[2] = 1e300 })
	asym := randomCov(c.Dim, 4)
	asym[1] += 0.5
	indef := randomCov(c.Dim, 4)
	big := 10 * math.Sqrt(indef[0]*indef[c.Dim+1])
	indef[1], indef[c.Dim] = big, big // |c_01| > √(c_00 c_11): a negative eigenvalue
	nan := randomCov(c.Dim, 4)
	nan[4] = math.NaN()
	for _, tc := range []struct {
		name string
		m    *ops.MLP
		meta Meta
		want string
	}{
		{"nil network", nil, Meta{}, "nil network"},
		{"reserved info key", m, Meta{Info: map[string]string{"width": "3"}}, `info key "width" is reserved`},
		{"invalid utf-8 info", m, Meta{Info: map[string]string{"k": "\xff"}}, "valid UTF-8"},
		{"bad dtype", m, Meta{DType: 7}, "dtype DType(7)"},
		{"cov size", m, Meta{Cov: []float64{1, 0, 0, 1}}, "4 values, a (3, 3) covariance has 9"},
		{"cov asymmetric", m, Meta{Cov: asym}, "data.cov is not symmetric"},
		{"cov indefinite", m, Meta{Cov: indef}, "data.cov is not positive semi-definite"},
		{"cov nan", m, Meta{Cov: nan}, "data.cov: entry (1, 1) = NaN is not finite"},
		{"f32 overflow", huge, Meta{DType: F32}, `tensor "input.bias": entry 2 = 1e+300 is outside float32's range`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.safetensors")
			err := Save(path, tc.m, tc.meta)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), path)
			assert.NotContains(t, err.Error(), "\n")
			assertDirHolds(t, dir)
			var buf bytes.Buffer
			require.Error(t, Write(&buf, tc.m, tc.meta))
			assert.Zero(t, buf.Len(), "Write wrote before failing")
		})
	}
}

// withParam returns a copy of m with one parameter changed by fn (bypassing nothing: ops.NewMLP
// validates it).
func withParam(t *testing.T, m *ops.MLP, name string, fn func([]float64)) *ops.MLP {
	ps := m.Params()
	for i := range ps {
		if ps[i].Name == name {
			fn(ps[i].Data)
		}
	}
	out, err := ops.NewMLP(m.Config(), ps)
	require.NoError(t, err)
	return out
}

// assertDirHolds checks that dir holds exactly the named entries (no temporary file left).
func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, names, got, "directory %s", dir)
}

func TestSaveIsAtomic(t *testing.T) {
	c := testConfigs["two-layer"]
	m := randomNet(t, c, 10)
	other := randomNet(t, c, 11)
	huge := withParam(t, m, "output.bias", func(v []float64) { v[0] = -1e39 })

	t.Run("encoding fails after the temporary file exists", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.safetensors")
		require.NoError(t, Save(path, m, Meta{}))
		old, err := os.ReadFile(path)
		require.NoError(t, err)
		err = Save(path, huge, Meta{DType: F32})
		require.ErrorContains(t, err, "outside float32's range")
		now, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, old, now, "the old checkpoint must survive a failed save")
		assertDirHolds(t, dir, "m.safetensors")
	})
	t.Run("rename fails", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.safetensors")
		require.NoError(t, os.Mkdir(path, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(path, "keep"), []byte("x"), 0o644))
		err := Save(path, m, Meta{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
		assertDirHolds(t, dir, "m.safetensors")
		assertDirHolds(t, path, "keep")
	})
	t.Run("directory missing", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "no", "m.safetensors")
		require.Error(t, Save(path, m, Meta{}))
		assertDirHolds(t, dir)
	})
	t.Run("directory not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: permission bits do not stop root from writing")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "m.safetensors")
		require.NoError(t, Save(path, m, Meta{}))
		old, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		require.Error(t, Save(path, other, Meta{}))
		now, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, old, now)
		assertDirHolds(t, dir, "m.safetensors")
	})
	t.Run("success replaces the file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.safetensors")
		require.NoError(t, Save(path, m, Meta{}))
		require.NoError(t, Save(path, other, Meta{}))
		got, _, err := Load(path)
		require.NoError(t, err)
		assert.True(t, sameBits(other.Packed(), got.Packed()))
		assertDirHolds(t, dir, "m.safetensors")
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	})
}
