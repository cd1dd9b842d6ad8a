package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// gmmDensity1D is the density of a one-dimensional mixture.
func gmmDensity1D(g *ops.GMM) func(x float64) float64 {
	p := g.Params()
	return func(x float64) float64 {
		s := 0.0
		for k := 0; k < p.K; k++ {
			v := p.Lambda[k] // isotropic and diagonal: the variance; full: U Λ Uᵀ with d = 1
			if p.Kind == ops.Full {
				v *= p.U[k] * p.U[k]
			}
			z := x - p.Means[k]
			s += math.Exp(p.LogWeights[k]-z*z/(2*v)) / math.Sqrt(2*math.Pi*v)
		}
		return s
	}
}

// gmmRange1D is [min μ_k − 4σ_k, max μ_k + 4σ_k] of a one-dimensional mixture.
func gmmRange1D(g *ops.GMM) (lo, hi float64) {
	p := g.Params()
	lo, hi = math.Inf(1), math.Inf(-1)
	for k := 0; k < p.K; k++ {
		v := p.Lambda[k]
		if p.Kind == ops.Full {
			v *= p.U[k] * p.U[k]
		}
		lo, hi = math.Min(lo, p.Means[k]-4*math.Sqrt(v)), math.Max(hi, p.Means[k]+4*math.Sqrt(v))
	}
	return lo, hi
}

// interval1D is a one-dimensional domain as an interval (a box, a ball, or the intersection of
// the half-lines of a polytope; ±Inf where unbounded).
func interval1D(dom *ops.Domain) (lo, hi float64) {
	p := dom.Params()
	switch p.Kind {
	case ops.Box:
		return p.Lo[0], p.Hi[0]
	case ops.Ball:
		return p.Center[0] - p.Radius, p.Center[0] + p.Radius
	}
	lo, hi = math.Inf(-1), math.Inf(1)
	for i := 0; i < p.M; i++ { // a x ≤ b
		switch a := p.A[i]; {
		case a > 0:
			hi = math.Min(hi, p.B[i]/a)
		case a < 0:
			lo = math.Max(lo, p.B[i]/a)
		}
	}
	return lo, hi
}

// tracePaths1D returns the paths of up to max chains (evenly spaced chain indices) of a
// one-dimensional trajectory (rows, N, 1): path i is the chain's state at every row.
func tracePaths1D(tr *tensor.Tensor, max int) ([][]float64, error) {
	rows, n := tr.Dim(0), tr.Dim(1)
	v, err := tr.Float64s()
	if err != nil {
		return nil, fmt.Errorf("plot: trajectory: %w", err)
	}
	k := min(n, max)
	paths := make([][]float64, k)
	for i := range paths {
		c := i * n / k
		for r := 0; r < rows; r++ {
			paths[i] = append(paths[i], v[r*n+c])
		}
	}
	return paths, nil
}

// histogram1D is what `sample --plot` draws for a one-dimensional target: the samples' density
// histogram over the target's density (a mixture) or the histogram of its data points (a data
// set), the domain's bounds, and, with paths, a second panel of x against the step.
type histogram1D struct {
	title  string
	x      []float64
	g      *ops.GMM  // nil for a data set
	ref    []float64 // the data points of a data set
	domain *ops.Domain
	paths  [][]float64
}

// render draws the histogram (and the paths' panel) into a PNG.
func (h histogram1D) render() ([]byte, error) {
	s := finiteSorted(h.x)
	if len(s) == 0 {
		return nil, fmt.Errorf("plot: no finite sample to draw")
	}
	lo, hi := quantileSorted(s, 0.002), quantileSorted(s, 0.998)
	if h.g != nil {
		glo, ghi := gmmRange1D(h.g)
		lo, hi = math.Min(lo, glo), math.Max(hi, ghi)
	}
	lo, hi = widen(lo, hi)
	p := plot.New()
	p.Title.Text = h.title
	p.X.Label.Text, p.Y.Label.Text = "x", "density"
	p.Legend.Top = true
	ymax := 0.0
	addLine := func(pts plotter.XYs, c color.Color, dashed, steps bool, name string) error {
		if len(pts) < 2 {
			return nil
		}
		for _, pt := range pts {
			ymax = math.Max(ymax, pt.Y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color = c
		if dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		if steps {
			l.StepStyle = plotter.MidStep
		}
		p.Add(l)
		if name != "" {
			p.Legend.Add(name, l)
		}
		return nil
	}
	if err := addLine(histogramLine(s, lo, hi, histBins, len(h.x)), color.NRGBA{R: 20, G: 60, B: 200, A: 255}, false, true,
		fmt.Sprintf("samples (%d)", len(h.x))); err != nil {
		return nil, err
	}
	switch {
	case h.g != nil:
		dens := gmmDensity1D(h.g)
		var pts plotter.XYs
		for _, x := range linspace(lo, hi, 400) {
			pts = append(pts, plotter.XY{X: x, Y: dens(x)})
		}
		if err := addLine(pts, color.NRGBA{R: 200, A: 255}, true, false, "target density"); err != nil {
			return nil, err
		}
	case len(h.ref) > 0:
		r := finiteSorted(h.ref)
		if err := addLine(histogramLine(r, lo, hi, histBins, len(h.ref)), color.NRGBA{R: 110, G: 110, B: 110, A: 255}, true, true,
			fmt.Sprintf("data points (%d)", len(h.ref))); err != nil {
			return nil, err
		}
	}
	if h.domain != nil {
		a, b := interval1D(h.domain)
		for _, e := range []float64{a, b} {
			if !math.IsInf(e, 0) && e >= lo && e <= hi {
				if err := addLine(plotter.XYs{{X: e, Y: 0}, {X: e, Y: ymax}}, color.NRGBA{A: 255}, true, false, ""); err != nil {
					return nil, err
				}
			}
		}
	}
	p.X.Min, p.X.Max = lo, hi
	row := []*plot.Plot{p}
	if len(h.paths) > 0 {
		q := plot.New()
		q.Title.Text = fmt.Sprintf("trajectories of %d chains", len(h.paths))
		q.X.Label.Text, q.Y.Label.Text = "step", "x"
		for i, path := range h.paths {
			var pts plotter.XYs
			for k, v := range path {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					pts = append(pts, plotter.XY{X: float64(k), Y: v})
				}
			}
			if len(pts) < 2 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, fmt.Errorf("plot: trajectory: %w", err)
			}
			l.Color = pathColors[i%len(pathColors)]
			l.Width = vg.Points(0.8)
			q.Add(l)
		}
		row = append(row, q)
	}
	return encodePlots([][]*plot.Plot{row}, 6*vg.Inch, 4*vg.Inch)
}
