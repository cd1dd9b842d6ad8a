package optest

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// Guarded is a view inside a NaN-filled buffer with guard elements on each side: an op that
// writes outside its destination overwrites a guard element, which Values reports.
type Guarded struct {
	buf, view *tensor.Tensor
	n, g      int
}

// NewGuarded allocates a tensor of the given shape on dev holding vals (nil: NaN everywhere)
// inside g NaN elements on each side.
func NewGuarded(dev tensor.Device, g int, dt tensor.DType, vals []float64, shape ...int) (Guarded, error) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	buf, err := tensor.New(dev, dt, g+n+g)
	if err != nil {
		return Guarded{}, err
	}
	fail := func(err error) (Guarded, error) {
		buf.Close()
		return Guarded{}, err
	}
	if err := buf.Fill(math.NaN()); err != nil {
		return fail(err)
	}
	view, err := buf.View(g, shape...)
	if err != nil {
		return fail(err)
	}
	if vals != nil {
		h, err := tensor.FromFloat64s(dt, vals, shape...)
		if err == nil {
			err = view.CopyFrom(h)
		}
		if err != nil {
			return fail(err)
		}
	}
	return Guarded{buf: buf, view: view, n: n, g: g}, nil
}

// View is the tensor inside the guard bands.
func (b Guarded) View() *tensor.Tensor { return b.view }

// Values returns the view's values, or an error naming what when a guard element was written.
func (b Guarded) Values(what string) ([]float64, error) { return b.values(what) }

// Close releases the buffer.
func (b Guarded) Close() { b.close() }

func (b Guarded) values(what string) ([]float64, error) {
	all, err := hostValues(b.buf, false)
	if err != nil {
		return nil, err
	}
	for i := 0; i < b.g; i++ {
		if !math.IsNaN(all[i]) || !math.IsNaN(all[b.g+b.n+i]) {
			return nil, fmt.Errorf("%s: guard band overwritten: out-of-bounds write", what)
		}
	}
	return all[b.g : b.g+b.n], nil
}

func (b Guarded) close() {
	if b.buf != nil {
		b.buf.Close()
	}
}
