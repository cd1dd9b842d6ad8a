//go:build !cuda

package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// permutations calls f with every permutation of 0..n−1.
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}

// The assignment is a permutation whose cost is the minimum over all permutations (brute force
// for n ≤ 7, random and tied costs).
func TestAssignIsOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 1 + trial%7
		c := make([]float64, n*n)
		for i := range c {
			c[i] = rng.NormFloat64()
			if trial%3 == 0 {
				c[i] = float64(rng.IntN(3)) // ties
			}
		}
		p := assign(c, n)
		seen := make([]bool, n)
		got := 0.0
		for i, j := range p {
			require.False(t, seen[j], "trial %d: column %d used twice", trial, j)
			seen[j] = true
			got += c[i*n+j]
		}
		best := math.Inf(1)
		permutations(n, func(q []int) {
			s := 0.0
			for i, j := range q {
				s += c[i*n+j]
			}
			best = math.Min(best, s)
		})
		require.InDelta(t, best, got, 1e-12, "trial %d (n = %d)", trial, n)
	}
}
