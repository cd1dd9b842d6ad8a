package tensor

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// DType is the element type of a Tensor.
type DType int

const (
	F32 DType = iota + 1 // float32
	F64                  // float64
)

// String returns "f32" or "f64".
func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F64:
		return "f64"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case F32:
		return 4
	case F64:
		return 8
	}
	return 0
}

// ParseDType accepts "f32"/"float32" and "f64"/"float64".
func ParseDType(s string) (DType, error) {
	switch s {
	case "f32", "float32":
		return F32, nil
	case "f64", "float64":
		return F64, nil
	}
	return 0, fmt.Errorf("tensor: unknown dtype %q (want f32 or f64)", s)
}

func (d DType) valid() bool { return d == F32 || d == F64 }

// MaxElements bounds the number of elements of one tensor (2^40), far beyond any device's memory,
// so that element counts and byte sizes never overflow int64.
const MaxElements = 1 << 40

// ErrClosed is returned when a closed tensor is used.
var ErrClosed = errors.New("tensor: use of closed tensor")

// Tensor is a dense, contiguous, row-major array of float32 or float64 in host or device memory.
// The zero value is not usable; create tensors with New, FromF32, FromF64 or the readers.
type Tensor struct {
	dtype  DType
	shape  []int
	n      int
	dev    Device
	f32    []float32 // host storage (dtype F32)
	f64    []float64 // host storage (dtype F64)
	dptr   uintptr   // device storage
	view   bool      // shares another tensor's memory; Close does not free it
	closed bool
}

// checkShape validates a shape and returns its element count.
func checkShape(shape []int) (int, error) {
	n := 1
	for i, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("tensor: shape %v: dimension %d is negative", shape, i)
		}
		if s != 0 && n > MaxElements/s {
			return 0, fmt.Errorf("tensor: shape %v has more than 2^40 elements", shape)
		}
		n *= s
	}
	return n, nil
}

// New allocates a zero-filled tensor of the given dtype and shape on dev (nil means the CPU).
func New(dev Device, dt DType, shape ...int) (*Tensor, error) {
	return newTensor(dev, dt, true, shape)
}

// Empty allocates a tensor whose contents are unspecified until written: on a GPU the memory is
// not cleared (saving a pass over it); on the host it is zero. For outputs and scratch that a
// kernel writes in full before anything reads them.
func Empty(dev Device, dt DType, shape ...int) (*Tensor, error) {
	return newTensor(dev, dt, false, shape)
}

func newTensor(dev Device, dt DType, zero bool, shape []int) (*Tensor, error) {
	if !dt.valid() {
		return nil, fmt.Errorf("tensor: new: invalid dtype %v", dt)
	}
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	if dev == nil {
		dev = CPU()
	}
	t := &Tensor{dtype: dt, shape: append([]int(nil), shape...), n: n, dev: dev}
	if dev.Kind() == KindCPU {
		if dt == F32 {
			t.f32 = make([]float32, n)
		} else {
			t.f64 = make([]float64, n)
		}
		return t, nil
	}
	mem, ok := dev.(deviceMemory)
	if !ok {
		return nil, fmt.Errorf("tensor: new: device %s cannot hold tensors", dev.Name())
	}
	p, err := mem.alloc(int64(n)*int64(dt.Size()), zero)
	if err != nil {
		return nil, fmt.Errorf("tensor: new %v %v on %s: %w", dt, shape, dev.Name(), err)
	}
	t.dptr = p
	return t, nil
}

// FromF32 wraps data (without copying) as a host tensor of the given shape.
func FromF32(data []float32, shape ...int) (*Tensor, error) {
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("tensor: shape %v needs %d elements, data has %d", shape, n, len(data))
	}
	return &Tensor{dtype: F32, shape: append([]int(nil), shape...), n: n, dev: CPU(), f32: data}, nil
}

// FromF64 wraps data (without copying) as a host tensor of the given shape.
func FromF64(data []float64, shape ...int) (*Tensor, error) {
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("tensor: shape %v needs %d elements, data has %d", shape, n, len(data))
	}
	return &Tensor{dtype: F64, shape: append([]int(nil), shape...), n: n, dev: CPU(), f64: data}, nil
}

// FromFloat64s returns a new host tensor of dtype dt holding values (copied; rounded once to
// float32 for F32).
func FromFloat64s(dt DType, values []float64, shape ...int) (*Tensor, error) {
	switch dt {
	case F64:
		return FromF64(append([]float64(nil), values...), shape...)
	case F32:
		f := make([]float32, len(values))
		for i, v := range values {
			f[i] = float32(v)
		}
		return FromF32(f, shape...)
	}
	return nil, fmt.Errorf("tensor: invalid dtype %v", dt)
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns a copy of the shape.
func (t *Tensor) Shape() []int { return append([]int(nil), t.shape...) }

// Dim returns the size of dimension i (negative i counts from the end).
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Len is the number of elements.
func (t *Tensor) Len() int { return t.n }

// Bytes is the size of the data in bytes.
func (t *Tensor) Bytes() int64 { return int64(t.n) * int64(t.dtype.Size()) }

// Device is where the data lives.
func (t *Tensor) Device() Device { return t.dev }

// OnHost reports whether the data is in host memory.
func (t *Tensor) OnHost() bool { return t.dev.Kind() == KindCPU }

// Closed reports whether Close was called.
func (t *Tensor) Closed() bool { return t.closed }

// F32 returns the host data of a float32 tensor (no copy).
func (t *Tensor) F32() ([]float32, error) {
	if err := t.hostCheck(F32); err != nil {
		return nil, err
	}
	return t.f32, nil
}

// F64 returns the host data of a float64 tensor (no copy).
func (t *Tensor) F64() ([]float64, error) {
	if err := t.hostCheck(F64); err != nil {
		return nil, err
	}
	return t.f64, nil
}

func (t *Tensor) hostCheck(dt DType) error {
	if t.closed {
		return ErrClosed
	}
	if t.dtype != dt {
		return fmt.Errorf("tensor: want %v data, tensor is %v", dt, t.dtype)
	}
	if !t.OnHost() {
		return fmt.Errorf("tensor: %v data is on %s, copy it to the host first", t.dtype, t.dev.Name())
	}
	return nil
}

// Float64s returns a float64 copy of the tensor's data, whatever its dtype and wherever it lives
// (a device tensor is copied to the host first).
func (t *Tensor) Float64s() ([]float64, error) {
	if t.closed {
		return nil, ErrClosed
	}
	if !t.OnHost() {
		h, err := t.CopyTo(CPU())
		if err != nil {
			return nil, fmt.Errorf("copy %v to the host: %w", t.shape, err)
		}
		defer h.Close()
		return h.Float64s()
	}
	if t.dtype == F64 {
		return append([]float64(nil), t.f64...), nil
	}
	out := make([]float64, t.n)
	for i, v := range t.f32 {
		out[i] = float64(v)
	}
	return out, nil
}

// DevicePtr returns the device address of a device tensor's data (0 for host tensors).
// It is for launchers in ops/cuda; the pointer is valid until Close.
func (t *Tensor) DevicePtr() uintptr {
	if t.closed || t.OnHost() {
		return 0
	}
	return t.dptr
}

// hostPtr is the address of the host data (nil for empty or device tensors).
func (t *Tensor) hostPtr() unsafe.Pointer {
	switch {
	case t.dtype == F32 && len(t.f32) > 0:
		return unsafe.Pointer(&t.f32[0])
	case t.dtype == F64 && len(t.f64) > 0:
		return unsafe.Pointer(&t.f64[0])
	}
	return nil
}

// Reshape returns a view of t's data with a new shape of the same element count.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	if n != t.n {
		return nil, fmt.Errorf("tensor: reshape %v (%d elements) to %v (%d elements)", t.shape, t.n, shape, n)
	}
	return t.View(0, shape...)
}

// View returns a tensor of the given shape over elements [offset, offset+prod(shape)) of t's
// data, without copying. A view does not own memory: closing it frees nothing, and it must not be
// used after t is closed.
func (t *Tensor) View(offset int, shape ...int) (*Tensor, error) {
	if t.closed {
		return nil, ErrClosed
	}
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > t.n || n > t.n-offset {
		return nil, fmt.Errorf("tensor: view of %d elements at offset %d exceeds %d elements", n, offset, t.n)
	}
	v := &Tensor{dtype: t.dtype, shape: append([]int(nil), shape...), n: n, dev: t.dev, view: true}
	switch {
	case !t.OnHost():
		v.dptr = t.dptr + uintptr(offset*t.dtype.Size())
	case t.dtype == F32:
		v.f32 = t.f32[offset : offset+n : offset+n]
	default:
		v.f64 = t.f64[offset : offset+n : offset+n]
	}
	return v, nil
}

// CopyTo returns a new tensor with t's data on dev (nil: the CPU).
func (t *Tensor) CopyTo(dev Device) (*Tensor, error) {
	if t.closed {
		return nil, ErrClosed
	}
	out, err := New(dev, t.dtype, t.shape...)
	if err != nil {
		return nil, err
	}
	if err := out.CopyFrom(t); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// CopyFrom copies src's data into t. Shapes (element counts and dimensions) and dtypes must agree;
// the devices may differ.
func (t *Tensor) CopyFrom(src *Tensor) error {
	if t.closed || src.closed {
		return ErrClosed
	}
	if t.dtype != src.dtype {
		return fmt.Errorf("tensor: copy %v into %v", src.dtype, t.dtype)
	}
	if !slices.Equal(t.shape, src.shape) {
		return fmt.Errorf("tensor: copy shape %v into shape %v", src.shape, t.shape)
	}
	if t.n == 0 {
		return nil
	}
	nb := t.Bytes()
	switch {
	case t.OnHost() && src.OnHost():
		if t.dtype == F32 {
			copy(t.f32, src.f32)
		} else {
			copy(t.f64, src.f64)
		}
		return nil
	case t.OnHost():
		return src.dev.(deviceMemory).dtoh(t.hostPtr(), src.dptr, nb)
	case src.OnHost():
		return t.dev.(deviceMemory).htod(t.dptr, src.hostPtr(), nb)
	case t.dev == src.dev:
		return t.dev.(deviceMemory).dtod(t.dptr, src.dptr, nb)
	}
	// Two different devices: stage through the host.
	h, err := src.CopyTo(CPU())
	if err != nil {
		return err
	}
	return t.CopyFrom(h)
}

// Fill sets every element to v (on any device).
func (t *Tensor) Fill(v float64) error {
	if t.closed {
		return ErrClosed
	}
	if t.OnHost() {
		if t.dtype == F32 {
			for i := range t.f32 {
				t.f32[i] = float32(v)
			}
		} else {
			for i := range t.f64 {
				t.f64[i] = v
			}
		}
		return nil
	}
	h, err := New(CPU(), t.dtype, t.shape...)
	if err != nil {
		return err
	}
	if err := h.Fill(v); err != nil {
		return err
	}
	return t.CopyFrom(h)
}

// Close frees the tensor's memory (a view's Close frees nothing). Closing twice is a no-op.
func (t *Tensor) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	t.f32, t.f64 = nil, nil
	if t.dptr != 0 && !t.view {
		p := t.dptr
		t.dptr = 0
		if err := t.dev.(deviceMemory).free(p); err != nil {
			return fmt.Errorf("tensor: free %d bytes on %s: %w", t.Bytes(), t.dev.Name(), err)
		}
	}
	return nil
}

// String describes the tensor (not its data).
func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%v, %v, %s)", t.dtype, t.shape, t.dev.Name())
}

// HasNaN reports whether any element of a host tensor is NaN and the index of the first one.
func (t *Tensor) HasNaN() (bool, int) {
	if t.dtype == F32 {
		for i, v := range t.f32 {
			if v != v {
				return true, i
			}
		}
		return false, -1
	}
	for i, v := range t.f64 {
		if math.IsNaN(v) {
			return true, i
		}
	}
	return false, -1
}
