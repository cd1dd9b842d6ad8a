package tensor

import (
	"fmt"

	gtensor "gorgonia.org/tensor"
)

// ToDense returns t's data as a *tensor.Dense of gorgonia.org/tensor. A host tensor is wrapped
// without copying (the Dense shares t's memory; keep t open while using it); a device tensor is
// copied to the host first. A 0-d or empty tensor becomes a Dense of the same shape.
func (t *Tensor) ToDense() (*gtensor.Dense, error) {
	if t.closed {
		return nil, ErrClosed
	}
	h := t
	if !t.OnHost() {
		var err error
		if h, err = t.CopyTo(CPU()); err != nil {
			return nil, err
		}
	}
	shape := h.Shape()
	if len(shape) == 0 {
		shape = []int{1}
	}
	if h.dtype == F32 {
		return gtensor.New(gtensor.WithShape(shape...), gtensor.WithBacking(h.f32)), nil
	}
	return gtensor.New(gtensor.WithShape(shape...), gtensor.WithBacking(h.f64)), nil
}

// FromDense returns a host Tensor sharing d's data when d is a contiguous float32 or float64
// array (not a view), and a contiguous copy when d is a view. Other dtypes are an error.
func FromDense(d *gtensor.Dense) (*Tensor, error) {
	if d == nil {
		return nil, fmt.Errorf("tensor: from dense: nil *tensor.Dense")
	}
	if d.IsView() || d.RequiresIterator() {
		m, ok := d.Materialize().(*gtensor.Dense)
		if !ok {
			return nil, fmt.Errorf("tensor: from dense: cannot materialise view of shape %v", d.Shape())
		}
		d = m
	}
	shape := []int(d.Shape().Clone())
	switch data := d.Data().(type) {
	case []float32:
		return FromF32(data, shape...)
	case []float64:
		return FromF64(data, shape...)
	case float32:
		return FromF32([]float32{data})
	case float64:
		return FromF64([]float64{data})
	}
	return nil, fmt.Errorf("tensor: from dense: dtype %v not supported (want float32 or float64)", d.Dtype())
}
