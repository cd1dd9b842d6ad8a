// Package dense is the bridge between scorekit's tensors and gorgonia.org/tensor's *tensor.Dense,
// the array type users of the gorgonia ecosystem already hold. It lives apart from package tensor
// so that programs that do not need it (the command, samplers) do not link gorgonia.org/tensor
// and what it brings (Apache Arrow, protobuf).
package dense

import (
	"fmt"

	gtensor "gorgonia.org/tensor"

	"github.com/scorekit/scorekit/tensor"
)

// FromTensor returns t's data as a *tensor.Dense of gorgonia.org/tensor. A host tensor is wrapped
// without copying (the Dense shares t's memory; keep t open while using it); a device tensor is
// copied to the host first. A 0-d or empty tensor becomes a Dense of the same shape.
func FromTensor(t *tensor.Tensor) (*gtensor.Dense, error) {
	if t == nil || t.Closed() {
		return nil, tensor.ErrClosed
	}
	h := t
	if !t.OnHost() {
		var err error
		if h, err = t.CopyTo(tensor.CPU()); err != nil {
			return nil, err
		}
	}
	shape := h.Shape()
	if len(shape) == 0 {
		shape = []int{1}
	}
	if h.DType() == tensor.F32 {
		v, err := h.F32()
		if err != nil {
			return nil, err
		}
		return gtensor.New(gtensor.WithShape(shape...), gtensor.WithBacking(v)), nil
	}
	v, err := h.F64()
	if err != nil {
		return nil, err
	}
	return gtensor.New(gtensor.WithShape(shape...), gtensor.WithBacking(v)), nil
}

// ToTensor returns a host Tensor sharing d's data when d is a contiguous float32 or float64
// array (not a view), and a contiguous copy when d is a view. Other dtypes are an error.
func ToTensor(d *gtensor.Dense) (*tensor.Tensor, error) {
	if d == nil {
		return nil, fmt.Errorf("dense: to tensor: nil *tensor.Dense")
	}
	if d.IsView() || d.RequiresIterator() {
		m, ok := d.Materialize().(*gtensor.Dense)
		if !ok {
			return nil, fmt.Errorf("dense: to tensor: cannot materialise view of shape %v", d.Shape())
		}
		d = m
	}
	shape := []int(d.Shape().Clone())
	switch data := d.Data().(type) {
	case []float32:
		return tensor.FromF32(data, shape...)
	case []float64:
		return tensor.FromF64(data, shape...)
	case float32:
		return tensor.FromF32([]float32{data})
	case float64:
		return tensor.FromF64([]float64{data})
	}
	return nil, fmt.Errorf("dense: to tensor: dtype %v not supported (want float32 or float64)", d.Dtype())
}
