//go:build !cuda

package train

import (
	"fmt"
	"math"
	"strconv"

	"github.com/scorekit/scorekit/ops"
)

// LayerUpdate is the change of one layer's features between two networks of one architecture,
// over a probe batch. Every value is an RMS over the layer's units and the probe points.
type LayerUpdate struct {
	Name  string // "input", "blocks.<l>.<j>" or "output"
	Block int    // l for a block layer, −1 for input and output
	Inner bool   // the first (inner) layer of a two-layer block
	// The layer's features: the input layer's h₀ = W_in[u; e] + b_in; an inner layer's
	// pre-activation z = W φ(h) + b; a block's last layer's residual stream h_{l+1} (after the
	// branch is added); the output layer's F.
	Before float64 // RMS of the features of before
	Total  float64 // RMS of features(after) − features(before): the feature update ‖Δh‖
	// Own is the part of the update due to the layer's own parameters, its input held at its
	// value in before: ΔW·a + Δb (times β in a residual branch, γ at the output).
	Own float64
}

// FeatureUpdates compares the per-layer features of before and after (same architecture and
// buffers, e.g. Trainer.Initial and Trainer.Model after k steps) at the probe points. The layers
// come in forward order: input, the block layers, output.
func FeatureUpdates(before, after *ops.MLP, p Probe) ([]LayerUpdate, error) {
	c := before.Config()
	if after.Config() != c {
		return nil, fmt.Errorf("train: feature updates: the networks differ in architecture (%s / %s)", c, after.Config())
	}
	for _, name := range []string{"data.mean", "embed.freq"} {
		if !equal(paramOf(before, name), paramOf(after, name)) {
			return nil, fmt.Errorf("train: feature updates: the networks differ in %s", name)
		}
	}
	d := c.Dim
	if len(p.Sigma) == 0 || len(p.X) != len(p.Sigma)*d {
		return nil, fmt.Errorf("train: feature updates: probe of %d values and %d noise levels for dimension %d", len(p.X), len(p.Sigma), d)
	}
	for i, s := range p.Sigma {
		if !(s > 0) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("train: feature updates: probe σ[%d] = %g: must be a finite number > 0", i, s)
		}
	}
	var names []string
	var out []LayerUpdate
	names = append(names, "input")
	out = append(out, LayerUpdate{Name: "input", Block: -1})
	for l := 0; l < c.Depth; l++ {
		for j := 0; j < c.BlockLayers; j++ {
			n := "blocks." + strconv.Itoa(l) + "." + strconv.Itoa(j)
			names = append(names, n)
			out = append(out, LayerUpdate{Name: n, Block: l, Inner: c.BlockLayers == 2 && j == 0})
		}
	}
	names = append(names, "output")
	out = append(out, LayerUpdate{Name: "output", Block: -1})

	sumB := make([]float64, len(out))
	sumT := make([]float64, len(out))
	sumO := make([]float64, len(out))
	cnt := make([]float64, len(out))
	for i, s := range p.Sigma {
		x := p.X[i*d : (i+1)*d]
		fb := layerFeatures(before, x, s, nil)
		fa := layerFeatures(after, x, s, nil)
		own := layerFeatures(after, x, s, fb) // each layer's input taken from before
		for k := range out {
			for u, v := range fb.out[k] {
				sumB[k] += v * v
				dt := fa.out[k][u] - v
				sumT[k] += dt * dt
				do := own.own[k][u] - fb.own[k][u]
				sumO[k] += do * do
			}
			cnt[k] += float64(len(fb.out[k]))
		}
	}
	for k := range out {
		out[k].Before = math.Sqrt(sumB[k] / cnt[k])
		out[k].Total = math.Sqrt(sumT[k] / cnt[k])
		out[k].Own = math.Sqrt(sumO[k] / cnt[k])
	}
	return out, nil
}

// features holds, per layer, its output (out) and its own product ownTerm = mult·(W a + b) with a
// the layer's (activated) input, which for a block's last layer differs from out by the stream.
type features struct {
	out, own [][]float64
	in       [][]float64 // the layer's (activated) input a
}

// layerFeatures runs the forward pass of ops.MLP for one point and records each layer. When
// inputs is non-nil, each layer's own term is computed from inputs.in (another network's layer
// inputs) instead of this network's.
func layerFeatures(m *ops.MLP, x []float64, sigma float64, inputs *features) *features {
	c := m.Config()
	f := &features{}
	_, _, cIn, cNoise := c.Precond(sigma)
	mean := paramOf(m, "data.mean")
	in := make([]float64, c.Inputs())
	for i := 0; i < c.Dim; i++ {
		in[i] = cIn * (x[i] - mean[i])
	}
	for k, fr := range paramOf(m, "embed.freq") {
		arg := 2 * math.Pi * fr * cNoise
		in[c.Dim+k] = math.Cos(arg)
		in[c.Dim+c.Fourier+k] = math.Sin(arg)
	}
	k := 0
	layer := func(a []float64, name string, mult float64) []float64 {
		src := a
		if inputs != nil {
			src = inputs.in[k]
		}
		w, b := paramOf(m, name+".weight"), paramOf(m, name+".bias")
		own := make([]float64, len(b))
		res := make([]float64, len(b))
		n := len(a)
		for i := range b {
			s, so := 0.0, 0.0
			for j := 0; j < n; j++ {
				s += w[i*n+j] * a[j]
				so += w[i*n+j] * src[j]
			}
			if name == "output" { // γ(W a) + b
				res[i], own[i] = mult*s+b[i], mult*so+b[i]
			} else { // β(W a + b), β = 1 outside a residual branch
				res[i], own[i] = mult*(s+b[i]), mult*(so+b[i])
			}
		}
		f.in = append(f.in, a)
		f.own = append(f.own, own)
		k++
		return res
	}
	silu := func(h []float64) []float64 {
		a := make([]float64, len(h))
		for i, v := range h {
			a[i] = ops.Silu(v)
		}
		return a
	}
	h := layer(in, "input", 1)
	f.out = append(f.out, h)
	for l := 0; l < c.Depth; l++ {
		p := "blocks." + strconv.Itoa(l) + "."
		br := silu(h)
		if c.BlockLayers == 2 {
			z := layer(br, p+"0", 1)
			f.out = append(f.out, z)
			br = silu(z)
		}
		t := layer(br, p+strconv.Itoa(c.BlockLayers-1), c.BranchMult)
		next := make([]float64, len(h))
		for i := range h {
			next[i] = h[i] + t[i]
		}
		h = next
		f.out = append(f.out, h)
	}
	f.out = append(f.out, layer(silu(h), "output", c.OutMult))
	return f
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
