//go:build !cuda

package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"github.com/scorekit/scorekit/ops"
)

// Parametrization names how the network is initialised, multiplied and given learning rates
// (the table is in the package documentation).
type Parametrization string

const (
	Standard          Parametrization = "standard"
	DepthMuP          Parametrization = "depth-mup"
	DepthMuPCorrected Parametrization = "depth-mup-corrected"
)

// Defaults of Config.
const (
	DefaultPMean     = -1.2
	DefaultPStd      = 1.2
	DefaultBaseWidth = 64
)

// Adam's constants.
const (
	AdamBeta1   = 0.9
	AdamBeta2   = 0.999
	AdamEpsilon = 1e-8
)

// Config describes a training run. The data dimension comes from the Source.
type Config struct {
	Width       int // W ≥ 1 (at most ops.MaxMLPWidth)
	Depth       int // L ≥ 1 residual blocks (at most ops.MaxMLPDepth)
	BlockLayers int // 1 or 2 linear layers per block
	Fourier     int // F ≥ 0 frequencies of the noise embedding (ops.FourierFrequencies(F))

	Param     Parametrization // "" means Standard
	BaseWidth int             // μP's base width W₀ (0: DefaultBaseWidth); ignored by Standard

	LR    float64 // base Adam learning rate η > 0
	Batch int     // mini-batch size ≥ 1
	Steps int     // number of steps Run takes (≥ 0)
	Seed  uint64  // everything random (initialisation, batches, σ, noise) derives from it

	// The log-normal noise distribution ln σ ~ N(PMean, PStd²). PStd == 0 selects the EDM values
	// DefaultPMean, DefaultPStd (PMean is then ignored).
	PMean, PStd float64

	Float32 bool // build the graph in float32 (parameters and Adam stay float64); default float64

	// Schedule, when non-nil, multiplies every learning rate at step s (0-based); it must return
	// a finite value ≥ 0.
	Schedule func(step int) float64
	// Progress, when non-nil, is called after each successful step; a non-nil return stops Run
	// with that error.
	Progress func(Progress) error
}

// Progress reports one step: its index (1-based count of completed steps), the loss measured at
// the parameters before the step's update, and the base learning rate η·Schedule(step) used.
type Progress struct {
	Step int
	Loss float64
	LR   float64
}

// ErrNonFinite is wrapped by the error a step returns when the loss (or a gradient or an updated
// parameter) is not finite: training diverged.
var ErrNonFinite = errors.New("not finite")

func (c Config) normalized() Config {
	if c.Param == "" {
		c.Param = Standard
	}
	if c.BaseWidth == 0 {
		c.BaseWidth = DefaultBaseWidth
	}
	if c.PStd == 0 {
		c.PMean, c.PStd = DefaultPMean, DefaultPStd
	}
	return c
}

func (c Config) check() error {
	switch {
	case c.Width <= 0:
		return fmt.Errorf("train: width = %d: must be ≥ 1", c.Width)
	case c.Depth <= 0:
		return fmt.Errorf("train: depth = %d: must be ≥ 1", c.Depth)
	case c.BlockLayers != 1 && c.BlockLayers != 2:
		return fmt.Errorf("train: block layers = %d: must be 1 or 2", c.BlockLayers)
	case c.Fourier < 0:
		return fmt.Errorf("train: fourier = %d: must be ≥ 0", c.Fourier)
	case c.Param != Standard && c.Param != DepthMuP && c.Param != DepthMuPCorrected:
		return fmt.Errorf("train: parametrization %q: must be %q, %q or %q", c.Param, Standard, DepthMuP, DepthMuPCorrected)
	case c.BaseWidth < 1:
		return fmt.Errorf("train: base width = %d: must be ≥ 1", c.BaseWidth)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("train: learning rate = %g: must be a finite number > 0", c.LR)
	case c.Batch <= 0:
		return fmt.Errorf("train: batch = %d: must be ≥ 1", c.Batch)
	case c.Steps < 0:
		return fmt.Errorf("train: steps = %d: must be ≥ 0", c.Steps)
	case !(c.PStd > 0) || math.IsInf(c.PStd, 0) || math.IsNaN(c.PMean) || math.IsInf(c.PMean, 0):
		return fmt.Errorf("train: noise distribution ln σ ~ N(%g, %g²): needs a finite mean and a finite std > 0", c.PMean, c.PStd)
	}
	return nil
}

// Multipliers returns the architecture's branch multiplier β and output multiplier γ under c.
func (c Config) Multipliers() (branch, out float64) {
	c = c.normalized()
	if c.Param == Standard {
		return 1, 1
	}
	return 1 / math.Sqrt(float64(c.Depth)), float64(c.BaseWidth) / float64(c.Width)
}

// LRMultiplier is the factor by which the named parameter's Adam learning rate multiplies η
// under c (the table of the package documentation); 0 for a name that is not trained.
func (c Config) LRMultiplier(name string) float64 {
	c = c.normalized()
	if name == "data.mean" || name == "embed.freq" {
		return 0
	}
	if c.Param == Standard || !strings.HasPrefix(name, "blocks.") {
		return 1
	}
	m := float64(c.Width) / float64(c.BaseWidth)
	depth := 1 / math.Sqrt(float64(c.Depth))
	firstInner := strings.HasSuffix(name, ".0.weight") || strings.HasSuffix(name, ".0.bias")
	if c.Param == DepthMuPCorrected && c.BlockLayers == 2 && firstInner {
		depth = 1 // the correction √L times the depth-μP factor 1/√L
	}
	if strings.HasSuffix(name, ".weight") {
		return depth / m
	}
	return depth
}

// Trainer trains one network by denoising score matching. It is not safe for concurrent use.
type Trainer struct {
	cfg  Config
	arch ops.MLPConfig
	src  Source
	freq []float64
	gr   *graph

	rng  *rand.Rand
	perm []int // data-set order of the current epoch
	pos  int

	x0, x, sigma []float64 // the batch
	// draw, when set, fills the batch in place of denoising score matching's drawBatch (bridge
	// matching draws its own targets, inputs and levels).
	draw func(rng *rand.Rand, x0, x, sigma []float64) error

	m, v [][]float64 // Adam moments, per parameter
	grad []float64
	prev [][]float64 // parameters before the latest update
	init *ops.MLP
	step int
	err  error
}

// New validates the configuration and the source and builds the trainer with its initial
// network (see the package documentation: the output layer is zero, so the initial network is
// the Gaussian denoiser μ + c_skip(σ)(x − μ)).
func New(cfg Config, src Source) (*Trainer, error) {
	cfg = cfg.normalized()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if src.dim == 0 {
		return nil, fmt.Errorf("train: empty source (make it with FromRows, FromFlat or FromSampler)")
	}
	branch, out := cfg.Multipliers()
	arch := ops.MLPConfig{Dim: src.dim, Width: cfg.Width, Depth: cfg.Depth, BlockLayers: cfg.BlockLayers,
		Fourier: cfg.Fourier, SigmaData: src.sd, BranchMult: branch, OutMult: out}
	if err := arch.Check(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	dt := tensor.Float64
	if cfg.Float32 {
		dt = tensor.Float32
	}
	gr, err := newGraph(arch, dt, cfg.Batch)
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, arch: arch, src: src, freq: ops.FourierFrequencies(cfg.Fourier), gr: gr,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x62617463)),
		x0:    make([]float64, cfg.Batch*src.dim),
		x:     make([]float64, cfg.Batch*src.dim),
		sigma: make([]float64, cfg.Batch),
	}
	initRng := rand.New(rand.NewPCG(cfg.Seed, 0x696e6974))
	n := 0
	for _, p := range gr.params {
		p.lr = cfg.LRMultiplier(p.name)
		switch {
		case p.name == "output.weight" || len(p.shape) == 1:
			// zero: biases and the whole output layer
		default:
			sd := 1 / math.Sqrt(float64(p.shape[0])) // fan-in (graph weights are (in, out))
			for i := range p.val.f64 {
				p.val.f64[i] = sd * initRng.NormFloat64()
			}
		}
		p.val.sync()
		t.m = append(t.m, make([]float64, len(p.val.f64)))
		t.v = append(t.v, make([]float64, len(p.val.f64)))
		t.prev = append(t.prev, slices.Clone(p.val.f64))
		n = max(n, len(p.val.f64))
	}
	t.grad = make([]float64, n)
	if t.init, err = t.export(nil); err != nil {
		return nil, err
	}
	return t, nil
}

// Config returns the configuration with its defaults filled in.
func (t *Trainer) Config() Config { return t.cfg }

// Arch is the architecture of the trained network (σd, β and γ included).
func (t *Trainer) Arch() ops.MLPConfig { return t.arch }

// StepsDone is the number of completed steps (updates applied and kept).
func (t *Trainer) StepsDone() int { return t.step }

// Err is the error that stopped training (nil while it can go on).
func (t *Trainer) Err() error { return t.err }

// Initial returns the network at initialisation.
func (t *Trainer) Initial() *ops.MLP { return t.init }

// Model returns the current network as an *ops.MLP (a copy). While training is healthy these are
// the parameters after the latest update. After a step fails because the loss (or a gradient, or
// an updated parameter) is not finite, the trainer rolls back and Model returns the last
// parameters whose loss was measured finite: those the failing step's predecessor started from
// (or the initial network when the very first loss is not finite). Its parameters are always
// finite.
func (t *Trainer) Model() *ops.MLP {
	m, err := t.export(nil)
	if err != nil { // cannot happen: parameters are kept finite
		panic(err)
	}
	return m
}

// export builds an ops.MLP from vals (the current parameters when nil).
func (t *Trainer) export(vals [][]float64) (*ops.MLP, error) {
	params := []ops.MLPParam{
		{Name: "data.mean", Shape: []int{t.arch.Dim}, Data: slices.Clone(t.src.mean)},
		{Name: "embed.freq", Shape: []int{t.arch.Fourier}, Data: slices.Clone(t.freq)},
	}
	for i, p := range t.gr.params {
		v := p.val.f64
		if vals != nil {
			v = vals[i]
		}
		shape := ops.MLPParamShape(t.arch, p.name)
		data := slices.Clone(v)
		if len(p.shape) == 2 { // (in, out) → (out, in)
			in, out := p.shape[0], p.shape[1]
			for i := 0; i < in; i++ {
				for o := 0; o < out; o++ {
					data[o*in+i] = v[i*out+o]
				}
			}
		}
		params = append(params, ops.MLPParam{Name: p.name, Shape: shape, Data: data})
	}
	return ops.NewMLP(t.arch, params)
}

// Run takes Config.Steps more steps (fewer when one fails or Progress returns an error).
func (t *Trainer) Run() error {
	for i := 0; i < t.cfg.Steps; i++ {
		if _, err := t.Step(); err != nil {
			return err
		}
	}
	return nil
}

// Step draws a mini-batch, evaluates the loss and its gradients, and applies one Adam update. It
// returns the loss measured before the update. After an error every later Step returns it.
func (t *Trainer) Step() (float64, error) {
	if t.err != nil {
		return math.NaN(), t.err
	}
	lr := t.cfg.LR
	if t.cfg.Schedule != nil {
		f := t.cfg.Schedule(t.step)
		if !(f >= 0) || math.IsInf(f, 0) {
			t.err = fmt.Errorf("train: step %d: schedule factor %g: must be a finite number ≥ 0", t.step+1, f)
			return math.NaN(), t.err
		}
		lr *= f
	}
	draw := t.drawBatch
	if t.draw != nil {
		draw = func() error { return t.draw(t.rng, t.x0, t.x, t.sigma) }
	}
	if err := draw(); err != nil {
		t.err = err
		return math.NaN(), err
	}
	t.gr.setBatch(t.x0, t.x, t.sigma, t.src.mean, t.freq)
	loss, err := t.gr.run()
	if err != nil {
		t.err = err
		return math.NaN(), err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, t.diverged(fmt.Errorf("train: step %d: loss = %g: %w (training diverged; lower the learning rate)", t.step+1, loss, ErrNonFinite), true)
	}
	for i, p := range t.gr.params {
		copy(t.prev[i], p.val.f64)
	}
	t.step++
	b1 := 1 - math.Pow(AdamBeta1, float64(t.step))
	b2 := 1 - math.Pow(AdamBeta2, float64(t.step))
	for i, p := range t.gr.params {
		g := t.grad[:len(p.val.f64)]
		if err := readValue(g, p.grad.Value()); err != nil {
			t.err = err
			return loss, err
		}
		if j := nonFinite(g); j >= 0 {
			t.step--
			return loss, t.diverged(fmt.Errorf("train: step %d: gradient of %s[%d] = %g: %w (training diverged; lower the learning rate)", t.step+1, p.name, j, g[j], ErrNonFinite), false)
		}
		rate := lr * p.lr
		m, v, w := t.m[i], t.v[i], p.val.f64
		for j, gj := range g {
			m[j] = AdamBeta1*m[j] + (1-AdamBeta1)*gj
			v[j] = AdamBeta2*v[j] + (1-AdamBeta2)*gj*gj
			w[j] -= rate * (m[j] / b1) / (math.Sqrt(v[j]/b2) + AdamEpsilon)
		}
		if j := nonFinite(w); j >= 0 {
			t.step--
			return loss, t.diverged(fmt.Errorf("train: step %d: updated %s[%d] = %g: %w (training diverged; lower the learning rate)", t.step+1, p.name, j, w[j], ErrNonFinite), false)
		}
		p.val.sync()
	}
	if t.cfg.Progress != nil {
		if err := t.cfg.Progress(Progress{Step: t.step, Loss: loss, LR: lr}); err != nil {
			return loss, err
		}
	}
	return loss, nil
}

// diverged records err and rolls the parameters back: to those before the latest update when
// the current ones gave a non-finite loss (back), else to those this step started from.
func (t *Trainer) diverged(err error, back bool) error {
	t.err = err
	if back && t.step == 0 {
		return err // the initial parameters: nothing earlier
	}
	if back {
		t.step-- // the latest update is undone
	}
	for i, p := range t.gr.params {
		copy(p.val.f64, t.prev[i])
		p.val.sync()
	}
	return err
}

// drawBatch fills x0 (clean points), sigma and x = x0 + σ n.
func (t *Trainer) drawBatch() error {
	d := t.src.dim
	for b := range t.sigma {
		row := t.x0[b*d : (b+1)*d]
		if t.src.sample != nil {
			t.src.sample(t.rng, row)
			if j := nonFinite(row); j >= 0 {
				return fmt.Errorf("train: step %d: the sampler returned coordinate %d = %g: must be finite", t.step+1, j, row[j])
			}
		} else {
			if t.pos == len(t.perm) {
				if t.perm == nil {
					t.perm = make([]int, t.src.Len())
				}
				for i := range t.perm {
					t.perm[i] = i
				}
				t.rng.Shuffle(len(t.perm), func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
				t.pos = 0
			}
			k := t.perm[t.pos]
			t.pos++
			copy(row, t.src.data[k*d:(k+1)*d])
		}
		s := math.Exp(t.cfg.PMean + t.cfg.PStd*t.rng.NormFloat64())
		t.sigma[b] = s
		for j := range row {
			t.x[b*d+j] = row[j] + s*t.rng.NormFloat64()
		}
	}
	return nil
}

// Close releases the graph's machines.
func (t *Trainer) Close() { t.gr.close() }

// SetParams replaces the trained parameters with those of m, which must have the trainer's
// architecture (Arch, σd and multipliers included) and data mean: training continues from m (a
// checkpoint, or the network of an earlier fit). Adam's moments and the step count are kept.
func (t *Trainer) SetParams(m *ops.MLP) error {
	if m == nil {
		return errors.New("train: set params: nil network")
	}
	if m.Config() != t.arch {
		return fmt.Errorf("train: set params: the network's architecture (%s, σd = %g, β = %g, γ = %g) is not the trainer's (%s, σd = %g, β = %g, γ = %g)",
			m.Config(), m.Config().SigmaData, m.Config().BranchMult, m.Config().OutMult, t.arch, t.arch.SigmaData, t.arch.BranchMult, t.arch.OutMult)
	}
	if mean := m.Packed()[m.Offset("data.mean"):][:t.arch.Dim]; !slices.Equal(mean, t.src.mean) {
		return fmt.Errorf("train: set params: the network's data mean %v is not the source's %v", mean, t.src.mean)
	}
	for i, p := range t.gr.params {
		v := m.Packed()[m.Offset(p.name):][:len(p.val.f64)]
		if len(p.shape) == 2 { // (out, in) → the graph's (in, out)
			in, out := p.shape[0], p.shape[1]
			for a := 0; a < in; a++ {
				for o := 0; o < out; o++ {
					p.val.f64[a*out+o] = v[o*in+a]
				}
			}
		} else {
			copy(p.val.f64, v)
		}
		copy(t.prev[i], p.val.f64)
		p.val.sync()
	}
	return nil
}
