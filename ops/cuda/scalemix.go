//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// GMMScaleMixtureDenoise: see ops.Backend. Isotropic and diagonal mixtures run one thread per row
// (kernels/scalemix.cu) in float64, the mixture's and the scale mixture's arrays kept on the
// device (float64) until ops.Release or Close; the values are the reference's to a few ulp of
// float64 (the device's log and exp, another association of the final sums), rounded once to the
// dtype. A mixture with full covariances runs the reference on the host (the rows copied there and
// back): its eigenbasis rotation per component is not in the kernel. Nothing to do (N·d == 0): no
// launch.
func (b *Backend) GMMScaleMixtureDenoise(dst, x *tensor.Tensor, g *ops.GMM, m *ops.ScaleMixture, v float64) error {
	defer b.enter()()
	if err := ops.CheckGMMScaleMixtureDenoise(b.dev, dst, x, g, m, v); err != nil {
		return err
	}
	n, d := int64(x.Dim(0)), int64(x.Dim(1))
	if n == 0 || d == 0 {
		return nil
	}
	if g.Kind() == ops.Full {
		return b.scaleMixtureOnHost(dst, x, g, m, v)
	}
	// The mixture's arrays (g.Params copies them) are read only when a table is not cached yet.
	var p *ops.GMMParams
	params := func() *ops.GMMParams {
		if p == nil {
			v := g.Params()
			p = &v
		}
		return p
	}
	nk, lamLen := g.K(), g.K()
	if g.Kind() == ops.Diagonal {
		lamLen = g.K() * int(d)
	}
	means, err := b.uploadFrom(g, "scale mixture means", tensor.F64, func() []float64 { return params().Means }, nk*int(d))
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	lambda, err := b.uploadFrom(g, "scale mixture variances", tensor.F64, func() []float64 { return params().Lambda }, lamLen)
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	logw, err := b.uploadFrom(g, "scale mixture log weights", tensor.F64, func() []float64 { return params().LogWeights }, nk)
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	qlogw, err := b.uploadFrom(m, "node log weights", tensor.F64, m.LogWeights, m.Nodes())
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	qmult, err := b.uploadFrom(m, "node multipliers", tensor.F64, m.Multipliers, m.Nodes())
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	k, err := b.typedKernel("scalemix", "gmm_scale_mixture", x.DType())
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	var diag int64
	if g.Kind() == ops.Diagonal {
		diag = 1
	}
	err = b.launch(k, b.gridFor(n), gmmScaleMixtureArgs{Dst: dst, X: x, Means: means, Lambda: lambda, LogW: logw,
		QLogW: qlogw, QMult: qmult, N: n, D: d, K: int64(g.K()), Q: int64(m.Nodes()), Diag: diag, V: v})
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise (N=%d, d=%d, K=%d, Q=%d, %v): %w", n, d, g.K(), m.Nodes(), x.DType(), err)
	}
	return nil
}

// scaleMixtureOnHost runs the reference on host copies of x and dst and copies the result back.
func (b *Backend) scaleMixtureOnHost(dst, x *tensor.Tensor, g *ops.GMM, m *ops.ScaleMixture, v float64) error {
	hx, err := x.CopyTo(tensor.CPU())
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: copy the rows to the host: %w", err)
	}
	defer hx.Close()
	hd, err := tensor.New(tensor.CPU(), x.DType(), x.Dim(0), x.Dim(1))
	if err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: %w", err)
	}
	defer hd.Close()
	if err := ops.Reference().GMMScaleMixtureDenoise(hd, hx, g, m, v); err != nil {
		return err
	}
	if err := dst.CopyFrom(hd); err != nil {
		return fmt.Errorf("gmm scale-mixture denoise: copy the result to the device: %w", err)
	}
	return nil
}
