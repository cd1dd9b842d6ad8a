package ops

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// CovKind is the covariance structure of a Gaussian-mixture component.
type CovKind int

const (
	Isotropic CovKind = iota + 1 // Σ_k = v_k I
	Diagonal                     // Σ_k = diag(λ_k)
	Full                         // Σ_k = U_k diag(λ_k) U_kᵀ (eigendecomposed once at construction)
)

func (c CovKind) String() string {
	switch c {
	case Isotropic:
		return "isotropic"
	case Diagonal:
		return "diagonal"
	case Full:
		return "full"
	}
	return fmt.Sprintf("CovKind(%d)", int(c))
}

// GMMSpec describes a Gaussian mixture p0(x) = Σ_k w_k N(x; μ_k, Σ_k). Exactly one of Vars,
// Diag and Covs must be set.
type GMMSpec struct {
	Weights []float64     // K positive weights (normalised by NewGMM)
	Means   [][]float64   // K × d
	Vars    []float64     // isotropic: K variances
	Diag    [][]float64   // diagonal: K × d variances
	Covs    [][][]float64 // full: K symmetric positive definite d × d matrices
}

// GMM is a validated, immutable Gaussian mixture. Its covariances are held in eigen form,
// Σ_k = U_k diag(λ_k) U_kᵀ (U_k = I for isotropic and diagonal mixtures), so that every noise level
// C_k = a² Σ_k + s I = U_k diag(a² λ_k + s) U_kᵀ needs no refactorisation.
type GMM struct {
	k, d   int
	kind   CovKind
	logW   []float64 // K, log of the normalised weights
	means  []float64 // K×d
	lambda []float64 // K (isotropic) or K×d (diagonal, full)
	u      []float64 // full: K×d×d, u[k*d*d + i*d + j] = component i of eigenvector j
}

// NewGMM validates spec and builds the mixture. Errors name the field and the problem: no
// components, non-positive or non-finite weights or variances, ragged or mismatched shapes,
// non-symmetric or non-positive-definite covariance matrices (checked by Cholesky).
func NewGMM(spec GMMSpec) (*GMM, error) {
	k := len(spec.Weights)
	if k == 0 {
		return nil, fmt.Errorf("gmm: weights: need at least one component (K = 0)")
	}
	if len(spec.Means) != k {
		return nil, fmt.Errorf("gmm: means: %d rows for %d weights", len(spec.Means), k)
	}
	d := len(spec.Means[0])
	if d == 0 {
		return nil, fmt.Errorf("gmm: means[0]: dimension is 0")
	}
	g := &GMM{k: k, d: d, logW: make([]float64, k), means: make([]float64, 0, k*d)}
	total := 0.0
	for i, w := range spec.Weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("gmm: weights[%d] = %g: must be a finite number > 0", i, w)
		}
		total += w
	}
	for i, w := range spec.Weights {
		g.logW[i] = math.Log(w / total)
	}
	for i, m := range spec.Means {
		if len(m) != d {
			return nil, fmt.Errorf("gmm: means[%d] has %d coordinates, means[0] has %d", i, len(m), d)
		}
		for j, v := range m {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("gmm: means[%d][%d] = %g: must be finite", i, j, v)
			}
		}
		g.means = append(g.means, m...)
	}
	set := 0
	for _, has := range []bool{spec.Vars != nil, spec.Diag != nil, spec.Covs != nil} {
		if has {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("gmm: give exactly one of vars (isotropic), diag (diagonal) or covs (full); got %d", set)
	}
	positive := func(field string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("gmm: %s = %g: variances must be finite and > 0", field, v)
		}
		return nil
	}
	switch {
	case spec.Vars != nil:
		g.kind = Isotropic
		if len(spec.Vars) != k {
			return nil, fmt.Errorf("gmm: vars: %d values for %d components", len(spec.Vars), k)
		}
		for i, v := range spec.Vars {
			if err := positive(fmt.Sprintf("vars[%d]", i), v); err != nil {
				return nil, err
			}
		}
		g.lambda = append([]float64(nil), spec.Vars...)
	case spec.Diag != nil:
		g.kind = Diagonal
		if len(spec.Diag) != k {
			return nil, fmt.Errorf("gmm: diag: %d rows for %d components", len(spec.Diag), k)
		}
		for i, row := range spec.Diag {
			if len(row) != d {
				return nil, fmt.Errorf("gmm: diag[%d] has %d entries, dimension is %d", i, len(row), d)
			}
			for j, v := range row {
				if err := positive(fmt.Sprintf("diag[%d][%d]", i, j), v); err != nil {
					return nil, err
				}
			}
			g.lambda = append(g.lambda, row...)
		}
	default:
		g.kind = Full
		if len(spec.Covs) != k {
			return nil, fmt.Errorf("gmm: covs: %d matrices for %d components", len(spec.Covs), k)
		}
		g.lambda = make([]float64, 0, k*d)
		g.u = make([]float64, 0, k*d*d)
		for i, c := range spec.Covs {
			lam, u, err := eigenSPD(c, d)
			if err != nil {
				return nil, fmt.Errorf("gmm: covs[%d]: %w", i, err)
			}
			g.lambda = append(g.lambda, lam...)
			g.u = append(g.u, u...)
		}
	}
	return g, nil
}

// eigenSPD checks that c is a symmetric positive definite d×d matrix (Cholesky) and returns its
// eigenvalues and eigenvectors (row-major, columns are the vectors).
func eigenSPD(c [][]float64, d int) (lambda, u []float64, err error) {
	if len(c) != d {
		return nil, nil, fmt.Errorf("has %d rows, dimension is %d", len(c), d)
	}
	sym := mat.NewSymDense(d, nil)
	for i := range c {
		if len(c[i]) != d {
			return nil, nil, fmt.Errorf("row %d has %d entries, dimension is %d", i, len(c[i]), d)
		}
		for j := range c[i] {
			v := c[i][j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("[%d][%d] = %g: must be finite", i, j, v)
			}
			if tol := 1e-12 * (math.Abs(v) + math.Abs(c[j][i])); math.Abs(v-c[j][i]) > tol {
				return nil, nil, fmt.Errorf("not symmetric: [%d][%d] = %g, [%d][%d] = %g", i, j, v, j, i, c[j][i])
			}
			if j >= i {
				sym.SetSym(i, j, v)
			}
		}
	}
	var chol mat.Cholesky
	if ok := chol.Factorize(sym); !ok {
		return nil, nil, fmt.Errorf("not positive definite (Cholesky factorisation failed)")
	}
	var eig mat.EigenSym
	if ok := eig.Factorize(sym, true); !ok {
		return nil, nil, fmt.Errorf("eigendecomposition did not converge")
	}
	lambda = eig.Values(nil)
	for i, l := range lambda {
		if !(l > 0) {
			return nil, nil, fmt.Errorf("not positive definite (eigenvalue %d is %g)", i, l)
		}
	}
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	u = make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			u[i*d+j] = vecs.At(i, j)
		}
	}
	return lambda, u, nil
}

// K is the number of components.
func (g *GMM) K() int { return g.k }

// Dim is the dimension d.
func (g *GMM) Dim() int { return g.d }

// Kind is the covariance structure.
func (g *GMM) Kind() CovKind { return g.kind }

// GMMParams are a mixture's parameters as flat float64 arrays, the layout the kernels read.
type GMMParams struct {
	K, D       int
	Kind       CovKind
	LogWeights []float64 // K
	Means      []float64 // K×D
	Lambda     []float64 // K (isotropic) or K×D: eigenvalues of Σ_k (the variances when diagonal)
	U          []float64 // full only: K×D×D, U[k][i][j] = component i of eigenvector j
}

// Params returns a copy of the mixture's parameters.
func (g *GMM) Params() GMMParams {
	cp := func(x []float64) []float64 { return append([]float64(nil), x...) }
	return GMMParams{K: g.k, D: g.d, Kind: g.kind, LogWeights: cp(g.logW), Means: cp(g.means),
		Lambda: cp(g.lambda), U: cp(g.u)}
}
