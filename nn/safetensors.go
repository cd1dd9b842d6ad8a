package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The safetensors layer: a file is an 8-byte little-endian header length N, N bytes of UTF-8
// JSON, then the data section. This file knows nothing of networks; checkpoint.go maps tensors to
// an ops.MLP.

// MaxHeaderBytes caps the JSON header, as the reference implementation does (100 MB); a larger
// declared length is rejected before anything is allocated for it.
const MaxHeaderBytes = 100_000_000

// maxDataBytes caps the data section a header may declare (1 TiB): anything larger is a corrupt
// header, and the cap keeps every offset and size representable as an int64.
const maxDataBytes = 1 << 40

// DType is the storage precision of a checkpoint's tensors.
type DType int

const (
	F64 DType = iota // IEEE binary64, "F64" in the header; the default
	F32              // IEEE binary32, "F32" in the header
)

func (t DType) String() string {
	switch t {
	case F64:
		return "F64"
	case F32:
		return "F32"
	}
	return "DType(" + strconv.Itoa(int(t)) + ")"
}

// size is the number of bytes of one element.
func (t DType) size() uint64 {
	if t == F32 {
		return 4
	}
	return 8
}

func parseDType(s string) (DType, bool) {
	switch s {
	case "F64":
		return F64, true
	case "F32":
		return F32, true
	}
	return 0, false
}

// stTensor is one tensor of a safetensors file: its header entry and, once read, its bytes.
type stTensor struct {
	name       string
	dtype      DType
	shape      []int
	begin, end uint64 // data_offsets, relative to the data section
	data       []byte
}

// stFile is a parsed safetensors file.
type stFile struct {
	meta    map[string]string // nil when the header has no __metadata__
	tensors []*stTensor       // in offset order
}

func (f *stFile) tensor(name string) *stTensor {
	for _, t := range f.tensors {
		if t.name == name {
			return t
		}
	}
	return nil
}

// readSafetensors reads and checks a whole safetensors stream: the header (parseHeader), then
// exactly the data section it declares; a shorter stream is truncated, a longer one has bytes after
// the last tensor. Memory grows only with what the stream holds, never with what the header claims.
func readSafetensors(r io.Reader) (*stFile, error) {
	var lenBuf [8]byte
	if n, err := io.ReadFull(r, lenBuf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if n == 0 {
				return nil, errors.New("empty file (a safetensors file starts with an 8-byte header length)")
			}
			return nil, fmt.Errorf("truncated: %d bytes, shorter than the 8-byte header length", n)
		}
		return nil, fmt.Errorf("read header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > MaxHeaderBytes {
		return nil, fmt.Errorf("header length %d bytes exceeds the limit of %d (corrupt file or not safetensors)", hlen, MaxHeaderBytes)
	}
	if hlen < 2 {
		return nil, fmt.Errorf("header length %d bytes is too short for a JSON object", hlen)
	}
	header, err := io.ReadAll(io.LimitReader(r, int64(hlen)))
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if uint64(len(header)) < hlen {
		return nil, fmt.Errorf("truncated: the header length says %d bytes of JSON, the file holds %d", hlen, len(header))
	}
	f, dataLen, err := parseHeader(header)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(dataLen)+1))
	if err != nil {
		return nil, fmt.Errorf("read tensor data: %w", err)
	}
	switch {
	case uint64(len(data)) < dataLen:
		return nil, fmt.Errorf("truncated: the header declares %d bytes of tensor data, the file holds %d", dataLen, len(data))
	case uint64(len(data)) > dataLen:
		return nil, fmt.Errorf("bytes after the last tensor: the header declares %d bytes of tensor data, the file holds more (the data must end where the last tensor ends)", dataLen)
	}
	for _, t := range f.tensors {
		t.data = data[t.begin:t.end:t.end]
	}
	return f, nil
}

// parseHeader checks the JSON header and returns the tensors in offset order and the length of
// the data section: the header is UTF-8 starting with '{' (trailing whitespace allowed), one object
// without duplicate keys whose "__metadata__" (optional) maps strings to strings and whose every
// other key is a tensor entry with exactly dtype, shape and data_offsets; the ranges tile the data
// section without gap or overlap from 0, each holding exactly shape × dtype-size bytes.
func parseHeader(header []byte) (*stFile, uint64, error) {
	if !utf8.Valid(header) {
		return nil, 0, errors.New("header is not valid UTF-8")
	}
	if header[0] != '{' {
		return nil, 0, fmt.Errorf("header does not start with '{' (starts with %q)", header[:min(len(header), 8)])
	}
	fields, err := objectFields(header, "header")
	if err != nil {
		return nil, 0, err
	}
	f := &stFile{}
	for _, fl := range fields {
		if fl.key == "__metadata__" {
			if f.meta, err = stringMap(fl.raw); err != nil {
				return nil, 0, err
			}
			continue
		}
		t, err := parseEntry(fl.key, fl.raw)
		if err != nil {
			return nil, 0, err
		}
		f.tensors = append(f.tensors, t)
	}
	// Offset order; a zero-size tensor sorts before a tensor starting at the same offset.
	slices.SortStableFunc(f.tensors, func(a, b *stTensor) int {
		if c := cmpUint(a.begin, b.begin); c != 0 {
			return c
		}
		return cmpUint(a.end, b.end)
	})
	var pos uint64
	prev := ""
	for _, t := range f.tensors {
		switch {
		case t.begin > pos:
			return nil, 0, fmt.Errorf("gap in the tensor data: bytes %d to %d belong to no tensor (the next, %q, starts at %d)", pos, t.begin, t.name, t.begin)
		case t.begin < pos:
			return nil, 0, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d", t.name, t.begin, t.end, prev, pos)
		}
		pos, prev = t.end, t.name
	}
	return f, pos, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseEntry checks one tensor entry: exactly the fields dtype (F64 or F32), shape (non-negative
// integers) and data_offsets ([begin, end], begin ≤ end ≤ maxDataBytes, end − begin = the bytes the
// shape and dtype need).
func parseEntry(name string, raw json.RawMessage) (*stTensor, error) {
	what := fmt.Sprintf("tensor %q", name)
	fields, err := objectFields(raw, what)
	if err != nil {
		return nil, err
	}
	t := &stTensor{name: name}
	var haveDType, haveShape, haveOffsets bool
	var offsets []uint64
	for _, fl := range fields {
		switch fl.key {
		case "dtype":
			v, err := decodeValue(fl.raw)
			s, ok := v.(string)
			if err != nil || !ok {
				return nil, fmt.Errorf("%s: dtype %s is not a string", what, fl.raw)
			}
			dt, ok := parseDType(s)
			if !ok {
				return nil, fmt.Errorf("%s: dtype %q is not supported (checkpoints hold F64 or F32 tensors)", what, s)
			}
			t.dtype, haveDType = dt, true
		case "shape":
			dims, err := uintArray(fl.raw)
			if err != nil {
				return nil, fmt.Errorf("%s: shape %s: %v", what, fl.raw, err)
			}
			for _, d := range dims {
				if d > math.MaxInt32 {
					return nil, fmt.Errorf("%s: shape %s: dimension %d is absurd", what, fl.raw, d)
				}
				t.shape = append(t.shape, int(d))
			}
			if t.shape == nil {
				t.shape = []int{}
			}
			haveShape = true
		case "data_offsets":
			if offsets, err = uintArray(fl.raw); err != nil {
				return nil, fmt.Errorf("%s: data_offsets %s: %v", what, fl.raw, err)
			}
			if len(offsets) != 2 {
				return nil, fmt.Errorf("%s: data_offsets %s: want [begin, end]", what, fl.raw)
			}
			haveOffsets = true
		default:
			return nil, fmt.Errorf("%s: unknown field %q (an entry has dtype, shape and data_offsets)", what, fl.key)
		}
	}
	var missing []string
	for _, m := range []struct {
		have bool
		name string
	}{{haveDType, "dtype"}, {haveShape, "shape"}, {haveOffsets, "data_offsets"}} {
		if !m.have {
			missing = append(missing, m.name)
		}
	}
	if missing != nil {
		return nil, fmt.Errorf("%s: entry lacks %s", what, joinNames(missing))
	}
	t.begin, t.end = offsets[0], offsets[1]
	if t.end < t.begin {
		return nil, fmt.Errorf("%s: data_offsets [%d, %d] end before they begin", what, t.begin, t.end)
	}
	if t.end > maxDataBytes {
		return nil, fmt.Errorf("%s: data_offsets [%d, %d] reach past %d bytes (corrupt header)", what, t.begin, t.end, uint64(maxDataBytes))
	}
	n := t.dtype.size()
	for _, d := range t.shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > maxDataBytes {
			return nil, fmt.Errorf("%s: shape %v of %s needs more than %d bytes (corrupt header)", what, t.shape, t.dtype, uint64(maxDataBytes))
		}
		n = lo
	}
	if t.end-t.begin != n {
		return nil, fmt.Errorf("%s: shape %v of %s needs %d bytes, data_offsets [%d, %d] give %d", what, t.shape, t.dtype, n, t.begin, t.end, t.end-t.begin)
	}
	return t, nil
}

// field is one member of a JSON object, its value undecoded.
type field struct {
	key string
	raw json.RawMessage
}

// objectFields splits one JSON object into its members in order, rejecting duplicate keys (which
// encoding/json would silently resolve to the last) and anything after the object but whitespace.
func objectFields(data []byte, what string) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: not a JSON object", what)
	}
	var out []field
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: invalid JSON: %v", what, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s: invalid JSON: object key %v is not a string", what, tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("%s: key %q appears twice", what, key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%s: invalid JSON at key %q: %v", what, key, err)
		}
		out = append(out, field{key, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: invalid JSON: data after the object", what)
	}
	return out, nil
}

func decodeValue(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// uintArray decodes a JSON array of non-negative integers (no fraction, no exponent, no strings).
func uintArray(raw json.RawMessage) ([]uint64, error) {
	v, err := decodeValue(raw)
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("not an array")
	}
	out := make([]uint64, len(arr))
	for i, e := range arr {
		num, ok := e.(json.Number)
		if !ok {
			return nil, fmt.Errorf("entry %d is not a number", i)
		}
		u, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("entry %d = %s is not a non-negative integer", i, num)
		}
		out[i] = u
	}
	return out, nil
}

// stringMap decodes __metadata__, which the format restricts to string values.
func stringMap(raw json.RawMessage) (map[string]string, error) {
	fields, err := objectFields(raw, "__metadata__")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(fields))
	for _, fl := range fields {
		v, err := decodeValue(fl.raw)
		s, ok := v.(string)
		if err != nil || !ok {
			return nil, fmt.Errorf("__metadata__: value of %q is %s, not a string", fl.key, fl.raw)
		}
		out[fl.key] = s
	}
	return out, nil
}

// outTensor is a tensor to write.
type outTensor struct {
	name   string
	shape  []int
	values []float64
}

// encodeSafetensors builds a whole file in memory (so that every error comes before the first
// byte is written): "__metadata__" first, then the tensors in the given order and in offset
// order, the header padded with spaces to a multiple of 8 bytes as the reference writer does, so
// every tensor starts 8-byte aligned in the file. Converting to F32 fails on a value outside
// float32's range.
func encodeSafetensors(meta map[string]string, tensors []outTensor, dt DType) ([]byte, error) {
	var h bytes.Buffer
	h.WriteByte('{')
	if meta != nil {
		h.WriteString(`"__metadata__":`)
		h.Write(marshalJSON(meta))
	}
	var off uint64
	for i, t := range tensors {
		n := 1
		for _, s := range t.shape {
			n *= s
		}
		if n != len(t.values) {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", t.name, len(t.values), t.shape)
		}
		if meta != nil || i > 0 {
			h.WriteByte(',')
		}
		size := uint64(n) * dt.size()
		h.Write(marshalJSON(t.name))
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, dt, marshalJSON(t.shape), off, off+size)
		off += size
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := make([]byte, 8, 8+uint64(h.Len())+off)
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	out = append(out, h.Bytes()...)
	for _, t := range tensors {
		for i, v := range t.values {
			switch dt {
			case F32:
				f := float32(v)
				if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
					return nil, fmt.Errorf("tensor %q: entry %d = %g is outside float32's range", t.name, i, v)
				}
				out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
			default:
				out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
			}
		}
	}
	return out, nil
}

// marshalJSON encodes v without HTML escaping (names and metadata stay readable in the header).
func marshalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // strings, maps of strings and int slices always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func joinNames(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}
