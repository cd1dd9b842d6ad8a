package tensor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/sbinet/npyio"
)

// ReadNpy reads a NumPy .npy file holding a C-order float32 or float64 array into a host tensor.
// Parsing is github.com/sbinet/npyio's; anything other than float32/float64 in C order (integers,
// Fortran order, structured dtypes, a truncated file) is an error that names the file and the problem.
func ReadNpy(path string) (*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	t, err := DecodeNpy(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

// fullReader makes every Read fill its buffer (io.ReadFull) and remembers a short read: npyio
// reads element by element and ignores short reads and EOF, which would turn a truncated file
// into silently wrong data.
type fullReader struct {
	r         io.Reader
	truncated bool
}

func (f *fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if err == io.ErrUnexpectedEOF || (err == io.EOF && len(p) > 0) {
		f.truncated = true
	}
	return n, err
}

// DecodeNpy decodes .npy data from r (see ReadNpy).
func DecodeNpy(r io.Reader) (*Tensor, error) {
	fr := &fullReader{r: r}
	nr, err := npyio.NewReader(fr)
	if err != nil {
		return nil, fmt.Errorf("not a valid .npy file: %w", err)
	}
	h := nr.Header
	if h.Descr.Fortran {
		return nil, errors.New(".npy array is in Fortran order; scorekit reads C-order arrays only (numpy.ascontiguousarray)")
	}
	shape := append([]int(nil), h.Descr.Shape...)
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	var t *Tensor
	switch strings.TrimLeft(h.Descr.Type, "<>=|") {
	case "f4":
		data := make([]float32, 0, n)
		if err := nr.Read(&data); err != nil {
			return nil, fmt.Errorf(".npy float32 data: %w", err)
		}
		t, err = FromF32(data, shape...)
	case "f8":
		data := make([]float64, 0, n)
		if err := nr.Read(&data); err != nil {
			return nil, fmt.Errorf(".npy float64 data: %w", err)
		}
		t, err = FromF64(data, shape...)
	default:
		return nil, fmt.Errorf(".npy dtype %q is not supported: want float32 ('<f4') or float64 ('<f8')", h.Descr.Type)
	}
	if err != nil {
		return nil, fmt.Errorf(".npy data does not match its shape: %w", err)
	}
	if fr.truncated {
		return nil, fmt.Errorf(".npy file is truncated: shape %v needs %d bytes of data", shape, t.Bytes())
	}
	return t, nil
}

// EncodeNpy writes t (a host tensor) to w in .npy format version 1.0, little-endian, C order.
//
// npyio's writer takes an array's shape from the nesting of Go slices, which cannot describe an
// N-d shape over flat storage without copying it into nested slices; so the 10-byte preamble and
// the header dictionary are written here, and files are read back through npyio in the tests.
func EncodeNpy(w io.Writer, t *Tensor) error {
	if t.closed {
		return ErrClosed
	}
	if !t.OnHost() {
		return fmt.Errorf("write .npy: tensor is on %s, copy it to the host first", t.dev.Name())
	}
	descr := "<f4"
	if t.dtype == F64 {
		descr = "<f8"
	}
	// The shape as Python writes a tuple: (), (5,), (2, 3).
	dims := make([]string, len(t.shape))
	for i, s := range t.shape {
		dims[i] = fmt.Sprint(s)
	}
	shape := "(" + strings.Join(dims, ", ") + ")"
	if len(dims) == 1 {
		shape = "(" + dims[0] + ",)"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	// magic(6) + version(2) + header length(2) + dict + padding + '\n' is a multiple of 64.
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := make([]byte, 0, total+pad)
	hdr = append(hdr, "\x93NUMPY\x01\x00"...)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(dict)+pad+1))
	hdr = append(hdr, dict...)
	hdr = append(hdr, strings.Repeat(" ", pad)...)
	hdr = append(hdr, '\n')
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	if t.dtype == F32 {
		for _, v := range t.f32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	} else {
		for _, v := range t.f64 {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			if len(buf) == cap(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// WriteNpy writes t to path atomically: the data goes to a temporary file in the same directory,
// which is synced and renamed over path only when everything was written. On any error path is
// untouched (an existing file keeps its old content) and no temporary file is left behind.
// A device tensor is copied to the host first.
func WriteNpy(path string, t *Tensor) (err error) {
	if t.closed {
		return fmt.Errorf("write %s: %w", path, ErrClosed)
	}
	if !t.OnHost() {
		h, err := t.CopyTo(CPU())
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		t = h
	}
	return WriteFileAtomic(path, func(w io.Writer) error { return EncodeNpy(w, t) })
}

// WriteFileAtomic creates path with the bytes that write produces, atomically (temporary file in
// the same directory, fsync, rename). If write fails, path is left as it was.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
