//go:build !cuda

package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Source is where training draws clean points from: a fixed data set or a sampler. It carries
// the data's mean μ and scale σd (the RMS over coordinates of the centred data), which become
// the network's data.mean buffer and its MLPConfig.SigmaData.
type Source struct {
	dim    int
	data   []float64 // n×d, row-major (data sets)
	sample func(rng *rand.Rand, x []float64)
	mean   []float64
	sd     float64
	cov    []float64 // d×d, the data's covariance (divided by the number of points)
}

// SamplerStatDraws is the number of draws FromSampler uses to estimate the mean and σd.
const SamplerStatDraws = 1 << 16

// FromRows makes a source of a data set given as rows; every row must have the same length
// d ≥ 1 and every value must be finite. The rows are copied.
func FromRows(rows [][]float64) (Source, error) {
	if len(rows) == 0 {
		return Source{}, fmt.Errorf("train: data: no rows")
	}
	d := len(rows[0])
	flat := make([]float64, 0, len(rows)*d)
	for i, r := range rows {
		if len(r) != d {
			return Source{}, fmt.Errorf("train: data: row %d has %d values, row 0 has %d", i, len(r), d)
		}
		flat = append(flat, r...)
	}
	return FromFlat(flat, d)
}

// FromFlat makes a source of a data set of n = len(data)/d points stored row-major (as a .npy
// array of shape (n, d) holds them). The values are copied.
func FromFlat(data []float64, d int) (Source, error) {
	switch {
	case d < 1:
		return Source{}, fmt.Errorf("train: data: dimension %d: must be ≥ 1", d)
	case len(data) == 0:
		return Source{}, fmt.Errorf("train: data: no points")
	case len(data)%d != 0:
		return Source{}, fmt.Errorf("train: data: %d values are not a whole number of rows of dimension %d", len(data), d)
	}
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Source{}, fmt.Errorf("train: data: point %d, coordinate %d = %g: must be finite", i/d, i%d, v)
		}
	}
	s := Source{dim: d, data: slices.Clone(data)}
	s.mean, s.sd, s.cov = stats(s.data, d)
	if !(s.sd > 0) {
		return Source{}, fmt.Errorf("train: data: every point is the same (σd = 0); the preconditioning needs σd > 0")
	}
	return s, nil
}

// FromSampler makes a source that draws each clean point with sample(rng, x) (x has length d;
// rng is the trainer's seeded generator, so training stays reproducible). The mean and σd are
// estimated from SamplerStatDraws draws of a fixed-seed generator; WithStats replaces them.
func FromSampler(d int, sample func(rng *rand.Rand, x []float64)) (Source, error) {
	if d < 1 {
		return Source{}, fmt.Errorf("train: sampler: dimension %d: must be ≥ 1", d)
	}
	if sample == nil {
		return Source{}, fmt.Errorf("train: sampler: nil function")
	}
	rng := rand.New(rand.NewPCG(0x73616d70, 0x6c6572))
	buf := make([]float64, SamplerStatDraws*d)
	for i := 0; i < SamplerStatDraws; i++ {
		x := buf[i*d : (i+1)*d]
		sample(rng, x)
		if j := nonFinite(x); j >= 0 {
			return Source{}, fmt.Errorf("train: sampler: draw %d, coordinate %d = %g: must be finite", i, j, x[j])
		}
	}
	s := Source{dim: d, sample: sample}
	s.mean, s.sd, s.cov = stats(buf, d)
	if !(s.sd > 0) {
		return Source{}, fmt.Errorf("train: sampler: every draw is the same (σd = 0); the preconditioning needs σd > 0")
	}
	return s, nil
}

// WithStats returns the source with the given mean (length d) and σd > 0 in place of the ones
// computed from the data.
func (s Source) WithStats(mean []float64, sigmaData float64) (Source, error) {
	if len(mean) != s.dim {
		return Source{}, fmt.Errorf("train: mean has %d values, the data have dimension %d", len(mean), s.dim)
	}
	if j := nonFinite(mean); j >= 0 {
		return Source{}, fmt.Errorf("train: mean[%d] = %g: must be finite", j, mean[j])
	}
	if !(sigmaData > 0) || math.IsInf(sigmaData, 0) {
		return Source{}, fmt.Errorf("train: σd = %g: must be a finite number > 0", sigmaData)
	}
	s.mean, s.sd = slices.Clone(mean), sigmaData
	return s, nil
}

// Dim is the data dimension d (0 for the zero Source).
func (s Source) Dim() int { return s.dim }

// Len is the number of points of a data set (0 for a sampler).
func (s Source) Len() int {
	if s.dim == 0 || s.data == nil {
		return 0
	}
	return len(s.data) / s.dim
}

// Mean is the data mean μ (a copy).
func (s Source) Mean() []float64 { return slices.Clone(s.mean) }

// SigmaData is σd, the RMS over coordinates of the centred data.
func (s Source) SigmaData() float64 { return s.sd }

// Covariance is the data's covariance matrix (d × d, row-major, a copy; divided by the number of
// points; for a sampler, estimated from its SamplerStatDraws draws): what a checkpoint stores for
// the samplers' start (nn.Meta.Cov).
func (s Source) Covariance() []float64 { return slices.Clone(s.cov) }

func stats(data []float64, d int) ([]float64, float64, []float64) {
	n := len(data) / d
	mean := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := range mean {
			mean[j] += data[i*d+j]
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	ss := 0.0
	cov := make([]float64, d*d)
	for i := 0; i < n; i++ {
		row := data[i*d : (i+1)*d]
		for j, m := range mean {
			v := row[j] - m
			ss += v * v
			for k := 0; k <= j; k++ {
				cov[j*d+k] += v * (row[k] - mean[k])
			}
		}
	}
	for j := 0; j < d; j++ {
		for k := 0; k <= j; k++ {
			cov[j*d+k] /= float64(n)
			cov[k*d+j] = cov[j*d+k]
		}
	}
	return mean, math.Sqrt(ss / float64(n*d)), cov
}

func nonFinite(x []float64) int {
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return i
		}
	}
	return -1
}

// Probe is a fixed batch of noisy points (x, σ) at which features are compared.
type Probe struct {
	X     []float64 // n×d noisy points, row-major
	Sigma []float64 // n noise levels > 0
}

// NewProbe draws n probe points the way training draws them: x0 from src, ln σ ~ N(pMean, pStd²)
// (pStd == 0: the EDM defaults), x = x0 + σ·ξ; all from seed.
func NewProbe(src Source, n int, pMean, pStd float64, seed uint64) (Probe, error) {
	if src.dim == 0 {
		return Probe{}, fmt.Errorf("train: probe: empty source")
	}
	if n < 1 {
		return Probe{}, fmt.Errorf("train: probe: %d points: must be ≥ 1", n)
	}
	if pStd == 0 {
		pMean, pStd = DefaultPMean, DefaultPStd
	}
	d := src.dim
	rng := rand.New(rand.NewPCG(seed, 0x70726f62))
	p := Probe{X: make([]float64, n*d), Sigma: make([]float64, n)}
	for i := range p.Sigma {
		row := p.X[i*d : (i+1)*d]
		if src.sample != nil {
			src.sample(rng, row)
		} else {
			k := rng.IntN(src.Len())
			copy(row, src.data[k*d:(k+1)*d])
		}
		s := math.Exp(pMean + pStd*rng.NormFloat64())
		p.Sigma[i] = s
		for j := range row {
			row[j] += s * rng.NormFloat64()
		}
		if j := nonFinite(row); j >= 0 {
			return Probe{}, fmt.Errorf("train: probe: point %d, coordinate %d = %g: must be finite", i, j, row[j])
		}
	}
	return p, nil
}
