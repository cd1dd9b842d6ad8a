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
	"strconv"
	"strings"
)

// ReadNpy reads a NumPy .npy file holding a C-order float32 or float64 array into a host tensor.
// Anything else — another dtype, Fortran order, a structured dtype, a malformed header, a truncated
// file or bytes after the data — is an error that names the file and the problem; no input makes
// it panic, and it allocates no more than the data the file holds.
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

// ioErr reports whether err from io.ReadFull is a failure of the reader itself (a directory, a
// device error) rather than the end of the data, which the callers report as a malformed file.
func ioErr(err error) bool {
	return err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)
}

// maxNpyHeader bounds the header dictionary's length (NumPy writes a few hundred bytes).
const maxNpyHeader = 1 << 16

// npyHeader is a parsed .npy header dictionary.
type npyHeader struct {
	descr   string
	fortran bool
	shape   []int
}

// NpyInfo describes a .npy file's array: its dtype, shape and where the data starts.
type NpyInfo struct {
	DType DType
	Shape []int
	// Little reports little-endian data ('<f4', '<f8', or the native '=' / '|' forms).
	Little bool
	// DataOffset is the length of the preamble and header: the data starts there.
	DataOffset int64
	// DataBytes is the size of the data the shape asks for.
	DataBytes int64
	descr     string // as the header writes it, for messages
}

// StatNpy reads the header of the .npy file at path and checks that the file holds exactly the
// data its shape asks for (neither truncated nor followed by more bytes), without reading the data.
func StatNpy(path string) (NpyInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return NpyInfo{}, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	info, err := decodeNpyHeader(bufio.NewReaderSize(f, 4096))
	if err != nil {
		return NpyInfo{}, fmt.Errorf("read %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return NpyInfo{}, fmt.Errorf("read %s: %w", path, err)
	}
	switch want := info.DataOffset + info.DataBytes; {
	case fi.Size() < want:
		return NpyInfo{}, fmt.Errorf("read %s: .npy file is truncated: shape %v of %v needs %d bytes of data, the file has %d",
			path, info.Shape, info.DType, info.DataBytes, fi.Size()-info.DataOffset)
	case fi.Size() > want:
		return NpyInfo{}, fmt.Errorf("read %s: .npy file has bytes after the data of its shape %v", path, info.Shape)
	}
	return info, nil
}

// decodeNpyHeader reads the preamble and header dictionary from r and returns what they say.
func decodeNpyHeader(r io.Reader) (NpyInfo, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if ioErr(err) {
			return NpyInfo{}, err
		}
		return NpyInfo{}, errors.New("not a valid .npy file: shorter than the 8-byte preamble")
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return NpyInfo{}, fmt.Errorf("not a valid .npy file: the magic string is %q, want \"\\x93NUMPY\"", pre[:6])
	}
	var hlen int
	offset := int64(8)
	switch major := pre[6]; major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if ioErr(err) {
				return NpyInfo{}, err
			}
			return NpyInfo{}, errors.New("not a valid .npy file: truncated in the header length")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
		offset += 2
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if ioErr(err) {
				return NpyInfo{}, err
			}
			return NpyInfo{}, errors.New("not a valid .npy file: truncated in the header length")
		}
		l := binary.LittleEndian.Uint32(b[:])
		if l > maxNpyHeader {
			return NpyInfo{}, fmt.Errorf("not a valid .npy file: header of %d bytes (at most %d)", l, maxNpyHeader)
		}
		hlen = int(l)
		offset += 4
	default:
		return NpyInfo{}, fmt.Errorf(".npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", major, pre[7])
	}
	raw := make([]byte, hlen)
	if _, err := io.ReadFull(r, raw); err != nil {
		if ioErr(err) {
			return NpyInfo{}, err
		}
		return NpyInfo{}, fmt.Errorf("not a valid .npy file: the header says %d bytes, the file ends before", hlen)
	}
	h, err := parseNpyHeader(string(raw))
	if err != nil {
		return NpyInfo{}, fmt.Errorf("not a valid .npy file: header %s", err)
	}
	if h.fortran {
		return NpyInfo{}, errors.New(".npy array is in Fortran order; scorekit reads C-order arrays only (numpy.ascontiguousarray)")
	}
	n, err := checkShape(h.shape)
	if err != nil {
		return NpyInfo{}, fmt.Errorf(".npy shape: %w", err)
	}
	info := NpyInfo{Shape: h.shape, Little: true, DataOffset: offset + int64(hlen), descr: h.descr}
	switch h.descr {
	case "<f4", "=f4", "f4":
		info.DType = F32
	case "<f8", "=f8", "f8":
		info.DType = F64
	case ">f4":
		info.DType, info.Little = F32, false
	case ">f8":
		info.DType, info.Little = F64, false
	default:
		return NpyInfo{}, fmt.Errorf(".npy dtype %q is not supported: want float32 ('<f4') or float64 ('<f8') (numpy: x.astype(numpy.float64))", h.descr)
	}
	info.DataBytes = int64(n) * int64(info.DType.Size())
	return info, nil
}

// DecodeNpy decodes .npy data from r (see ReadNpy): format versions 1.0, 2.0 and 3.0, dtype
// float32 or float64 of either byte order ('<f4', '>f8', …), C order, any rank.
func DecodeNpy(r io.Reader) (*Tensor, error) {
	info, err := decodeNpyHeader(r)
	if err != nil {
		return nil, err
	}
	h := npyHeader{shape: info.Shape, descr: info.descr}
	var order binary.ByteOrder = binary.LittleEndian
	if !info.Little {
		order = binary.BigEndian
	}
	size := info.DType.Size()
	// The data is read in pieces and the slice grows with what arrives, so a header that claims a
	// huge shape over a short file costs no more memory than the file.
	want := info.DataBytes
	var got int64
	buf := make([]byte, 1<<16)
	var f32 []float32
	var f64 []float64
	for got < want {
		k := int(min(int64(len(buf)), want-got))
		m, err := io.ReadFull(r, buf[:k])
		m -= m % size // a value cut by the end of the file is not data
		for i := 0; i < m; i += size {
			if size == 4 {
				f32 = append(f32, math.Float32frombits(order.Uint32(buf[i:])))
			} else {
				f64 = append(f64, math.Float64frombits(order.Uint64(buf[i:])))
			}
		}
		got += int64(m)
		if ioErr(err) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf(".npy file is truncated: shape %v of %s needs %d bytes of data, the file has %d",
				h.shape, h.descr, want, got)
		}
	}
	if m, err := io.ReadFull(r, buf[:1]); m > 0 {
		return nil, fmt.Errorf(".npy file has bytes after the data of its shape %v", h.shape)
	} else if ioErr(err) {
		return nil, err
	}
	if size == 4 {
		if f32 == nil {
			f32 = []float32{}
		}
		return FromF32(f32, h.shape...)
	}
	if f64 == nil {
		f64 = []float64{}
	}
	return FromF64(f64, h.shape...)
}

// parseNpyHeader parses the header dictionary, the Python literal NumPy writes:
//
//	{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
//
// followed by spaces and a newline. Exactly the three keys, each once; descr a string (a list is
// a structured dtype, refused), fortran_order True or False, shape a tuple of non-negative integers.
func parseNpyHeader(s string) (npyHeader, error) {
	p := &pyParser{s: strings.TrimRight(s, " \t\r\n\x00")}
	var h npyHeader
	if !p.eat('{') {
		return h, p.fail("does not start with '{'")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("key: %w", err)
		}
		if seen[key] {
			return h, p.fail(fmt.Sprintf("repeats the key %q", key))
		}
		seen[key] = true
		if !p.eat(':') {
			return h, p.fail(fmt.Sprintf("has no ':' after %q", key))
		}
		switch key {
		case "descr":
			if p.peek() == '[' {
				return h, errors.New("has a structured dtype (a list of fields); want float32 or float64")
			}
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
			default:
				return h, p.fail("fortran_order is not True or False")
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("has the unknown key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return h, p.fail("has no ',' or '}' after a value")
			}
			break
		}
	}
	if p.skip(); p.i != len(p.s) {
		return h, p.fail("has text after the dictionary")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("has no %q", k)
		}
	}
	return h, nil
}

// pyParser reads the few Python literals of a .npy header.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyParser) peek() byte {
	p.skip()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *pyParser) fail(what string) error {
	return fmt.Errorf("%s (at byte %d)", what, p.i)
}

// str reads a quoted string without escapes ('…' or "…").
func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.fail("want a quoted string")
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.fail("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", p.fail("escape in a string")
	}
	p.i += end + 2
	return v, nil
}

// tuple reads (), (n,) or (n1, n2, …) of non-negative integers.
func (p *pyParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, p.fail("want a tuple")
	}
	shape := []int{}
	for {
		if p.eat(')') {
			return shape, nil
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i {
			return nil, p.fail("want a non-negative integer")
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil || v > MaxElements {
			return nil, p.fail(fmt.Sprintf("dimension %s is too large", p.s[p.i:j]))
		}
		shape = append(shape, int(v))
		p.i = j
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, p.fail("want ',' or ')' in the shape")
			}
			if len(shape) == 1 {
				return nil, p.fail("a one-element shape is written (n,)")
			}
			return shape, nil
		}
	}
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
	if _, err := w.Write(NpyHeader(t.dtype, t.shape)); err != nil {
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

// NpyHeader is the preamble and header (format 1.0) that EncodeNpy writes before the
// little-endian data of a C-order array of dtype dt and the given shape.
func NpyHeader(dt DType, shape []int) []byte {
	descr := "<f4"
	if dt == F64 {
		descr = "<f8"
	}
	// The shape as Python writes a tuple: (), (5,), (2, 3).
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = fmt.Sprint(s)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(dims) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	// magic(6) + version(2) + header length(2) + dict + padding + '\n' is a multiple of 64.
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := make([]byte, 0, total+pad)
	hdr = append(hdr, "\x93NUMPY\x01\x00"...)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(dict)+pad+1))
	hdr = append(hdr, dict...)
	hdr = append(hdr, strings.Repeat(" ", pad)...)
	return append(hdr, '\n')
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
