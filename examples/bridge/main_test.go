//go:build !cuda

package main

import (
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ground truth branches: at t = 0 one cluster around y = 0, at t = 3 two branches near
// y = ±√a of about equal weight; x has moved right by about 3. In 50-D the plane projection
// recovers the same picture and the other coordinates hold the stationary noise.
func TestGroundTruthBranches(t *testing.T) {
	for _, d := range []int{2, 50} {
		w := newWorld(d)
		rng := rand.New(rand.NewPCG(1, 2))
		for _, c := range []struct {
			t                float64
			split, meanX     float64 // fraction with |y| > √a/2, mean of x
			minSplit, maxSpl float64
		}{{t: 0, meanX: 0, minSplit: 0, maxSpl: 0.01}, {t: 3, meanX: 3, minSplit: 0.93, maxSpl: 1}} {
			v := w.cells(rng, 2000, c.t)
			require.Len(t, v, 2000*d)
			pl := w.plane(v)
			far, up, mx := 0, 0, 0.0
			for i := 0; i < 2000; i++ {
				x, y := pl[2*i], pl[2*i+1]
				mx += x / 2000
				if math.Abs(y) > 0.5*math.Sqrt(pitchA) {
					far++
				}
				if y > 0 {
					up++
				}
			}
			frac := float64(far) / 2000
			assert.GreaterOrEqual(t, frac, c.minSplit, "d = %d, t = %g", d, c.t)
			assert.LessOrEqual(t, frac, c.maxSpl, "d = %d, t = %g", d, c.t)
			assert.InDelta(t, c.meanX, mx, 0.05, "d = %d, t = %g", d, c.t)
			assert.InDelta(t, 0.5, float64(up)/2000, 0.05, "d = %d, t = %g: the branches' weights", d, c.t)
			if d > 2 {
				// the total variance is the plane's plus 48 × 0.3²
				tot, plane := 0.0, 0.0
				for i := 0; i < 2000; i++ {
					for j := 0; j < d; j++ {
						tot += v[i*d+j] * v[i*d+j] / 2000
					}
					plane += (pl[2*i]*pl[2*i] + pl[2*i+1]*pl[2*i+1]) / 2000
				}
				assert.InDelta(t, 48*extraSD*extraSD, tot-plane, 0.3, "t = %g", c.t)
			}
		}
	}
}

// The program runs end to end with -quick and writes its three files with every section, a
// finite number in every cell and one CSV line per score.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, run(dir, true, io.Discard))
	md, err := os.ReadFile(filepath.Join(dir, "bridge-branching.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "bridge-branching.png"))
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)
	csv, err := os.ReadFile(filepath.Join(dir, "bridge-branching.csv"))
	require.NoError(t, err)
	text := string(md)
	for _, want := range []string{"Quick run", "## Ground truth", "## Methods and budget", "## Results", "## Reading",
		"(held out)", "floor (two ground-truth samples)", "Paired differences", "IMF outer iteration", "Paired differences in the plane", "in the branching plane, against"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "NaN")
	assert.NotContains(t, text, "Inf")
	q := quick
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	tune := len(q.Dims) * len(methods) * len(q.LRs)            // one score (t = 3) per tuning fit
	eval := len(q.Dims) * len(methods) * q.Seeds * len(scored) // four scores per evaluation fit
	floor := len(q.Dims) * q.Seeds * len(scored)
	assert.Len(t, lines, 1+tune+eval+floor, "a header and one line per score")
}
