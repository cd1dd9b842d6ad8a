package tensor

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewValidatesShapeAndDType(t *testing.T) {
	_, err := New(nil, F32, 3, -1)
	require.ErrorContains(t, err, "negative")
	_, err = New(nil, DType(7), 3)
	require.ErrorContains(t, err, "invalid dtype")
	_, err = New(nil, F64, 1<<21, 1<<21)
	require.ErrorContains(t, err, "2^40")
	x, err := New(nil, F64, 2, 0, 3)
	require.NoError(t, err)
	assert.Equal(t, 0, x.Len())
	_, err = FromF32(make([]float32, 5), 2, 3)
	require.ErrorContains(t, err, "needs 6 elements")
}

func TestCopyAndClose(t *testing.T) {
	a, err := FromF64([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, err)
	b, err := a.CopyTo(CPU())
	require.NoError(t, err)
	bd, _ := b.F64()
	bd[0] = 42
	ad, _ := a.F64()
	assert.Equal(t, 1.0, ad[0], "CopyTo must copy, not alias")
	c, _ := New(nil, F64, 3, 2)
	require.ErrorContains(t, c.CopyFrom(a), "shape")
	d, _ := New(nil, F32, 2, 3)
	require.ErrorContains(t, d.CopyFrom(a), "f64 into f32")
	require.NoError(t, a.Close())
	require.NoError(t, a.Close(), "second Close is a no-op")
	_, err = a.F64()
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, b.CopyFrom(a), ErrClosed)
	_, err = a.CopyTo(nil)
	require.ErrorIs(t, err, ErrClosed)
}

func TestReshapeSharesData(t *testing.T) {
	a, _ := FromF32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	v, err := a.Reshape(3, 2)
	require.NoError(t, err)
	vd, _ := v.F32()
	vd[5] = -1
	ad, _ := a.F32()
	assert.Equal(t, float32(-1), ad[5])
	_, err = a.Reshape(4, 2)
	require.ErrorContains(t, err, "reshape")
}

func TestOpenCUDAInCPUBuild(t *testing.T) {
	if CUDABuild {
		t.Skip("cuda build")
	}
	_, err := OpenCUDA(0)
	require.ErrorIs(t, err, ErrNoCUDA)
	assert.Contains(t, err.Error(), "-tags cuda")
}

func TestNpyRoundTripThroughNpyio(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range [][]int{{5}, {3, 4}, {2, 3, 4}, {0, 3}, {}} {
		for _, dt := range []DType{F32, F64} {
			x, err := New(nil, dt, shape...)
			require.NoError(t, err)
			for i := 0; i < x.Len(); i++ {
				v := math.Sin(float64(i)) * 1e3
				if dt == F32 {
					x.f32[i] = float32(v)
				} else {
					x.f64[i] = v
				}
			}
			p := filepath.Join(dir, "x.npy")
			require.NoError(t, WriteNpy(p, x))
			// npyio reads what we wrote: header fields and data.
			raw, err := os.ReadFile(p)
			require.NoError(t, err)
			hdrLen := 10 + int(raw[8]) + int(raw[9])<<8
			assert.Zero(t, hdrLen%64, "header padded to 64 bytes")
			nr, err := npyio.NewReader(bytes.NewReader(raw))
			require.NoError(t, err)
			assert.Equal(t, shape, append([]int{}, nr.Header.Descr.Shape...), "shape %v", shape)
			assert.False(t, nr.Header.Descr.Fortran)
			// And back through ReadNpy.
			y, err := ReadNpy(p)
			require.NoError(t, err)
			assert.Equal(t, x.Shape(), y.Shape())
			assert.Equal(t, dt, y.DType())
			xs, _ := x.Float64s()
			ys, _ := y.Float64s()
			assert.Equal(t, xs, ys)
		}
	}
}

func TestReadNpyWrittenByNpyio(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, npyio.Write(&b, []float64{1.5, -2, 3}))
	x, err := DecodeNpy(&b)
	require.NoError(t, err)
	assert.Equal(t, []int{3}, x.Shape())
	xd, _ := x.F64()
	assert.Equal(t, []float64{1.5, -2, 3}, xd)
}

func TestReadNpyRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	var ints bytes.Buffer
	require.NoError(t, npyio.Write(&ints, []int64{1, 2, 3}))
	_, err := ReadNpy(write("ints.npy", ints.Bytes()))
	require.ErrorContains(t, err, "not supported")
	assert.Contains(t, err.Error(), "ints.npy")

	_, err = ReadNpy(write("junk.npy", []byte("hello, this is not numpy")))
	require.ErrorContains(t, err, "not a valid .npy")

	var good bytes.Buffer
	x, _ := FromF32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, EncodeNpy(&good, x))
	_, err = ReadNpy(write("short.npy", good.Bytes()[:good.Len()-5]))
	require.Error(t, err, "truncated data")

	// Same bytes with numpy's own Fortran-order header (one character shorter: pad it back).
	fortran := bytes.Replace(good.Bytes(), []byte("'fortran_order': False, 'shape': (2, 3), }"),
		[]byte("'fortran_order': True, 'shape': (2, 3), } "), 1)
	_, err = ReadNpy(write("fortran.npy", fortran))
	require.ErrorContains(t, err, "Fortran order")

	_, err = ReadNpy(filepath.Join(dir, "missing.npy"))
	require.ErrorContains(t, err, "missing.npy")
}

func TestWriteFileAtomicKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.npy")
	require.NoError(t, os.WriteFile(p, []byte("precious"), 0o644))
	boom := errors.New("boom")
	err := WriteFileAtomic(p, func(w io.Writer) error {
		w.Write([]byte("partial garbage"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	got, _ := os.ReadFile(p)
	assert.Equal(t, "precious", string(got))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary file left behind")

	x, _ := FromF64([]float64{1}, 1)
	x.Close()
	require.ErrorIs(t, WriteNpy(p, x), ErrClosed)
	got, _ = os.ReadFile(p)
	assert.Equal(t, "precious", string(got))

	require.Error(t, WriteNpy(filepath.Join(dir, "no", "such", "dir.npy"), x))
}

func TestViewIsBoundedAndDoesNotOwn(t *testing.T) {
	a, _ := FromF64([]float64{0, 1, 2, 3, 4, 5, 6, 7}, 8)
	v, err := a.View(2, 2, 2)
	require.NoError(t, err)
	vd, _ := v.F64()
	assert.Equal(t, []float64{2, 3, 4, 5}, vd)
	vd = append(vd, 99) // capacity is clipped: appending must not write into a
	ad, _ := a.F64()
	assert.Equal(t, 6.0, ad[6])
	_, err = a.View(6, 3)
	require.ErrorContains(t, err, "exceeds")
	_, err = a.View(-1, 1)
	require.Error(t, err)
	require.NoError(t, v.Close())
	_, err = a.F64()
	require.NoError(t, err, "closing a view leaves the owner open")
}

func TestFromFloat64sCopiesAndRounds(t *testing.T) {
	src := []float64{1.0 / 3, 2}
	x, err := FromFloat64s(F64, src, 2)
	require.NoError(t, err)
	src[0] = 9
	xd, _ := x.F64()
	assert.Equal(t, 1.0/3, xd[0], "values are copied")
	y, err := FromFloat64s(F32, []float64{1.0 / 3}, 1)
	require.NoError(t, err)
	yd, _ := y.F32()
	assert.Equal(t, float32(1.0/3), yd[0])
	_, err = FromFloat64s(DType(9), src, 2)
	assert.ErrorContains(t, err, "invalid dtype")
	_, err = FromFloat64s(F32, src, 3)
	assert.ErrorContains(t, err, "needs 3 elements")
}
