//go:build !cuda

package train

import (
	"fmt"
	"math"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/scorekit/scorekit/ops"
)

// buf is a graph value whose float64 contents live in Go: f64 is the working copy; in a float32
// graph f32 is the tensor's backing and sync rounds f64 into it, in a float64 graph the tensor is
// backed by f64 itself.
type buf struct {
	f64 []float64
	f32 []float32
	t   *tensor.Dense
}

func newBuf(dt tensor.Dtype, shape ...int) *buf {
	n := 1
	for _, s := range shape {
		n *= s
	}
	b := &buf{f64: make([]float64, n)}
	if dt == tensor.Float32 {
		b.f32 = make([]float32, n)
		b.t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(b.f32))
	} else {
		b.t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(b.f64))
	}
	return b
}

// sync makes the tensor hold f64 (a copy with rounding in a float32 graph).
func (b *buf) sync() {
	if b.f32 == nil {
		return
	}
	for i, v := range b.f64 {
		b.f32[i] = float32(v)
	}
}

// readValue widens a graph value into dst.
func readValue(dst []float64, v G.Value) error {
	switch d := v.Data().(type) {
	case []float64:
		copy(dst, d)
	case []float32:
		for i, x := range d {
			dst[i] = float64(x)
		}
	case float64:
		dst[0] = d
	case float32:
		dst[0] = float64(d)
	default:
		return fmt.Errorf("train: unexpected graph value of type %T", v.Data())
	}
	return nil
}

// param is one trainable tensor of the graph. Weights are held transposed, (in, out), so that a
// layer is a row-major product A·Wᵀ without a transpose op; export transposes back to the
// canonical (out, in) layout of ops.MLPParam.
type param struct {
	name  string // canonical name (ops.MLPParamNames)
	shape []int  // graph shape: (in, out) for weights, (n) for biases
	node  *G.Node
	val   *buf
	grad  *G.Node
	lr    float64 // learning-rate multiplier of its group
}

// graph is the training graph of one batch size: the forward pass of ops.MLP from precomputed
// inputs, the weighted denoising loss, and its symbolic gradients.
//
// Inputs computed in Go per batch (none of them depends on a trained parameter):
//
//	U    (B, d+2F)  [c_in(σ)(x − μ) ; cos(2π f c_noise) ; sin(2π f c_noise)]
//	base (B, d)     μ + c_skip(σ)(x − μ)
//	cout (B, d)     c_out(σ), repeated along the row
//	x0   (B, d)     the clean data
//	wt   (B, d)     λ(σ)/(d·B), repeated along the row
//
// The graph: h = U·W_inᵀ + b_in; per block h ← h + β(W φ(h) + b) (two layers: W₂φ(W₁φ(h)+b₁)+b₂);
// F = γ(φ(h)·W_outᵀ) + b_out; D = base + cout⊙F; loss = Σ wt⊙(D − x0)². φ(z) = z⊙sigmoid(z).
type graph struct {
	cfg    ops.MLPConfig
	dt     tensor.Dtype
	batch  int
	g      *G.ExprGraph
	params []*param // canonical order, trainable only (no data.mean, embed.freq)

	u, base, cout, x0, wt *buf
	d, loss               *G.Node

	train G.VM // forward + backward over the whole graph
	fwd   G.VM // forward only: the subgraph of D
}

func (gr *graph) constant(v float64) *G.Node {
	if gr.dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

func silu(z *G.Node) (*G.Node, error) {
	s, err := G.Sigmoid(z)
	if err != nil {
		return nil, err
	}
	return G.HadamardProd(z, s)
}

// buildMu serialises graph construction: gorgonia's symbolic differentiation adds its shared
// package-level constant nodes to every graph and caches their hash codes on first use, a write
// that races when two graphs are built at once (go test -race caught it with trainers built on
// two goroutines). Running built graphs needs no lock.
var buildMu sync.Mutex

// newGraph builds the graph for architecture cfg and batch size b. The parameter values are
// zero; the caller fills params[i].val.f64 and calls sync. Safe for concurrent use.
func newGraph(cfg ops.MLPConfig, dt tensor.Dtype, b int) (*graph, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	gr := &graph{cfg: cfg, dt: dt, batch: b, g: G.NewGraph()}
	d, in := cfg.Dim, cfg.Inputs()
	input := func(name string, cols int) (*buf, *G.Node) {
		v := newBuf(dt, b, cols)
		return v, G.NewMatrix(gr.g, dt, G.WithShape(b, cols), G.WithName(name), G.WithValue(v.t))
	}
	var uN, baseN, coutN, x0N, wtN *G.Node
	gr.u, uN = input("u", in)
	gr.base, baseN = input("base", d)
	gr.cout, coutN = input("cout", d)
	gr.x0, x0N = input("x0", d)
	gr.wt, wtN = input("wt", d)

	for _, name := range ops.MLPParamNames(cfg) {
		if name == "data.mean" || name == "embed.freq" {
			continue
		}
		shape := ops.MLPParamShape(cfg, name)
		p := &param{name: name}
		if len(shape) == 2 {
			p.shape = []int{shape[1], shape[0]}
			p.val = newBuf(dt, p.shape...)
			p.node = G.NewMatrix(gr.g, dt, G.WithShape(p.shape...), G.WithName(name), G.WithValue(p.val.t))
		} else {
			p.shape = []int{shape[0]}
			p.val = newBuf(dt, p.shape...)
			p.node = G.NewVector(gr.g, dt, G.WithShape(p.shape...), G.WithName(name), G.WithValue(p.val.t))
		}
		gr.params = append(gr.params, p)
	}
	byName := make(map[string]*G.Node, len(gr.params))
	for _, p := range gr.params {
		byName[p.name] = p.node
	}

	var err error
	must := func(n *G.Node, e error) *G.Node {
		if e != nil && err == nil {
			err = e
		}
		return n
	}
	dense := func(a *G.Node, prefix string) *G.Node {
		if err != nil {
			return nil
		}
		h := must(G.Mul(a, byName[prefix+".weight"]))
		if err != nil {
			return nil
		}
		return must(G.BroadcastAdd(h, byName[prefix+".bias"], nil, []byte{0}))
	}
	act := func(z *G.Node) *G.Node {
		if err != nil {
			return nil
		}
		return must(silu(z))
	}
	scale := func(z *G.Node, c float64) *G.Node {
		if err != nil || c == 1 {
			return z
		}
		return must(G.HadamardProd(z, gr.constant(c)))
	}

	h := dense(uN, "input")
	for l := 0; l < cfg.Depth; l++ {
		p := fmt.Sprintf("blocks.%d.", l)
		br := dense(act(h), p+"0")
		if cfg.BlockLayers == 2 {
			br = dense(act(br), p+"1")
		}
		if err == nil {
			h = must(G.Add(h, scale(br, cfg.BranchMult)))
		}
	}
	var f *G.Node
	if err == nil {
		f = must(G.Mul(act(h), byName["output.weight"]))
	}
	f = scale(f, cfg.OutMult)
	if err == nil {
		f = must(G.BroadcastAdd(f, byName["output.bias"], nil, []byte{0}))
	}
	if err == nil {
		gr.d = must(G.Add(baseN, must(G.HadamardProd(coutN, f))))
	}
	if err == nil {
		diff := must(G.Sub(gr.d, x0N))
		sq := must(G.Square(diff))
		if err == nil {
			gr.loss = must(G.Sum(must(G.HadamardProd(wtN, sq))))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("train: build the graph (%s): %w", cfg, err)
	}
	wrt := make([]*G.Node, len(gr.params))
	for i, p := range gr.params {
		wrt[i] = p.node
	}
	grads, err := G.Grad(gr.loss, wrt...)
	if err != nil {
		return nil, fmt.Errorf("train: differentiate the loss (%s): %w", cfg, err)
	}
	for i, p := range gr.params {
		p.grad = grads[i]
	}
	gr.train = G.NewTapeMachine(gr.g)
	gr.fwd = G.NewTapeMachine(gr.g.SubgraphRoots(gr.d))
	return gr, nil
}

// setBatch fills the graph's inputs for clean points x0 (B·d), noisy points x (B·d) and noise
// levels sigma (B), with data mean mu, frequencies freq and σd = cfg.SigmaData. It is the
// preconditioning of ops.MLPConfig.Precond and the embedding of ops.MLP, computed in float64.
func (gr *graph) setBatch(x0, x, sigma, mu, freq []float64) {
	c := gr.cfg
	d, in := c.Dim, c.Inputs()
	sd := c.SigmaData
	for b, s := range sigma {
		cSkip, cOut, cIn, cNoise := c.Precond(s)
		lam := (s*s + sd*sd) / ((s * sd) * (s * sd))
		row := gr.u.f64[b*in : (b+1)*in]
		for j := 0; j < d; j++ {
			xj := x[b*d+j]
			row[j] = cIn * (xj - mu[j])
			gr.base.f64[b*d+j] = mu[j] + cSkip*(xj-mu[j])
			gr.cout.f64[b*d+j] = cOut
			gr.wt.f64[b*d+j] = lam / float64(d*gr.batch)
			gr.x0.f64[b*d+j] = x0[b*d+j]
		}
		for k, f := range freq {
			arg := 2 * math.Pi * f * cNoise
			row[d+k] = math.Cos(arg)
			row[d+c.Fourier+k] = math.Sin(arg)
		}
	}
	for _, v := range []*buf{gr.u, gr.base, gr.cout, gr.x0, gr.wt} {
		v.sync()
	}
}

// run runs the training machine: the loss and every gradient. The gradients are symbolic nodes
// recomputed on each run (nothing accumulates between runs).
func (gr *graph) run() (float64, error) {
	defer gr.train.Reset()
	if err := gr.train.RunAll(); err != nil {
		return math.NaN(), fmt.Errorf("train: run the graph: %w", err)
	}
	var l [1]float64
	if err := readValue(l[:], gr.loss.Value()); err != nil {
		return math.NaN(), err
	}
	return l[0], nil
}

// forward runs the forward-only machine and copies D (B·d) into dst.
func (gr *graph) forward(dst []float64) error {
	defer gr.fwd.Reset()
	if err := gr.fwd.RunAll(); err != nil {
		return fmt.Errorf("train: run the forward graph: %w", err)
	}
	return readValue(dst, gr.d.Value())
}

func (gr *graph) close() {
	gr.train.Close()
	gr.fwd.Close()
}

// paramOf is the named parameter's values in m (read-only).
func paramOf(m *ops.MLP, name string) []float64 {
	o := m.Offset(name)
	n := 1
	for _, s := range ops.MLPParamShape(m.Config(), name) {
		n *= s
	}
	return m.Packed()[o : o+n]
}
