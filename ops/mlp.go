package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/scorekit/scorekit/tensor"
)

// A learned denoiser (docs/learned.md): a residual MLP F wrapped in the EDM preconditioning of
// Karras et al. (2022), so that the network predicts the VE denoiser
//
//	D(x; σ) = μ + c_skip(σ)·(x − μ) + c_out(σ)·F(c_in(σ)·(x − μ), c_noise(σ))
//	c_skip = σd²/(σ² + σd²),  c_out = σ·σd/√(σ² + σd²),  c_in = 1/√(σ² + σd²),  c_noise = ¼ ln σ
//
// with μ the data mean and σd the data's standard deviation (MLPConfig.SigmaData). The network is
//
//	e   = [cos(2π f_k c_noise)]_k ++ [sin(2π f_k c_noise)]_k            (2F Fourier features)
//	h   = W_in [u ; e] + b_in                                          (width W)
//	h  ← h + β (W_l φ(h) + b_l)                             one-layer blocks, l = 1 … L
//	h  ← h + β (W_l2 φ(W_l1 φ(h) + b_l1) + b_l2)            two-layer blocks
//	F   = γ (W_out φ(h)) + b_out
//
// with φ(z) = z·sigmoid(z) (SiLU), β = MLPConfig.BranchMult (1/√L under depth-μP) and
// γ = MLPConfig.OutMult. At σ = 0 the denoiser is x itself. Every sampler reaches the network
// through Backend.MLPScore, which maps any noise kind to this VE denoiser (x = a x0 + √s ξ is the
// VE state x/a at σ = √s/a) and forms the score by Tweedie, (a·D − x)/s.

// MLPConfig is the architecture of a learned denoiser.
type MLPConfig struct {
	Dim         int     // d, the data dimension
	Width       int     // W, the hidden width
	Depth       int     // L, the number of residual blocks
	BlockLayers int     // 1 or 2 linear layers per block
	Fourier     int     // F, the number of Fourier frequencies of the noise embedding (2F features)
	SigmaData   float64 // σd > 0 of the preconditioning
	BranchMult  float64 // β, the multiplier of every residual branch
	OutMult     float64 // γ, the multiplier of the output layer's product
}

// MLP limits: the fused GPU kernel stages one layer of weights at a time and holds a tile of
// activations in shared memory, which bounds the width; the depth bound keeps the parameter count
// of the command's networks small.
const (
	MaxMLPWidth   = 256
	MaxMLPDepth   = 16
	MaxMLPDim     = 64
	MaxMLPFourier = 64
)

// Check validates the architecture. Errors name the field.
func (c MLPConfig) Check() error {
	const op = "mlp"
	switch {
	case c.Dim < 1 || c.Dim > MaxMLPDim:
		return fmt.Errorf("%s: dim = %d: must be in 1 … %d", op, c.Dim, MaxMLPDim)
	case c.Width < 1 || c.Width > MaxMLPWidth:
		return fmt.Errorf("%s: width = %d: must be in 1 … %d", op, c.Width, MaxMLPWidth)
	case c.Depth < 1 || c.Depth > MaxMLPDepth:
		return fmt.Errorf("%s: depth = %d: must be in 1 … %d", op, c.Depth, MaxMLPDepth)
	case c.BlockLayers != 1 && c.BlockLayers != 2:
		return fmt.Errorf("%s: block layers = %d: must be 1 or 2", op, c.BlockLayers)
	case c.Fourier < 0 || c.Fourier > MaxMLPFourier:
		return fmt.Errorf("%s: fourier = %d: must be in 0 … %d", op, c.Fourier, MaxMLPFourier)
	case !(c.SigmaData > 0) || math.IsInf(c.SigmaData, 0):
		return fmt.Errorf("%s: sigma_data = %g: must be a finite number > 0", op, c.SigmaData)
	case !finite(c.BranchMult):
		return fmt.Errorf("%s: branch multiplier = %g: must be finite", op, c.BranchMult)
	case !finite(c.OutMult):
		return fmt.Errorf("%s: output multiplier = %g: must be finite", op, c.OutMult)
	}
	return nil
}

// Inputs is the width of the input layer, d + 2F.
func (c MLPConfig) Inputs() int { return c.Dim + 2*c.Fourier }

// Layers is the number of hidden W×W layers, L·BlockLayers.
func (c MLPConfig) Layers() int { return c.Depth * c.BlockLayers }

// MLPParam is one named parameter (or buffer) of the network: Data holds the product of Shape
// entries, row-major; a weight has shape (out, in), as a PyTorch nn.Linear stores it.
type MLPParam struct {
	Name  string
	Shape []int
	Data  []float64
}

// MLPParamNames lists the parameter names of an architecture in their canonical order (the order
// of checkpoints and of Packed):
//
//	data.mean (d), embed.freq (F), input.weight (W, d+2F), input.bias (W),
//	blocks.<l>.<j>.weight (W, W), blocks.<l>.<j>.bias (W)   for l < L, j < BlockLayers,
//	output.weight (d, W), output.bias (d)
func MLPParamNames(c MLPConfig) []string {
	names := []string{"data.mean", "embed.freq", "input.weight", "input.bias"}
	for l := 0; l < c.Depth; l++ {
		for j := 0; j < c.BlockLayers; j++ {
			p := "blocks." + strconv.Itoa(l) + "." + strconv.Itoa(j)
			names = append(names, p+".weight", p+".bias")
		}
	}
	return append(names, "output.weight", "output.bias")
}

// MLPParamShape is the shape of the named parameter of architecture c (nil for an unknown name).
func MLPParamShape(c MLPConfig, name string) []int {
	switch name {
	case "data.mean":
		return []int{c.Dim}
	case "embed.freq":
		return []int{c.Fourier}
	case "input.weight":
		return []int{c.Width, c.Inputs()}
	case "input.bias":
		return []int{c.Width}
	case "output.weight":
		return []int{c.Dim, c.Width}
	case "output.bias":
		return []int{c.Dim}
	}
	for l := 0; l < c.Depth; l++ {
		for j := 0; j < c.BlockLayers; j++ {
			p := "blocks." + strconv.Itoa(l) + "." + strconv.Itoa(j)
			switch name {
			case p + ".weight":
				return []int{c.Width, c.Width}
			case p + ".bias":
				return []int{c.Width}
			}
		}
	}
	return nil
}

// MLP is a validated, immutable learned denoiser: an architecture and its parameters.
type MLP struct {
	cfg    MLPConfig
	packed []float64 // every parameter in MLPParamNames order
	off    map[string]int
	// views into packed, resolved once: the forward pass looks nothing up by name
	mean, freq, inW, inB, outW, outB []float64
	hidW, hidB                       [][]float64 // hidden layer i = block i/BlockLayers, layer i%BlockLayers
	hidWOff, hidBOff                 []int       // their offsets in packed
}

// NewMLP validates the parameters against the architecture (every name of MLPParamNames present
// once with its shape, no other name, every value finite) and builds the network. The values are
// copied.
func NewMLP(cfg MLPConfig, params []MLPParam) (*MLP, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	byName := make(map[string]MLPParam, len(params))
	for _, p := range params {
		if MLPParamShape(cfg, p.Name) == nil {
			return nil, fmt.Errorf("mlp: parameter %q: not part of the architecture (%s)", p.Name, cfg)
		}
		if _, dup := byName[p.Name]; dup {
			return nil, fmt.Errorf("mlp: parameter %q: given twice", p.Name)
		}
		byName[p.Name] = p
	}
	m := &MLP{cfg: cfg, off: make(map[string]int)}
	for _, name := range MLPParamNames(cfg) {
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("mlp: parameter %q: missing (%s)", name, cfg)
		}
		want := MLPParamShape(cfg, name)
		if !slices.Equal(p.Shape, want) {
			return nil, fmt.Errorf("mlp: parameter %q has shape %v, the architecture (%s) needs %v", name, p.Shape, cfg, want)
		}
		n := 1
		for _, s := range want {
			n *= s
		}
		if len(p.Data) != n {
			return nil, fmt.Errorf("mlp: parameter %q has %d values for shape %v", name, len(p.Data), want)
		}
		for i, v := range p.Data {
			if !finite(v) {
				return nil, fmt.Errorf("mlp: parameter %q: entry %d = %g: must be finite", name, i, v)
			}
		}
		m.off[name] = len(m.packed)
		m.packed = append(m.packed, p.Data...)
	}
	m.mean, m.freq = m.param("data.mean"), m.param("embed.freq")
	m.inW, m.inB = m.param("input.weight"), m.param("input.bias")
	m.outW, m.outB = m.param("output.weight"), m.param("output.bias")
	for i := 0; i < cfg.Layers(); i++ {
		p := "blocks." + strconv.Itoa(i/cfg.BlockLayers) + "." + strconv.Itoa(i%cfg.BlockLayers)
		m.hidW, m.hidB = append(m.hidW, m.param(p+".weight")), append(m.hidB, m.param(p+".bias"))
		m.hidWOff, m.hidBOff = append(m.hidWOff, m.off[p+".weight"]), append(m.hidBOff, m.off[p+".bias"])
	}
	return m, nil
}

func (c MLPConfig) String() string {
	return fmt.Sprintf("d = %d, width %d, depth %d, %d-layer blocks, %d frequencies", c.Dim, c.Width, c.Depth, c.BlockLayers, c.Fourier)
}

// Config is the network's architecture.
func (m *MLP) Config() MLPConfig { return m.cfg }

// Dim is the data dimension.
func (m *MLP) Dim() int { return m.cfg.Dim }

// Params returns copies of every parameter in canonical order.
func (m *MLP) Params() []MLPParam {
	names := MLPParamNames(m.cfg)
	out := make([]MLPParam, len(names))
	for i, name := range names {
		out[i] = MLPParam{Name: name, Shape: MLPParamShape(m.cfg, name), Data: slices.Clone(m.param(name))}
	}
	return out
}

// Packed returns every parameter, concatenated in canonical order (read-only: the network's own
// storage). Offset gives where one starts.
func (m *MLP) Packed() []float64 { return m.packed }

// Offset is the index in Packed of the named parameter's first value (−1 for an unknown name).
func (m *MLP) Offset(name string) int {
	if o, ok := m.off[name]; ok {
		return o
	}
	return -1
}

func (m *MLP) param(name string) []float64 {
	o := m.off[name]
	n := 1
	for _, s := range MLPParamShape(m.cfg, name) {
		n *= s
	}
	return m.packed[o : o+n : o+n]
}

func (m *MLP) String() string { return "mlp (" + m.cfg.String() + ")" }

// Silu is φ(z) = z·sigmoid(z) = z/(1 + e^{−z}), the activation of the network.
func Silu(z float64) float64 { return z / (1 + math.Exp(-z)) }

// Precond returns the EDM preconditioning coefficients at noise level σ > 0.
func (c MLPConfig) Precond(sigma float64) (cSkip, cOut, cIn, cNoise float64) {
	sd := c.SigmaData
	s2 := sigma*sigma + sd*sd
	r := math.Sqrt(s2)
	return sd * sd / s2, sigma * sd / r, 1 / r, math.Log(sigma) / 4
}

// mlpBlock is the number of rows the CPU forward pass advances together: each weight row is read
// once for all of them, and their dot products are independent chains of additions (so the block
// runs several times faster than one row at a time, and every row's sums keep their index order,
// the same bits as alone).
const mlpBlock = 4

// mlpScratch holds the activations of one block of rows.
type mlpScratch struct {
	in, h, a, t [mlpBlock][]float64
}

func newMLPScratch(c MLPConfig) *mlpScratch {
	s := &mlpScratch{}
	for r := 0; r < mlpBlock; r++ {
		s.in[r] = make([]float64, c.Inputs())
		s.h[r] = make([]float64, c.Width)
		s.a[r] = make([]float64, c.Width)
		s.t[r] = make([]float64, c.Width)
	}
	return s
}

// denseBlock computes dst[r] = W src[r] + b for the first k rows of the block (W of shape
// (len(dst[0]), len(src[0]))); each dot is summed in index order.
func denseBlock(dst, src *[mlpBlock][]float64, k int, w, b []float64) {
	n := len(src[0])
	if k == mlpBlock {
		s0, s1, s2, s3 := src[0][:n], src[1][:n], src[2][:n], src[3][:n]
		for i := range dst[0] {
			row := w[i*n : i*n+n : i*n+n]
			var a0, a1, a2, a3 float64
			for j, wj := range row {
				a0 += wj * s0[j]
				a1 += wj * s1[j]
				a2 += wj * s2[j]
				a3 += wj * s3[j]
			}
			dst[0][i], dst[1][i], dst[2][i], dst[3][i] = a0+b[i], a1+b[i], a2+b[i], a3+b[i]
		}
		return
	}
	for r := 0; r < k; r++ {
		v := src[r][:n]
		for i := range dst[r] {
			row := w[i*n : i*n+n : i*n+n]
			a := 0.0
			for j, wj := range row {
				a += wj * v[j]
			}
			dst[r][i] = a + b[i]
		}
	}
}

// DenoiseRow writes D(x; σ) for one point x (length d) into dst, in float64: the reference of
// every backend. σ must be ≥ 0 (0 gives x).
func (m *MLP) DenoiseRow(dst, x []float64, sigma float64) {
	m.denoiseBlock([][]float64{dst}, [][]float64{x}, []float64{sigma}, newMLPScratch(m.cfg))
}

// denoiseBlock writes D(x_r; σ_r) into dst[r] for the (at most mlpBlock) rows x_r.
func (m *MLP) denoiseBlock(dst, x [][]float64, sigma []float64, s *mlpScratch) {
	c := m.cfg
	mean, freq := m.mean, m.freq
	var cSkip, cOut [mlpBlock]float64
	k := 0
	var rows [mlpBlock]int // the block's rows with σ > 0
	for r := range x {
		if sigma[r] == 0 {
			copy(dst[r], x[r])
			continue
		}
		var cIn, cNoise float64
		cSkip[k], cOut[k], cIn, cNoise = c.Precond(sigma[r])
		in := s.in[k]
		for i := 0; i < c.Dim; i++ {
			in[i] = cIn * (x[r][i] - mean[i])
		}
		for f, fr := range freq {
			arg := 2 * math.Pi * fr * cNoise
			in[c.Dim+f] = math.Cos(arg)
			in[c.Dim+c.Fourier+f] = math.Sin(arg)
		}
		rows[k] = r
		k++
	}
	if k == 0 {
		return
	}
	denseBlock(&s.h, &s.in, k, m.inW, m.inB)
	layer := 0
	for l := 0; l < c.Depth; l++ {
		silu(&s.a, &s.h, k)
		denseBlock(&s.t, &s.a, k, m.hidW[layer], m.hidB[layer])
		layer++
		if c.BlockLayers == 2 {
			silu(&s.a, &s.t, k)
			denseBlock(&s.t, &s.a, k, m.hidW[layer], m.hidB[layer])
			layer++
		}
		for r := 0; r < k; r++ {
			h := s.h[r]
			for i, v := range s.t[r] {
				h[i] += c.BranchMult * v
			}
		}
	}
	silu(&s.a, &s.h, k)
	w, b := m.outW, m.outB
	for q := 0; q < k; q++ {
		r := rows[q]
		for i := 0; i < c.Dim; i++ {
			row := w[i*c.Width : (i+1)*c.Width]
			f := 0.0
			for j, v := range s.a[q] {
				f += row[j] * v
			}
			f = c.OutMult*f + b[i]
			dst[r][i] = mean[i] + cSkip[q]*(x[r][i]-mean[i]) + cOut[q]*f
		}
	}
}

// silu writes φ(src[r]) into dst[r] for the block's first k rows.
func silu(dst, src *[mlpBlock][]float64, k int) {
	for r := 0; r < k; r++ {
		d := dst[r]
		for i, v := range src[r] {
			d[i] = Silu(v)
		}
	}
}

// CheckMLPScore validates an MLP score op's arguments; every backend calls it first. A learned
// denoiser has no log-density, no responsibilities and no noise-free score.
func CheckMLPScore(dev tensor.Device, out ScoreOutputs, x *tensor.Tensor, m *MLP, noise Noise) error {
	const op = "mlp score"
	if m == nil {
		return fmt.Errorf("%s: nil network", op)
	}
	if out.LogP != nil {
		return fmt.Errorf("%s: a learned denoiser has no log-density (request the score or the denoiser)", op)
	}
	if out.Resp != nil {
		return fmt.Errorf("%s: responsibilities exist only for Gaussian mixtures", op)
	}
	if noise.Kind == Clean {
		return fmt.Errorf("%s: a learned denoiser has no noise-free score: evaluate it at a noise level σ > 0", op)
	}
	return checkScore(op, dev, out, x, m.cfg.Dim, 0, noise)
}

// MLPScore on the CPU: the float64 reference, row by row (rows in parallel); a float32 input is
// widened, the outputs rounded once. A row whose noise level is not a finite positive number gets
// NaN outputs.
func (b cpuBackend) MLPScore(out ScoreOutputs, x *tensor.Tensor, m *MLP, noise Noise) error {
	if err := CheckMLPScore(tensor.CPU(), out, x, m, noise); err != nil {
		return err
	}
	io := newRowIO(out, x, noise)
	c := m.cfg
	cost := 2*c.Width*(c.Inputs()+c.Layers()*c.Width+c.Dim) + 8*c.Width*(c.Layers()+1)
	b.parallelRows(x.Dim(0), cost, func(lo, hi int) {
		s := newMLPScratch(c)
		var xr, xt, den, score [mlpBlock][]float64
		var av, vv [mlpBlock]float64
		for r := 0; r < mlpBlock; r++ {
			xr[r], xt[r] = make([]float64, c.Dim), make([]float64, c.Dim)
			den[r], score[r] = make([]float64, c.Dim), make([]float64, c.Dim)
		}
		for i0 := lo; i0 < hi; i0 += mlpBlock {
			var dst, src [][]float64
			var sig []float64
			n := min(mlpBlock, hi-i0)
			ok := make([]bool, n)
			for r := 0; r < n; r++ {
				a, v, good := io.load(i0+r, xr[r], noise)
				ok[r], av[r], vv[r] = good, a, v
				if !good {
					continue
				}
				for j, xj := range xr[r] {
					xt[r][j] = xj / a
				}
				dst, src, sig = append(dst, den[r]), append(src, xt[r]), append(sig, math.Sqrt(v)/a)
			}
			if len(src) > 0 {
				m.denoiseBlock(dst, src, sig, s)
			}
			for r := 0; r < n; r++ {
				if !ok[r] {
					nanRow(score[r], nil)
					io.store(i0+r, math.NaN(), score[r], score[r], nil)
					continue
				}
				for j, xj := range xr[r] {
					score[r][j] = (av[r]*den[r][j] - xj) / vv[r]
				}
				io.store(i0+r, math.NaN(), score[r], den[r], nil)
			}
		}
	})
	return nil
}

// FourierFrequencies are the default frequencies of the noise embedding: F values spaced
// geometrically from ¼ to 8 cycles per unit of c_noise = ¼ ln σ (one frequency: 1), which resolve
// σ over the range the samplers use (2e-3 … 80, c_noise ∈ [−1.6, 1.1]) without aliasing.
func FourierFrequencies(f int) []float64 {
	out := make([]float64, f)
	for k := range out {
		if f == 1 {
			out[k] = 1
			continue
		}
		out[k] = 0.25 * math.Pow(32, float64(k)/float64(f-1))
	}
	return out
}

// RandomMLP builds a network of architecture c with random parameters from seed, for tests and
// benchmarks: weights N(0, 1/fan-in), biases N(0, 0.1²), the data mean N(0, 1) and the default
// Fourier frequencies. (Training initialises its own way; see the train package.)
func RandomMLP(c MLPConfig, seed uint64) (*MLP, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d6c70))
	var params []MLPParam
	for _, name := range MLPParamNames(c) {
		shape := MLPParamShape(c, name)
		n := 1
		for _, s := range shape {
			n *= s
		}
		p := MLPParam{Name: name, Shape: shape, Data: make([]float64, n)}
		switch {
		case name == "embed.freq":
			p.Data = FourierFrequencies(c.Fourier)
		case name == "data.mean":
			for i := range p.Data {
				p.Data[i] = rng.NormFloat64()
			}
		case len(shape) == 2:
			sd := 1 / math.Sqrt(float64(shape[1]))
			for i := range p.Data {
				p.Data[i] = sd * rng.NormFloat64()
			}
		default:
			for i := range p.Data {
				p.Data[i] = 0.1 * rng.NormFloat64()
			}
		}
		params = append(params, p)
	}
	return NewMLP(c, params)
}
