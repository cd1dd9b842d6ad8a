package main

import (
	"encoding/csv"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/examples/internal/report"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
)

// The -quick sweep runs end to end through the registry (every run within its budget, or run
// fails), writes the three files with one CSV line per run and floor sample set, and its numbers
// obey what the study relies on: the exact floor is small, and the tuned VE sampler at the
// largest quick budget recovers the light mode of the two-mode target (N = 300: the standard
// error of ŵ_m/w_m is √(0.9·0.1/300)/0.1 = 0.17 per seed, so a mean over 3 seeds above 0.6 fails
// by chance with probability < 10⁻⁴).
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	s, err := run(dir, quick, true, io.Discard)
	require.NoError(t, err)
	md, err := os.ReadFile(filepath.Join(dir, "coverage.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "coverage.png"))
	require.NoError(t, err)
	assert.Equal(t, "\x89PNG", string(png[:4]))
	for _, want := range []string{"Quick run", "## Setup", "## Noise floor", "## two modes 0.9/0.1", "## three modes 0.6/0.35/0.05",
		"## Reading", "docs/math.md §5.5", " ± ", "GFDM H=0.7", "LIM α=1.5"} {
		assert.Contains(t, string(md), want)
	}
	assert.NotContains(t, string(md), "NaN")
	assert.NotContains(t, string(md), "ALGORITHMS")

	f, err := os.Open(filepath.Join(dir, "coverage.csv"))
	require.NoError(t, err)
	defer f.Close()
	lines, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	candidates := 0
	for _, r := range rows() {
		candidates += len(r.Candidates) + quick.seeds
	}
	ts := len(targets())
	assert.Len(t, lines, 1+ts*quick.seeds+ts*len(quick.budgets)*candidates)

	for _, tg := range targets() {
		floorTV, _ := report.MeanCI95(s.floor(tg.Name, func(m metrics) float64 { return m.WeightErr }))
		assert.Less(t, floorTV, 0.05, "%s: floor of the mode-weight error", tg.Name)
	}
	top := quick.budgets[len(quick.budgets)-1]
	rec, _ := s.cell("two modes 0.9/0.1", "VE", top, func(m metrics) float64 { return m.Recall })
	require.Len(t, rec, quick.seeds)
	m, _ := report.MeanCI95(rec)
	assert.Greater(t, m, 0.6, "VE at K = %d: minority recall", top)
	assert.Less(t, m, 1.4, "VE at K = %d: minority recall", top)
}

// The metrics see the effect they are for: on exact samples they sit at their floor, and on the
// same samples with the light mode's rows moved into the heavy mode the recall is 0, the
// mode-weight error is w_m (up to the binomial fluctuation) and the sliced W₂ is far above the
// floor. N = 4000: the standard error of ŵ_m is √(0.09/4000) = 0.005, every tolerance is 5 of them.
func TestMetricsSeeAMissingMode(t *testing.T) {
	g, err := ops.NewGMM(targets()[0].Spec)
	require.NoError(t, err)
	const n = 4000
	se := math.Sqrt(0.09 / n)
	x, err := solvers.SampleGMM(g, n, 1)
	require.NoError(t, err)
	ref, err := solvers.SampleGMM(g, n, 2)
	require.NoError(t, err)
	exact := measure(x, ref, g)
	assert.InDelta(t, 1, exact.Recall, 5*se/0.1)
	assert.Less(t, exact.WeightErr, 5*se)
	assert.Less(t, exact.SW, 0.3)

	collapsed := append([]float64(nil), x...)
	for i := 0; i < n; i++ {
		if collapsed[2*i] > 0 { // the light mode sits at (3, 0), the heavy one at (−3, 0)
			collapsed[2*i] -= 6
		}
	}
	miss := measure(collapsed, ref, g)
	assert.Zero(t, miss.Recall)
	assert.InDelta(t, 0.1, miss.WeightErr, 5*se)
	assert.Greater(t, miss.SW, 3*exact.SW)
}

// A sample goes to its most responsible component, not to the nearest mean: at x = (0.8, 0),
// between a wide component at the origin and a narrow one at (1.5, 0), the nearest mean is the
// narrow one's (0.7 against 0.8) but its density there is e^{−24.5}/0.01 of its peak.
func TestAssignIsByResponsibility(t *testing.T) {
	g, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{0.5, 0.5}, Means: [][]float64{{0, 0}, {1.5, 0}}, Vars: []float64{1, 0.01}})
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 0}, assign([]float64{0.8, 0}, g))
	assert.Equal(t, []float64{0.5, 0.5}, assign([]float64{0.8, 0, 1.5, 0.01}, g))
	w := assign([]float64{0.8, 0, math.NaN(), 0}, g) // a NaN row is left out
	assert.Equal(t, []float64{1, 0}, w)
}
