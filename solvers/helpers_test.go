package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

func gmmTarget(t testing.TB, spec ops.GMMSpec) target.GMM {
	t.Helper()
	g, err := ops.NewGMM(spec)
	require.NoError(t, err)
	return target.GMM{Mixture: g}
}

// hostRows returns a (N, d) tensor's rows as float64.
func hostRows(t testing.TB, x *tensor.Tensor) [][]float64 {
	t.Helper()
	v, err := x.Float64s()
	require.NoError(t, err)
	n, d := x.Dim(0), x.Dim(1)
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = v[i*d : (i+1)*d]
	}
	return rows
}

// fromRows builds a host (N, d) tensor of dtype dt.
func fromRows(t testing.TB, dt tensor.DType, rows [][]float64) *tensor.Tensor {
	t.Helper()
	n, d := len(rows), len(rows[0])
	x, err := tensor.New(nil, dt, n, d)
	require.NoError(t, err)
	for i, r := range rows {
		for j, v := range r {
			require.NoError(t, setAt(x, i*d+j, v))
		}
	}
	return x
}

// meanCov returns the sample mean and (1/n-normalised) covariance of rows.
func meanCov(rows [][]float64) ([]float64, [][]float64) {
	n, d := float64(len(rows)), len(rows[0])
	m := make([]float64, d)
	for _, r := range rows {
		for j, v := range r {
			m[j] += v / n
		}
	}
	c := make([][]float64, d)
	for j := range c {
		c[j] = make([]float64, d)
	}
	for _, r := range rows {
		for j := 0; j < d; j++ {
			for k := 0; k < d; k++ {
				c[j][k] += (r[j] - m[j]) * (r[k] - m[k]) / n
			}
		}
	}
	return m, c
}

// byNearestMean splits rows by the nearest of means.
func byNearestMean(rows [][]float64, means [][]float64) [][][]float64 {
	out := make([][][]float64, len(means))
	for _, r := range rows {
		best, bd := 0, math.Inf(1)
		for k, m := range means {
			d := 0.0
			for j := range r {
				d += (r[j] - m[j]) * (r[j] - m[j])
			}
			if d < bd {
				best, bd = k, d
			}
		}
		out[best] = append(out[best], r)
	}
	return out
}

// exactGaussian draws n exact samples of N(mean, cov) from the Philox stream (site 1<<40, far from
// every sampler's sites), via a Cholesky factor of cov.
func exactGaussian(t testing.TB, n int, mean []float64, cov [][]float64, seed uint64) [][]float64 {
	t.Helper()
	d := len(mean)
	l := make([][]float64, d)
	for i := range l {
		l[i] = make([]float64, d)
		for j := 0; j <= i; j++ {
			s := cov[i][j]
			for k := 0; k < j; k++ {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	z, err := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, err)
	require.NoError(t, ops.CPU().Normal(z, ops.Draw{Seed: seed, Site: 1 << 40}))
	zr := hostRows(t, z)
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, d)
		for a := 0; a < d; a++ {
			out[i][a] = mean[a]
			for b := 0; b <= a; b++ {
				out[i][a] += l[a][b] * zr[i][b]
			}
		}
	}
	return out
}
