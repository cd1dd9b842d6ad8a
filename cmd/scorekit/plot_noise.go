package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
)

// Limits of the noise and optimisation plots.
const (
	fanMaxPaths  = 50   // paths drawn in a fan
	fanMaxPoints = 1000 // points drawn per path (longer paths are subsampled)
	histBins     = 100
)

// fan is a set of paths (row-major (paths, length), the values at t_k = k·horizon/length,
// k = 1..length) to draw as a fan from start (0: the origin), with the exact law's standard
// deviation sd(t): ±sd(t) about 0, or, when centered, mean(t) ± sd(t) (mean nil: no exact
// envelope) with the sample mean ± SD.
type fan struct {
	title           string
	values          []float64
	paths, length   int
	horizon         float64
	cumulate        bool // values are increments: sum them into paths first
	start           float64
	centered        bool
	mean            func(t float64) float64
	sd              func(t float64) float64
	sdLabel         string
	xLabel, yLabel  string
	reference       []float64 // horizontal reference lines (e.g. an escape threshold)
	referenceLegend string
}

// fanColor is the colour of path i: a cycle of 10 hues, half transparent.
func fanColor(i int) color.Color {
	c := fanPalette[i%len(fanPalette)]
	return color.NRGBA{R: c.R, G: c.G, B: c.B, A: 150}
}

var fanPalette = []color.NRGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// addFanLine adds path i of a fan (pts, in fanColor(i), thin) to p.
func addFanLine(p *plot.Plot, pts plotter.XYs, i int) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	l.Color = fanColor(i)
	l.Width = vg.Points(0.6)
	p.Add(l)
	return nil
}

// renderFan draws the fan: at most fanMaxPaths paths, each from (0, 0), the exact ±sd(t) envelope
// (dashed) and the sample standard deviation over all paths at each time (dotted), and returns
// the PNG bytes.
func renderFan(f fan) ([]byte, error) {
	stride := max(1, (f.length+fanMaxPoints-1)/fanMaxPoints)
	dt := f.horizon / float64(f.length)
	var ks []int // indices k = 0..length drawn (0: the origin)
	for k := 0; k <= f.length; k += stride {
		ks = append(ks, k)
	}
	if ks[len(ks)-1] != f.length {
		ks = append(ks, f.length)
	}
	// Paths with the origin: path p at index k is value(p, k), k = 0..length.
	sum, sum2 := make([]float64, f.length+1), make([]float64, f.length+1)
	drawn := make([]plotter.XYs, min(f.paths, fanMaxPaths))
	for p := 0; p < f.paths; p++ {
		row := f.values[p*f.length : (p+1)*f.length]
		acc := 0.0
		var pts plotter.XYs
		if p < len(drawn) {
			pts = make(plotter.XYs, 0, len(ks))
			pts = append(pts, plotter.XY{Y: f.start})
		}
		next := 1
		for k := 1; k <= f.length; k++ {
			v := row[k-1]
			if f.cumulate {
				acc += v
				v = acc
			}
			sum[k] += v
			sum2[k] += v * v
			if p < len(drawn) && next < len(ks) && ks[next] == k {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					pts = append(pts, plotter.XY{X: float64(k) * dt, Y: v})
				}
				next++
			}
		}
		if p < len(drawn) {
			drawn[p] = pts
		}
	}
	p := plot.New()
	p.Title.Text = f.title
	p.X.Label.Text, p.Y.Label.Text = "t", "B(t)"
	if f.xLabel != "" {
		p.X.Label.Text = f.xLabel
	}
	if f.yLabel != "" {
		p.Y.Label.Text = f.yLabel
	}
	p.Legend.Top, p.Legend.Left = true, true
	for i, pts := range drawn {
		if len(pts) < 2 {
			continue
		}
		if err := addFanLine(p, pts, i); err != nil {
			return nil, err
		}
	}
	envelope := func(center, sd func(k int) float64, dashes []vg.Length, width vg.Length, label string) error {
		var hi, lo plotter.XYs
		for _, k := range ks {
			c, s := center(k), sd(k)
			if math.IsNaN(s) || math.IsInf(s, 0) || math.IsNaN(c) || math.IsInf(c, 0) {
				continue
			}
			hi = append(hi, plotter.XY{X: float64(k) * dt, Y: c + s})
			lo = append(lo, plotter.XY{X: float64(k) * dt, Y: c - s})
		}
		if len(hi) < 2 {
			return nil
		}
		for i, pts := range []plotter.XYs{hi, lo} {
			l, err := plotter.NewLine(pts)
			if err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			l.Color = color.Black
			l.Width = width
			l.Dashes = dashes
			p.Add(l)
			if i == 0 {
				p.Legend.Add(label, l)
			}
		}
		return nil
	}
	zero := func(int) float64 { return 0 }
	exactCenter, sampleCenter, sampleSD := zero, zero, func(k int) float64 { return math.Sqrt(sum2[k] / float64(f.paths)) }
	sampleLabel := fmt.Sprintf("sample ±SD over %d paths", f.paths)
	if f.centered {
		exactCenter = func(k int) float64 { return math.NaN() }
		if f.mean != nil {
			exactCenter = func(k int) float64 { return f.mean(float64(k) * dt) }
		}
		sampleCenter = func(k int) float64 {
			if k == 0 {
				return f.start
			}
			return sum[k] / float64(f.paths)
		}
		sampleSD = func(k int) float64 {
			if k == 0 {
				return 0
			}
			m := sum[k] / float64(f.paths)
			return math.Sqrt(max(0, sum2[k]/float64(f.paths)-m*m))
		}
		sampleLabel = fmt.Sprintf("sample mean ± SD over %d paths", f.paths)
	}
	if f.sd != nil {
		if err := envelope(exactCenter, func(k int) float64 { return f.sd(float64(k) * dt) },
			[]vg.Length{vg.Points(5), vg.Points(3)}, vg.Points(1.6), f.sdLabel); err != nil {
			return nil, err
		}
	}
	if err := envelope(sampleCenter, sampleSD, []vg.Length{vg.Points(1), vg.Points(2)}, vg.Points(1.2), sampleLabel); err != nil {
		return nil, err
	}
	for i, y := range f.reference {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: f.horizon, Y: y}})
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		l.Color = color.NRGBA{R: 200, A: 255}
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
		if i == 0 && f.referenceLegend != "" {
			p.Legend.Add(f.referenceLegend, l)
		}
	}
	return encodePlots([][]*plot.Plot{{p}}, 7*vg.Inch, 4.5*vg.Inch)
}

// finiteSorted returns the finite values of v, sorted.
func finiteSorted(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, e := range v {
		if !math.IsNaN(e) && !math.IsInf(e, 0) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}

// quantileSorted is the q-quantile of sorted values (nearest rank).
func quantileSorted(s []float64, q float64) float64 {
	i := int(math.Round(q * float64(len(s)-1)))
	return s[min(max(i, 0), len(s)-1)]
}

// histogramLine is the density histogram of sorted values over [lo, hi] in bins as points at
// the bin centres, leaving out empty bins (a log-scale axis cannot show 0).
func histogramLine(s []float64, lo, hi float64, bins, total int) plotter.XYs {
	counts := make([]int, bins)
	w := (hi - lo) / float64(bins)
	for _, v := range s {
		if v < lo || v > hi {
			continue
		}
		counts[min(int((v-lo)/w), bins-1)]++
	}
	var pts plotter.XYs
	for b, c := range counts {
		if c > 0 {
			pts = append(pts, plotter.XY{X: lo + (float64(b)+0.5)*w, Y: float64(c) / (float64(total) * w)})
		}
	}
	return pts
}

// stableDensity is the closed-form density of the plotted law where there is one (α = 2 and
// α = 1 symmetric or isotropic marginal, α = ½ positive), else nil.
func stableDensity(s ops.StableSpec) (func(x float64) float64, string) {
	scale := 1.0 // isotropic marginal: E e^{itX_1} = e^{−(|t|/√2)^α}, scale 1/√2
	if s.Kind == ops.StableIsotropic {
		scale = 1 / math.Sqrt2
	}
	switch {
	case (s.Kind == ops.StableSymmetric || s.Kind == ops.StableIsotropic) && s.Alpha == 2:
		v := 2 * scale * scale
		return func(x float64) float64 { return math.Exp(-x*x/(2*v)) / math.Sqrt(2*math.Pi*v) },
			fmt.Sprintf("N(0, %g)", v)
	case (s.Kind == ops.StableSymmetric || s.Kind == ops.StableIsotropic) && s.Alpha == 1:
		return func(x float64) float64 { return scale / (math.Pi * (scale*scale + x*x)) },
			fmt.Sprintf("Cauchy(0, %.3g)", scale)
	case s.Kind == ops.StablePositive && s.Alpha == 0.5:
		// E e^{−sA} = e^{−√s}: the Lévy law with c = ½.
		return func(x float64) float64 {
			if x <= 0 {
				return 0
			}
			return math.Pow(x, -1.5) * math.Exp(-1/(4*x)) / math.Sqrt(4*math.Pi)
		}, "Lévy(c = ½)"
	}
	return nil, ""
}

// renderStableHistogram draws the density histogram of stable values on a log scale between
// the 0.5% and 99.5% quantiles, with the closed-form density where there is one.
func renderStableHistogram(v []float64, spec ops.StableSpec) ([]byte, error) {
	s := finiteSorted(v)
	if len(s) == 0 {
		return nil, fmt.Errorf("plot: no finite values to draw")
	}
	lo, hi := quantileSorted(s, 0.005), quantileSorted(s, 0.995)
	if spec.Kind == ops.StablePositive {
		lo, hi = 0, quantileSorted(s, 0.99)
	}
	if !(hi > lo) {
		lo, hi = lo-1, hi+1
	}
	outside := 0
	for _, e := range s {
		if e < lo || e > hi {
			outside++
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %d values (%.2g%% outside the range drawn)", stableLawName(spec), len(v),
		100*float64(outside+len(v)-len(s))/float64(len(v)))
	p.X.Label.Text, p.Y.Label.Text = "x", "density (log scale)"
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	p.Legend.Top = true
	pts := histogramLine(s, lo, hi, histBins, len(v))
	if len(pts) > 0 {
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		l.StepStyle = plotter.MidStep
		l.Color = color.NRGBA{R: 20, G: 60, B: 200, A: 255}
		sc.Radius = vg.Points(1)
		p.Add(l, sc)
		p.Legend.Add("histogram", l)
	}
	if dens, name := stableDensity(spec); dens != nil {
		var ref plotter.XYs
		for _, x := range linspace(lo, hi, 400) {
			if y := dens(x); y > 0 {
				ref = append(ref, plotter.XY{X: x, Y: y})
			}
		}
		if len(ref) > 1 {
			l, err := plotter.NewLine(ref)
			if err != nil {
				return nil, fmt.Errorf("plot: %w", err)
			}
			l.Color = color.NRGBA{R: 200, A: 255}
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
			p.Legend.Add(name, l)
		}
	}
	return encodePlots([][]*plot.Plot{{p}}, 7*vg.Inch, 4.5*vg.Inch)
}

// optimizePlot is what `scorekit optimize fpgd --plot` draws.
type optimizePlot struct {
	title      string
	final      []float64 // (n, d)
	n, d       int
	f          solvers.Objective
	trace      []float64 // (rows, n, d) or nil
	traceSteps []int
	escape     *solvers.EscapeSpec
}

// renderOptimize draws the final states — for d ≥ 2 the first two coordinates over contours of
// f(x_1, x_2, 0, …, 0), for d = 1 a histogram — and, with a trace, a second panel with the first
// coordinate of at most fanMaxPaths chains against the step.
func renderOptimize(o optimizePlot) ([]byte, error) {
	var panels []*plot.Plot
	p := plot.New()
	p.Title.Text = o.title
	if o.d >= 2 {
		xs, ys := finiteSorted(column(o.final, o.d, 0)), finiteSorted(column(o.final, o.d, 1))
		if len(xs) == 0 || len(ys) == 0 {
			return nil, fmt.Errorf("plot: no finite final state to draw")
		}
		x0, x1 := widen(quantileSorted(xs, 0.005), quantileSorted(xs, 0.995))
		y0, y1 := widen(quantileSorted(ys, 0.005), quantileSorted(ys, 0.995))
		grid := densityGrid{xs: linspace(x0, x1, 121), ys: linspace(y0, y1, 121)}
		pt := make([]float64, o.d)
		for _, y := range grid.ys {
			for _, x := range grid.xs {
				pt[0], pt[1] = x, y
				grid.z = append(grid.z, o.f.Value(pt))
			}
		}
		zs := finiteSorted(grid.z)
		var levels []float64
		for _, q := range []float64{0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9} {
			levels = append(levels, quantileSorted(zs, q))
		}
		levels = slices.Compact(levels)
		p.Add(plotter.NewContour(grid, levels, palette.Heat(len(levels), 1)))
		var pts plotter.XYs
		for i := 0; i < o.n; i++ {
			x, y := o.final[i*o.d], o.final[i*o.d+1]
			if x >= x0 && x <= x1 && y >= y0 && y <= y1 {
				pts = append(pts, plotter.XY{X: x, Y: y})
			}
		}
		if len(pts) > 0 {
			s, err := plotter.NewScatter(pts)
			if err != nil {
				return nil, fmt.Errorf("plot: %w", err)
			}
			s.GlyphStyle.Shape = draw.CircleGlyph{}
			s.GlyphStyle.Radius = vg.Points(0.9)
			s.GlyphStyle.Color = color.NRGBA{R: 20, G: 60, B: 200, A: 110}
			p.Add(s)
		}
		p.X.Label.Text, p.Y.Label.Text = "x1", "x2"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = x0, x1, y0, y1
	} else {
		s := finiteSorted(o.final)
		if len(s) == 0 {
			return nil, fmt.Errorf("plot: no finite final state to draw")
		}
		lo, hi := widen(quantileSorted(s, 0.005), quantileSorted(s, 0.995))
		pts := histogramLine(s, lo, hi, histBins/2, len(o.final))
		if len(pts) > 0 {
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, fmt.Errorf("plot: %w", err)
			}
			l.StepStyle = plotter.MidStep
			l.Color = color.NRGBA{R: 20, G: 60, B: 200, A: 255}
			p.Add(l)
		}
		p.X.Label.Text, p.Y.Label.Text = "x1 (final)", "density"
	}
	panels = append(panels, p)
	if o.trace != nil && len(o.traceSteps) > 1 {
		rows := len(o.traceSteps)
		q := plot.New()
		q.Title.Text = fmt.Sprintf("x1 of %d of %d chains", min(o.n, fanMaxPaths), o.n)
		q.X.Label.Text, q.Y.Label.Text = "step", "x1"
		stride := max(1, (rows+fanMaxPoints-1)/fanMaxPoints)
		for i := 0; i < min(o.n, fanMaxPaths); i++ {
			var pts plotter.XYs
			for r := 0; r < rows; r += stride {
				v := o.trace[(r*o.n+i)*o.d]
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					pts = append(pts, plotter.XY{X: float64(o.traceSteps[r]), Y: v})
				}
			}
			if len(pts) < 2 {
				continue
			}
			if err := addFanLine(q, pts, i); err != nil {
				return nil, err
			}
		}
		if o.escape != nil && o.escape.Coord == 0 {
			last := float64(o.traceSteps[rows-1])
			l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: o.escape.Threshold}, {X: last, Y: o.escape.Threshold}})
			if err != nil {
				return nil, fmt.Errorf("plot: %w", err)
			}
			l.Color = color.NRGBA{R: 200, A: 255}
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			q.Add(l)
			q.Legend.Add("escape threshold", l)
			q.Legend.Top = true
		}
		panels = append(panels, q)
	}
	return encodePlots([][]*plot.Plot{panels}, 5*vg.Inch, 4.5*vg.Inch)
}

// column returns coordinate j of the rows of v (row-major, d columns).
func column(v []float64, d, j int) []float64 {
	out := make([]float64, 0, len(v)/d)
	for i := j; i < len(v); i += d {
		out = append(out, v[i])
	}
	return out
}

// widen pads [lo, hi] by 10% on each side (by 1 when it is a point).
func widen(lo, hi float64) (float64, float64) {
	if !(hi > lo) {
		return lo - 1, hi + 1
	}
	pad := 0.1 * (hi - lo)
	return lo - pad, hi + pad
}
