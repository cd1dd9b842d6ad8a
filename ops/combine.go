package ops

import (
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

// Term is one term C·T of Backend.Combine.
type Term struct {
	T *tensor.Tensor
	C float64
}

// MaxTerms is the most terms one Combine takes (a third-order multistep update with its state
// needs five; one more is spare).
const MaxTerms = 6

// CheckCombine validates Combine's arguments: 1..MaxTerms terms of dst's shape, dtype and device,
// finite coefficients, a finite noise coefficient ≥ 0, and (with noise) a 2-D dst whose rows are
// chains of the draw.
func CheckCombine(dev tensor.Device, dst *tensor.Tensor, terms []Term, noise float64, d Draw) error {
	const op = "combine"
	if dst == nil || dst.Closed() {
		return fmt.Errorf("%s: destination is nil or closed", op)
	}
	if dst.Rank() != 2 {
		return fmt.Errorf("%s: destination shape %v: want (N, d)", op, dst.Shape())
	}
	shape, dt := dst.Shape(), dst.DType()
	if err := checkSame(op, "destination", dst, dev, dt, shape...); err != nil {
		return err
	}
	if len(terms) == 0 || len(terms) > MaxTerms {
		return fmt.Errorf("%s: %d terms: want 1..%d", op, len(terms), MaxTerms)
	}
	for k, t := range terms {
		if err := checkSame(op, fmt.Sprintf("term %d", k), t.T, dev, dt, shape...); err != nil {
			return err
		}
		if !finite(t.C) {
			return fmt.Errorf("%s: coefficient %d = %g: must be finite", op, k, t.C)
		}
	}
	if !finite(noise) || noise < 0 {
		return fmt.Errorf("%s: noise coefficient %g: must be a finite number ≥ 0", op, noise)
	}
	return checkFill(op, dev, dst, d)
}

// Combine: dst = Σ_k C_k T_k + noise·ξ, row i's ξ the draw's normals of chain d.FirstChain+i in
// dst's precision (the numbers Normal writes; not drawn when noise = 0). The sum is formed in
// float64 in term order, then rounded once to dst's dtype. dst may be one of the terms.
func (b cpuBackend) Combine(dst *tensor.Tensor, terms []Term, noise float64, d Draw) error {
	if err := CheckCombine(tensor.CPU(), dst, terms, noise, d); err != nil {
		return err
	}
	n, dim := dst.Dim(0), dst.Dim(1)
	f32 := dst.DType() == tensor.F32
	src := make([]rows, len(terms))
	for k, t := range terms {
		src[k] = rowsOf(t.T)
	}
	out := rowsOf(dst)
	b.parallelRows(n, (2*len(terms)+10)*dim, func(lo, hi int) {
		acc, tr, xi := make([]float64, dim), make([]float64, dim), make([]float64, dim)
		for i := lo; i < hi; i++ {
			clear(acc)
			for k, t := range terms {
				src[k].get(i, tr)
				for j, v := range tr {
					acc[j] += t.C * v
				}
			}
			if noise != 0 {
				normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), f32)
				for j, v := range xi {
					acc[j] += noise * v
				}
			}
			out.set(i, acc)
		}
	})
	return nil
}
