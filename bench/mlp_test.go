package bench

import (
	"fmt"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The learned denoiser (MLPScore, score and denoiser in one call): residual MLPs of one-layer
// blocks over width W ∈ {64, 128, 256} and depth L ∈ {4, 8} at d = 2 with F = 16 Fourier
// frequencies, N ∈ {4096, 65536} rows, VE noise at σ = 0.5. Metrics: GFLOP/s under mlpScoreFLOPs
// and samples/s (rows per second).

// mlpCase is one MLPScore problem.
type mlpCase struct{ n, width, depth int }

func (c mlpCase) config() ops.MLPConfig {
	return ops.MLPConfig{Dim: 2, Width: c.width, Depth: c.depth, BlockLayers: 1, Fourier: 16,
		SigmaData: 0.5, BranchMult: 1 / float64(c.depth), OutMult: 1}
}

func (c mlpCase) name() string {
	return fmt.Sprintf("N=%d/W=%d/L=%d", c.n, c.width, c.depth)
}

// mlpScoreFLOPs counts a multiply-add as two FLOPs: 2·W·(d + 2F) for the input layer, 2·W² per
// hidden layer and 2·W·d for the output layer, per row (SiLU, the embedding and the
// preconditioning are not counted).
func mlpScoreFLOPs(c ops.MLPConfig, n int) float64 {
	w := float64(c.Width)
	perRow := 2*w*float64(c.Inputs()) + float64(c.Layers())*2*w*w + 2*w*float64(c.Dim)
	return perRow * float64(n)
}

func mlpGrid(ns, widths, depths []int) []mlpCase {
	var out []mlpCase
	for _, n := range ns {
		for _, w := range widths {
			for _, l := range depths {
				out = append(out, mlpCase{n, w, l})
			}
		}
	}
	return out
}

var mlpCases = mlpGrid([]int{4096, 65536}, []int{64, 128, 256}, []int{4, 8})

var mlpNoise = ops.AtSigma(0.5)

// benchMLPScore runs MLPScore over dtypes × cases as sub-benchmarks <dtype>/N=…/W=…/L=….
func benchMLPScore(b *testing.B, tg scoreTarget, cases []mlpCase) {
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range cases {
				b.Run(c.name(), func(b *testing.B) { benchMLPCase(b, tg, dt, c) })
			}
		})
	}
}

func benchMLPCase(b *testing.B, tg scoreTarget, dt tensor.DType, c mlpCase) {
	cfg := c.config()
	flops := mlpScoreFLOPs(cfg, c.n)
	if tg.tooSlow != nil {
		if err := tg.tooSlow("mlp", flops); err != nil {
			Skipf(b, "%v", err)
		}
	}
	m, err := ops.RandomMLP(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	bytes := int64(dt.Size()) * (3*int64(c.n)*int64(cfg.Dim) + int64(len(m.Packed()))) // x, score, denoiser, parameters
	if tg.fits != nil {
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
		}
	}
	be, release := tg.backend(b)
	defer release()
	dev := be.Device()
	x, err := benchRows(dev, dt, c.n, cfg.Dim, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	score, err := tensor.New(dev, dt, c.n, cfg.Dim)
	if err != nil {
		b.Fatalf("allocate score %dx%d on %s: %v", c.n, cfg.Dim, dev.Name(), err)
	}
	defer score.Close()
	den, err := tensor.New(dev, dt, c.n, cfg.Dim)
	if err != nil {
		b.Fatalf("allocate denoiser %dx%d on %s: %v", c.n, cfg.Dim, dev.Name(), err)
	}
	defer den.Close()
	out := ops.ScoreOutputs{Score: score, Denoiser: den}
	TimeOp(b, dev, func() error { return be.MLPScore(out, x, m, mlpNoise) })
	reportScoreRate(b, tg, dt, flops)
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(c.n)*float64(b.N)/s, "samples/s")
	}
}

// BenchmarkMLPScore is the CPU backend (ops.CPU()) on MLPScore over the sweep above; problems
// estimated above cpuScoreSeconds per call are skipped with the estimate.
func BenchmarkMLPScore(b *testing.B) { benchMLPScore(b, cpuScoreTarget(0), mlpCases) }

// The FLOP count by hand for W = 64, L = 4, d = 2, F = 16: input 2·64·34, hidden 4·2·64²,
// output 2·64·2 per row.
func TestMLPScoreFLOPs(t *testing.T) {
	c := mlpCase{n: 10, width: 64, depth: 4}.config()
	if got, want := mlpScoreFLOPs(c, 10), 10*float64(2*64*34+4*2*64*64+2*64*2); got != want {
		t.Fatalf("mlpScoreFLOPs = %g, want %g", got, want)
	}
}
