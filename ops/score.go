package ops

import (
	"fmt"
	"slices"

	"github.com/scorekit/scorekit/tensor"
)

// ScoreOutputs are the quantities a score op can produce for a batch x of shape (N, d); nil
// outputs are not computed, at least one must be set. All live on the backend's device with x's
// dtype. One fused pass computes every requested output.
type ScoreOutputs struct {
	LogP     *tensor.Tensor // (N): log p(x) of the noised target
	Score    *tensor.Tensor // (N, d): ∇ log p(x)
	Denoiser *tensor.Tensor // (N, d): E[x0 | x] = (x + s ∇log p(x)) / a  (Tweedie)
	Resp     *tensor.Tensor // (N, K): component responsibilities (GMM only)
}

// CheckGMMScore validates a GMM score op's arguments; every backend calls it first.
func CheckGMMScore(dev tensor.Device, out ScoreOutputs, x *tensor.Tensor, g *GMM, noise Noise) error {
	const op = "gmm score"
	if g == nil {
		return fmt.Errorf("%s: nil mixture", op)
	}
	return checkScore(op, dev, out, x, g.d, g.k, noise)
}

// CheckEmpiricalScore validates an empirical score op's arguments.
func CheckEmpiricalScore(dev tensor.Device, out ScoreOutputs, x *tensor.Tensor, e *Empirical, noise Noise) error {
	const op = "empirical score"
	if e == nil {
		return fmt.Errorf("%s: nil data set", op)
	}
	if out.Resp != nil {
		return fmt.Errorf("%s: responsibilities are not available for empirical targets (they would be N × M)", op)
	}
	if noise.Kind == Clean {
		return fmt.Errorf("%s: a data set has no noise-free density: evaluate it at a noise level σ > 0", op)
	}
	return checkScore(op, dev, out, x, e.d, 0, noise)
}

func checkScore(op string, dev tensor.Device, out ScoreOutputs, x *tensor.Tensor, d, k int, noise Noise) error {
	if x == nil || x.Closed() {
		return fmt.Errorf("%s: input x is nil or closed", op)
	}
	if x.Device() != dev {
		return fmt.Errorf("%s: x is on %s, backend runs on %s", op, x.Device().Name(), dev.Name())
	}
	if x.Rank() != 2 {
		return fmt.Errorf("%s: x has shape %v: want (N, d)", op, x.Shape())
	}
	n := x.Dim(0)
	if x.Dim(1) != d {
		return fmt.Errorf("%s: x has dimension %d, the target has %d", op, x.Dim(1), d)
	}
	if out.LogP == nil && out.Score == nil && out.Denoiser == nil && out.Resp == nil {
		return fmt.Errorf("%s: no output requested (set LogP, Score, Denoiser or Resp)", op)
	}
	for _, o := range []struct {
		name  string
		t     *tensor.Tensor
		shape []int
	}{
		{"log p", out.LogP, []int{n}},
		{"score", out.Score, []int{n, d}},
		{"denoiser", out.Denoiser, []int{n, d}},
		{"responsibilities", out.Resp, []int{n, k}},
	} {
		if o.t == nil {
			continue
		}
		if o.t.Closed() {
			return fmt.Errorf("%s: %s output: %w", op, o.name, tensor.ErrClosed)
		}
		if o.t.Device() != dev || o.t.DType() != x.DType() {
			return fmt.Errorf("%s: %s output is %v on %s, want %v on %s", op, o.name, o.t.DType(), o.t.Device().Name(), x.DType(), dev.Name())
		}
		if !slices.Equal(o.t.Shape(), o.shape) {
			return fmt.Errorf("%s: %s output has shape %v, want %v", op, o.name, o.t.Shape(), o.shape)
		}
	}
	return noise.check(op, dev, x.DType(), n)
}
