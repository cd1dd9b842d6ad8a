package ops

import (
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// rows gives float64 access to the rows of a host f32 or f64 tensor (nil tensor: no access).
type rows struct {
	f32 []float32
	f64 []float64
	w   int
}

func rowsOf(t *tensor.Tensor) rows {
	if t == nil {
		return rows{}
	}
	w := 1
	if t.Rank() == 2 {
		w = t.Dim(1)
	}
	r := rows{w: w}
	if t.DType() == tensor.F32 {
		r.f32, _ = t.F32()
	} else {
		r.f64, _ = t.F64()
	}
	return r
}

func (r rows) ok() bool { return r.f32 != nil || r.f64 != nil }

func (r rows) get(i int, buf []float64) {
	if r.f32 != nil {
		for j, v := range r.f32[i*r.w : (i+1)*r.w] {
			buf[j] = float64(v)
		}
		return
	}
	copy(buf, r.f64[i*r.w:(i+1)*r.w])
}

func (r rows) set(i int, buf []float64) {
	if r.f32 != nil {
		for j, v := range buf {
			r.f32[i*r.w+j] = float32(v)
		}
		return
	}
	copy(r.f64[i*r.w:(i+1)*r.w], buf)
}

func (r rows) at(i int) float64 {
	if r.f32 != nil {
		return float64(r.f32[i])
	}
	return r.f64[i]
}

func (r rows) put(i int, v float64) {
	if r.f32 != nil {
		r.f32[i] = float32(v)
		return
	}
	r.f64[i] = v
}

// Step: dst = Alpha·x + Beta_i·score + Gamma_i·ξ (see Coeffs), ξ the draw's normals in x's
// precision (the same numbers Normal writes). dst may be x itself.
func (b cpuBackend) Step(dst, x, score *tensor.Tensor, c Coeffs, d Draw) error {
	if err := CheckStep(tensor.CPU(), dst, x, score, c, d); err != nil {
		return err
	}
	n, dim := x.Dim(0), x.Dim(1)
	f32 := x.DType() == tensor.F32
	rx, rs, rd, rh := rowsOf(x), rowsOf(score), rowsOf(dst), rowsOf(c.H)
	b.parallelRows(n, 10*dim, func(lo, hi int) {
		xr, sr, xi := make([]float64, dim), make([]float64, dim), make([]float64, dim)
		for i := lo; i < hi; i++ {
			beta, gamma := c.Beta, c.Gamma
			if rh.ok() {
				h := rh.at(i)
				beta, gamma = beta*h, gamma*math.Sqrt(h)
			}
			rx.get(i, xr)
			if c.Beta != 0 {
				rs.get(i, sr)
			}
			if gamma != 0 {
				normalRow(xi, d.Seed, d.Site, uint32(d.FirstChain+uint64(i)), f32)
			}
			for j := range xr {
				v := c.Alpha * xr[j]
				if c.Beta != 0 {
					v += beta * sr[j]
				}
				if gamma != 0 {
					v += gamma * xi[j]
				}
				xr[j] = v
			}
			rd.set(i, xr)
		}
	})
	return nil
}

// MALAAccept is the Metropolis correction of a MALA proposal y = x + h s(x) + sqrt(2h) ξ
// (docs/math.md §2). Per chain i, with log q(b | a) = −‖b − a − h s(a)‖² / (4h):
//
//	log α = log p(y) − log p(x) + log q(x | y) − log q(y | x)
//
// and the chain's float64 uniform U at the draw (column 0 of the f64 Uniform fill): the move is
// accepted iff log U < log α (U = 0 always accepts a finite α). An accepted chain copies the
// proposal's x, log p and score into the current state and adds 1 to accepted[i]. A NaN log α
// (NaN proposal) is rejected, so a chain never moves to NaN. Computed in float64.
func (b cpuBackend) MALAAccept(cur, prop MALAState, h float64, hs *tensor.Tensor, d Draw, accepted *tensor.Tensor) error {
	if err := CheckMALAAccept(tensor.CPU(), cur, prop, h, hs, d, accepted); err != nil {
		return err
	}
	n, dim := cur.X.Dim(0), cur.X.Dim(1)
	cx, cl, cs := rowsOf(cur.X), rowsOf(cur.LogP), rowsOf(cur.Score)
	px, pl, ps := rowsOf(prop.X), rowsOf(prop.LogP), rowsOf(prop.Score)
	rh, acc := rowsOf(hs), rowsOf(accepted)
	b.parallelRows(n, 8*dim, func(lo, hi int) {
		x, sx, y, sy := make([]float64, dim), make([]float64, dim), make([]float64, dim), make([]float64, dim)
		for i := lo; i < hi; i++ {
			step := h
			if rh.ok() {
				step = rh.at(i)
			}
			cx.get(i, x)
			cs.get(i, sx)
			px.get(i, y)
			ps.get(i, sy)
			fwd, bwd := 0.0, 0.0
			for j := 0; j < dim; j++ {
				f := y[j] - x[j] - step*sx[j]
				r := x[j] - y[j] - step*sy[j]
				fwd += f * f
				bwd += r * r
			}
			logAlpha := pl.at(i) - cl.at(i) + (fwd-bwd)/(4*step)
			u := uniform64(d.Seed, d.Site, uint32(d.FirstChain+uint64(i)))
			if !(math.Log(u) < logAlpha) {
				continue
			}
			cx.set(i, y)
			cs.set(i, sy)
			cl.put(i, pl.at(i))
			acc.put(i, acc.at(i)+1)
		}
	})
	return nil
}

// ULDStep advances underdamped Langevin dynamics dx = v dt, dv = −γ v dt + u ∇log π dt +
// sqrt(2γu) dB by one step h with the gradient frozen at x (docs/math.md §2; coefficients in
// ULDCoefficients), in place:
//
//	v' = E v + cv·score + l21 ξ1 + l22 ξ2,   x' = x + cx·v + cxg·score + l11 ξ1
//
// with ξ1 the draw's normals at d.Site and ξ2 at d.Site+1 (x's precision), computed in float64.
func (b cpuBackend) ULDStep(x, v, score *tensor.Tensor, h float64, p ULDParams, d Draw) error {
	if err := CheckULDStep(tensor.CPU(), x, v, score, h, p, d); err != nil {
		return err
	}
	n, dim := x.Dim(0), x.Dim(1)
	f32 := x.DType() == tensor.F32
	e, cv, cx, cxg, l11, l21, l22 := ULDCoefficients(h, p)
	rx, rv, rs := rowsOf(x), rowsOf(v), rowsOf(score)
	b.parallelRows(n, 20*dim, func(lo, hi int) {
		xr, vr, sr := make([]float64, dim), make([]float64, dim), make([]float64, dim)
		xi1, xi2 := make([]float64, dim), make([]float64, dim)
		for i := lo; i < hi; i++ {
			chain := uint32(d.FirstChain + uint64(i))
			rx.get(i, xr)
			rv.get(i, vr)
			rs.get(i, sr)
			normalRow(xi1, d.Seed, d.Site, chain, f32)
			normalRow(xi2, d.Seed, d.Site+1, chain, f32)
			for j := 0; j < dim; j++ {
				xn := xr[j] + cx*vr[j] + cxg*sr[j] + l11*xi1[j]
				vr[j] = e*vr[j] + cv*sr[j] + l21*xi1[j] + l22*xi2[j]
				xr[j] = xn
			}
			rx.set(i, xr)
			rv.set(i, vr)
		}
	})
	return nil
}

// AddGaussianFactor multiplies a density by the Gaussian factor exp(−‖c − a x‖² / (2v)) of the
// reverse transition kernel (docs/math.md §3: c = x', a = e^{−η}, v = 1 − e^{−2η}), row by row:
//
//	log p += −‖c − a x‖² / (2v),   score += a (c − a x) / v
func (b cpuBackend) AddGaussianFactor(out ScoreOutputs, x, center *tensor.Tensor, a, v float64) error {
	if err := CheckGaussianFactor(tensor.CPU(), out, x, center, a, v); err != nil {
		return err
	}
	n, dim := x.Dim(0), x.Dim(1)
	rx, rc, rl, rs := rowsOf(x), rowsOf(center), rowsOf(out.LogP), rowsOf(out.Score)
	b.parallelRows(n, 6*dim, func(lo, hi int) {
		xr, cr, sr := make([]float64, dim), make([]float64, dim), make([]float64, dim)
		for i := lo; i < hi; i++ {
			rx.get(i, xr)
			rc.get(i, cr)
			if rs.ok() {
				rs.get(i, sr)
			}
			q := 0.0
			for j := range xr {
				r := cr[j] - a*xr[j]
				q += r * r
				sr[j] += a * r / v
			}
			if rs.ok() {
				rs.set(i, sr)
			}
			if rl.ok() {
				rl.put(i, rl.at(i)-q/(2*v))
			}
		}
	})
	return nil
}
