//go:build !cuda

package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/scorekit/scorekit/ops"
)

// loadParams copies m's trainable parameters into the graph (transposing weights).
func loadParams(gr *graph, m *ops.MLP) {
	for _, p := range gr.params {
		v := paramOf(m, p.name)
		if len(p.shape) == 2 {
			in, out := p.shape[0], p.shape[1]
			for i := 0; i < in; i++ {
				for o := 0; o < out; o++ {
					p.val.f64[i*out+o] = v[o*in+i]
				}
			}
		} else {
			copy(p.val.f64, v)
		}
		p.val.sync()
	}
}

// randomBatch draws clean points, noise levels spread over the samplers' range and noisy points.
func randomBatch(rng *rand.Rand, b, d int) (x0, x, sigma []float64) {
	x0, x, sigma = make([]float64, b*d), make([]float64, b*d), make([]float64, b)
	for i := range sigma {
		sigma[i] = math.Exp(math.Log(0.002) + rng.Float64()*(math.Log(80)-math.Log(0.002)))
		for j := 0; j < d; j++ {
			x0[i*d+j] = rng.NormFloat64()
			x[i*d+j] = x0[i*d+j] + sigma[i]*rng.NormFloat64()
		}
	}
	return
}

func testArch(layers int) ops.MLPConfig {
	return ops.MLPConfig{Dim: 3, Width: 8, Depth: 3, BlockLayers: layers, Fourier: 4, SigmaData: 0.8, BranchMult: 0.6, OutMult: 1.7}
}

// The graph's D equals (*ops.MLP).DenoiseRow, the float64 reference, for random parameters.
func TestGraphMatchesReference(t *testing.T) {
	for _, layers := range []int{1, 2} {
		cfg := testArch(layers)
		m, err := ops.RandomMLP(cfg, uint64(10+layers))
		if err != nil {
			t.Fatal(err)
		}
		const b = 16
		gr, err := newGraph(cfg, tensor.Float64, b)
		if err != nil {
			t.Fatal(err)
		}
		loadParams(gr, m)
		rng := rand.New(rand.NewPCG(1, 2))
		x0, x, sigma := randomBatch(rng, b, cfg.Dim)
		gr.setBatch(x0, x, sigma, paramOf(m, "data.mean"), paramOf(m, "embed.freq"))
		got := make([]float64, b*cfg.Dim)
		if err := gr.forward(got); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, cfg.Dim)
		worst := 0.0
		for i := 0; i < b; i++ {
			m.DenoiseRow(want, x[i*cfg.Dim:(i+1)*cfg.Dim], sigma[i])
			for j, w := range want {
				worst = max(worst, math.Abs(got[i*cfg.Dim+j]-w)/(1+math.Abs(w)))
			}
		}
		t.Logf("%d-layer blocks: max |graph − reference|/(1+|ref|) = %.2g", layers, worst)
		if worst > 1e-12 {
			t.Errorf("%d-layer blocks: the graph differs from the reference by %.3g (> 1e-12)", layers, worst)
		}
		// The training machine's loss agrees with the forward machine's D.
		loss, err := gr.run()
		if err != nil {
			t.Fatal(err)
		}
		ref := 0.0
		for i, s := range sigma {
			lam := (s*s + cfg.SigmaData*cfg.SigmaData) / math.Pow(s*cfg.SigmaData, 2)
			for j := 0; j < cfg.Dim; j++ {
				e := got[i*cfg.Dim+j] - x0[i*cfg.Dim+j]
				ref += lam * e * e
			}
		}
		ref /= float64(b * cfg.Dim)
		if math.Abs(loss-ref) > 1e-12*ref {
			t.Errorf("%d-layer blocks: loss %.17g, from D %.17g", layers, loss, ref)
		}
		gr.close()
	}
}

// The float32 graph agrees with the reference to float32 precision.
func TestGraphFloat32(t *testing.T) {
	cfg := testArch(2)
	m, _ := ops.RandomMLP(cfg, 3)
	const b = 8
	gr, err := newGraph(cfg, tensor.Float32, b)
	if err != nil {
		t.Fatal(err)
	}
	defer gr.close()
	loadParams(gr, m)
	x0, x, sigma := randomBatch(rand.New(rand.NewPCG(5, 6)), b, cfg.Dim)
	gr.setBatch(x0, x, sigma, paramOf(m, "data.mean"), paramOf(m, "embed.freq"))
	got := make([]float64, b*cfg.Dim)
	if err := gr.forward(got); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, cfg.Dim)
	for i := 0; i < b; i++ {
		m.DenoiseRow(want, x[i*cfg.Dim:(i+1)*cfg.Dim], sigma[i])
		for j, w := range want {
			if e := math.Abs(got[i*cfg.Dim+j]-w) / (1 + math.Abs(w)); e > 1e-4 {
				t.Fatalf("row %d, coordinate %d: float32 graph %g, reference %g", i, j, got[i*cfg.Dim+j], w)
			}
		}
	}
}

// Every gradient group of the loss agrees with central finite differences.
func TestGradientsFiniteDifferences(t *testing.T) {
	for _, layers := range []int{1, 2} {
		cfg := ops.MLPConfig{Dim: 2, Width: 5, Depth: 2, BlockLayers: layers, Fourier: 2, SigmaData: 0.9, BranchMult: 0.7, OutMult: 1.3}
		m, _ := ops.RandomMLP(cfg, uint64(20+layers))
		const b = 6
		gr, err := newGraph(cfg, tensor.Float64, b)
		if err != nil {
			t.Fatal(err)
		}
		loadParams(gr, m)
		x0, x, sigma := randomBatch(rand.New(rand.NewPCG(7, uint64(layers))), b, cfg.Dim)
		gr.setBatch(x0, x, sigma, paramOf(m, "data.mean"), paramOf(m, "embed.freq"))
		if _, err := gr.run(); err != nil {
			t.Fatal(err)
		}
		grads := make([][]float64, len(gr.params))
		for i, p := range gr.params {
			grads[i] = make([]float64, len(p.val.f64))
			if err := readValue(grads[i], p.grad.Value()); err != nil {
				t.Fatal(err)
			}
		}
		const h = 1e-5
		for i, p := range gr.params {
			num, den := 0.0, 0.0
			for j := range p.val.f64 {
				w := p.val.f64[j]
				p.val.f64[j] = w + h
				lp, _ := gr.run()
				p.val.f64[j] = w - h
				lm, _ := gr.run()
				p.val.f64[j] = w
				fd := (lp - lm) / (2 * h)
				num += (grads[i][j] - fd) * (grads[i][j] - fd)
				den += fd * fd
			}
			rel := math.Sqrt(num / den)
			if den == 0 || rel > 1e-6 {
				t.Errorf("%d-layer blocks, %s: ‖grad − fd‖/‖fd‖ = %.3g (‖fd‖ = %.3g), want < 1e-6", layers, p.name, rel, math.Sqrt(den))
			} else if testing.Verbose() {
				t.Logf("%d-layer blocks, %-16s ‖grad − fd‖/‖fd‖ = %.2g", layers, p.name, rel)
			}
		}
		// Running again gives the same gradients: nothing accumulates between runs.
		if _, err := gr.run(); err != nil {
			t.Fatal(err)
		}
		again := make([]float64, len(grads[0]))
		readValue(again, gr.params[0].grad.Value())
		for j := range again {
			if again[j] != grads[0][j] {
				t.Fatalf("gradient changed between identical runs: %g then %g", grads[0][j], again[j])
			}
		}
		gr.close()
	}
}
