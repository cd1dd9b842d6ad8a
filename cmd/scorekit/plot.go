package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// scatterPanel is one panel of a scatter plot: samples (row-major, d columns) of which the first
// two coordinates are drawn, and optionally reference points beneath them, paths drawn as lines
// and the outline of a constraint domain.
type scatterPanel struct {
	title string
	x     []float64
	d     int
	// ref are reference points (d columns; the data set of an empirical target), drawn in grey.
	ref []float64
	// paths are trajectories, each a sequence of points (x0, x1 pairs), drawn as lines from a
	// grey start to a coloured end; a non-finite point breaks its line.
	paths [][]float64
	// domain, when not nil, is outlined (its projection on the first two coordinates: a box,
	// a ball; a polytope when d = 2).
	domain *ops.Domain
}

// Limits of what one panel draws.
const (
	maxPlotPaths = 30   // trajectories drawn
	maxRefPoints = 5000 // data points of an empirical target
)

// pathColors are the colours of the trajectories, in turn.
var pathColors = []color.Color{
	color.NRGBA{R: 31, G: 119, B: 180, A: 190}, color.NRGBA{R: 148, G: 103, B: 189, A: 190},
	color.NRGBA{R: 23, G: 150, B: 140, A: 190}, color.NRGBA{R: 140, G: 86, B: 75, A: 190},
	color.NRGBA{R: 227, G: 119, B: 194, A: 190}, color.NRGBA{R: 44, G: 110, B: 60, A: 190},
}

// empiricalPoints returns up to max of the data set's points (evenly spaced in its order),
// row-major with d columns.
func empiricalPoints(e *ops.Empirical, max int) []float64 {
	m, d := e.Points(), e.Dim()
	k := min(m, max)
	out := make([]float64, 0, k*d)
	for i := 0; i < k; i++ {
		r := i * m / k
		for j := 0; j < d; j++ {
			out = append(out, e.At(r, j))
		}
	}
	return out
}

// tracePaths returns the paths of up to max chains (evenly spaced chain indices) of a trajectory
// (rows, N, d) on any device: the first two coordinates of each row, copied a row at a time.
func tracePaths(tr *tensor.Tensor, max int) ([][]float64, error) {
	rows, n, d := tr.Dim(0), tr.Dim(1), tr.Dim(2)
	k := min(n, max)
	paths := make([][]float64, k)
	for r := 0; r < rows; r++ {
		v, err := tr.View(r*n*d, n, d)
		if err != nil {
			return nil, fmt.Errorf("plot: trajectory row %d: %w", r, err)
		}
		x, err := v.Float64s()
		if err != nil {
			return nil, fmt.Errorf("plot: trajectory row %d: %w", r, err)
		}
		for i := range paths {
			c := i * n / k
			paths[i] = append(paths[i], x[c*d], x[c*d+1])
		}
	}
	return paths, nil
}

// marginal2 returns the law of the first two coordinates of the mixture g (d ≥ 2): the mixture
// with the same weights, the first two coordinates of the means and the top-left 2×2 blocks of
// the covariances (full covariance, Σ = U diag(λ) Uᵀ).
func marginal2(g *ops.GMM) (*ops.GMM, error) {
	p := g.Params()
	d := p.D
	spec := ops.GMMSpec{}
	for k := 0; k < p.K; k++ {
		spec.Weights = append(spec.Weights, math.Exp(p.LogWeights[k]))
		spec.Means = append(spec.Means, []float64{p.Means[k*d], p.Means[k*d+1]})
		cov := func(a, b int) float64 {
			switch p.Kind {
			case ops.Isotropic:
				if a == b {
					return p.Lambda[k]
				}
				return 0
			case ops.Diagonal:
				if a == b {
					return p.Lambda[k*d+a]
				}
				return 0
			}
			s := 0.0
			u := p.U[k*d*d:]
			for j := 0; j < d; j++ {
				s += u[a*d+j] * p.Lambda[k*d+j] * u[b*d+j]
			}
			return s
		}
		c01 := cov(0, 1)
		spec.Covs = append(spec.Covs, [][]float64{{cov(0, 0), c01}, {c01, cov(1, 1)}})
	}
	return ops.NewGMM(spec)
}

// densityGrid is the log-density of a 2-D mixture on a regular grid (plotter.GridXYZ).
type densityGrid struct {
	xs, ys []float64
	z      []float64 // z[r*len(xs)+c]
}

func (g densityGrid) Dims() (c, r int)   { return len(g.xs), len(g.ys) }
func (g densityGrid) Z(c, r int) float64 { return g.z[r*len(g.xs)+c] }
func (g densityGrid) X(c int) float64    { return g.xs[c] }
func (g densityGrid) Y(r int) float64    { return g.ys[r] }
func linspace(lo, hi float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*float64(i)/float64(n-1)
	}
	return out
}

// newDensityGrid evaluates log p of the 2-D mixture g on a 121 × 121 grid of the box with the
// CPU reference (ops.CPU().GMMScore, no noise).
func newDensityGrid(g *ops.GMM, x0, x1, y0, y1 float64) (densityGrid, error) {
	const n = 121
	grid := densityGrid{xs: linspace(x0, x1, n), ys: linspace(y0, y1, n)}
	pts := make([]float64, 0, 2*n*n)
	for _, y := range grid.ys {
		for _, x := range grid.xs {
			pts = append(pts, x, y)
		}
	}
	xt, err := tensor.FromF64(pts, n*n, 2)
	if err != nil {
		return grid, err
	}
	lp, err := tensor.New(nil, tensor.F64, n*n)
	if err != nil {
		return grid, err
	}
	if err := ops.CPU().GMMScore(ops.ScoreOutputs{LogP: lp}, xt, g, ops.NoNoise); err != nil {
		return grid, fmt.Errorf("plot: density contours: %w", err)
	}
	grid.z, err = lp.Float64s()
	return grid, err
}

// plotBox returns the box drawn: every mean ± 3.5 standard deviations of the 2-D mixture (g may
// be nil), widened to hold the central 99% of every panel's samples, reference points and path
// ends. Without a mixture the box gets a 5% margin; it is infinite when there is nothing finite
// to draw.
func plotBox(g *ops.GMM, panels []scatterPanel) (x0, x1, y0, y1 float64) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	if g != nil {
		p := g.Params()
		for k := 0; k < p.K; k++ {
			sx, sy := marginalSD(p, k)
			mx, my := p.Means[2*k], p.Means[2*k+1]
			x0, x1 = math.Min(x0, mx-3.5*sx), math.Max(x1, mx+3.5*sx)
			y0, y1 = math.Min(y0, my-3.5*sy), math.Max(y1, my+3.5*sy)
		}
	}
	widen := func(pts []float64, d int) {
		for c, lo, hi := 0, &x0, &x1; c < 2; c, lo, hi = c+1, &y0, &y1 {
			var v []float64
			for i := c; i < len(pts); i += d {
				if !math.IsNaN(pts[i]) && !math.IsInf(pts[i], 0) {
					v = append(v, pts[i])
				}
			}
			if len(v) == 0 {
				continue
			}
			slices.Sort(v)
			*lo = math.Min(*lo, v[len(v)/200])
			*hi = math.Max(*hi, v[len(v)-1-len(v)/200])
		}
	}
	for _, pn := range panels {
		widen(pn.x, pn.d)
		widen(pn.ref, pn.d)
		var ends []float64
		for _, p := range pn.paths {
			if len(p) >= 2 {
				ends = append(ends, p[len(p)-2:]...)
			}
		}
		widen(ends, 2)
	}
	// A box or ball not much larger than what is drawn is drawn whole.
	for _, pn := range panels {
		if pn.domain == nil || !(x0 <= x1 && y0 <= y1) {
			continue
		}
		p := pn.domain.Params()
		var bx0, bx1, by0, by1 float64
		switch p.Kind {
		case ops.Box:
			bx0, bx1, by0, by1 = p.Lo[0], p.Hi[0], p.Lo[1], p.Hi[1]
		case ops.Ball:
			bx0, bx1, by0, by1 = p.Center[0]-p.Radius, p.Center[0]+p.Radius, p.Center[1]-p.Radius, p.Center[1]+p.Radius
		default:
			continue
		}
		if bx1-bx0 <= 2*(x1-x0) && by1-by0 <= 2*(y1-y0) {
			mx, my := 0.03*(bx1-bx0), 0.03*(by1-by0)
			x0, x1 = math.Min(x0, bx0-mx), math.Max(x1, bx1+mx)
			y0, y1 = math.Min(y0, by0-my), math.Max(y1, by1+my)
		}
	}
	if g == nil && x0 <= x1 && y0 <= y1 {
		mx, my := 0.05*(x1-x0)+1e-9, 0.05*(y1-y0)+1e-9
		x0, x1, y0, y1 = x0-mx, x1+mx, y0-my, y1+my
	}
	return x0, x1, y0, y1
}

// domainOutline returns the outline of the projection of dom on the first two coordinates as
// closed polylines, within the box [x0, x1] × [y0, y1] widened by half its size (the canvas
// clips the rest): a rectangle for a box, a circle for a ball, the clipped polygon of a 2-D
// polytope; nothing for a polytope in d > 2 (its projection needs a linear program).
func domainOutline(dom *ops.Domain, x0, x1, y0, y1 float64) []plotter.XYs {
	p := dom.Params()
	switch p.Kind {
	case ops.Box:
		return []plotter.XYs{{{X: p.Lo[0], Y: p.Lo[1]}, {X: p.Hi[0], Y: p.Lo[1]}, {X: p.Hi[0], Y: p.Hi[1]},
			{X: p.Lo[0], Y: p.Hi[1]}, {X: p.Lo[0], Y: p.Lo[1]}}}
	case ops.Ball:
		const k = 240
		c := make(plotter.XYs, k+1)
		for i := range c {
			a := 2 * math.Pi * float64(i) / k
			c[i] = plotter.XY{X: p.Center[0] + p.Radius*math.Cos(a), Y: p.Center[1] + p.Radius*math.Sin(a)}
		}
		return []plotter.XYs{c}
	case ops.Polytope:
		if p.Dim != 2 || math.IsInf(x0, 0) || math.IsInf(y0, 0) {
			return nil
		}
		wx, wy := (x1-x0)/2, (y1-y0)/2
		poly := plotter.XYs{{X: x0 - wx, Y: y0 - wy}, {X: x1 + wx, Y: y0 - wy}, {X: x1 + wx, Y: y1 + wy}, {X: x0 - wx, Y: y1 + wy}}
		for i := 0; i < p.M && len(poly) > 0; i++ {
			poly = clipHalfPlane(poly, p.A[2*i], p.A[2*i+1], p.B[i])
		}
		if len(poly) == 0 {
			return nil
		}
		return []plotter.XYs{append(poly, poly[0])}
	}
	return nil
}

// clipHalfPlane clips the convex polygon poly to {a·x + b·y ≤ c} (Sutherland–Hodgman).
func clipHalfPlane(poly plotter.XYs, a, b, c float64) plotter.XYs {
	var out plotter.XYs
	f := func(q plotter.XY) float64 { return a*q.X + b*q.Y - c }
	for i, cur := range poly {
		prev := poly[(i+len(poly)-1)%len(poly)]
		fc, fp := f(cur), f(prev)
		if (fc <= 0) != (fp <= 0) {
			t := fp / (fp - fc)
			out = append(out, plotter.XY{X: prev.X + t*(cur.X-prev.X), Y: prev.Y + t*(cur.Y-prev.Y)})
		}
		if fc <= 0 {
			out = append(out, cur)
		}
	}
	return out
}

// finiteRuns splits a path (x0, x1 pairs) at its non-finite points into runs of ≥ 2 points.
func finiteRuns(path []float64) []plotter.XYs {
	var runs []plotter.XYs
	var cur plotter.XYs
	flush := func() {
		if len(cur) >= 2 {
			runs = append(runs, cur)
		}
		cur = nil
	}
	for i := 0; i+1 < len(path); i += 2 {
		x, y := path[i], path[i+1]
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			flush()
			continue
		}
		cur = append(cur, plotter.XY{X: x, Y: y})
	}
	flush()
	return runs
}

// boxPoints returns the first two coordinates of the points (d columns) that are finite and,
// when the box is finite, inside it.
func boxPoints(pts []float64, d int, x0, x1, y0, y1 float64) plotter.XYs {
	var out plotter.XYs
	bounded := !math.IsInf(x0, 0) && !math.IsInf(y0, 0)
	for j := 0; j+d <= len(pts); j += d {
		x, y := pts[j], pts[j+1]
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			continue
		}
		if bounded && (x < x0 || x > x1 || y < y0 || y > y1) {
			continue
		}
		out = append(out, plotter.XY{X: x, Y: y})
	}
	return out
}

// marginalSD returns the standard deviations of coordinates 0 and 1 of component k of a 2-D
// mixture's parameters (full covariances, as marginal2 builds them).
func marginalSD(p ops.GMMParams, k int) (sx, sy float64) {
	u, l := p.U[k*4:(k+1)*4], p.Lambda[k*2:(k+1)*2]
	vx := u[0]*u[0]*l[0] + u[1]*u[1]*l[1]
	vy := u[2]*u[2]*l[0] + u[3]*u[3]*l[1]
	return math.Sqrt(vx), math.Sqrt(vy)
}

// renderScatter draws each panel (first two coordinates) over the log-density contours of the
// first two coordinates of g (nil: no contours) on a grid of cols columns and returns the PNG
// bytes: reference points in grey, then the domain's outline, the paths and the samples.
func renderScatter(panels []scatterPanel, g *ops.GMM, cols int) ([]byte, error) {
	ps, err := scatterPlots(panels, g)
	if err != nil {
		return nil, err
	}
	const tile = 4 * vg.Inch
	return encodePlots(gridOf(ps, cols), tile, tile)
}

// gridOf arranges plots in rows of cols (the last row padded with empty tiles).
func gridOf(ps []*plot.Plot, cols int) [][]*plot.Plot {
	rows := (len(ps) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
	}
	for i, p := range ps {
		grid[i/cols][i%cols] = p
	}
	return grid
}

// scatterPlots builds renderScatter's panels, one plot each.
func scatterPlots(panels []scatterPanel, g *ops.GMM) ([]*plot.Plot, error) {
	var m *ops.GMM
	var grid densityGrid
	if g != nil {
		var err error
		if m, err = marginal2(g); err != nil {
			return nil, fmt.Errorf("plot: marginal of the first two coordinates: %w", err)
		}
	}
	x0, x1, y0, y1 := plotBox(m, panels)
	bounded := !math.IsInf(x0, 0) && !math.IsInf(y0, 0)
	if m != nil {
		var err error
		if grid, err = newDensityGrid(m, x0, x1, y0, y1); err != nil {
			return nil, err
		}
	}
	plots := make([]*plot.Plot, len(panels))
	scatter := func(p *plot.Plot, pts plotter.XYs, radius vg.Length, c color.Color) error {
		if len(pts) == 0 {
			return nil
		}
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Radius = radius
		s.GlyphStyle.Color = c
		p.Add(s)
		return nil
	}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "x0"
		p.Y.Label.Text = "x1"
		if pn.d > 2 {
			p.X.Label.Text = fmt.Sprintf("x0   (the first two of %d coordinates)", pn.d)
		}
		if m != nil {
			zmax := slices.Max(grid.z)
			var levels []float64
			for _, off := range []float64{0.5, 1.5, 3, 5, 8, 12} {
				levels = append(levels, zmax-off)
			}
			slices.Sort(levels)
			c := plotter.NewContour(grid, levels, palette.Heat(len(levels), 1))
			p.Add(c)
		}
		if err := scatter(p, boxPoints(pn.ref, pn.d, x0, x1, y0, y1), vg.Points(0.7), color.NRGBA{R: 110, G: 110, B: 110, A: 90}); err != nil {
			return nil, err
		}
		if pn.domain != nil {
			for _, outline := range domainOutline(pn.domain, x0, x1, y0, y1) {
				l, err := plotter.NewLine(outline)
				if err != nil {
					return nil, fmt.Errorf("plot: domain outline: %w", err)
				}
				l.LineStyle.Width = vg.Points(1.2)
				l.LineStyle.Color = color.NRGBA{A: 255}
				l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				p.Add(l)
			}
		}
		if len(pn.paths) > 0 {
			var starts, ends plotter.XYs
			for k, path := range pn.paths {
				runs := finiteRuns(path)
				for _, run := range runs {
					l, err := plotter.NewLine(run)
					if err != nil {
						return nil, fmt.Errorf("plot: trajectory: %w", err)
					}
					l.LineStyle.Width = vg.Points(0.8)
					if len(path) > 2*100 { // a long (stochastic) path: thinner
						l.LineStyle.Width = vg.Points(0.45)
					}
					l.LineStyle.Color = pathColors[k%len(pathColors)]
					p.Add(l)
				}
				if len(runs) > 0 {
					starts = append(starts, runs[0][0])
					last := runs[len(runs)-1]
					ends = append(ends, last[len(last)-1])
				}
			}
			if err := scatter(p, starts, vg.Points(1.5), color.NRGBA{R: 120, G: 120, B: 120, A: 200}); err != nil {
				return nil, err
			}
			if err := scatter(p, ends, vg.Points(2), color.NRGBA{R: 20, G: 20, B: 120, A: 255}); err != nil {
				return nil, err
			}
		}
		if err := scatter(p, boxPoints(pn.x, pn.d, x0, x1, y0, y1), vg.Points(0.9), color.NRGBA{R: 20, G: 60, B: 200, A: 110}); err != nil {
			return nil, err
		}
		if bounded {
			p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = x0, x1, y0, y1
		}
		plots[i] = p
	}
	return plots, nil
}

// encodePlots draws a grid of plots (nil entries stay empty), each tile w × h, into a PNG.
func encodePlots(plots [][]*plot.Plot, w, h vg.Length) ([]byte, error) {
	rows, cols := len(plots), len(plots[0])
	img := vgimg.NewWith(vgimg.UseWH(w*vg.Length(cols), h*vg.Length(rows)), vgimg.UseDPI(110))
	dc := draw.New(img)
	pad := vg.Millimeter * 2
	canvases := plot.Align(plots, draw.Tiles{Rows: rows, Cols: cols, PadX: pad, PadY: pad, PadTop: pad,
		PadBottom: pad, PadLeft: pad, PadRight: pad}, dc)
	for r := range plots {
		for c := range plots[r] {
			if plots[r][c] != nil {
				plots[r][c].Draw(canvases[r][c])
			}
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// modeWeightSeries is one row of the demo's mode-weight panel: a method's fraction of samples
// nearest each mode's mean.
type modeWeightSeries struct {
	name    string
	weights []float64
}

// modeWeightPlot draws, for each mode k, the target's weight as a black bar and each series'
// weight as a point beside it (the series spread across the mode's slot, in order).
func modeWeightPlot(target []float64, series []modeWeightSeries) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "mode weights: target (bars) and sampled (points)"
	p.X.Label.Text, p.Y.Label.Text = "mode", "weight"
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	p.Legend.ThumbnailWidth = vg.Points(8)
	ymax := 0.0
	for k, w := range target {
		bar := plotter.XYs{{X: float64(k+1) - 0.42, Y: w}, {X: float64(k+1) + 0.42, Y: w}}
		l, err := plotter.NewLine(bar)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		l.Width, l.Color = vg.Points(2), color.NRGBA{A: 255}
		p.Add(l)
		if k == 0 {
			p.Legend.Add("target", l)
		}
		ymax = math.Max(ymax, w)
	}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	for i, s := range series {
		var pts plotter.XYs
		for k, w := range s.weights {
			off := -0.36 + 0.72*float64(i)/float64(max(len(series)-1, 1))
			pts = append(pts, plotter.XY{X: float64(k+1) + off, Y: w})
			ymax = math.Max(ymax, w)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		sc.GlyphStyle.Shape = shapes[i%len(shapes)]
		sc.GlyphStyle.Radius = vg.Points(2.2)
		sc.GlyphStyle.Color = pathColors[i%len(pathColors)]
		p.Add(sc)
		p.Legend.Add(s.name, sc)
	}
	p.X.Min, p.X.Max = 0.4, float64(len(target))+0.6
	p.Y.Min, p.Y.Max = 0, ymax*1.45 // room for the legend
	ticks := make([]plot.Tick, len(target))
	for k := range ticks {
		ticks[k] = plot.Tick{Value: float64(k + 1), Label: fmt.Sprint(k + 1)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	return p, nil
}
