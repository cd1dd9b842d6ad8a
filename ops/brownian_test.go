package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

func brownianFill(t *testing.T, b Backend, dt tensor.DType, paths, n int, s BrownianSpec, d Draw) []float64 {
	t.Helper()
	x, err := tensor.New(nil, dt, paths, n)
	require.NoError(t, err)
	require.NoError(t, b.Brownian(x, s, d))
	return vals(t, x)
}

func TestBrownianRejectsBadArguments(t *testing.T) {
	x, _ := tensor.New(nil, tensor.F64, 3, 4)
	b := CPU()
	for _, c := range []struct {
		s    BrownianSpec
		want string
	}{
		{BrownianSpec{Horizon: 0}, "horizon"},
		{BrownianSpec{Horizon: -1}, "horizon"},
		{BrownianSpec{Horizon: math.NaN()}, "horizon"},
		{BrownianSpec{Horizon: math.Inf(1)}, "horizon"},
		{BrownianSpec{Horizon: 1, Epoch: -1}, "epoch"},
	} {
		assert.ErrorContains(t, b.Brownian(x, c.s, Draw{}), c.want, "%+v", c.s)
	}
	ok := BrownianSpec{Horizon: 1, Epoch: 2}
	assert.ErrorContains(t, b.Brownian(nil, ok, Draw{}), "nil")
	empty, _ := tensor.New(nil, tensor.F64, 3, 0)
	assert.ErrorContains(t, b.Brownian(empty, ok, Draw{}), "at least one point")
	none, _ := tensor.New(nil, tensor.F64, 0, 4)
	assert.NoError(t, b.Brownian(none, ok, Draw{}))
	assert.ErrorContains(t, b.Brownian(x, BrownianSpec{Horizon: 1, Epoch: 1 << 33}, Draw{}), "2^32")
	assert.Equal(t, int64(12), BrownianSpec{Epoch: 6}.Normals(7))
	assert.Equal(t, int64(7), BrownianSpec{}.Normals(7))
}

// Plain paths: B(t_k) = √h Σ_{j<k} ξ_j with ξ the Normal fill (layout), mean 0 and Var B_t = t
// at every t_k (SE of the sample variance t·sqrt(2/n), of the mean sqrt(t/n); 5 SE each, false
// failures 5.7e-7 per comparison); the increments have variance h and lag-1 correlation within
// 5/sqrt(n) of 0; they sum back to the path.
func TestBrownianPlainPaths(t *testing.T) {
	const paths, n, T = 20000, 12, 3.0
	h := T / n
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		d := Draw{Seed: 4, Site: 2}
		path := brownianFill(t, CPU(), dt, paths, n, BrownianSpec{Horizon: T}, d)
		xi := fill(t, CPU(), "normal", dt, 5, n, d)
		for i := 0; i < 5; i++ {
			sum := 0.0
			for k := 1; k <= n; k++ {
				sum += xi[i*n+k-1]
				want := math.Sqrt(h) * sum
				tol := 1e-14
				if dt == tensor.F32 {
					tol = 1.2e-7
				}
				assert.InDelta(t, want, path[i*n+k-1], tol*(1+math.Abs(want)), "%v path %d point %d", dt, i, k)
			}
		}
		for k := 1; k <= n; k++ {
			tk := float64(k) * h
			m, v := 0.0, 0.0
			for p := 0; p < paths; p++ {
				x := path[p*n+k-1]
				m += x / paths
				v += x * x / paths
			}
			assert.InDelta(t, 0, m, 5*math.Sqrt(tk/paths), "%v mean at t=%g", dt, tk)
			assert.InDelta(t, tk, v, 5*tk*math.Sqrt(2.0/paths), "%v Var B_t at t=%g", dt, tk)
		}

		inc := brownianFill(t, CPU(), dt, paths, n, BrownianSpec{Horizon: T, Increments: true}, d)
		for p := 0; p < 20; p++ {
			sum := 0.0
			for k := 0; k < n; k++ {
				sum += inc[p*n+k]
				tol := 1e-14
				if dt == tensor.F32 {
					tol = 5e-7 // each increment rounded once to float32
				}
				assert.InDelta(t, path[p*n+k], sum, tol*(1+float64(k)), "%v path %d: Σ increments", dt, p)
			}
		}
		for k := 0; k+1 < n; k++ {
			var v, c float64
			for p := 0; p < paths; p++ {
				a, b := inc[p*n+k], inc[p*n+k+1]
				v += a * a / paths
				c += a * b / paths
			}
			assert.InDelta(t, h, v, 5*h*math.Sqrt(2.0/paths), "%v Var of increment %d", dt, k)
			assert.InDelta(t, 0, c/h, 5/math.Sqrt(paths), "%v lag-1 correlation at %d", dt, k)
		}
	}
}

// Epochs of τ = 8 steps over n = 21 points (two whole epochs and five points of a third): the
// value is exactly 0 at every multiple of τ, and the variance at in-epoch step m is
// h·m(τ − m)/τ in every epoch, the last, partial one included (it is the start of a full
// bridge); 5 SE (false-failure rate 5.7e-7 per point). Within an epoch the bridge is
// B_t − (t/τ) B_τ of the epoch's own plain path.
func TestBrownianEpochBridges(t *testing.T) {
	const paths, n, tau = 20000, 21, 8
	const T = 4.2
	h := T / n
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		d := Draw{Seed: 8, Site: 5, FirstChain: 100}
		s := BrownianSpec{Horizon: T, Epoch: tau}
		x := brownianFill(t, CPU(), dt, paths, n, s, d)
		for k := 1; k <= n; k++ {
			m := k % tau
			if m == 0 {
				for p := 0; p < paths; p++ {
					require.Zero(t, x[p*n+k-1], "%v path %d point %d: epoch end", dt, p, k)
				}
				continue
			}
			want := h * float64(m*(tau-m)) / tau
			v := 0.0
			for p := 0; p < paths; p++ {
				v += x[p*n+k-1] * x[p*n+k-1] / paths
			}
			assert.InDelta(t, want, v, 5*want*math.Sqrt(2.0/paths), "%v Var at point %d (in-epoch step %d)", dt, k, m)
		}
		// The bridge of epoch e from the plain path of its normals (which run past n for the last).
		xi := fill(t, CPU(), "normal", dt, 3, 24, d)
		for p := 0; p < 3; p++ {
			for e := 0; e < 3; e++ {
				total := 0.0
				for q := 0; q < tau; q++ {
					total += xi[p*24+e*tau+q]
				}
				l := 0.0
				for m := 1; m <= tau && e*tau+m <= n; m++ {
					l += xi[p*24+e*tau+m-1]
					want := math.Sqrt(h) * (l - float64(m)/tau*total)
					tol := 1e-14
					if dt == tensor.F32 {
						tol = 1.2e-7
					}
					assert.InDelta(t, want, x[p*n+e*tau+m-1], tol*(1+math.Abs(want)), "%v path %d epoch %d step %d", dt, p, e, m)
				}
			}
		}
		// Prefix: the first 21 points of 32 at the same step are the 21-point draw.
		longer := brownianFill(t, CPU(), dt, 50, 32, BrownianSpec{Horizon: h * 32, Epoch: tau}, d)
		for p := 0; p < 50; p++ {
			assert.Equal(t, x[p*n:p*n+n], longer[p*32:p*32+n], "%v path %d", dt, p)
		}
		// Increments of the bridges are its differences, and sum to 0 over each whole epoch.
		inc := brownianFill(t, CPU(), dt, 50, n, BrownianSpec{Horizon: T, Epoch: tau, Increments: true}, d)
		for p := 0; p < 50; p++ {
			prev := 0.0
			for k := 0; k < n; k++ {
				assert.InDelta(t, x[p*n+k]-prev, inc[p*n+k], 1e-6*math.Sqrt(h), "%v path %d increment %d", dt, p, k)
				prev = x[p*n+k]
			}
		}
	}
}

// Row i is chain FirstChain+i whatever the batch, and the worker count changes nothing.
func TestBrownianBatchInvariance(t *testing.T) {
	s := BrownianSpec{Horizon: 1, Epoch: 3, Increments: true}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		big := brownianFill(t, CPU(), dt, 3000, 10, s, Draw{Seed: 1, Site: 9})
		alone := brownianFill(t, CPU(), dt, 1, 10, s, Draw{Seed: 1, Site: 9, FirstChain: 1234})
		assert.Equal(t, big[1234*10:1235*10], alone, "%v", dt)
		one := brownianFill(t, CPUWorkers(1), dt, 3000, 10, s, Draw{Seed: 1, Site: 9})
		assert.Equal(t, big, one, "%v one worker", dt)
	}
}
