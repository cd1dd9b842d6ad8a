package solvers

import (
	"fmt"
	"math"
	"slices"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Trajectory geometry (docs/math.md §5.1, the measurements of Chen et al., "A geometric
// perspective on diffusion models"): functions over recorded trajectories — a sampler's
// Result.Trace, (T, N, d) with row k the states of the N chains after k steps, or its denoising
// trajectory Result.Denoised — on any device (they are copied to the host). Chains whose
// trajectory holds a NaN or ±Inf are left out of every average and reported.

// PathStats are the shape measures of one chain's trajectory x_0, …, x_n (n = T − 1).
type PathStats struct {
	// Chord is ‖x_n − x_0‖; Length is the polygon's length Σ_k ‖x_{k+1} − x_k‖ ≥ Chord.
	Chord, Length float64
	// MaxDeviation and MeanDeviation are the largest and the mean (over k = 0 … n) distance of
	// x_k from the chord, the segment [x_0, x_n]: ‖x_k − p_k‖ with p_k = x_0 + c_k (x_n − x_0),
	// c_k the projection coefficient clamped to [0, 1].
	MaxDeviation, MeanDeviation float64
	// TotalTurning is Σ_k θ_k and MaxTurning max_k θ_k over the turning angles (discrete
	// curvature) θ_k = ∠(x_k − x_{k−1}, x_{k+1} − x_k) ∈ [0, π] at the interior points
	// k = 1 … n − 1 (an angle next to a zero-length step is undefined and skipped).
	TotalTurning, MaxTurning float64
	// Finite is false when the trajectory holds a NaN or ±Inf (the other fields are then NaN).
	Finite bool
}

// PathGeometry summarises the trajectories of a batch of chains.
type PathGeometry struct {
	// Paths holds the measures of every chain (row i of the trajectory).
	Paths []PathStats
	// Used is the number of chains in the averages below: finite trajectories with a chord > 0.
	// NonFinite counts the chains left out for a NaN or ±Inf.
	Used, NonFinite int
	// The means over the used chains of MaxDeviation/Chord, MeanDeviation/Chord,
	// MaxDeviation/Length, MeanDeviation/Length, and of Chord/Length (the straightness, 1 for a
	// straight path traversed monotonically).
	MaxDevOverChord, MeanDevOverChord   float64
	MaxDevOverLength, MeanDevOverLength float64
	Straightness                        float64
	// TurningAngle[k−1] is the mean over the used chains of θ_k (radians), k = 1 … n − 1: the
	// trajectory's curvature profile along the steps (NaN where no chain has a defined angle).
	TurningAngle []float64
}

// trajectory3 reads a (T, N, d) tensor to the host.
func trajectory3(op string, traj *tensor.Tensor, minRows int) ([]float64, int, int, int, error) {
	if traj == nil || traj.Closed() {
		return nil, 0, 0, 0, fmt.Errorf("%s: trajectory is nil or closed", op)
	}
	if traj.Rank() != 3 {
		return nil, 0, 0, 0, fmt.Errorf("%s: trajectory has shape %v: want (steps+1, chains, dim)", op, traj.Shape())
	}
	T, n, d := traj.Dim(0), traj.Dim(1), traj.Dim(2)
	if T < minRows || n == 0 || d == 0 {
		return nil, 0, 0, 0, fmt.Errorf("%s: trajectory has shape %v: need at least %d states of ≥ 1 chain in dimension ≥ 1", op, traj.Shape(), minRows)
	}
	v, err := traj.Float64s()
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: read the trajectory: %w", op, err)
	}
	return v, T, n, d, nil
}

func finiteValues(v []float64) bool {
	for _, e := range v {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return false
		}
	}
	return true
}

// TrajectoryGeometry measures every chain's trajectory in traj (T ≥ 2 states, (T, N, d)): chord,
// length, deviation from the chord and turning angles (PathStats), and their means over the
// chains (PathGeometry). A quasi-linear trajectory — the finding of Chen et al. for the VE ODE —
// has small deviation ratios and straightness close to 1.
func TrajectoryGeometry(traj *tensor.Tensor) (*PathGeometry, error) {
	v, T, n, d, err := trajectory3("trajectory geometry", traj, 2)
	if err != nil {
		return nil, err
	}
	g := &PathGeometry{Paths: make([]PathStats, n), TurningAngle: make([]float64, max(T-2, 0))}
	turnCount := make([]int, len(g.TurningAngle))
	path := make([]float64, T*d)
	angles := make([]float64, len(g.TurningAngle))
	for i := 0; i < n; i++ {
		for k := 0; k < T; k++ {
			copy(path[k*d:(k+1)*d], v[(k*n+i)*d:(k*n+i+1)*d])
		}
		for k := range angles {
			angles[k] = math.NaN()
		}
		p := pathStats(path, T, d, angles)
		g.Paths[i] = p
		if !p.Finite {
			g.NonFinite++
			continue
		}
		if !(p.Chord > 0) {
			continue
		}
		g.Used++
		g.MaxDevOverChord += p.MaxDeviation / p.Chord
		g.MeanDevOverChord += p.MeanDeviation / p.Chord
		g.MaxDevOverLength += p.MaxDeviation / p.Length
		g.MeanDevOverLength += p.MeanDeviation / p.Length
		g.Straightness += p.Chord / p.Length
		for k, theta := range angles {
			if !math.IsNaN(theta) {
				g.TurningAngle[k] += theta
				turnCount[k]++
			}
		}
	}
	u := float64(g.Used) // 0/0 = NaN when no chain is used
	g.MaxDevOverChord /= u
	g.MeanDevOverChord /= u
	g.MaxDevOverLength /= u
	g.MeanDevOverLength /= u
	g.Straightness /= u
	for k := range g.TurningAngle {
		g.TurningAngle[k] /= float64(turnCount[k])
	}
	return g, nil
}

// pathStats measures one path (T points of d coordinates, row-major) and writes each defined
// turning angle θ_k into angles[k−1] (left as it is where undefined).
func pathStats(path []float64, T, d int, angles []float64) PathStats {
	if !finiteValues(path) {
		nan := math.NaN()
		return PathStats{Chord: nan, Length: nan, MaxDeviation: nan, MeanDeviation: nan, TotalTurning: nan, MaxTurning: nan}
	}
	p := PathStats{Finite: true}
	x0, xn := path[:d], path[(T-1)*d:]
	c := make([]float64, d)
	cc := 0.0
	for j := range c {
		c[j] = xn[j] - x0[j]
		cc += c[j] * c[j]
	}
	p.Chord = math.Sqrt(cc)
	for k := 0; k < T; k++ {
		xk := path[k*d : (k+1)*d]
		if k+1 < T {
			s := 0.0
			for j, v := range path[(k+1)*d : (k+2)*d] {
				e := v - xk[j]
				s += e * e
			}
			p.Length += math.Sqrt(s)
		}
		// distance to the segment [x0, xn]
		proj := 0.0
		if cc > 0 {
			for j := range c {
				proj += (xk[j] - x0[j]) * c[j]
			}
			proj = math.Min(1, math.Max(0, proj/cc))
		}
		s := 0.0
		for j := range c {
			e := xk[j] - x0[j] - proj*c[j]
			s += e * e
		}
		dev := math.Sqrt(s)
		p.MaxDeviation = math.Max(p.MaxDeviation, dev)
		p.MeanDeviation += dev / float64(T)
		if k == 0 || k == T-1 {
			continue
		}
		// turning angle at x_k
		prev, next := path[(k-1)*d:k*d], path[(k+1)*d:(k+2)*d]
		dot, na, nb := 0.0, 0.0, 0.0
		for j := range xk {
			a, b := xk[j]-prev[j], next[j]-xk[j]
			dot += a * b
			na += a * a
			nb += b * b
		}
		if na == 0 || nb == 0 {
			continue
		}
		theta := math.Acos(math.Max(-1, math.Min(1, dot/math.Sqrt(na*nb))))
		p.TotalTurning += theta
		p.MaxTurning = math.Max(p.MaxTurning, theta)
		angles[k-1] = theta
	}
	return p
}

// ConvergenceSteps returns, for every chain of traj (T, N, d), the convergence index: the first
// k such that ‖x_m − x_{T−1}‖ ≤ eps·scale for every m ≥ k (so T − 1 at the latest: the final state
// is within any tolerance of itself), −1 for a chain whose trajectory holds a NaN or ±Inf. For the
// sampling trajectory x_k and the denoising trajectory D(x_k; σ_k) of one run the indices are on
// the same grid (row k of both belongs to σ_k), so the two can be compared chain by chain: Chen
// et al.'s finding is that the denoising trajectory converges (to its own final value) in
// fewer steps. scale is the caller's length unit, e.g. the data's RMS radius (RMSRadius).
func ConvergenceSteps(traj *tensor.Tensor, eps, scale float64) ([]int, error) {
	const op = "convergence steps"
	if !finitePositive(eps) || !finitePositive(scale) {
		return nil, fmt.Errorf("%s: eps = %g, scale = %g: both must be finite numbers > 0", op, eps, scale)
	}
	v, T, n, d, err := trajectory3(op, traj, 1)
	if err != nil {
		return nil, err
	}
	tol := eps * scale
	out := make([]int, n)
	for i := 0; i < n; i++ {
		final := v[((T-1)*n+i)*d : ((T-1)*n+i+1)*d]
		for k := T - 1; k >= 0; k-- {
			row := v[(k*n+i)*d : (k*n+i+1)*d]
			if !finiteValues(row) {
				out[i] = -1
				break
			}
			s := 0.0
			for j, x := range row {
				e := x - final[j]
				s += e * e
			}
			if out[i] == 0 && math.Sqrt(s) > tol {
				out[i] = k + 1 // the last index out of tolerance, + 1; keep scanning for non-finite rows
			}
		}
	}
	return out, nil
}

// DistanceToFinal returns, for every row k of traj (T, N, d), the mean over the finite chains of
// ‖x_k − x_{T−1}‖: the convergence profile that ConvergenceSteps thresholds.
func DistanceToFinal(traj *tensor.Tensor) ([]float64, error) {
	v, T, n, d, err := trajectory3("distance to final", traj, 1)
	if err != nil {
		return nil, err
	}
	out := make([]float64, T)
	used := 0
	for i := 0; i < n; i++ {
		ok := true
		for k := 0; k < T && ok; k++ {
			ok = finiteValues(v[(k*n+i)*d : (k*n+i+1)*d])
		}
		if !ok {
			continue
		}
		used++
		final := v[((T-1)*n+i)*d : ((T-1)*n+i+1)*d]
		for k := 0; k < T; k++ {
			s := 0.0
			for j, x := range v[(k*n+i)*d : (k*n+i+1)*d] {
				e := x - final[j]
				s += e * e
			}
			out[k] += math.Sqrt(s)
		}
	}
	for k := range out {
		out[k] /= float64(used)
	}
	return out, nil
}

// RMSRadius is sqrt((1/M) Σ_i ‖y_i − ȳ‖²) over the finite rows of points (row-major, d columns):
// the data's length scale (NaN when there is no finite row).
func RMSRadius(points []float64, d int) float64 {
	rows := finiteRows(points, d)
	if d < 1 || len(rows) == 0 {
		return math.NaN()
	}
	m := make([]float64, d)
	for _, r := range rows {
		for j, v := range r {
			m[j] += v / float64(len(rows))
		}
	}
	s := 0.0
	for _, r := range rows {
		for j, v := range r {
			s += (v - m[j]) * (v - m[j])
		}
	}
	return math.Sqrt(s / float64(len(rows)))
}

// MeanShift writes one Gaussian mean-shift iteration of bandwidth σ > 0 from every row of x into
// dst (both row-major, d columns), over the data points (row-major, d columns):
//
//	m(x) = Σ_i w_i y_i,   w = softmax_i(−‖x − y_i‖² / (2σ²)),
//
// computed on the host in float64, two passes (the maximum logit first, then the weighted sum),
// the differences summed directly. It is the empirical optimal denoiser D(x; σ) of docs/math.md
// §1.2, written independently of ops.Backend.EmpiricalScore.
func MeanShift(dst, x, data []float64, d int, sigma float64) error {
	const op = "mean shift"
	if d < 1 || len(data) == 0 || len(data)%d != 0 || len(x)%d != 0 || len(dst) != len(x) {
		return fmt.Errorf("%s: %d data values, %d points, %d outputs: want whole rows of d = %d and len(dst) = len(x)", op, len(data), len(x), len(dst), d)
	}
	if !finitePositive(sigma) {
		return fmt.Errorf("%s: bandwidth σ = %g: must be a finite number > 0", op, sigma)
	}
	m := len(data) / d
	logit := make([]float64, m)
	out := make([]float64, d)
	for r := 0; r+d <= len(x); r += d {
		xr := x[r : r+d]
		mx := math.Inf(-1)
		for i := 0; i < m; i++ {
			s := 0.0
			for j, y := range data[i*d : (i+1)*d] {
				e := xr[j] - y
				s += e * e
			}
			logit[i] = -s / (2 * sigma * sigma)
			mx = math.Max(mx, logit[i])
		}
		clear(out)
		total := 0.0
		for i := 0; i < m; i++ {
			w := math.Exp(logit[i] - mx)
			total += w
			for j, y := range data[i*d : (i+1)*d] {
				out[j] += w * y
			}
		}
		for j := range out {
			dst[r+j] = out[j] / total
		}
	}
	return nil
}

// MeanShiftReport compares one Euler step of the VE ODE to σ = 0 with one mean-shift iteration.
type MeanShiftReport struct {
	// MaxAbsDiff is max |Euler − mean shift| over all coordinates of all rows.
	MaxAbsDiff float64
	// MaxAbs is the largest |x| or |mean shift| (the scale MaxAbsDiff is to be read against: the
	// step x − σ·(x − D)/σ cancels x, so its rounding is relative to both).
	MaxAbs float64
}

// MeanShiftCheck verifies the identity of Chen et al. for the empirical optimal denoiser: one
// Euler step of the VE probability-flow ODE dx/dσ = (x − D(x; σ))/σ from σ to 0,
//
//	x' = x + (0 − σ) d,   d = (x − D(x; σ))/σ,
//
// computed on b as the sampler computes it (D by b.EmpiricalScore at ops.AtSigma(σ), then two
// ops.Backend.Combine calls, d and x'), equals one Gaussian mean-shift iteration of bandwidth σ
// from x over the data (MeanShift, on the host in float64): x' = D(x; σ) = m(x). x (N, d) lives
// on b's device; the report's difference is rounding only (a few ulp of the values in float64;
// float32 rounding of D, d and x' in float32).
func MeanShiftCheck(b ops.Backend, data *ops.Empirical, x *tensor.Tensor, sigma float64) (MeanShiftReport, error) {
	const op = "mean-shift check"
	var rep MeanShiftReport
	if b == nil {
		return rep, fmt.Errorf("%s: nil backend", op)
	}
	if data == nil {
		return rep, fmt.Errorf("%s: nil data set", op)
	}
	if data.MixtureSize() > 1 {
		return rep, fmt.Errorf("%s: the data set carries a %d-term scale mixture: its denoiser is not a mean-shift step", op, data.MixtureSize())
	}
	if !finitePositive(sigma) {
		return rep, fmt.Errorf("%s: σ = %g: must be a finite number > 0", op, sigma)
	}
	if x == nil || x.Closed() || x.Rank() != 2 {
		return rep, fmt.Errorf("%s: x must be an open (N, d) tensor", op)
	}
	n, d, dt, dev := x.Dim(0), x.Dim(1), x.DType(), b.Device()
	den, err := tensor.New(dev, dt, n, d)
	if err != nil {
		return rep, fmt.Errorf("%s: allocate (%d, %d): %w", op, n, d, err)
	}
	defer den.Close()
	deriv, err := tensor.New(dev, dt, n, d)
	if err != nil {
		return rep, fmt.Errorf("%s: allocate (%d, %d): %w", op, n, d, err)
	}
	defer deriv.Close()
	next, err := tensor.New(dev, dt, n, d)
	if err != nil {
		return rep, fmt.Errorf("%s: allocate (%d, %d): %w", op, n, d, err)
	}
	defer next.Close()
	if err := b.EmpiricalScore(ops.ScoreOutputs{Denoiser: den}, x, data, ops.AtSigma(sigma)); err != nil {
		return rep, fmt.Errorf("%s: %w", op, err)
	}
	if err := b.Combine(deriv, []ops.Term{{T: x, C: 1 / sigma}, {T: den, C: -1 / sigma}}, 0, ops.Draw{}); err != nil {
		return rep, fmt.Errorf("%s: the derivative: %w", op, err)
	}
	if err := b.Combine(next, []ops.Term{{T: x, C: 1}, {T: deriv, C: -sigma}}, 0, ops.Draw{}); err != nil {
		return rep, fmt.Errorf("%s: the Euler step: %w", op, err)
	}
	euler, err := next.Float64s()
	if err != nil {
		return rep, fmt.Errorf("%s: %w", op, err)
	}
	xs, err := x.Float64s()
	if err != nil {
		return rep, fmt.Errorf("%s: %w", op, err)
	}
	pts := make([]float64, data.Points()*d)
	for i := 0; i < data.Points(); i++ {
		for j := 0; j < d; j++ {
			pts[i*d+j] = data.At(i, j)
		}
	}
	ms := make([]float64, len(xs))
	if err := MeanShift(ms, xs, pts, d, sigma); err != nil {
		return rep, fmt.Errorf("%s: %w", op, err)
	}
	for i, v := range ms {
		rep.MaxAbs = math.Max(rep.MaxAbs, math.Max(math.Abs(v), math.Abs(xs[i])))
		diff := math.Abs(euler[i] - v)
		if math.IsNaN(diff) {
			diff = math.Inf(1)
		}
		rep.MaxAbsDiff = math.Max(rep.MaxAbsDiff, diff)
	}
	return rep, nil
}

// MemorisationReport says how close samples are to the training points (docs/math.md §5.1: with
// the empirical optimal denoiser, ODE sampling ends on training points).
type MemorisationReport struct {
	// Nearest[i] is the distance from sample i to its nearest data point (NaN for a sample with
	// a non-finite coordinate); Spacing[k] the distance from data point k to its nearest other
	// data point.
	Nearest, Spacing []float64
	// MedianNearest and MedianSpacing are their medians (over the finite values).
	MedianNearest, MedianSpacing float64
	// Memorised is the fraction of the finite samples within Tol·MedianSpacing of a data point.
	Memorised, Tol float64
}

// Memorisation compares the distances of samples to their nearest data point with the data's own
// nearest-neighbour spacing (both row-major with d columns; at least two distinct data points).
// Samples of a model that generalises sit at distances comparable to the spacing; memorised
// samples sit at a tiny fraction of it. tol ∈ (0, 1) sets Memorised (0.01: within 1% of the
// median spacing). Cost O((N + M) M d) on the host.
func Memorisation(samples, data []float64, d int, tol float64) (MemorisationReport, error) {
	const op = "memorisation"
	rep := MemorisationReport{Tol: tol}
	if d < 1 || len(data)%d != 0 || len(samples)%d != 0 || len(data) < 2*d || len(samples) == 0 {
		return rep, fmt.Errorf("%s: %d data values and %d sample values: want whole rows of d = %d, ≥ 2 data points and ≥ 1 sample", op, len(data), len(samples), d)
	}
	if !(tol > 0 && tol < 1) {
		return rep, fmt.Errorf("%s: tol = %g: must be in (0, 1)", op, tol)
	}
	m := len(data) / d
	if !finiteValues(data) {
		return rep, fmt.Errorf("%s: the data hold a NaN or ±Inf", op)
	}
	nearest := func(x []float64, skip int) float64 {
		best := math.Inf(1)
		for i := 0; i < m; i++ {
			if i == skip {
				continue
			}
			s := 0.0
			for j, y := range data[i*d : (i+1)*d] {
				e := x[j] - y
				s += e * e
				if s >= best {
					break
				}
			}
			best = math.Min(best, s)
		}
		return math.Sqrt(best)
	}
	rep.Spacing = make([]float64, m)
	for k := 0; k < m; k++ {
		rep.Spacing[k] = nearest(data[k*d:(k+1)*d], k)
	}
	rep.Nearest = make([]float64, len(samples)/d)
	var finite []float64
	for i := range rep.Nearest {
		x := samples[i*d : (i+1)*d]
		if !finiteValues(x) {
			rep.Nearest[i] = math.NaN()
			continue
		}
		rep.Nearest[i] = nearest(x, -1)
		finite = append(finite, rep.Nearest[i])
	}
	rep.MedianSpacing = medianOf(rep.Spacing)
	if rep.MedianSpacing == 0 {
		return rep, fmt.Errorf("%s: the median nearest-neighbour spacing of the data is 0 (duplicated points): no scale to compare with", op)
	}
	rep.MedianNearest = medianOf(finite)
	if len(finite) == 0 {
		rep.Memorised = math.NaN()
		return rep, nil
	}
	for _, v := range finite {
		if v <= tol*rep.MedianSpacing {
			rep.Memorised++
		}
	}
	rep.Memorised /= float64(len(finite))
	return rep, nil
}

// medianOf is the median of v (NaN when empty); v is not changed.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
