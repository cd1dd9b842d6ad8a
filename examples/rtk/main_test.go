package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The -quick sweep runs end to end, writes the report and the figure, fills the results cache,
// and a second run over the same cache measures nothing and writes the same tables.
func TestQuickSweepAndResume(t *testing.T) {
	dir := t.TempDir()
	o := options{out: dir, cache: filepath.Join(dir, "cache", "runs.jsonl"), maxWall: time.Hour, z: quick, quick: true, log: io.Discard}
	s, err := runStudy(o)
	require.NoError(t, err)
	assert.Positive(t, s.ran)
	assert.False(t, s.stopped)
	md, err := os.ReadFile(filepath.Join(dir, "rtk-accuracy.md"))
	require.NoError(t, err)
	png, err := os.ReadFile(filepath.Join(dir, "rtk-accuracy.png"))
	require.NoError(t, err)
	assert.Equal(t, "\x89PNG", string(png[:4]))
	for _, want := range []string{"## Floors (exact samples)", "## d = 2", "## d = 10", "rtk-mala tuned", "rtk-uld S=5", "docs/math.md §3", " ± "} {
		assert.Contains(t, string(md), want)
	}
	assert.NotContains(t, string(md), "ALGORITHMS")

	s2, err := runStudy(o)
	require.NoError(t, err)
	assert.Zero(t, s2.ran, "every run is in the cache")
	assert.Equal(t, len(s.cache), len(s2.cache))
	require.Len(t, s2.invocations, 1, "the measuring invocation is recorded, the cached one is not")
	assert.Equal(t, s.ran, s2.invocations[0].Runs)
	md, err = os.ReadFile(filepath.Join(dir, "rtk-accuracy.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "Measured by the invocation of")

	// A wall-time limit already passed starts no run and says so in the report.
	o.cache, o.out, o.maxWall = "", filepath.Join(dir, "stopped"), 0
	s3, err := runStudy(o)
	require.NoError(t, err)
	assert.Zero(t, s3.ran)
	assert.True(t, s3.stopped)
	md, err = os.ReadFile(filepath.Join(o.out, "rtk-accuracy.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "Stopped by `-max-wall`")
}

// Every tuning candidate and fixed setting spends at most the budget, and RTK-MALA's start
// evaluations are counted: S·(I + 2) for MALA, S·(I + 1) for ULD.
func TestCandidatesRespectTheBudget(t *testing.T) {
	for _, K := range full.budgets {
		for _, m := range []string{"rtk-mala", "rtk-uld"} {
			cs := full.candidates(m, K)
			require.NotEmpty(t, cs)
			for _, c := range cs {
				per := c.Inner + 1
				if m == "rtk-mala" {
					per = c.Inner + 2
				}
				assert.LessOrEqual(t, c.Segments*per, K, "%s K=%d %v", m, K, c)
				assert.Greater(t, c.Segments*per, K-c.Segments, "%s K=%d %v: budget left unspent", m, K, c)
				assert.GreaterOrEqual(t, c.Inner, 1)
			}
			f, ok := fixedSetting(m, K)
			require.True(t, ok)
			assert.Equal(t, fixedS, f.Segments)
		}
		assert.Len(t, full.candidates("ddpm", K), 1+len(full.tMins))
	}
	_, ok := rtkSetting("rtk-mala", 25, 10, 1) // ⌊25/10⌋ − 2 = 0 inner steps
	assert.False(t, ok)
}

// The interval of summary is Student's: for values 1…5 the mean is 3 and the half-width
// t₀.₉₇₅,₄ · sd/√5 = 2.776 · √2.5/√5.
func TestSummaryInterval(t *testing.T) {
	var runs []record
	for i := 1; i <= 5; i++ {
		runs = append(runs, record{RadiusErr: float64(i)})
	}
	m, h := summary(runs, radiusOf)
	assert.InDelta(t, 3, m, 1e-12)
	assert.InDelta(t, 2.776*math.Sqrt(2.5/5), h, 1e-12)
	_, h = summary(runs[:1], radiusOf)
	assert.True(t, math.IsNaN(h))
	assert.InDelta(t, 1.96, studentT975(10000), 0.01)
}
