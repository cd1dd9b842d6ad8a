package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// LangevinMixture is the overdamped Langevin SDE dX = s(X) dt + √2 ∘ dW of an isotropic Gaussian
// mixture p(x) ∝ Σ_k exp(α_k) N(x; μ_k, v_k I) in dimension d (docs/math.md §4.8), whose means μ_k
// and logits α_k are parameters one differentiates (the weights are softmax(α)) and whose
// variances v_k are fixed. The score is
//
//	s(x) = Σ_k r_k(x) (μ_k − x)/v_k,  r = softmax(ℓ),  ℓ_k = α_k − |x − μ_k|²/(2v_k) − (d/2) log v_k,
//
// and its vector–Jacobian product for a cotangent u of s (one row), with e_k = (μ_k − x)/v_k,
// c_k = uᵀe_k, c̄ = Σ_k r_k c_k, β_k = r_k (c_k − c̄):
//
//	uᵀ ∂s/∂x = Σ_k β_k e_k − (Σ_k r_k/v_k) u,  uᵀ ∂s/∂μ_k = (r_k/v_k) u − β_k e_k,  uᵀ ∂s/∂α_k = β_k.
//
// Score and ScoreVJP fix the arithmetic of one row operation by operation; the reversible Heun
// ops (Backend.LangevinMixtureHeun and LangevinMixtureHeunAdjoint) and their kernel repeat it, so
// the device differs from the reference only through exp. A LangevinMixture is immutable: a
// backend may keep a device copy of its arrays (ops.Release frees it).
type LangevinMixture struct {
	k, d    int
	means   []float64 // K×d
	logits  []float64 // K
	vars    []float64 // K
	logNorm []float64 // K: −(d/2) log v_k
}

// NewLangevinMixture builds the mixture of K = len(vars) components in dimension d from means
// (K×d row-major), logits (K) and variances (K); every value must be finite and the variances > 0.
func NewLangevinMixture(d int, means, logits, vars []float64) (*LangevinMixture, error) {
	const op = "langevin mixture"
	k := len(vars)
	switch {
	case d < 1:
		return nil, fmt.Errorf("%s: dimension %d: must be ≥ 1", op, d)
	case k < 1:
		return nil, fmt.Errorf("%s: no components", op)
	case len(means) != k*d:
		return nil, fmt.Errorf("%s: %d mean values, want %d components × %d", op, len(means), k, d)
	case len(logits) != k:
		return nil, fmt.Errorf("%s: %d logits for %d components", op, len(logits), k)
	}
	for i, v := range means {
		if !finite(v) {
			return nil, fmt.Errorf("%s: mean %d, coordinate %d is %g: must be finite", op, i/d, i%d, v)
		}
	}
	for i, v := range logits {
		if !finite(v) {
			return nil, fmt.Errorf("%s: logit %d is %g: must be finite", op, i, v)
		}
	}
	m := &LangevinMixture{k: k, d: d, means: append([]float64(nil), means...),
		logits: append([]float64(nil), logits...), vars: append([]float64(nil), vars...),
		logNorm: make([]float64, k)}
	for i, v := range vars {
		if !(v > 0) || !finite(v) {
			return nil, fmt.Errorf("%s: variance %d is %g: must be finite and > 0", op, i, v)
		}
		m.logNorm[i] = -0.5 * float64(d) * math.Log(v)
	}
	return m, nil
}

// Dim is d.
func (m *LangevinMixture) Dim() int { return m.d }

// K is the number of components.
func (m *LangevinMixture) K() int { return m.k }

// NumParams is K·d + K: the means, then the logits.
func (m *LangevinMixture) NumParams() int { return m.k*m.d + m.k }

// Means returns a copy of the means (K×d row-major).
func (m *LangevinMixture) Means() []float64 { return append([]float64(nil), m.means...) }

// Logits returns a copy of the logits (K).
func (m *LangevinMixture) Logits() []float64 { return append([]float64(nil), m.logits...) }

// Vars returns a copy of the variances (K).
func (m *LangevinMixture) Vars() []float64 { return append([]float64(nil), m.vars...) }

// LogNorms returns a copy of −(d/2) log v_k (K), the constants of ℓ the kernel is handed.
func (m *LangevinMixture) LogNorms() []float64 { return append([]float64(nil), m.logNorm...) }

// Responsibilities writes r = softmax(ℓ) at the row x (d values) into r (K), by log-sum-exp:
// ℓ_k = (α_k − q_k/(2v_k)) + logNorm_k with q_k = Σ_j (x_j − μ_kj)² summed in j order, the
// maximum subtracted, exp, the sum in k order, each divided by it. A NaN anywhere gives NaN.
func (m *LangevinMixture) Responsibilities(r, x []float64) {
	d := m.d
	top := math.Inf(-1)
	for k := range m.k {
		mu := m.means[k*d : (k+1)*d]
		q := 0.0
		for j, v := range x[:d] {
			e := v - mu[j]
			q += e * e
		}
		l := m.logits[k] - q/(2*m.vars[k]) + m.logNorm[k]
		r[k] = l
		top = max(top, l)
	}
	sum := 0.0
	for k := range r[:m.k] {
		r[k] = math.Exp(r[k] - top)
		sum += r[k]
	}
	for k := range r[:m.k] {
		r[k] /= sum
	}
}

// Score writes s(x) of one row x (d values) into dst (d): Responsibilities into the scratch r
// (K), then dst_j = Σ_k (r_k/v_k)·(μ_kj − x_j) summed in k order from zero.
func (m *LangevinMixture) Score(dst, x, r []float64) {
	d := m.d
	m.Responsibilities(r, x)
	clear(dst[:d])
	for k := range m.k {
		mu, w := m.means[k*d:(k+1)*d], r[k]/m.vars[k]
		for j, v := range x[:d] {
			dst[j] += w * (mu[j] - v)
		}
	}
}

// ScoreVJP adds the vector–Jacobian product of the score at one row x for the cotangent u (d
// values each): dx (d) += uᵀ ∂s/∂x and dp (K·d + K, the means then the logits) += uᵀ ∂s/∂θ, with
// the scratch r and c (K each). Per component k, in k order: c_k = (Σ_j u_j (μ_kj − x_j))/v_k and
// c̄ += r_k c_k; then per k, β = r_k (c_k − c̄), ρ = r_k/v_k and per j, e = (μ_kj − x_j)/v_k,
// dx_j += β e − ρ u_j, dμ_kj += ρ u_j − β e; then dα_k += β.
func (m *LangevinMixture) ScoreVJP(dx, dp, u, x, r, c []float64) {
	d, kd := m.d, m.k*m.d
	m.Responsibilities(r, x)
	cbar := 0.0
	for k := range m.k {
		mu := m.means[k*d : (k+1)*d]
		ck := 0.0
		for j, v := range x[:d] {
			ck += u[j] * (mu[j] - v)
		}
		c[k] = ck / m.vars[k]
		cbar += r[k] * c[k]
	}
	for k := range m.k {
		mu, dmu := m.means[k*d:(k+1)*d], dp[k*d:(k+1)*d]
		beta := r[k] * (c[k] - cbar)
		rv := r[k] / m.vars[k]
		for j, v := range x[:d] {
			e := (mu[j] - v) / m.vars[k]
			dx[j] += beta*e - rv*u[j]
			dmu[j] += rv*u[j] - beta*e
		}
		dp[kd+k] += beta
	}
}

// lmRowWork is one row's float64 working vectors of the reversible Heun ops.
type lmRowWork struct {
	y, z, f, f1, vf, azt, dx []float64 // d each
	r, c                     []float64 // K each
	dp                       []float64 // K·d + K
}

func newLMRowWork(m *LangevinMixture) *lmRowWork {
	d, k := m.d, m.k
	buf := make([]float64, 7*d+2*k+m.NumParams())
	cut := func(n int) []float64 {
		s := buf[:n:n]
		buf = buf[n:]
		return s
	}
	return &lmRowWork{y: cut(d), z: cut(d), f: cut(d), f1: cut(d), vf: cut(d), azt: cut(d), dx: cut(d),
		r: cut(k), c: cut(k), dp: cut(m.NumParams())}
}

// lmHeunForward is q reversible Heun steps of m for one row, (w.y, w.z) in place, with the
// increments dw (d × q, row-major: coordinate j's increment at step k is dw[j·q + k]): f = s(z)
// once, then per step
//
//	z_j ← fma(√2, ΔW_j, fma(f_j, h, 2y_j − z_j)),  f' = s(z),  y_j ← fma(√2, ΔW_j, fma(½(f_j + f'_j), h, y_j))
//
// and f ← f'. The values are those of the generic reversible Heun step of the SDE
// (solvers.ReversibleHeun), whose diffusion is the constant √2.
func (m *LangevinMixture) lmHeunForward(w *lmRowWork, dw []float64, q int, h float64) {
	y, z, f, f1 := w.y, w.z, w.f, w.f1
	m.Score(f, z, w.r)
	for k := range q {
		for j := range m.d {
			z[j] = math.FMA(math.Sqrt2, dw[j*q+k], math.FMA(f[j], h, 2*y[j]-z[j]))
		}
		m.Score(f1, z, w.r)
		for j := range m.d {
			y[j] = math.FMA(math.Sqrt2, dw[j*q+k], math.FMA(0.5*(f[j]+f1[j]), h, y[j]))
		}
		f, f1 = f1, f
	}
}

// lmHeunInverse undoes lmHeunForward (steps k = q−1 … 0): f' = s(z) once, then per step
//
//	z_j ← fma(−√2, ΔW_j, fma(−f'_j, h, 2y_j − z_j)),  f = s(z),  y_j ← fma(−√2, ΔW_j, fma(−½(f_j + f'_j), h, y_j))
//
// and f' ← f.
func (m *LangevinMixture) lmHeunInverse(w *lmRowWork, dw []float64, q int, h float64) {
	f, f1 := w.f, w.f1
	m.Score(f1, w.z, w.r)
	for k := q - 1; k >= 0; k-- {
		m.lmInverseStep(w, f, f1, dw, q, k, h)
		f, f1 = f1, f
	}
}

// lmInverseStep is inverse step k of (w.y, w.z) with f1 = s(z) on entry; f = s(z) at the new z on
// return.
func (m *LangevinMixture) lmInverseStep(w *lmRowWork, f, f1, dw []float64, q, k int, h float64) {
	y, z := w.y, w.z
	for j := range m.d {
		z[j] = math.FMA(-math.Sqrt2, dw[j*q+k], math.FMA(-f1[j], h, 2*y[j]-z[j]))
	}
	m.Score(f, z, w.r)
	for j := range m.d {
		y[j] = math.FMA(-math.Sqrt2, dw[j*q+k], math.FMA(-0.5*(f[j]+f1[j]), h, y[j]))
	}
}

// lmHeunAdjoint walks q reversible Heun steps of m back for one row (k = q−1 … 0) with the
// increments dw (lmHeunForward's layout): the state (w.y, w.z) is rebuilt by lmHeunInverse's
// arithmetic, the cotangents ay, az (d each) of the state after the steps become those of the
// state before, and w.dp gains the row's cotangent of the parameters. Per step, with f' = s(z')
// and h̄ = ½h (the discrete adjoint, docs/math.md §4.8; the diffusion is constant, so its
// cotangents vanish):
//
//	v_j = h̄·a_y,j;  ã = a_z + vᵀ∂s/∂x at z';  dp += vᵀ∂s/∂θ at z'
//	(y, z) ← the inverse step
//	v_j = h̄·a_y,j + h·ã_j;  d = vᵀ∂s/∂x at z;  dp += vᵀ∂s/∂θ at z
//	a_y ← a_y + 2ã;  a_z ← d − ã
func (m *LangevinMixture) lmHeunAdjoint(w *lmRowWork, ay, az, dw []float64, q int, h float64) {
	d := m.d
	f, f1 := w.f, w.f1
	m.Score(f1, w.z, w.r)
	for k := q - 1; k >= 0; k-- {
		for j := range d {
			w.vf[j] = 0.5 * h * ay[j]
		}
		copy(w.azt, az[:d])
		m.ScoreVJP(w.azt, w.dp, w.vf, w.z, w.r, w.c)
		m.lmInverseStep(w, f, f1, dw, q, k, h)
		for j := range d {
			w.vf[j] = 0.5*h*ay[j] + h*w.azt[j]
		}
		clear(w.dx)
		m.ScoreVJP(w.dx, w.dp, w.vf, w.z, w.r, w.c)
		for j := range d {
			ay[j] += 2 * w.azt[j]
			az[j] = w.dx[j] - w.azt[j]
		}
		f, f1 = f1, f
	}
}

// CheckLangevinMixtureHeun validates LangevinMixtureHeun's arguments: y and z distinct open
// (N, d) f32 or f64 tensors on dev with d = m.Dim(); dw an f64 (N·d, q) tensor on dev; a finite
// step h > 0; a mixture; a known direction.
func CheckLangevinMixtureHeun(dev tensor.Device, y, z, dw *tensor.Tensor, m *LangevinMixture, h float64, dir HeunDirection) error {
	const op = "langevin mixture heun"
	if m == nil {
		return fmt.Errorf("%s: no mixture", op)
	}
	if err := checkHeunState(op, dev, y, z, dw, h, dir); err != nil {
		return err
	}
	if y.Dim(1) != m.Dim() {
		return fmt.Errorf("%s: the state has %d coordinates, the mixture %d", op, y.Dim(1), m.Dim())
	}
	return nil
}

// CheckLangevinMixtureHeunAdjoint validates LangevinMixtureHeunAdjoint's arguments: those of
// LangevinMixtureHeun (y, z, dw, m, h); ay and az f64 (N, d) tensors on dev; grad an f64
// (K·d + K, N) tensor on dev; none of them one of the others.
func CheckLangevinMixtureHeunAdjoint(dev tensor.Device, y, z, ay, az, grad, dw *tensor.Tensor, m *LangevinMixture, h float64) error {
	const op = "langevin mixture heun adjoint"
	if err := CheckLangevinMixtureHeun(dev, y, z, dw, m, h, HeunInverse); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return checkHeunAdjointBuffers(op, dev, y, z, ay, az, grad, dw, "parameter gradient", m.NumParams(), y.Dim(0))
}

// LangevinMixtureHeun advances (y, z) (N, d) in place by q reversible Heun steps of size h of m,
// coordinate j of chain c driven by dw[c·d + j, 0 … q−1] (lmHeunForward per row; HeunInverse:
// lmHeunInverse). The state is widened to float64 when the op starts and rounded to its dtype once
// at the end.
func (b cpuBackend) LangevinMixtureHeun(y, z, dw *tensor.Tensor, m *LangevinMixture, h float64, dir HeunDirection) error {
	if err := CheckLangevinMixtureHeun(tensor.CPU(), y, z, dw, m, h, dir); err != nil {
		return err
	}
	n, d, q := y.Dim(0), y.Dim(1), dw.Dim(1)
	if n == 0 || q == 0 {
		return nil
	}
	b.lmRows(y, z, dw, m, 2*q*m.k*(4*d+20), func(w *lmRowWork, c int, row []float64) {
		if dir == HeunInverse {
			m.lmHeunInverse(w, row, q, h)
		} else {
			m.lmHeunForward(w, row, q, h)
		}
	})
	return nil
}

// LangevinMixtureHeunAdjoint walks back the q reversible Heun steps of m whose increments dw
// (N·d, q) a LangevinMixtureHeun call took (lmHeunAdjoint per row): (y, z) become the state before
// the steps (LangevinMixtureHeun's inverse, bit for bit), the cotangents ay and az (f64, (N, d))
// of the state after them become those of the state before, and column c of grad (f64,
// (K·d + K, N)) gains chain c's cotangent of the means and logits. A float32 state is widened
// when the op starts and rounded once at its end.
func (b cpuBackend) LangevinMixtureHeunAdjoint(y, z, ay, az, grad, dw *tensor.Tensor, m *LangevinMixture, h float64) error {
	if err := CheckLangevinMixtureHeunAdjoint(tensor.CPU(), y, z, ay, az, grad, dw, m, h); err != nil {
		return err
	}
	n, d, q := y.Dim(0), y.Dim(1), dw.Dim(1)
	if n == 0 || q == 0 {
		return nil
	}
	a, _ := ay.F64()
	cz, _ := az.F64()
	g, _ := grad.F64()
	b.lmRows(y, z, dw, m, 4*q*m.k*(6*d+20), func(w *lmRowWork, c int, row []float64) {
		for p := range w.dp {
			w.dp[p] = g[p*n+c]
		}
		m.lmHeunAdjoint(w, a[c*d:(c+1)*d], cz[c*d:(c+1)*d], row, q, h)
		for p, v := range w.dp {
			g[p*n+c] = v
		}
	})
	return nil
}

// lmRows runs fn for every chain c of (y, z) (N, d) in parallel blocks, one lmRowWork per block:
// chain c's state widened into (w.y, w.z) before fn and rounded back after it, row its increments
// (d × q, the rows c·d … c·d + d − 1 of dw). costPerRow is parallelRows'.
func (b cpuBackend) lmRows(y, z, dw *tensor.Tensor, m *LangevinMixture, costPerRow int, fn func(w *lmRowWork, c int, row []float64)) {
	n, d, q := y.Dim(0), y.Dim(1), dw.Dim(1)
	ry, rz := rowsOf(y), rowsOf(z)
	inc, _ := dw.F64()
	b.parallelRows(n, costPerRow, func(lo, hi int) {
		w := newLMRowWork(m)
		for c := lo; c < hi; c++ {
			ry.get(c, w.y)
			rz.get(c, w.z)
			fn(w, c, inc[c*d*q:(c+1)*d*q])
			ry.set(c, w.y)
			rz.set(c, w.z)
		}
	})
}
