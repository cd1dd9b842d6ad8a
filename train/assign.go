//go:build !cuda

package train

import "math"

// assign solves the linear assignment problem for the n × n cost matrix c (row-major): it returns
// p with p[i] the column of row i, a permutation minimising Σ_i c[i, p[i]]. Hungarian algorithm
// with potentials (Kuhn–Munkres, shortest augmenting paths), O(n³).
func assign(c []float64, n int) []int {
	const inf = math.MaxFloat64
	u, v := make([]float64, n+1), make([]float64, n+1)
	match := make([]int, n+1) // match[j]: the row (1-based) assigned to column j, 0 when none
	way := make([]int, n+1)
	minv := make([]float64, n+1)
	used := make([]bool, n+1)
	for i := 1; i <= n; i++ {
		match[0] = i
		j0 := 0
		for j := range minv {
			minv[j], used[j] = inf, false
		}
		for {
			used[j0] = true
			i0, delta, j1 := match[j0], inf, 0
			for j := 1; j <= n; j++ {
				if used[j] {
					continue
				}
				cur := c[(i0-1)*n+j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= n; j++ {
				if used[j] {
					u[match[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if match[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			match[j0] = match[j1]
			j0 = j1
		}
	}
	p := make([]int, n)
	for j := 1; j <= n; j++ {
		p[match[j]-1] = j - 1
	}
	return p
}
