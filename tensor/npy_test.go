package tensor

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Files written by NumPy's own np.save / numpy.lib.format.write_array (testdata/numpy): every
// format version, both byte orders, both float dtypes, rank 0 to 3, an empty array.
func TestReadNpyNumPyFiles(t *testing.T) {
	m34 := make([]float64, 12)
	for i := range m34 {
		m34[i] = float64(i)*0.25 - 1
	}
	iota := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i)
		}
		return v
	}
	cases := []struct {
		file  string
		dt    DType
		shape []int
		want  []float64
	}{
		{"f8_3x4.npy", F64, []int{3, 4}, m34},
		{"v2_f8.npy", F64, []int{3, 4}, m34},
		{"v3_f4.npy", F32, []int{3, 4}, m34},
		{"f4_5.npy", F32, []int{5}, []float64{1.5, -2, 3, float64(float32(1e-30)), 65504}},
		{"be_f8_2x3.npy", F64, []int{2, 3}, []float64{-1, -0.75, -0.5, 0, 0.25, 0.5}},
		{"be_f4_2.npy", F32, []int{2}, []float64{0.5, -7}},
		{"scalar.npy", F64, []int{}, []float64{2.5}},
		{"empty_0x3.npy", F64, []int{0, 3}, []float64{}},
		{"rank3.npy", F32, []int{2, 3, 4}, iota(24)},
	}
	for _, c := range cases {
		x, err := ReadNpy(filepath.Join("testdata", "numpy", c.file))
		require.NoError(t, err, c.file)
		assert.Equal(t, c.dt, x.DType(), c.file)
		assert.Equal(t, c.shape, append([]int{}, x.Shape()...), c.file)
		v, err := x.Float64s()
		require.NoError(t, err)
		assert.Equal(t, c.want, append([]float64{}, v...), c.file)
	}
	for file, want := range map[string]string{
		"fortran.npy":    "Fortran order",
		"int64.npy":      `dtype "<i8" is not supported`,
		"complex.npy":    `dtype "<c16" is not supported`,
		"structured.npy": "structured dtype",
	} {
		_, err := ReadNpy(filepath.Join("testdata", "numpy", file))
		require.Error(t, err, file)
		assert.Contains(t, err.Error(), want, file)
		assert.Contains(t, err.Error(), file, "the error names the file")
	}
}

// npyBytes is a version-1.0 file with the given header dictionary and data bytes.
func npyBytes(dict string, data []byte) []byte {
	b := []byte("\x93NUMPY\x01\x00")
	b = append(b, byte(len(dict)+1), byte((len(dict)+1)>>8))
	b = append(b, dict...)
	b = append(b, '\n')
	return append(b, data...)
}

// Malformed files are errors that say what is wrong, never a panic, and a header that claims more
// data than the file holds does not allocate for it.
func TestDecodeNpyRejects(t *testing.T) {
	f8 := func(n int) []byte { return make([]byte, 8*n) }
	hdr := func(shape string) string {
		return "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }"
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage after the magic", []byte("\x93NUMPY\x01\x00garbage"), "the header says"},
		{"empty", nil, "shorter than the 8-byte preamble"},
		{"wrong magic", []byte("\x93NUMPZ\x01\x00\x10\x00{}"), "magic string"},
		{"version 4", []byte("\x93NUMPY\x04\x00\x10\x00"), "format version 4.0"},
		{"no header length", []byte("\x93NUMPY\x01\x00"), "header length"},
		{"v2 huge header", []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "header of 2147483647 bytes"},
		{"not a dict", npyBytes("[1, 2]", nil), "does not start with '{'"},
		{"unterminated", npyBytes("{'descr': '<f8}", nil), "unterminated string"},
		{"repeated key", npyBytes("{'descr': '<f8', 'descr': '<f8'}", nil), `repeats the key "descr"`},
		{"unknown key", npyBytes("{'dtype': '<f8'}", nil), `unknown key "dtype"`},
		{"missing shape", npyBytes("{'descr': '<f8', 'fortran_order': False}", nil), `has no "shape"`},
		{"fortran not bool", npyBytes("{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}", nil), "not True or False"},
		{"negative dimension", npyBytes(hdr("(-1, 2)"), nil), "want a non-negative integer"},
		{"huge dimension", npyBytes(hdr("(99999999999999999999,)"), nil), "too large"},
		{"shape overflow", npyBytes(hdr("(1099511627776, 2)"), nil), "more than 2^40 elements"},
		{"int for tuple", npyBytes(hdr("(3)"), f8(3)), "(n,)"},
		{"text after", npyBytes(hdr("(1,)")+" x", f8(1)), "text after the dictionary"},
		{"escape", npyBytes("{'descr': '<\\f8'}", nil), "escape"},
		{"truncated data", npyBytes(hdr("(3,)"), f8(2)), "needs 24 bytes of data, the file has 16"},
		{"cut value", npyBytes(hdr("(3,)"), f8(3)[:20]), "the file has 16"},
		{"trailing bytes", npyBytes(hdr("(2,)"), f8(3)), "bytes after the data"},
		{"huge shape, no data", npyBytes(hdr("(549755813888,)"), nil), "the file has 0"},
	}
	for _, c := range cases {
		var x *Tensor
		var err error
		allocs := testing.AllocsPerRun(1, func() { x, err = DecodeNpy(bytes.NewReader(c.data)) })
		require.Error(t, err, c.name)
		assert.Nil(t, x, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
		assert.Less(t, allocs, 100.0, c.name)
	}
}

// DecodeNpy never panics; what it accepts is a consistent tensor that EncodeNpy writes back to
// bytes DecodeNpy reads as the same values, bit for bit.
func FuzzDecodeNpy(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "numpy", "*.npy"))
	require.NoError(f, err)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("\x93NUMPY\x01\x00garbage"))
	f.Add(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0, 3), }", nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := DecodeNpy(bytes.NewReader(data))
		if err != nil {
			if x != nil {
				t.Fatalf("a tensor and an error %v", err)
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		n := 1
		for _, s := range x.Shape() {
			n *= s
		}
		if n != x.Len() {
			t.Fatalf("shape %v, %d elements", x.Shape(), x.Len())
		}
		var buf bytes.Buffer
		if err := EncodeNpy(&buf, x); err != nil {
			t.Fatal(err)
		}
		y, err := DecodeNpy(&buf)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !equalBits(x, y) {
			t.Fatalf("round trip changed the data")
		}
	})
}

// equalBits reports whether a and b have the same dtype, shape and bits.
func equalBits(a, b *Tensor) bool {
	if a.DType() != b.DType() || !slices.Equal(a.Shape(), b.Shape()) {
		return false
	}
	if a.DType() == F32 {
		for i := range a.f32 {
			if math.Float32bits(a.f32[i]) != math.Float32bits(b.f32[i]) {
				return false
			}
		}
		return true
	}
	for i := range a.f64 {
		if math.Float64bits(a.f64[i]) != math.Float64bits(b.f64[i]) {
			return false
		}
	}
	return true
}

// failingReader returns good bytes, then a read error that is not the end of the data.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestDecodeNpyReadErrors: a reader that fails is reported as that failure at every stage of the
// file, never as a malformed or truncated file.
func TestDecodeNpyReadErrors(t *testing.T) {
	var full bytes.Buffer
	x, err := FromFloat64s(F64, []float64{1, 2, 3}, 3)
	require.NoError(t, err)
	require.NoError(t, EncodeNpy(&full, x))
	boom := errors.New("device error")
	for _, cut := range []int{0, 4, 8, 9, 12, full.Len() - 3, full.Len()} {
		_, err := DecodeNpy(&failingReader{data: full.Bytes()[:cut], err: boom})
		require.Error(t, err, "cut %d", cut)
		assert.ErrorIs(t, err, boom, "cut %d", cut)
	}
	// A directory is named as one.
	_, err = ReadNpy(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a directory")
}

// StatNpy reads the header alone: dtype, shape, where the data starts and how long it is, checked
// against the file's size; NpyHeader is the header EncodeNpy writes.
func TestStatNpy(t *testing.T) {
	dir := t.TempDir()
	x, err := FromF32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, err)
	p := filepath.Join(dir, "x.npy")
	require.NoError(t, WriteNpy(p, x))
	info, err := StatNpy(p)
	require.NoError(t, err)
	assert.Equal(t, F32, info.DType)
	assert.Equal(t, []int{2, 3}, info.Shape)
	assert.True(t, info.Little)
	assert.Equal(t, int64(24), info.DataBytes)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, int64(len(b))-24, info.DataOffset)
	assert.Equal(t, NpyHeader(F32, []int{2, 3}), b[:info.DataOffset], "the header EncodeNpy wrote")
	assert.Equal(t, []byte{0, 0, 0x80, 0x3f}, b[info.DataOffset:info.DataOffset+4], "1 as little-endian float32")

	short := filepath.Join(dir, "short.npy")
	require.NoError(t, os.WriteFile(short, b[:len(b)-1], 0o644))
	_, err = StatNpy(short)
	assert.ErrorContains(t, err, "truncated")
	long := filepath.Join(dir, "long.npy")
	require.NoError(t, os.WriteFile(long, append(append([]byte{}, b...), 0), 0o644))
	_, err = StatNpy(long)
	assert.ErrorContains(t, err, "bytes after the data")
	big := filepath.Join(dir, "big.npy")
	require.NoError(t, os.WriteFile(big, npyBytes("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)), 0o644))
	info, err = StatNpy(big)
	require.NoError(t, err)
	assert.False(t, info.Little)
	assert.Equal(t, F64, info.DType)
	_, err = StatNpy(filepath.Join(dir, "none.npy"))
	assert.Error(t, err)
	for _, shape := range [][]int{{}, {5}, {0, 3}, {2, 3, 4}} {
		h := NpyHeader(F64, shape)
		assert.Zero(t, len(h)%64, "%v: the header is padded to 64 bytes", shape)
	}
}
