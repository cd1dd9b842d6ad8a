package solvers

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
)

// MLPDriftFamily is a neural SDE with the residual MLP of ops.MLP as its drift and a constant
// diagonal diffusion s:
//
//	dX = (D_θ(X; σ_net) − X) dt + s dW,
//
// autonomous; D is the network's denoiser at the fixed level σ_net, which only sets its
// preconditioning (with a zero output layer f(x) = −(1 − c_skip)(x − μ), a linear pull toward
// the data mean). Parameters: every value of the network in its Packed layout (data.mean and
// embed.freq included), then s. The vector–Jacobian products are the network's own
// (ops.MLP.DenoiseVJP). A *MLPDriftFamily keeps scratch space and is not safe for concurrent use.
type MLPDriftFamily struct {
	net   *ops.MLP
	level float64
	s     float64
	tape  *ops.MLPTape
	gx    []float64
}

// NewMLPDriftFamily builds the family of net at level σ_net > 0 with diffusion s > 0 (both
// finite).
func NewMLPDriftFamily(net *ops.MLP, level, s float64) (*MLPDriftFamily, error) {
	const op = "mlp drift family"
	switch {
	case net == nil:
		return nil, fmt.Errorf("%s: nil network", op)
	case !finitePositive(level):
		return nil, fmt.Errorf("%s: level σ_net = %g: must be a finite number > 0", op, level)
	case !finitePositive(s):
		return nil, fmt.Errorf("%s: diffusion s = %g: must be a finite number > 0", op, s)
	}
	return &MLPDriftFamily{net: net, level: level, s: s, tape: ops.NewMLPTape(net.Config()), gx: make([]float64, net.Dim())}, nil
}

func (f *MLPDriftFamily) Dim() int            { return f.net.Dim() }
func (f *MLPDriftFamily) NoiseDim() int       { return f.net.Dim() }
func (f *MLPDriftFamily) DiagonalNoise() bool { return true }

// Net is the drift network.
func (f *MLPDriftFamily) Net() *ops.MLP { return f.net }

// Params is the network's Packed values, then s.
func (f *MLPDriftFamily) Params() []float64 {
	return append(append(make([]float64, 0, len(f.net.Packed())+1), f.net.Packed()...), f.s)
}

// WithParams is the family with the network's values p[:P−1] and diffusion p[P−1], the same
// architecture and level.
func (f *MLPDriftFamily) WithParams(p []float64) (ParametricSDE, error) {
	if len(p) != len(f.net.Packed())+1 {
		return nil, fmt.Errorf("mlp drift family: %d parameters, want %d network values + 1 diffusion", len(p), len(f.net.Packed()))
	}
	net, err := ops.MLPFromPacked(f.net.Config(), p[:len(p)-1])
	if err != nil {
		return nil, fmt.Errorf("mlp drift family: %w", err)
	}
	return NewMLPDriftFamily(net, f.level, p[len(p)-1])
}

// Drift writes D(x; σ_net) − x for every row.
func (f *MLPDriftFamily) Drift(dst, x []float64, n int, t float64) error {
	d := f.net.Dim()
	for c := range n {
		out, row := dst[c*d:(c+1)*d], x[c*d:(c+1)*d]
		if err := f.net.DenoiseTape(out, row, f.level, f.tape); err != nil {
			return err
		}
		for j, v := range row {
			out[j] -= v
		}
	}
	return nil
}

// Diffusion writes s.
func (f *MLPDriftFamily) Diffusion(dst, x []float64, n int, t float64) error {
	for i := range dst[:n*f.net.Dim()] {
		dst[i] = f.s
	}
	return nil
}

// VJP pulls vf back through D − x (the network's product, minus vf for the −x) and vg through
// the constant s (into ∂/∂s only).
func (f *MLPDriftFamily) VJP(dx, dp, vf, vg, x []float64, n int, t float64) error {
	d, np := f.net.Dim(), len(f.net.Packed())
	for c := range n {
		row, u, out := x[c*d:(c+1)*d], vf[c*d:(c+1)*d], dx[c*d:(c+1)*d]
		clear(f.gx)
		if err := f.net.DenoiseVJP(f.gx, dp[:np], nil, row, u, f.level, f.tape); err != nil {
			return err
		}
		for j := range out {
			out[j] += f.gx[j] - u[j]
		}
		for _, v := range vg[c*d : (c+1)*d] {
			dp[np] += v
		}
	}
	return nil
}
