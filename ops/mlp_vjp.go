package ops

import (
	"fmt"
	"math"
	"slices"
)

// The vector–Jacobian product of the learned denoiser, written by hand in float64 (reverse mode
// through the forward pass of mlp.go, one row at a time): for a cotangent g of D(x; σ),
//
//	gF = c_out g;  output: g b_out += gF,  g W_out += γ gF φ(h_L)ᵀ,  gh = γ W_outᵀ gF ⊙ φ'(h_L)
//	block l = L−1 … 0 (h_{l+1} = h_l + β t_l):  gt = β gh, then through t_l's one or two layers
//	    (g b += gt, g W += gt aᵀ, ga = Wᵀ gt, gz = ga ⊙ φ'(z)), and gh ← gh + (pull-back to h_l)
//	input: g b_in += gh, g W_in += gh [u; e]ᵀ, g[u; e] = W_inᵀ gh
//	gx = c_skip g + c_in gu,   gμ = (1 − c_skip) g − c_in gu,
//	g f_k = 2π c_noise (−sin(2π f_k c_noise) ge_k + cos(2π f_k c_noise) ge_{F+k})
//
// with φ'(z) = s(z)(1 + z(1 − s(z))), s the logistic function.

// MLPTape holds one row's activations for DenoiseVJP; make it with NewMLPTape and reuse it (it
// is the only memory the product uses). Not safe for concurrent use.
type MLPTape struct {
	cfg         MLPConfig
	in          []float64   // [u; e]
	h           [][]float64 // h_0 … h_L
	z           [][]float64 // the first inner layer's pre-activation per block (two-layer blocks)
	a, ga, gh   []float64
	gt, gz, tmp []float64
}

// NewMLPTape returns the scratch of DenoiseVJP for networks of architecture c.
func NewMLPTape(c MLPConfig) *MLPTape {
	t := &MLPTape{cfg: c, in: make([]float64, c.Inputs())}
	for l := 0; l <= c.Depth; l++ {
		t.h = append(t.h, make([]float64, c.Width))
	}
	if c.BlockLayers == 2 {
		for l := 0; l < c.Depth; l++ {
			t.z = append(t.z, make([]float64, c.Width))
		}
	}
	t.a, t.ga, t.gh = make([]float64, c.Width), make([]float64, c.Width), make([]float64, c.Width)
	t.gt, t.gz, t.tmp = make([]float64, c.Width), make([]float64, c.Width), make([]float64, max(c.Width, c.Inputs()))
	return t
}

// siluGrad is φ'(z) for φ(z) = z·sigmoid(z).
func siluGrad(z float64) float64 {
	s := 1 / (1 + math.Exp(-z))
	return s * (1 + z*(1-s))
}

// dense writes dst = W src + b (W of shape (len(dst), len(src))), each sum in index order.
func dense(dst, src, w, b []float64) {
	n := len(src)
	for i := range dst {
		row := w[i*n : (i+1)*n]
		s := 0.0
		for j, v := range row {
			s += v * src[j]
		}
		dst[i] = s + b[i]
	}
}

// denseBack accumulates the pull-back of y = W a + b for the cotangent gy: gW += gy aᵀ and
// gb += gy (gW, gb: the layer's slices of the gradient), and writes ga = Wᵀ gy.
func denseBack(ga, gW, gb, gy, a, w []float64) {
	n := len(a)
	clear(ga)
	for i, g := range gy {
		gb[i] += g
		if g == 0 {
			continue
		}
		row, grow := w[i*n:(i+1)*n], gW[i*n:(i+1)*n]
		for j, v := range a {
			grow[j] += g * v
			ga[j] += row[j] * g
		}
	}
}

// DenoiseTape writes D(x; σ) for one point x (d values) into den using only the tape's memory
// (DenoiseRow allocates its scratch): the same value, bit for bit. σ must be a finite number > 0.
func (m *MLP) DenoiseTape(den, x []float64, sigma float64, tape *MLPTape) error {
	if err := m.checkTape(nil, nil, den, x, nil, sigma, tape); err != nil {
		return err
	}
	cSkip, cOut := m.tapeForward(x, sigma, tape)
	m.tapeOutput(den, x, cSkip, cOut, tape)
	return nil
}

func (m *MLP) checkTape(gx, gp, den, x, g []float64, sigma float64, tape *MLPTape) error {
	c := m.cfg
	switch {
	case tape == nil || tape.cfg != c:
		return fmt.Errorf("mlp vjp: the tape is not of this network's architecture")
	case len(x) != c.Dim || (g != nil && len(g) != c.Dim) || (gx != nil && len(gx) != c.Dim) || (den != nil && len(den) != c.Dim):
		return fmt.Errorf("mlp vjp: x, g, gx (and den) need %d values each", c.Dim)
	case gp != nil && len(gp) != len(m.packed):
		return fmt.Errorf("mlp vjp: gp has %d values, the network %d parameters", len(gp), len(m.packed))
	case !(sigma > 0) || math.IsInf(sigma, 0):
		return fmt.Errorf("mlp vjp: σ = %g: must be a finite number > 0", sigma)
	}
	return nil
}

// tapeForward runs the network at x, keeping [u; e], h_l (and z_l) on the tape and φ(h_L) in
// tape.a; it returns c_skip and c_out.
func (m *MLP) tapeForward(x []float64, sigma float64, t *MLPTape) (cSkip, cOut float64) {
	c := m.cfg
	d := c.Dim
	cSkip, cOut, cIn, cNoise := c.Precond(sigma)
	for i := 0; i < d; i++ {
		t.in[i] = cIn * (x[i] - m.mean[i])
	}
	for f, fr := range m.freq {
		arg := 2 * math.Pi * fr * cNoise
		t.in[d+f], t.in[d+c.Fourier+f] = math.Cos(arg), math.Sin(arg)
	}
	dense(t.h[0], t.in, m.inW, m.inB)
	for l := 0; l < c.Depth; l++ {
		h, next := t.h[l], t.h[l+1]
		for i, v := range h {
			t.a[i] = Silu(v)
		}
		if c.BlockLayers == 1 {
			dense(t.tmp[:c.Width], t.a, m.hidW[l], m.hidB[l])
		} else {
			dense(t.z[l], t.a, m.hidW[2*l], m.hidB[2*l])
			for i, v := range t.z[l] {
				t.a[i] = Silu(v)
			}
			dense(t.tmp[:c.Width], t.a, m.hidW[2*l+1], m.hidB[2*l+1])
		}
		for i, v := range h {
			next[i] = v + c.BranchMult*t.tmp[i]
		}
	}
	for i, v := range t.h[c.Depth] {
		t.a[i] = Silu(v)
	}
	return cSkip, cOut
}

// tapeOutput writes D from the tape's φ(h_L).
func (m *MLP) tapeOutput(den, x []float64, cSkip, cOut float64, t *MLPTape) {
	c := m.cfg
	for i := 0; i < c.Dim; i++ {
		row := m.outW[i*c.Width : (i+1)*c.Width]
		s := 0.0
		for j, v := range t.a {
			s += row[j] * v
		}
		den[i] = m.mean[i] + cSkip*(x[i]-m.mean[i]) + cOut*(c.OutMult*s+m.outB[i])
	}
}

// DenoiseVJP adds the vector–Jacobian product of D(x; σ) at one point x (d values) for the
// cotangent g (d values): gx += gᵀ ∂D/∂x, and gp (len(Packed()) values, the Packed layout) +=
// gᵀ ∂D/∂θ for every parameter, data.mean and embed.freq included. σ must be a finite number
// > 0. It also writes D(x; σ) into den when den is not nil. The tape must be of this architecture;
// nothing else is allocated.
func (m *MLP) DenoiseVJP(gx, gp, den, x, g []float64, sigma float64, tape *MLPTape) error {
	if gx == nil || gp == nil || g == nil {
		return fmt.Errorf("mlp vjp: gx, gp and g are required")
	}
	if err := m.checkTape(gx, gp, den, x, g, sigma, tape); err != nil {
		return err
	}
	c := m.cfg
	d, t := c.Dim, tape
	_, _, cIn, cNoise := c.Precond(sigma)
	cSkip, cOut := m.tapeForward(x, sigma, t)
	hL := t.h[c.Depth]
	if den != nil {
		m.tapeOutput(den, x, cSkip, cOut, t)
	}
	// backward
	off := func(v []float64, name string) []float64 { // the gradient's slice of parameter v
		o := m.off[name]
		return gp[o : o+len(v)]
	}
	gOutW, gOutB := off(m.outW, "output.weight"), off(m.outB, "output.bias")
	clear(t.ga)
	for i := 0; i < d; i++ {
		gF := cOut * g[i]
		gOutB[i] += gF
		row, grow := m.outW[i*c.Width:(i+1)*c.Width], gOutW[i*c.Width:(i+1)*c.Width]
		for j, v := range t.a {
			grow[j] += c.OutMult * gF * v
			t.ga[j] += c.OutMult * row[j] * gF
		}
	}
	for i, v := range hL {
		t.gh[i] = t.ga[i] * siluGrad(v)
	}
	for l := c.Depth - 1; l >= 0; l-- {
		h := t.h[l]
		for i, v := range t.gh {
			t.gt[i] = c.BranchMult * v
		}
		for i, v := range h {
			t.a[i] = Silu(v)
		}
		layer := func(i int) (gW, gb []float64) { // the gradient's slices of hidden layer i
			return gp[m.hidWOff[i] : m.hidWOff[i]+c.Width*c.Width], gp[m.hidBOff[i] : m.hidBOff[i]+c.Width]
		}
		if c.BlockLayers == 1 {
			gW, gb := layer(l)
			denseBack(t.ga, gW, gb, t.gt, t.a, m.hidW[l])
		} else {
			z := t.z[l]
			for i, v := range z {
				t.tmp[i] = Silu(v)
			}
			gW, gb := layer(2*l + 1)
			denseBack(t.gz, gW, gb, t.gt, t.tmp[:c.Width], m.hidW[2*l+1])
			for i, v := range z {
				t.gz[i] *= siluGrad(v)
			}
			gW, gb = layer(2 * l)
			denseBack(t.ga, gW, gb, t.gz, t.a, m.hidW[2*l])
		}
		for i, v := range h {
			t.gh[i] += t.ga[i] * siluGrad(v)
		}
	}
	gin := t.tmp[:c.Inputs()]
	denseBack(gin, off(m.inW, "input.weight"), off(m.inB, "input.bias"), t.gh, t.in, m.inW)
	gMean, gFreq := off(m.mean, "data.mean"), off(m.freq, "embed.freq")
	for i := 0; i < d; i++ {
		gu := cIn * gin[i]
		gx[i] += cSkip*g[i] + gu
		gMean[i] += (1-cSkip)*g[i] - gu
	}
	for f, fr := range m.freq {
		arg := 2 * math.Pi * fr * cNoise
		gFreq[f] += 2 * math.Pi * cNoise * (-math.Sin(arg)*gin[d+f] + math.Cos(arg)*gin[d+c.Fourier+f])
	}
	return nil
}

// MLPFromPacked builds the network of architecture c from its parameters concatenated in
// canonical order (the layout of Packed); the values are copied and checked as NewMLP checks them.
func MLPFromPacked(c MLPConfig, packed []float64) (*MLP, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	var params []MLPParam
	o := 0
	for _, name := range MLPParamNames(c) {
		shape := MLPParamShape(c, name)
		n := 1
		for _, s := range shape {
			n *= s
		}
		if o+n > len(packed) {
			return nil, fmt.Errorf("mlp: %d packed values: the architecture (%s) needs more", len(packed), c)
		}
		params = append(params, MLPParam{Name: name, Shape: shape, Data: slices.Clone(packed[o : o+n])})
		o += n
	}
	if o != len(packed) {
		return nil, fmt.Errorf("mlp: %d packed values: the architecture (%s) needs %d", len(packed), c, o)
	}
	return NewMLP(c, params)
}
