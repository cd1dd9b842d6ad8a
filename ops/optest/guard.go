package optest

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// Sentinel is the value every output buffer and guard band of the suite is filled with before an
// op runs: finite, exact in float32 and float64, and far outside what any op of the suite writes
// (≈ −8.6e29). An element that an op leaves unwritten therefore differs from every value the
// reference can expect there — a NaN that an invalid row must get included — and an out-of-bounds
// write changes a guard element's bits even when it writes NaN. (A NaN fill could do neither: an
// unwritten element of a NaN row, or a NaN written past the end, looked right.)
const Sentinel = -0x1.5a5a5ap+99

// IsSentinel reports whether v (an element read back as float64, from either dtype) is Sentinel,
// bit for bit.
func IsSentinel(v float64) bool { return math.Float64bits(v) == math.Float64bits(Sentinel) }

// CheckGuards checks that the g elements at each end of all (a buffer read back from the device)
// still hold Sentinel bit for bit, and names the one nearest the output that does not (1: the
// element just before or just after it).
func CheckGuards(all []float64, g int, what string) error {
	n := len(all) - 2*g
	if n < 0 {
		return fmt.Errorf("%s: %d elements cannot hold %d guard elements on each side", what, len(all), g)
	}
	for k := 1; k <= g; k++ {
		for _, c := range []struct {
			j    int
			side string
		}{{g - k, "before"}, {g + n + k - 1, "after"}} {
			if !IsSentinel(all[c.j]) {
				return fmt.Errorf("%s: guard band overwritten: element %d %s the output holds %v, not the fill value %v (an out-of-bounds write)",
					what, k, c.side, all[c.j], Sentinel)
			}
		}
	}
	return nil
}

// onDevice returns a tensor of the given shape on dev holding vals rounded to dt.
func onDevice(dev tensor.Device, dt tensor.DType, vals []float64, shape ...int) (*tensor.Tensor, error) {
	h, err := tensor.FromFloat64s(dt, vals, shape...)
	if err != nil {
		return nil, err
	}
	return h.CopyTo(dev)
}

// Guarded is a view inside a Sentinel-filled buffer with guard elements on each side: an op that
// writes outside its destination changes a guard element, which Values reports.
type Guarded struct {
	buf, view *tensor.Tensor
	n, g      int
}

// NewGuarded allocates a tensor of the given shape on dev holding vals (nil: Sentinel everywhere)
// inside g Sentinel elements on each side.
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
	if err := buf.Fill(Sentinel); err != nil {
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
	if err := CheckGuards(all, b.g, what); err != nil {
		return nil, err
	}
	return all[b.g : b.g+b.n], nil
}

func (b Guarded) close() {
	if b.buf != nil {
		b.buf.Close()
	}
}

// notWritten returns an error when got or want (an element of a backend's output and the
// reference's) still holds Sentinel: its op did not write it. Both sides fill their outputs with
// Sentinel, so an element that neither writes is caught here, not passed as equal.
func notWritten(got, want float64, row, col int) error {
	switch {
	case IsSentinel(want):
		return fmt.Errorf("row %d col %d: the reference did not write it (still the fill value %v)", row, col, Sentinel)
	case IsSentinel(got):
		return fmt.Errorf("row %d col %d: not written (still the fill value %v), reference %v", row, col, Sentinel, want)
	}
	return nil
}
