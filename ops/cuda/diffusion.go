//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Launchers of kernels/diffusion.cu: the multi-term update and the Metropolis constraint step.
// Each validates its arguments with the ops.Check* function the CPU reference uses, returns nil
// without a launch when there is nothing to do (N == 0 or d == 0), and does not synchronise.

// Combine: see ops.Backend. Terms travel as MaxTerms pointer and coefficient parameters, null
// pointers (and zero coefficients) past the last term. Without noise one thread per 16 bytes of
// the flat tensors; with noise one thread per Philox block of a row.
func (b *Backend) Combine(dst *tensor.Tensor, terms []ops.Term, noise float64, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckCombine(b.dev, dst, terms, noise, d); err != nil {
		return err
	}
	n, dim := int64(dst.Dim(0)), int64(dst.Dim(1))
	if n == 0 || dim == 0 {
		return nil
	}
	k, err := b.typedKernel("diffusion", "combine", dst.DType())
	if err != nil {
		return fmt.Errorf("combine: %w", err)
	}
	args := combineArgs{Dst: dst, Terms: int64(len(terms)), Noise: noise, N: n, D: dim, Seed: d.Seed, Site: d.Site,
		Chain0: d.FirstChain}
	for i, term := range terms { // CheckCombine allows at most ops.MaxTerms = combineTerms
		args.T[i], args.C[i] = term.T, term.C
	}
	w := normalLanes(dst.DType())
	work := (n*dim + w - 1) / w
	if noise != 0 {
		work = n * ((dim + w - 1) / w)
	}
	if err := b.launch(k, b.gridFor(work), args); err != nil {
		return fmt.Errorf("combine (N=%d, d=%d, %d terms, %v): %w", n, dim, len(terms), dst.DType(), err)
	}
	return nil
}

// domainArray returns the device copy (float64, whatever the data's dtype: membership is decided
// in float64 on every backend) of one of dom's parameter arrays, uploading all of them on first
// use. Domains are immutable, so the copies stay valid until Close.
func (b *Backend) domainArray(dom *ops.Domain, name string) (*tensor.Tensor, error) {
	if e := b.table(paramKey{dom, "domain " + name, tensor.F64}); e != nil {
		return e.t, nil
	}
	p := dom.Params()
	var data []float64
	switch name {
	case "lo":
		data = p.Lo
	case "hi":
		data = p.Hi
	case "center":
		data = p.Center
	case "a":
		data = p.A
	case "b":
		data = p.B
	default:
		return nil, fmt.Errorf("domain parameter %q: no such array", name)
	}
	return b.upload(dom, "domain "+name, tensor.F64, data, len(data))
}

// MetropolisStep: see ops.Backend. A group of lanes (metropolisGroup) per row decides membership
// in float64 with the reference's decisions exactly (see kernels/diffusion.cu), then copies the
// row or counts the rejection.
func (b *Backend) MetropolisStep(x, prop *tensor.Tensor, dom *ops.Domain, rejected *tensor.Tensor) error {
	defer b.enter()()
	if err := ops.CheckMetropolisStep(b.dev, x, prop, dom, rejected); err != nil {
		return err
	}
	n, dim := int64(x.Dim(0)), int64(x.Dim(1))
	if n == 0 || dim == 0 {
		return nil
	}
	g := metropolisGroup(int(dim))
	grid := b.gridFor(n * g)
	var op string
	var args any
	switch kind := dom.Kind(); kind {
	case ops.Box:
		lo, err := b.domainArray(dom, "lo")
		if err != nil {
			return fmt.Errorf("metropolis step: %w", err)
		}
		hi, err := b.domainArray(dom, "hi")
		if err != nil {
			return fmt.Errorf("metropolis step: %w", err)
		}
		op, args = "metropolis_box", metropolisBoxArgs{X: x, Prop: prop, Rejected: rejected, N: n, D: dim, Group: g,
			Lo: lo, Hi: hi}
	case ops.Ball:
		center, err := b.domainArray(dom, "center")
		if err != nil {
			return fmt.Errorf("metropolis step: %w", err)
		}
		op, args = "metropolis_ball", metropolisBallArgs{X: x, Prop: prop, Rejected: rejected, N: n, D: dim, Group: g,
			Center: center, Radius: dom.Params().Radius}
	case ops.Polytope:
		a, err := b.domainArray(dom, "a")
		if err != nil {
			return fmt.Errorf("metropolis step: %w", err)
		}
		bv, err := b.domainArray(dom, "b")
		if err != nil {
			return fmt.Errorf("metropolis step: %w", err)
		}
		op, args = "metropolis_polytope", metropolisPolytopeArgs{X: x, Prop: prop, Rejected: rejected, N: n, D: dim,
			Group: g, A: a, B: bv, M: int64(dom.Constraints())}
	default:
		return fmt.Errorf("metropolis step: domain kind %v: not supported", kind)
	}
	k, err := b.typedKernel("diffusion", op, x.DType())
	if err != nil {
		return fmt.Errorf("metropolis step: %w", err)
	}
	if err := b.launch(k, grid, args); err != nil {
		return fmt.Errorf("metropolis step (N=%d, d=%d, %v %v): %w", n, dim, dom.Kind(), x.DType(), err)
	}
	return nil
}
