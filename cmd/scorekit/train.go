//go:build !cuda

package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/scorekit/scorekit/nn"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/train"
)

var trainHelp = `Usage: scorekit train --data D.npy --width W --depth L --steps N --out M.safetensors
                      [--blocks 1|2] [--seed S] [--lr η] [--batch B]
                      [--param standard|depth-mup|depth-mup-corrected] [--fourier F]
                      [--schedule linear|constant] [--save-every K] [--float32]
                      [--stats S.json] [--quiet]

Trains a learned denoiser (docs/learned.md) on the points of D.npy by denoising score matching
(EDM: ln σ ~ N(−1.2, 1.2²), loss weight (σ² + σd²)/(σ σd)²) with Adam on the CPU, and writes it
as a safetensors checkpoint that PyTorch reads (bench/peers/mlp_torch.py defines the same
network). Sample from it with a target file {"kind": "mlp", "model": "M.safetensors"}:

  scorekit train --data points.npy --width 64 --depth 4 --steps 3000 --out m.safetensors
  echo '{"kind": "mlp", "model": "m.safetensors"}' > m.json
  scorekit sample --target m.json --method heun --n 2000 --steps 64 --out x.npy --plot x.png

The network: a residual MLP of width W and depth L (blocks of one or two layers, SiLU), Fourier
features of the noise level, EDM preconditioning around the data's mean μ and standard deviation
σd. The checkpoint stores μ and the data covariance, which the samplers use for their start
(N(a μ, a² C + s I), --init exact). Same data, flags and seed: the same checkpoint, bit for bit.

Progress: a bar with the loss on a terminal, a line every 10 s otherwise. Every --save-every
steps (default: a tenth of the run) the checkpoint is rewritten, atomically, so an interrupted run
leaves the last saved network. If the loss turns NaN or infinite, training stops, the last
network whose loss was finite is written to --out, and the command exits with status 1 saying
so.

Flags:
  --data D.npy        training points, (N, d) float32 or float64, all finite, d ≤ 64 (required)
  --width W           hidden width, 1 … 256 (required)
  --depth L           residual blocks, 1 … 16 (required)
  --steps N           Adam steps, ≥ 1 (required)
  --out M.safetensors the checkpoint (required)
  --blocks 1|2        linear layers per residual block (default 1)
  --seed S            initialisation, batches, noise levels and noise (default 0)
  --lr η              base Adam learning rate, > 0 (default 1e-2)
  --batch B           mini-batch size (default 256)
  --param P           parametrization: standard, depth-mup (default: branches × 1/√L, block
                      learning rates × 1/√L, μP in width against base width 64) or
                      depth-mup-corrected (depth-mup with the first inner layer of two-layer
                      blocks at √L × its rate, which keeps its feature learning at large depth)
  --fourier F         Fourier frequencies of the noise embedding, 0 … 64 (default 8)
  --schedule S        learning rate over the run: linear (decays to 0, default) or constant
  --save-every K      rewrite the checkpoint every K steps (default N/10, at least 1)
  --float32           build the training graph in float32 (faster; parameters stay float64)
  --stats S.json      JSON: data, n, d, width, depth, blocks, param, lr, batch, steps, seed,
                      sigma_data, wall_seconds, steps_per_second, final_loss (mean of the last
                      tenth of the steps; null when none finished), loss (mean per tenth of the
                      run), diverged_at_step (only when training diverged)
  --quiet             say nothing on stderr unless something fails
`

func runTrain(args []string, stdout, stderr io.Writer) int {
	return exitStatus(stderr, "scorekit train", trainCommand(args, stdout, stderr))
}

// trainStats is --stats.
type trainStats struct {
	Data           string    `json:"data"`
	N              int       `json:"n"`
	D              int       `json:"d"`
	Width          int       `json:"width"`
	Depth          int       `json:"depth"`
	Blocks         int       `json:"blocks"`
	Param          string    `json:"param"`
	LR             float64   `json:"lr"`
	Batch          int       `json:"batch"`
	Steps          int       `json:"steps"`
	Seed           uint64    `json:"seed"`
	SigmaData      float64   `json:"sigma_data"`
	WallSeconds    float64   `json:"wall_seconds"`
	StepsPerSecond float64   `json:"steps_per_second"`
	FinalLoss      *float64  `json:"final_loss"`
	Loss           []float64 `json:"loss"`
	DivergedAt     int       `json:"diverged_at_step,omitempty"`
}

func trainCommand(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("scorekit train")
	var data, out, param, schedule, statsPath string
	var width, depth, steps, blocks, batch, fourier, saveEvery int
	var lr float64
	var seed uint64
	var f32, quiet bool
	fs.StringVar(&data, "data", "", "")
	fs.StringVar(&out, "out", "", "")
	fs.IntVar(&width, "width", 0, "")
	fs.IntVar(&depth, "depth", 0, "")
	fs.IntVar(&steps, "steps", 0, "")
	fs.IntVar(&blocks, "blocks", 1, "")
	fs.Uint64Var(&seed, "seed", 0, "")
	fs.Float64Var(&lr, "lr", 1e-2, "")
	fs.IntVar(&batch, "batch", 256, "")
	fs.StringVar(&param, "param", string(train.DepthMuP), "")
	fs.IntVar(&fourier, "fourier", 8, "")
	fs.StringVar(&schedule, "schedule", "linear", "")
	fs.IntVar(&saveEvery, "save-every", 0, "")
	fs.BoolVar(&f32, "float32", false, "")
	fs.StringVar(&statsPath, "stats", "", "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := parse(fs, args, stdout, trainHelp); err != nil {
		return err
	}
	for _, req := range []struct{ flag, what string }{{"data", "the training points, a .npy file"},
		{"width", "the hidden width"}, {"depth", "the number of residual blocks"}, {"steps", "the number of Adam steps"}} {
		if !isSet(fs, req.flag) {
			return usagef("--%s is required (%s)", req.flag, req.what)
		}
	}
	if err := checkNetFlags(width, depth, blocks, steps, batch, fourier, lr); err != nil {
		return err
	}
	if saveEvery < 0 {
		return usagef("--save-every must be ≥ 1 (got %d)", saveEvery)
	}
	p := train.Parametrization(param)
	if p != train.Standard && p != train.DepthMuP && p != train.DepthMuPCorrected {
		return usagef("--param %q: want standard, depth-mup or depth-mup-corrected", param)
	}
	if schedule != "linear" && schedule != "constant" {
		return usagef("--schedule %q: want linear or constant", schedule)
	}
	if saveEvery == 0 {
		saveEvery = max(1, steps/10)
	}
	if err := checkOutputs(out, []namedPath{{"--stats", statsPath}}); err != nil {
		return err
	}
	x, err := tensor.ReadNpy(data)
	if err != nil {
		return usagef("--data: %w", err)
	}
	if x.Rank() != 2 || x.Dim(0) == 0 || x.Dim(1) == 0 {
		return usagef("--data %s has shape %s: want (N, d), at least one point", data, shapeString(x.Shape()))
	}
	n, d := x.Dim(0), x.Dim(1)
	if d > ops.MaxMLPDim {
		return usagef("--data %s has dimension %d: a network takes at most %d", data, d, ops.MaxMLPDim)
	}
	xv, err := x.Float64s()
	if err != nil {
		return err
	}
	src, err := train.FromFlat(xv, d)
	if err != nil {
		return usagef("--data %s: %v", data, err)
	}
	cfg := train.Config{Width: width, Depth: depth, BlockLayers: blocks, Fourier: fourier, Param: p,
		LR: lr, Batch: batch, Steps: steps, Seed: seed, Float32: f32}
	if schedule == "linear" {
		cfg.Schedule = func(s int) float64 { return 1 - float64(s)/float64(steps) }
	}
	prog := newProgress(stderr, quiet, "scorekit train", "steps")
	losses := make([]float64, 0, steps)
	cov := src.Covariance()
	var tr *train.Trainer
	meta := func(done int) nn.Meta {
		info := map[string]string{"trained_by": "scorekit " + version, "parametrization": string(p),
			"steps": strconv.Itoa(done), "seed": strconv.FormatUint(seed, 10), "lr": strconv.FormatFloat(lr, 'g', -1, 64),
			"batch": strconv.Itoa(batch), "schedule": schedule, "data": filepath.Base(data), "data_points": strconv.Itoa(n)}
		if len(losses) > 0 {
			info["final_loss"] = strconv.FormatFloat(tailMean(losses), 'g', 6, 64)
		}
		return nn.Meta{Cov: cov, Info: info}
	}
	cfg.Progress = func(pr train.Progress) error {
		losses = append(losses, pr.Loss)
		if prog != nil {
			prog.setNote(fmt.Sprintf("loss %.4g", tailMean(losses)))
			prog.update(int64(pr.Step), int64(steps))
		}
		if pr.Step%saveEvery == 0 && pr.Step < steps {
			if err := nn.Save(out, tr.Model(), meta(pr.Step)); err != nil {
				return fmt.Errorf("save the checkpoint at step %d: %w", pr.Step, err)
			}
		}
		return nil
	}
	tr, err = train.New(cfg, src)
	if err != nil {
		return usagef("%v", err)
	}
	defer tr.Close()
	start := time.Now()
	runErr := tr.Run()
	wall := time.Since(start)
	prog.finish()
	diverged := tr.Err() != nil
	if runErr != nil && !diverged {
		return runErr
	}
	done := tr.StepsDone()
	if diverged {
		done = len(losses)
	}
	if err := nn.Save(out, tr.Model(), meta(done)); err != nil {
		return err
	}
	if statsPath != "" {
		st := trainStats{Data: data, N: n, D: d, Width: width, Depth: depth, Blocks: blocks, Param: string(p), LR: lr,
			Batch: batch, Steps: steps, Seed: seed, SigmaData: src.SigmaData(), WallSeconds: wall.Seconds(),
			StepsPerSecond: float64(len(losses)) / wall.Seconds(), Loss: tenths(losses)}
		if len(losses) > 0 {
			fl := tailMean(losses)
			st.FinalLoss = &fl
		}
		if diverged {
			st.DivergedAt = len(losses) + 1
		}
		js, err := renderStats(st)
		if err != nil {
			return err
		}
		if _, err := writeOutputs(nil, []fileOutput{{statsPath, js}}); err != nil {
			return err
		}
	}
	if diverged {
		return fmt.Errorf("training diverged at step %d (%v); wrote the last network whose loss was finite (after %d steps) to %s",
			len(losses)+1, tr.Err(), done, out)
	}
	if !quiet {
		fmt.Fprintf(stderr, "scorekit: train: %d points × d %d, width %d, depth %d (%d-layer blocks, %s), %d steps in %v, final loss %.4g; wrote %s\n",
			n, d, width, depth, blocks, p, steps, wall.Round(time.Millisecond), tailMean(losses), out)
	}
	return nil
}

// checkNetFlags validates the network and optimiser flags shared by train and bridge fit.
func checkNetFlags(width, depth, blocks, steps, batch, fourier int, lr float64) error {
	switch {
	case width < 1 || width > ops.MaxMLPWidth:
		return usagef("--width must be in 1 … %d (got %d)", ops.MaxMLPWidth, width)
	case depth < 1 || depth > ops.MaxMLPDepth:
		return usagef("--depth must be in 1 … %d (got %d)", ops.MaxMLPDepth, depth)
	case steps < 1:
		return usagef("--steps must be ≥ 1 (got %d)", steps)
	case blocks != 1 && blocks != 2:
		return usagef("--blocks must be 1 or 2 (got %d)", blocks)
	case batch < 1:
		return usagef("--batch must be ≥ 1 (got %d)", batch)
	case fourier < 0 || fourier > ops.MaxMLPFourier:
		return usagef("--fourier must be in 0 … %d (got %d)", ops.MaxMLPFourier, fourier)
	}
	return finitePositiveFlag("lr", lr)
}

// tailMean is the mean of the last tenth (at least one) of the losses (NaN for none).
func tailMean(l []float64) float64 {
	if len(l) == 0 {
		return math.NaN()
	}
	k := max(1, len(l)/10)
	s := 0.0
	for _, v := range l[len(l)-k:] {
		s += v
	}
	return s / float64(k)
}

// tenths are the mean losses of the ten consecutive tenths of the run (fewer for short runs).
func tenths(l []float64) []float64 {
	parts := min(10, len(l))
	out := make([]float64, 0, parts)
	for p := 0; p < parts; p++ {
		lo, hi := p*len(l)/parts, (p+1)*len(l)/parts
		s := 0.0
		for _, v := range l[lo:hi] {
			s += v
		}
		out = append(out, s/float64(hi-lo))
	}
	return out
}
