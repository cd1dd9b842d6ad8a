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
// two coordinates are drawn.
type scatterPanel struct {
	title string
	x     []float64
	d     int
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

// plotBox returns the box drawn: every mean ± 3.5 standard deviations of the 2-D mixture,
// widened to hold the central 99% of every panel's samples.
func plotBox(g *ops.GMM, panels []scatterPanel) (x0, x1, y0, y1 float64) {
	p := g.Params()
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for k := 0; k < p.K; k++ {
		sx, sy := marginalSD(p, k)
		mx, my := p.Means[2*k], p.Means[2*k+1]
		x0, x1 = math.Min(x0, mx-3.5*sx), math.Max(x1, mx+3.5*sx)
		y0, y1 = math.Min(y0, my-3.5*sy), math.Max(y1, my+3.5*sy)
	}
	for _, pn := range panels {
		for c, lo, hi := 0, &x0, &x1; c < 2; c, lo, hi = c+1, &y0, &y1 {
			var v []float64
			for i := c; i < len(pn.x); i += pn.d {
				if !math.IsNaN(pn.x[i]) && !math.IsInf(pn.x[i], 0) {
					v = append(v, pn.x[i])
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
	return x0, x1, y0, y1
}

// marginalSD returns the standard deviations of coordinates 0 and 1 of component k of a 2-D
// mixture's parameters (full covariances, as marginal2 builds them).
func marginalSD(p ops.GMMParams, k int) (sx, sy float64) {
	u, l := p.U[k*4:(k+1)*4], p.Lambda[k*2:(k+1)*2]
	vx := u[0]*u[0]*l[0] + u[1]*u[1]*l[1]
	vy := u[2]*u[2]*l[0] + u[3]*u[3]*l[1]
	return math.Sqrt(vx), math.Sqrt(vy)
}

// renderScatter draws each panel's samples (first two coordinates) over the log-density contours
// of the first two coordinates of g (nil: no contours) on a grid of cols columns and returns the
// PNG bytes.
func renderScatter(panels []scatterPanel, g *ops.GMM, cols int) ([]byte, error) {
	var m *ops.GMM
	var grid densityGrid
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	if g != nil {
		var err error
		if m, err = marginal2(g); err != nil {
			return nil, fmt.Errorf("plot: marginal of the first two coordinates: %w", err)
		}
		x0, x1, y0, y1 = plotBox(m, panels)
		if grid, err = newDensityGrid(m, x0, x1, y0, y1); err != nil {
			return nil, err
		}
	}
	rows := (len(panels) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for r := range plots {
		plots[r] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "x0"
		p.Y.Label.Text = "x1"
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
		var pts plotter.XYs
		for j := 0; j+pn.d <= len(pn.x); j += pn.d {
			x, y := pn.x[j], pn.x[j+1]
			if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
				continue
			}
			if m != nil && (x < x0 || x > x1 || y < y0 || y > y1) {
				continue
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
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
		if m != nil {
			p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = x0, x1, y0, y1
		}
		plots[i/cols][i%cols] = p
	}
	const tile = 4 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(tile*vg.Length(cols), tile*vg.Length(rows)), vgimg.UseDPI(110))
	dc := draw.New(img)
	canvases := plot.Align(plots, draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 2,
		PadY: vg.Millimeter * 2, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}, dc)
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
