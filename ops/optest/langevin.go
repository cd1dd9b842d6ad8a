package optest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Tolerances of Step, ULDStep and AddGaussianFactor against the float64 reference, per element,
// relative to the element's term scale S (the sum of the magnitudes of the terms of that element:
// Step |α x| + |β_i s| + |γ_i ξ|; ULD x' |x| + |cx v| + |cxg s| + |l11 ξ1|, v' |E v| + |cv s| +
// |l21 ξ1| + |l22 ξ2|; factor score |s| + |a r / v|, log p |log p| + ‖r‖²/(2v); scaling by the
// terms keeps the bound meaningful where they cancel). A backend evaluates each combination in
// float64 in the reference's order from the same stored inputs and rounds once, so what differs:
//   - the normals: none, they are exact (NormalF32, NormalF64);
//   - a float32 result's final rounding: one float32 ulp ≤ 1.2e-7 S;
//   - the row sums (the factor's ‖c − a x‖²) in another order: ≤ 2(d − 1)·2^-53 ≈ 5.7e-14 of the
//     sum at d = 256.
//
// float32 1.2e-7, checked at 2.5e-7 (as the factor, which has no normals); float64 5.7e-14,
// checked at 1e-13. MALAAccept copies values (exactly) on decisions taken in
// float64 from the same inputs: its decisions are compared one by one (see MALAFlipsF32).
var (
	LangevinF32 = 2.5e-7
	LangevinF64 = 1e-13
	FactorF32   = 2.5e-7
	FactorF64   = 1e-13
)

// MALAFlipsF32 is the number of MALAAccept decisions per case a float32 backend may take
// differently from the reference: log α is computed in float64 from the same float32 inputs, so a
// flip needs log U within a few float64 ulp of log α (about 1e-12 per chain); float64 allows none.
var MALAFlipsF32 = 1

// Tolerance of GMMChains against the reference after S steps, per element relative to the row's
// scale as CompareRows measures it, |got − ref| ≤ ChainsRtol·(|ref| + max_row |ref|), with
//
//	ChainsRtol = S · ScoreF32 (float32) or S · ScoreF64 (float64).
//
// Each step adds at most one score op's error (ScoreF32 = 2e-4 or ScoreF64 = 1e-10 of the score's
// row scale, times h < 1) plus the step ops' (LangevinF32/F64, far smaller) to the state, and
// carries an earlier error δx into h·(∇²log p) δx. The suite's mixtures (chainsGMM) overlap:
// variances in [0.5, 1] and ‖μ_k − μ_l‖ ≤ 4.3, so near the mixture ‖∇²log p‖ ≤ 1/0.5 +
// max ‖C⁻¹(μ_k − μ_l)‖²/4 < 20 (far from it one component takes all the weight and the Hessian is
// −C⁻¹), and at h ≤ ChainsStepSize·1.5 = 0.03 an error grows by less than 1.6 per step, 6.6 over
// the suite's 4 steps — inside the factor 10–100 by which the score op's bound exceeds its
// measured error. MALA decisions can flip where log U lies within the log-density's rounding of log α: a
// chain whose acceptance count differs from the reference's is a flip, its state is not compared.
// A decision flips when log U falls within δ of log α, δ the rounding of log α: in float32 the
// log-densities are summed in float32, δ ≈ a few ulp of |log p|, up to ~4e-4 for the suite's
// far-away starting points in d = 256 (|log p| ≈ 1500), so a flip has probability ≤ δ per
// decision. Allowed: ChainFlipsF32 = 0.1 % of the chain-steps plus ChainFlipsSlackF32 = 3, so that
// a Poisson count of mean ≤ 2 (1025 chains × 5 steps at d = 256) exceeds it with probability
// < 1e-3; in float64 (δ ≈ 1e-13 |log p|) none.
var (
	ChainFlipsF32      = 1e-3
	ChainFlipsSlackF32 = 3
)

// ChainsRtol is the tolerance of a GMMChains run of steps steps in dt.
func ChainsRtol(dt tensor.DType, steps int) float64 {
	if dt == tensor.F32 {
		return float64(steps) * ScoreF32
	}
	return float64(steps) * ScoreF64
}

// ChainFlipsAllowed is the number of MALA decisions a run of chains × steps may take differently
// from the reference in dt.
func ChainFlipsAllowed(dt tensor.DType, chains, steps int) int {
	if dt != tensor.F32 {
		return 0
	}
	return ChainFlipsSlackF32 + int(ChainFlipsF32*float64(chains*steps))
}

// bufs collects the guarded buffers of one run and closes them together.
type bufs []Guarded

func (b *bufs) add(dev tensor.Device, dt tensor.DType, vals []float64, shape ...int) (*tensor.Tensor, error) {
	g, err := NewGuarded(dev, guard, dt, vals, shape...)
	if err != nil {
		return nil, err
	}
	*b = append(*b, g)
	return g.view, nil
}

// get returns the values of the buffer whose view is t.
func (b bufs) get(t *tensor.Tensor, what string) ([]float64, error) {
	for _, g := range b {
		if g.view == t {
			return g.values(what)
		}
	}
	return nil, fmt.Errorf("%s: not a guarded buffer", what)
}

// syncPair waits for dev and returns the values of the buffers whose views are a and b.
func (b bufs) syncPair(dev tensor.Device, a *tensor.Tensor, aWhat string, c *tensor.Tensor, cWhat string) ([]float64, []float64, error) {
	if err := dev.Synchronize(); err != nil {
		return nil, nil, err
	}
	ga, err := b.get(a, aWhat)
	if err != nil {
		return nil, nil, err
	}
	gc, err := b.get(c, cWhat)
	return ga, gc, err
}

// close releases every buffer (a pointer receiver, so that `defer bs.close()` sees the buffers
// added after the defer statement).
func (b *bufs) close() {
	for _, g := range *b {
		g.close()
	}
}

// rounded returns v as dt stores it.
func rounded(dt tensor.DType, v []float64) []float64 {
	out := append([]float64(nil), v...)
	if dt == tensor.F32 {
		for i, w := range out {
			out[i] = float64(float32(w))
		}
	}
	return out
}

// wave returns n deterministic values scale·sin(0.7 e + phase).
func wave(n int, phase, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * math.Sin(0.7*float64(i)+phase)
	}
	return v
}

// CompareRowsScaled checks |got − ref| ≤ rtol·scale[row] for every element of rows of the given
// width, with NaN exactly where the reference has NaN (equal values, infinities included, pass)
// and no element still holding Sentinel on either side (not written), and returns the largest
// |got − ref| / scale[row] over scale[row] > 0.
func CompareRowsScaled(got, ref, scale []float64, width int, rtol float64) (float64, error) {
	if len(got) != len(ref) || len(ref) != len(scale)*width {
		return 0, fmt.Errorf("lengths %d, %d for %d rows of %d", len(got), len(ref), len(scale), width)
	}
	worst := 0.0
	for i, want := range ref {
		g, s := got[i], scale[i/width]
		if err := notWritten(g, want, i/width, i%width); err != nil {
			return worst, err
		}
		if math.IsNaN(want) || math.IsNaN(g) {
			if math.IsNaN(want) != math.IsNaN(g) {
				return worst, fmt.Errorf("row %d col %d: got %v, reference %v", i/width, i%width, g, want)
			}
			continue
		}
		d := math.Abs(g - want)
		if g == want {
			d = 0 // equal infinities
		}
		if !(d <= rtol*s) {
			return worst, fmt.Errorf("row %d col %d: got %v, reference %v (|diff| %.3g > %.3g = rtol %g × row scale %.3g)",
				i/width, i%width, g, want, d, rtol*s, rtol, s)
		}
		if s > 0 {
			worst = math.Max(worst, d/s)
		}
	}
	return worst, nil
}

// compareScaled is CompareRowsScaled without the largest error.
func compareScaled(got, ref, scale []float64, width int, rtol float64) error {
	_, err := CompareRowsScaled(got, ref, scale, width, rtol)
	return err
}

// AbsSum adds the magnitudes of the terms, skipping NaN ones (a NaN output is compared by its
// NaN-ness): the row scale of a sum of these terms.
func AbsSum(terms ...float64) float64 {
	s := 0.0
	for _, v := range terms {
		if !math.IsNaN(v) {
			s += math.Abs(v)
		}
	}
	return s
}

// RefNormals are the reference's normals of a draw for (n, d) in dt's stream.
func RefNormals(dt tensor.DType, n, d int, draw ops.Draw) ([]float64, error) {
	h, err := tensor.New(nil, dt, n, d)
	if err != nil {
		return nil, err
	}
	if err := ops.Reference().Normal(h, draw); err != nil {
		return nil, err
	}
	return h.Float64s()
}

// stepShapes are the (rows, d) of CheckStepOps: empty, single, odd, partial warps and blocks,
// wide rows.
var stepShapes = [][2]int{{0, 3}, {1, 1}, {3, 2}, {33, 5}, {1025, 16}, {65, 33}, {31, 128}, {5, 256}}

// CheckStepOps compares b's Step, MALAAccept, ULDStep and AddGaussianFactor with the CPU
// reference over the suite's shapes and both dtypes: guard bands around every output,
// in-place and out-of-place steps, shared and per-chain step sizes (with a zero and a negative
// one), a NaN coordinate that must poison its own row only.
func CheckStepOps(b ops.Backend) error {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, sh := range stepShapes {
			n, d := sh[0], sh[1]
			for _, c := range []struct {
				name string
				run  func(ops.Backend, tensor.DType, int, int) error
			}{{"step", checkStep}, {"uld step", checkULD}, {"mala accept", checkMALA}, {"gaussian factor", checkFactor}} {
				if err := c.run(b, dt, n, d); err != nil {
					return fmt.Errorf("%s %v (%d, %d): %w", c.name, dt, n, d, err)
				}
			}
		}
	}
	return nil
}

// StepHs are per-chain step sizes: positive, with h = 0 (no noise) at row 2 and h = −1 (a NaN row
// in the reference) at row 4 where they exist.
func StepHs(n int) []float64 {
	h := make([]float64, n)
	for i := range h {
		h[i] = 0.05 + 0.01*float64(i%7)
	}
	if n > 2 {
		h[2] = 0
	}
	if n > 4 {
		h[4] = -1
	}
	return h
}

// stepInput returns x (with a NaN in row 1 when n > 2).
func stepInput(n, d int) []float64 {
	x := wave(n*d, 0.3, 3)
	if n > 2 {
		x[d] = math.NaN()
	}
	return x
}

func checkStep(b ops.Backend, dt tensor.DType, n, d int) error {
	variants := []struct {
		c        ops.Coeffs
		perChain bool
		inPlace  bool
	}{
		{ops.ULA(0.01), false, true},
		{ops.Coeffs{Alpha: 1, Beta: 1, Gamma: math.Sqrt2}, true, false},
		{ops.Coeffs{Alpha: 0.9, Beta: 0, Gamma: 0.7}, false, false},
		{ops.Coeffs{Alpha: 1.2, Beta: -0.5, Gamma: 0}, false, true},
	}
	x, s, hs := stepInput(n, d), wave(n*d, 1.1, 2), StepHs(n)
	draw := ops.Draw{Seed: 0x5eed + uint64(d), Site: 1<<33 + uint64(n), FirstChain: uint64(n % 5)}
	xi, err := RefNormals(dt, n, d, draw)
	if err != nil {
		return err
	}
	xr, sr, hr := rounded(dt, x), rounded(dt, s), rounded(dt, hs)
	for vi, v := range variants {
		run := func(be ops.Backend) ([]float64, error) {
			var bs bufs
			defer bs.close()
			dev := be.Device()
			xt, err := bs.add(dev, dt, x, n, d)
			if err != nil {
				return nil, err
			}
			dst := xt
			if !v.inPlace {
				if dst, err = bs.add(dev, dt, nil, n, d); err != nil {
					return nil, err
				}
			}
			st, err := bs.add(dev, dt, s, n, d)
			if err != nil {
				return nil, err
			}
			c := v.c
			if v.perChain {
				if c.H, err = bs.add(dev, dt, hs, n); err != nil {
					return nil, err
				}
			}
			if err := be.Step(dst, xt, st, c, draw); err != nil {
				return nil, err
			}
			if err := dev.Synchronize(); err != nil {
				return nil, err
			}
			if !v.inPlace {
				got, err := bs.get(xt, "x")
				if err != nil {
					return nil, err
				}
				if err := exactRows(got, xr, d); err != nil {
					return nil, fmt.Errorf("x changed by a step that was not in place: %w", err)
				}
			}
			return bs.get(dst, "dst")
		}
		got, err := run(b)
		if err != nil {
			return fmt.Errorf("variant %d: %w", vi, err)
		}
		ref, err := run(ops.Reference())
		if err != nil {
			return fmt.Errorf("variant %d: reference: %w", vi, err)
		}
		scale := make([]float64, n)
		for i := range scale {
			beta, gamma := v.c.Beta, v.c.Gamma
			if v.perChain {
				beta, gamma = beta*hr[i], gamma*math.Sqrt(hr[i])
			}
			for j := 0; j < d; j++ {
				k := i*d + j
				scale[i] = math.Max(scale[i], AbsSum(v.c.Alpha*xr[k], beta*sr[k], gamma*xi[k]))
			}
		}
		if err := compareScaled(got, ref, scale, d, pick(dt, LangevinF32, LangevinF64)); err != nil {
			return fmt.Errorf("variant %d: %w", vi, err)
		}
	}
	return nil
}

func pick(dt tensor.DType, f32, f64 float64) float64 {
	if dt == tensor.F32 {
		return f32
	}
	return f64
}

// exactRows compares exactly, NaN equal to NaN.
func exactRows(got, ref []float64, width int) error {
	if len(got) != len(ref) {
		return fmt.Errorf("length %d, reference has %d", len(got), len(ref))
	}
	for i := range ref {
		if got[i] != ref[i] && !(math.IsNaN(got[i]) && math.IsNaN(ref[i])) {
			return fmt.Errorf("row %d col %d: got %v, reference %v", i/width, i%width, got[i], ref[i])
		}
	}
	return nil
}

func checkULD(b ops.Backend, dt tensor.DType, n, d int) error {
	const h = 0.1
	p := ops.ULDParams{Gamma: 2, InvMass: 0.7}
	x, v, s := stepInput(n, d), wave(n*d, 2.3, 1.5), wave(n*d, 1.1, 2)
	draw := ops.Draw{Seed: 0xd1ce + uint64(d), Site: 1<<32 - 1, FirstChain: uint64(n % 5)} // site + 1 carries
	run := func(be ops.Backend) ([]float64, []float64, error) {
		var bs bufs
		defer bs.close()
		dev := be.Device()
		xt, err := bs.add(dev, dt, x, n, d)
		if err != nil {
			return nil, nil, err
		}
		vt, err := bs.add(dev, dt, v, n, d)
		if err != nil {
			return nil, nil, err
		}
		st, err := bs.add(dev, dt, s, n, d)
		if err != nil {
			return nil, nil, err
		}
		if err := be.ULDStep(xt, vt, st, h, p, draw); err != nil {
			return nil, nil, err
		}
		return bs.syncPair(dev, xt, "x", vt, "v")
	}
	gx, gv, err := run(b)
	if err != nil {
		return err
	}
	rx, rv, err := run(ops.Reference())
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	e, cv, cx, cxg, l11, l21, l22 := ops.ULDCoefficients(h, p)
	xi1, err := RefNormals(dt, n, d, draw)
	if err != nil {
		return err
	}
	xi2, err := RefNormals(dt, n, d, ops.Draw{Seed: draw.Seed, Site: draw.Site + 1, FirstChain: draw.FirstChain})
	if err != nil {
		return err
	}
	xr, vr, sr := rounded(dt, x), rounded(dt, v), rounded(dt, s)
	sx, sv := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			k := i*d + j
			sx[i] = math.Max(sx[i], AbsSum(xr[k], cx*vr[k], cxg*sr[k], l11*xi1[k]))
			sv[i] = math.Max(sv[i], AbsSum(e*vr[k], cv*sr[k], l21*xi1[k], l22*xi2[k]))
		}
	}
	rtol := pick(dt, LangevinF32, LangevinF64)
	if err := compareScaled(gx, rx, sx, d, rtol); err != nil {
		return fmt.Errorf("x: %w", err)
	}
	if err := compareScaled(gv, rv, sv, d, rtol); err != nil {
		return fmt.Errorf("v: %w", err)
	}
	return nil
}

// MALAInputs is a batch of MALAAccept inputs on the standard Gaussian (log p = −‖x‖²/2, s = −x):
// current states X with their LogPX and ScoreX, proposals Y = X + h s(X) + √(2h) ξ with LogPY and
// ScoreY, step sizes H (shared) and HS (per chain), and acceptance counts, all as float64 values
// already rounded to the batch's dtype.
type MALAInputs struct {
	X, LogPX, ScoreX, Y, LogPY, ScoreY, HS, Accepted []float64
	H                                                float64
}

// NewMALAInputs builds the batch. Step sizes are about d^(−1/3), where MALA on a Gaussian accepts a
// good fraction but not all; per chain they vary by a factor 2. Edge rows: a NaN proposal at row 1
// (rejected) and a current log p of −∞ at row 2 (log α = +∞, accepted). Acceptance counts start at
// i mod 3 so that a backend must add, not set. ξ are the f64 normals of draw (seed 31, site 1).
func NewMALAInputs(dt tensor.DType, n, d int, perChain bool) (MALAInputs, error) {
	m := MALAInputs{H: 1.2 * math.Pow(float64(max(d, 1)), -1.0/3)}
	m.X = rounded(dt, wave(n*d, 0.3, 1.5))
	xi, err := RefNormals(tensor.F64, n, d, ops.Draw{Seed: 31, Site: 1})
	if err != nil {
		return m, err
	}
	m.HS = make([]float64, n)
	for i := range m.HS {
		m.HS[i] = m.H
		if perChain {
			m.HS[i] = m.H * (0.5 + 0.25*float64(i%5))
		}
	}
	m.HS = rounded(dt, m.HS)
	m.Y = make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			k := i*d + j
			m.Y[k] = m.X[k] - m.HS[i]*m.X[k] + math.Sqrt(2*m.HS[i])*xi[k]
		}
	}
	m.Y = rounded(dt, m.Y)
	logp := func(v []float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			for j := 0; j < d; j++ {
				out[i] -= v[i*d+j] * v[i*d+j] / 2
			}
		}
		return rounded(dt, out)
	}
	neg := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, w := range v {
			out[i] = -w
		}
		return out
	}
	m.LogPX, m.ScoreX, m.LogPY, m.ScoreY = logp(m.X), neg(m.X), logp(m.Y), neg(m.Y)
	if n > 2 {
		if d > 0 {
			m.Y[d] = math.NaN()
		}
		m.LogPY[1] = math.NaN()
		m.LogPX[2] = math.Inf(-1)
	}
	m.Accepted = make([]float64, n)
	for i := range m.Accepted {
		m.Accepted[i] = float64(i % 3)
	}
	return m, nil
}

// checkMALA runs MALAAccept on proposals for the standard Gaussian (log p = −‖x‖²/2, s = −x),
// with a NaN proposal at row 1 (rejected) and a current log p of −∞ at row 2 (accepted), shared
// and per-chain step sizes; acceptance counts start at i mod 3 so that a backend must add.
func checkMALA(b ops.Backend, dt tensor.DType, n, d int) error {
	for _, perChain := range []bool{false, true} {
		in, err := NewMALAInputs(dt, n, d, perChain)
		if err != nil {
			return err
		}
		h, x, lpx, sx, y, lpy, sy, hs, acc := in.H, in.X, in.LogPX, in.ScoreX, in.Y, in.LogPY, in.ScoreY, in.HS, in.Accepted
		draw := ops.Draw{Seed: 0xacce97 + uint64(d), Site: 3<<32 + 5, FirstChain: uint64(n % 5)}
		type result struct{ x, lp, s, acc []float64 }
		run := func(be ops.Backend) (result, error) {
			var bs bufs
			defer bs.close()
			dev := be.Device()
			var ts [7]*tensor.Tensor
			for i, in := range []struct {
				v     []float64
				dt    tensor.DType
				shape []int
			}{{x, dt, []int{n, d}}, {lpx, dt, []int{n}}, {sx, dt, []int{n, d}}, {y, dt, []int{n, d}},
				{lpy, dt, []int{n}}, {sy, dt, []int{n, d}}, {acc, tensor.F64, []int{n}}} {
				t, err := bs.add(dev, in.dt, in.v, in.shape...)
				if err != nil {
					return result{}, err
				}
				ts[i] = t
			}
			var hst *tensor.Tensor
			if perChain {
				var err error
				if hst, err = bs.add(dev, dt, hs, n); err != nil {
					return result{}, err
				}
			}
			cur := ops.MALAState{X: ts[0], LogP: ts[1], Score: ts[2]}
			prop := ops.MALAState{X: ts[3], LogP: ts[4], Score: ts[5]}
			if err := be.MALAAccept(cur, prop, h, hst, draw, ts[6]); err != nil {
				return result{}, err
			}
			if err := dev.Synchronize(); err != nil {
				return result{}, err
			}
			var r result
			var err error
			for _, o := range []struct {
				dst  *[]float64
				t    *tensor.Tensor
				what string
			}{{&r.x, ts[0], "x"}, {&r.lp, ts[1], "log p"}, {&r.s, ts[2], "score"}, {&r.acc, ts[6], "accepted"}} {
				if *o.dst, err = bs.get(o.t, o.what); err != nil {
					return result{}, err
				}
			}
			return r, nil
		}
		got, err := run(b)
		if err != nil {
			return err
		}
		ref, err := run(ops.Reference())
		if err != nil {
			return fmt.Errorf("reference: %w", err)
		}
		flips := 0
		for i := 0; i < n; i++ {
			ga, ra := got.acc[i]-acc[i], ref.acc[i]-acc[i]
			if (ga != 0 && ga != 1) || (ra != 0 && ra != 1) {
				return fmt.Errorf("chain %d: accepted count moved by %v (reference %v), want 0 or 1", i, ga, ra)
			}
			wantX, wantS, wantL := x, sx, lpx
			if ga == 1 {
				wantX, wantS, wantL = y, sy, lpy
			}
			if ga != ra {
				flips++
			}
			row := func(v []float64) []float64 { return v[i*d : (i+1)*d] }
			if exactRows(row(got.x), row(wantX), d) != nil || exactRows(row(got.s), row(wantS), d) != nil ||
				exactRows(got.lp[i:i+1], wantL[i:i+1], 1) != nil {
				return fmt.Errorf("chain %d: state does not match its decision (accepted %v)", i, ga)
			}
		}
		allowed := 0
		if dt == tensor.F32 {
			allowed = MALAFlipsF32
		}
		if flips > allowed {
			return fmt.Errorf("per-chain=%v: %d decisions differ from the reference (at most %d allowed)", perChain, flips, allowed)
		}
	}
	return nil
}

func checkFactor(b ops.Backend, dt tensor.DType, n, d int) error {
	a, variance := math.Exp(-0.3), -math.Expm1(-0.6)
	x, center := stepInput(n, d), wave(n*d, 1.7, 2.5)
	lp0, s0 := wave(n, 0.9, 10), wave(n*d, 2.1, 1)
	for _, outs := range [][2]bool{{true, true}, {true, false}, {false, true}} {
		run := func(be ops.Backend) ([]float64, []float64, error) {
			var bs bufs
			defer bs.close()
			dev := be.Device()
			xt, err := bs.add(dev, dt, x, n, d)
			if err != nil {
				return nil, nil, err
			}
			ct, err := bs.add(dev, dt, center, n, d)
			if err != nil {
				return nil, nil, err
			}
			lt, err := bs.add(dev, dt, lp0, n)
			if err != nil {
				return nil, nil, err
			}
			st, err := bs.add(dev, dt, s0, n, d)
			if err != nil {
				return nil, nil, err
			}
			out := ops.ScoreOutputs{}
			if outs[0] {
				out.LogP = lt
			}
			if outs[1] {
				out.Score = st
			}
			if err := be.AddGaussianFactor(out, xt, ct, a, variance); err != nil {
				return nil, nil, err
			}
			return bs.syncPair(dev, lt, "log p", st, "score")
		}
		gl, gs, err := run(b)
		if err != nil {
			return err
		}
		rl, rs, err := run(ops.Reference())
		if err != nil {
			return fmt.Errorf("reference: %w", err)
		}
		xr, cr, lr, sr := rounded(dt, x), rounded(dt, center), rounded(dt, lp0), rounded(dt, s0)
		scaleL, scaleS := make([]float64, n), make([]float64, n)
		for i := 0; i < n; i++ {
			q := 0.0
			for j := 0; j < d; j++ {
				k := i*d + j
				r := cr[k] - a*xr[k]
				if !math.IsNaN(r) {
					q += r * r
				}
				scaleS[i] = math.Max(scaleS[i], AbsSum(sr[k], a*r/variance))
			}
			scaleL[i] = AbsSum(lr[i], q/(2*variance))
		}
		rtol := pick(dt, FactorF32, FactorF64)
		if err := compareScaled(gl, rl, scaleL, 1, rtol); err != nil {
			return fmt.Errorf("outputs %v: log p: %w", outs, err)
		}
		if err := compareScaled(gs, rs, scaleS, d, rtol); err != nil {
			return fmt.Errorf("outputs %v: score: %w", outs, err)
		}
	}
	return nil
}

// ChainsCase is one GMMChains problem of the suite.
type ChainsCase struct {
	Method      ops.ChainMethod
	DType       tensor.DType
	Rows, K, D  int
	Kind        ops.CovKind // ops.Isotropic or ops.Diagonal
	Noise       ops.Noise   // a shared level (the zero value: the clean target)
	Factor      bool        // with an RTK Gaussian factor
	PerChain    bool        // per-chain step sizes (ULA, MALA), with h = 0 at row 2 and h = −1 at row 4
	Trace       bool        // a trace with Thin = 2
	Far         bool        // two more components at ±farValue, first and last (their logits are −∞ in the element type)
	Steps       int
	Seed, First uint64 // the seed and the first step's index in the sites
}

func (c ChainsCase) String() string {
	return fmt.Sprintf("%v %v N=%d K=%d d=%d %v noise=%v factor=%v per-chain=%v trace=%v far=%v steps=%d",
		c.Method, c.DType, c.Rows, c.K, c.D, c.Kind, c.Noise.Kind, c.Factor, c.PerChain, c.Trace, c.Far, c.Steps)
}

// ChainsInputs are the host inputs of a case: starting rows (with a NaN coordinate in row 1), a
// velocity, the factor's centers, per-chain step sizes, MALA's log p and score of the start (the
// reference's GMMScore and factor), acceptance counts starting at i mod 3.
type ChainsInputs struct {
	G                             *ops.GMM
	H                             float64
	X, V, Center, HS, LogP, Score []float64
	Accepted                      []float64
}

// ChainsStepSize is the shared step size of the suite's runs (per-chain sizes are 0.5 to 1.5 times
// it): small next to the variances of chainsGMM, so that errors grow by less than 1.6 per step.
const ChainsStepSize = 0.02

// chainsGMM is the suite's K-component mixture in dimension d: weights 1, 2, 3, …, means
// μ_kj = 1.5·sqrt(2/d)·cos(3k + j + 1) (‖μ_k‖ ≤ 2.1 whatever d), variances in [0.5, 1] (isotropic
// 0.5 + 0.125·(k mod 5), diagonal 0.5 + 0.1·((k + j) mod 6)).
func chainsGMM(k, d int, kind ops.CovKind) (*ops.GMM, error) {
	spec := ops.GMMSpec{}
	for c := 0; c < k; c++ {
		spec.Weights = append(spec.Weights, 1+float64(c%3))
		mu := make([]float64, d)
		for j := range mu {
			mu[j] = 1.5 * math.Sqrt(2/float64(d)) * math.Cos(float64(3*c+j+1))
		}
		spec.Means = append(spec.Means, mu)
		switch kind {
		case ops.Isotropic:
			spec.Vars = append(spec.Vars, 0.5+0.125*float64(c%5))
		case ops.Diagonal:
			row := make([]float64, d)
			for j := range row {
				row[j] = 0.5 + 0.1*float64((c+j)%6)
			}
			spec.Diag = append(spec.Diag, row)
		default:
			return nil, fmt.Errorf("chains suite: %v covariances are not fusable", kind)
		}
	}
	return ops.NewGMM(spec)
}

// farChainsGMM is chainsGMM with a component at +farValue(dt) in every coordinate first and one
// at −farValue(dt) last, each of weight 1 and the first component's variances: components no
// chain can reach, whose quadratic forms overflow in dt.
func farChainsGMM(k, d int, kind ops.CovKind, dt tensor.DType) (*ops.GMM, error) {
	g, err := chainsGMM(k, d, kind)
	if err != nil {
		return nil, err
	}
	p := g.Params()
	spec := ops.GMMSpec{}
	far := farValue(dt)
	add := func(c int, mu []float64) {
		spec.Weights = append(spec.Weights, math.Exp(p.LogWeights[c]))
		spec.Means = append(spec.Means, mu)
		if kind == ops.Isotropic {
			spec.Vars = append(spec.Vars, p.Lambda[c])
		} else {
			spec.Diag = append(spec.Diag, p.Lambda[c*d:(c+1)*d])
		}
	}
	farMu := func(sign float64) []float64 {
		mu := make([]float64, d)
		for j := range mu {
			mu[j] = sign * far
		}
		return mu
	}
	add(0, farMu(1))
	for c := 0; c < k; c++ {
		add(c, p.Means[c*d:(c+1)*d])
	}
	add(0, farMu(-1))
	return ops.NewGMM(spec)
}

// NewChainsInputs builds the inputs of c.
func NewChainsInputs(c ChainsCase) (ChainsInputs, error) {
	g, err := chainsGMM(c.K, c.D, c.Kind)
	if c.Far {
		g, err = farChainsGMM(c.K, c.D, c.Kind, c.DType)
	}
	if err != nil {
		return ChainsInputs{}, err
	}
	n, d := c.Rows, c.D
	in := ChainsInputs{G: g, H: ChainsStepSize, X: rounded(c.DType, testInput(n, d)),
		V: rounded(c.DType, wave(n*d, 2.3, 1)), Center: rounded(c.DType, wave(n*d, 1.7, 2)),
		Accepted: make([]float64, n)}
	for i := range in.Accepted {
		in.Accepted[i] = float64(i % 3)
	}
	in.HS = make([]float64, n)
	for i := range in.HS {
		in.HS[i] = ChainsStepSize * (0.5 + 0.25*float64(i%5))
	}
	if n > 2 {
		in.HS[2] = 0
	}
	if n > 4 {
		in.HS[4] = -1
	}
	in.HS = rounded(c.DType, in.HS)
	if c.Method == ops.ChainMALA {
		xt, err := tensor.FromFloat64s(c.DType, in.X, n, d)
		if err != nil {
			return ChainsInputs{}, err
		}
		lp, _ := tensor.New(nil, c.DType, n)
		sc, _ := tensor.New(nil, c.DType, n, d)
		out := ops.ScoreOutputs{LogP: lp, Score: sc}
		noise := c.Noise
		if noise.Kind == 0 {
			noise = ops.NoNoise
		}
		if err := ops.Reference().GMMScore(out, xt, g, noise); err != nil {
			return ChainsInputs{}, err
		}
		if c.Factor {
			ct, err := tensor.FromFloat64s(c.DType, in.Center, n, d)
			if err != nil {
				return ChainsInputs{}, err
			}
			if err := ops.Reference().AddGaussianFactor(out, xt, ct, 0.9, 0.4); err != nil {
				return ChainsInputs{}, err
			}
		}
		if in.LogP, err = lp.Float64s(); err != nil {
			return ChainsInputs{}, err
		}
		if in.Score, err = sc.Float64s(); err != nil {
			return ChainsInputs{}, err
		}
	}
	return in, nil
}

// ChainsResult is the state after a run.
type ChainsResult struct {
	X, V, LogP, Score, Accepted, Trace []float64
}

// ChainsRunner runs a GMMChains request on a backend (be.GMMChains, or ops.StepByStepChains).
type ChainsRunner func(be ops.Backend, req ops.GMMChains) error

// RunChains runs case c from inputs on be with run, every tensor inside guard bands on be's
// device, and returns the state (an error when a guard element was written).
func RunChains(be ops.Backend, c ChainsCase, in ChainsInputs, run ChainsRunner) (ChainsResult, error) {
	var bs bufs
	defer bs.close()
	dev, dt, n, d := be.Device(), c.DType, c.Rows, c.D
	req := ops.GMMChains{Method: c.Method, Mixture: in.G, Noise: c.Noise, Steps: c.Steps, H: in.H,
		ULD: ops.ULDParams{Gamma: 1.5, InvMass: 0.8}, Seed: c.Seed, FirstChain: uint64(n % 5),
		Sites: ops.ChainSites{First: c.First, Stride: 16, Step: 0, Accept: 1, ULD: 2}}
	var err error
	add := func(vals []float64, dt tensor.DType, shape ...int) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = bs.add(dev, dt, vals, shape...)
		return t
	}
	req.X = add(in.X, dt, n, d)
	switch c.Method {
	case ops.ChainMALA:
		req.LogP, req.Score, req.Accepted = add(in.LogP, dt, n), add(in.Score, dt, n, d), add(in.Accepted, tensor.F64, n)
	case ops.ChainULD:
		req.V = add(in.V, dt, n, d)
	}
	if c.Factor {
		req.Factor = &ops.GaussianFactor{Center: add(in.Center, dt, n, d), A: 0.9, V: 0.4}
	}
	if c.PerChain {
		req.HS = add(in.HS, dt, n)
	}
	if c.Trace {
		req.Thin = 2
		req.Trace = add(nil, dt, c.Steps/2, n, d)
	}
	if err != nil {
		return ChainsResult{}, err
	}
	if err := run(be, req); err != nil {
		return ChainsResult{}, err
	}
	if err := dev.Synchronize(); err != nil {
		return ChainsResult{}, err
	}
	var r ChainsResult
	for _, o := range []struct {
		dst  *[]float64
		t    *tensor.Tensor
		what string
	}{{&r.X, req.X, "X"}, {&r.V, req.V, "V"}, {&r.LogP, req.LogP, "log p"}, {&r.Score, req.Score, "score"},
		{&r.Accepted, req.Accepted, "accepted"}, {&r.Trace, req.Trace, "trace"}} {
		if o.t == nil {
			continue
		}
		if *o.dst, err = bs.get(o.t, o.what); err != nil {
			return ChainsResult{}, err
		}
	}
	if f := req.Factor; f != nil {
		center, err := bs.get(f.Center, "factor center")
		if err != nil {
			return ChainsResult{}, err
		}
		if err := exactRows(center, in.Center, d); err != nil {
			return ChainsResult{}, fmt.Errorf("the factor center changed: %w", err)
		}
	}
	return r, nil
}

// CompareChains compares a run with the reference run of case c: MALA chains whose acceptance
// count differs are flips (at most ChainFlipsAllowed, their states not compared); every other
// output within ChainsRtol of the reference's row scale, NaN exactly where the reference has NaN.
// It returns the number of flips.
func CompareChains(c ChainsCase, got, ref ChainsResult) (int, error) {
	n, d := c.Rows, c.D
	flip := make([]bool, n)
	flips := 0
	for i := range ref.Accepted {
		if got.Accepted[i] != ref.Accepted[i] {
			flip[i] = true
			flips++
		}
	}
	if allowed := ChainFlipsAllowed(c.DType, n, c.Steps); flips > allowed {
		return flips, fmt.Errorf("%d MALA decisions differ from the reference (at most %d allowed)", flips, allowed)
	}
	rtol := ChainsRtol(c.DType, c.Steps)
	// keep drops the rows of flipped chains (rows of width w; slices of n rows repeat).
	keep := func(v []float64, w int) []float64 {
		out := make([]float64, 0, len(v))
		for r := 0; r*w < len(v); r++ {
			if !flip[r%n] {
				out = append(out, v[r*w:(r+1)*w]...)
			}
		}
		return out
	}
	for _, o := range []struct {
		name     string
		got, ref []float64
		w        int
	}{{"X", got.X, ref.X, d}, {"V", got.V, ref.V, d}, {"log p", got.LogP, ref.LogP, 1},
		{"score", got.Score, ref.Score, d}, {"trace", got.Trace, ref.Trace, d}} {
		if len(o.got) != len(o.ref) {
			return flips, fmt.Errorf("%s: length %d, reference has %d", o.name, len(o.got), len(o.ref))
		}
		if len(o.ref) == 0 {
			continue
		}
		if err := CompareRows(keep(o.got, o.w), keep(o.ref, o.w), o.w, rtol); err != nil {
			return flips, fmt.Errorf("%s: %w", o.name, err)
		}
	}
	return flips, nil
}

// CheckGMMChains runs case c on b and on the CPU reference from the same inputs and compares them
// (CompareChains).
func CheckGMMChains(b ops.Backend, c ChainsCase) error {
	_, err := checkGMMChains(b, c)
	return err
}

// checkGMMChains is CheckGMMChains returning the number of MALA flips.
func checkGMMChains(b ops.Backend, c ChainsCase) (int, error) {
	in, err := NewChainsInputs(c)
	if err != nil {
		return 0, err
	}
	fused := func(be ops.Backend, req ops.GMMChains) error { return be.GMMChains(req) }
	got, err := RunChains(b, c, in, fused)
	if err != nil {
		return 0, err
	}
	ref, err := RunChains(ops.Reference(), c, in, fused)
	if err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	if len(ref.X) > 0 && !moved(in.X, ref.X) {
		return 0, fmt.Errorf("no chain moved: the case tests nothing")
	}
	return CompareChains(c, got, ref)
}

// moved reports whether some finite element of after differs from before.
func moved(before, after []float64) bool {
	for i := range before {
		if !math.IsNaN(after[i]) && after[i] != before[i] {
			return true
		}
	}
	return false
}

// ChainsCases are the suite's GMMChains problems: each method and dtype over shapes from the
// empty batch to d = 256 (every kernel variant of the CUDA backend: a thread per chain up to
// d = 16, a warp above), K ∈ {1, 5, 40}, with the factor, per-chain step sizes, the trace and the
// noise kinds rotating through the cases.
func ChainsCases() []ChainsCase {
	shapes := []struct{ rows, k, d int }{
		{0, 3, 2}, {1, 1, 1}, {3, 5, 3}, {33, 5, 8}, {33, 40, 16}, {1025, 5, 2}, {65, 5, 17},
		{33, 1, 33}, {9, 5, 64}, {5, 40, 128}, {3, 5, 256},
	}
	noises := []ops.Noise{{}, ops.AtSigma(0.5), ops.AtTime(0.4), {Kind: ops.Affine, Scale: 0.9, Var: 0.3}}
	var cs []ChainsCase
	i := 0
	for _, m := range []ops.ChainMethod{ops.ChainULA, ops.ChainMALA, ops.ChainULD} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			for _, s := range shapes {
				kind := ops.Isotropic
				if i%2 == 1 {
					kind = ops.Diagonal
				}
				cs = append(cs, ChainsCase{Method: m, DType: dt, Rows: s.rows, K: s.k, D: s.d, Kind: kind,
					Noise: noises[i%4], Factor: i%3 != 0, PerChain: m != ops.ChainULD && i%4 < 2,
					Trace: i%5 < 3, Steps: 4, Seed: 0xc4a1 + uint64(i), First: 1<<28 + uint64(i)})
				i++
			}
		}
	}
	// Unreachable components first and last: a thread per chain (d = 3) and a warp (d = 24).
	for _, m := range []ops.ChainMethod{ops.ChainMALA, ops.ChainULA} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			for _, d := range []int{3, 24} {
				cs = append(cs, ChainsCase{Method: m, DType: dt, Rows: 37, K: 3, D: d, Kind: ops.Isotropic,
					Far: true, Noise: noises[i%4], Steps: 4, Seed: 0xfa4 + uint64(i), First: 1<<29 + uint64(i)})
				i++
			}
		}
	}
	return cs
}

// CheckChainsRejections checks that b refuses what the reference refuses, ErrNotFusable where the
// reference says so.
func CheckChainsRejections(b ops.Backend) error {
	dev := b.Device()
	g, err := testGMM(2, 3, ops.Isotropic)
	if err != nil {
		return err
	}
	full, err := testGMM(2, 3, ops.Full)
	if err != nil {
		return err
	}
	x, err := tensor.New(dev, tensor.F32, 4, 3)
	if err != nil {
		return err
	}
	defer x.Close()
	lp, err := tensor.New(dev, tensor.F32, 4)
	if err != nil {
		return err
	}
	defer lp.Close()
	base := ops.GMMChains{Method: ops.ChainULA, Mixture: g, Steps: 2, H: 0.1, X: x,
		Sites: ops.ChainSites{Stride: 16, Step: 0, Accept: 1, ULD: 2}}
	cases := []struct {
		name       string
		edit       func(c *ops.GMMChains)
		notFusable bool
	}{
		{"full covariances", func(c *ops.GMMChains) { c.Mixture = full }, true},
		{"per-row levels", func(c *ops.GMMChains) { c.Noise = ops.Noise{Kind: ops.VE, Levels: lp} }, true},
		{"no steps", func(c *ops.GMMChains) { c.Steps = 0 }, false},
		{"zero step size", func(c *ops.GMMChains) { c.H = 0 }, false},
		{"MALA without log p", func(c *ops.GMMChains) { c.Method = ops.ChainMALA }, false},
		{"ULD without velocity", func(c *ops.GMMChains) { c.Method = ops.ChainULD }, false},
		{"site stride 1", func(c *ops.GMMChains) { c.Sites.Stride = 1 }, false},
		{"chains beyond 2^32", func(c *ops.GMMChains) { c.FirstChain = ops.MaxChains - 2 }, false},
	}
	if dev.Kind() != tensor.KindCPU {
		host, err := tensor.New(nil, tensor.F32, 4, 3)
		if err != nil {
			return err
		}
		cases = append(cases, struct {
			name       string
			edit       func(c *ops.GMMChains)
			notFusable bool
		}{"host state on a device backend", func(c *ops.GMMChains) { c.X = host }, false})
	}
	var errs []error
	for _, tc := range cases {
		c := base
		tc.edit(&c)
		err := b.GMMChains(c)
		switch {
		case err == nil:
			errs = append(errs, fmt.Errorf("%s: accepted, want an error", tc.name))
		case errors.Is(err, ops.ErrNotFusable) != tc.notFusable:
			errs = append(errs, fmt.Errorf("%s: ErrNotFusable = %v, want %v (%v)", tc.name, !tc.notFusable, tc.notFusable, err))
		}
	}
	return errors.Join(errs...)
}

// RunLangevin runs the Langevin checks against b as subtests: the step ops over edge shapes, every
// ChainsCases problem against the reference, and the rejections. It does not close b.
func RunLangevin(t *testing.T, b ops.Backend) {
	t.Run("step ops", func(t *testing.T) {
		if err := CheckStepOps(b); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("gmm chains", func(t *testing.T) {
		flips := map[tensor.DType]int{}
		for _, c := range ChainsCases() {
			f, err := checkGMMChains(b, c)
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			flips[c.DType] += f
		}
		t.Logf("MALA decisions that differ from the reference: f32 %d, f64 %d", flips[tensor.F32], flips[tensor.F64])
	})
	t.Run("gmm chains bad input", func(t *testing.T) {
		if err := CheckChainsRejections(b); err != nil {
			t.Fatal(err)
		}
	})
}
