package ops

import (
	"container/list"
	"fmt"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/tensor"
)

// MaxFGNCholeskyLength is the longest fGn FGNCholesky draws: the factor takes n² float64 (128 MiB
// at n = 4096) and O(n³) time to build.
const MaxFGNCholeskyLength = 4096

// FGNCholesky fills the host tensor dst (paths, n), f32 or f64, with fGn of Hurst index hurst by
// the Cholesky method (docs/math.md §4.1): with Γ the n × n Toeplitz covariance Γ_kl = ρ(|k − l|)
// (ρ as in fgn.go) and Γ = L Lᵀ its Cholesky factorisation (gonum's mat.Cholesky, in float64),
// path i gets x = σ L ξ, ξ the first n standard normals of chain d.FirstChain+i at d.Site in dst's
// precision (columns 0..n−1 of Backend.Normal's row), σ = form.Scale(hurst, n); with form.Path the
// cumulative sums B_{k+1} = Σ_{i≤k} x_i. Computed in float64, rounded once to dst's dtype.
//
// It is the O(n²)-per-path reference that Davies–Harte (Backend.FGN) is checked against: both draw
// exact fGn, so they agree in law — not sample by sample, since they use the normals differently.
// Factors are cached per (H, n) (a few at a time). n ≤ MaxFGNCholeskyLength.
func FGNCholesky(dst *tensor.Tensor, hurst float64, form FGNForm, d Draw) error {
	if err := checkHurst("fgn cholesky", hurst); err != nil {
		return err
	}
	if err := form.check("fgn cholesky"); err != nil {
		return err
	}
	if dst != nil && !dst.Closed() && !dst.OnHost() {
		return fmt.Errorf("fgn cholesky: destination is on %s: host tensors only", dst.Device().Name())
	}
	if err := checkFill("fgn cholesky", tensor.CPU(), dst, d); err != nil {
		return err
	}
	paths, n := dst.Dim(0), dst.Dim(1)
	if n < 1 || n > MaxFGNCholeskyLength {
		return fmt.Errorf("fgn cholesky: length %d: must be in [1, %d] (the factor is n² values; "+
			"use FGN's Davies–Harte method for longer paths)", n, MaxFGNCholeskyLength)
	}
	u, err := fgnCholeskyFactor(hurst, n)
	if err != nil {
		return err
	}
	if paths == 0 {
		return nil
	}
	sigma := form.Scale(hurst, n)
	f32 := dst.DType() == tensor.F32
	out := rowsOf(dst)
	cpuBackend{}.parallelRows(paths, n*n+8*n, func(lo, hi int) {
		xi := make([]float64, n)
		x := make([]float64, n)
		for i := lo; i < hi; i++ {
			normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), f32)
			clear(x)
			// x = Lξ = Uᵀξ: x_k = Σ_{j≤k} U_jk ξ_j, row j of U (contiguous) at a time.
			for j, v := range xi {
				row := u[j*n : (j+1)*n]
				for k := j; k < n; k++ {
					x[k] += row[k] * v
				}
			}
			sum := 0.0
			for k := range x {
				x[k] *= sigma
				if form.Path {
					sum += x[k]
					x[k] = sum
				}
			}
			out.set(i, x)
		}
	})
	return nil
}

// The factor cache: at most fgnCholeskyEntries factors, least recently used evicted first.
const fgnCholeskyEntries = 4

type fgnCholeskyEntry struct {
	key fgnKey // (H, n)
	u   []float64
}

var fgnCholeskyCache = struct {
	sync.Mutex
	items map[fgnKey]*list.Element
	order *list.List
}{items: map[fgnKey]*list.Element{}, order: list.New()}

// fgnCholeskyFactor returns the upper factor U (row-major n × n, Γ = UᵀU) of the fGn covariance.
func fgnCholeskyFactor(hurst float64, n int) ([]float64, error) {
	key := fgnKey{hurst, n}
	fgnCholeskyCache.Lock()
	if e, ok := fgnCholeskyCache.items[key]; ok {
		fgnCholeskyCache.order.MoveToFront(e)
		u := e.Value.(*fgnCholeskyEntry).u
		fgnCholeskyCache.Unlock()
		return u, nil
	}
	fgnCholeskyCache.Unlock()

	acf := make([]float64, n)
	for k := range acf {
		acf[k] = fgnACF(hurst, k)
	}
	gamma := mat.NewSymDense(n, nil)
	for k := 0; k < n; k++ {
		for l := k; l < n; l++ {
			gamma.SetSym(k, l, acf[l-k])
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(gamma) {
		return nil, fmt.Errorf("fgn cholesky: hurst %g, n %d: the covariance matrix is not numerically positive definite", hurst, n)
	}
	var tri mat.TriDense
	chol.UTo(&tri)
	raw := tri.RawTriangular()
	u := make([]float64, n*n)
	for j := 0; j < n; j++ {
		copy(u[j*n+j:(j+1)*n], raw.Data[j*raw.Stride+j:j*raw.Stride+n])
	}

	fgnCholeskyCache.Lock()
	defer fgnCholeskyCache.Unlock()
	if e, ok := fgnCholeskyCache.items[key]; ok {
		fgnCholeskyCache.order.MoveToFront(e)
		return e.Value.(*fgnCholeskyEntry).u, nil
	}
	fgnCholeskyCache.items[key] = fgnCholeskyCache.order.PushFront(&fgnCholeskyEntry{key, u})
	for fgnCholeskyCache.order.Len() > fgnCholeskyEntries {
		e := fgnCholeskyCache.order.Back()
		fgnCholeskyCache.order.Remove(e)
		delete(fgnCholeskyCache.items, e.Value.(*fgnCholeskyEntry).key)
	}
	return u, nil
}
