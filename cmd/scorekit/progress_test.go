package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHeartbeatLine(t *testing.T) {
	assert.Equal(t, "scorekit sample: heun: 40 of 100 steps (40%), 4 steps/s, about 15s left",
		heartbeat("scorekit sample: heun", "steps", 40, 100, 10*time.Second))
	assert.Equal(t, "x: 1 of 3 rows (33%)", heartbeat("x", "rows", 1, 3, 0))
}

// withHeartbeat makes every report of a run that is not the last print its line.
func withHeartbeat(t *testing.T) {
	old := heartbeatEvery
	heartbeatEvery = 0
	t.Cleanup(func() { heartbeatEvery = old })
}

var heartbeatRE = regexp.MustCompile(`^(scorekit noise[a-z ]*): (\d+) of (\d+) rows \(\d+%\), [0-9.e+]+ rows/s, about \S+ left$`)

// Off a terminal, the noise commands report finished blocks of rows as heartbeat lines, in order;
// drawn in blocks (with a display) the numbers are those of the one-call draw (--quiet), for
// every kind and method; --quiet prints nothing.
func TestNoiseHeartbeatAndBlocks(t *testing.T) {
	withHeartbeat(t)
	dir := t.TempDir()
	cases := map[string][]string{
		"normal":       {"noise", "normal", "--n", "70000", "--dim", "3"},
		"uniform":      {"noise", "uniform", "--n", "70000", "--dim", "3", "--dtype", "f64"},
		"fgn":          {"noise", "fgn", "--hurst", "0.7", "--length", "100", "--paths", "2000"},
		"fbm-mafbm":    {"noise", "fbm", "--hurst", "0.3", "--length", "100", "--paths", "2000", "--method", "mafbm"},
		"fgn-mafbm":    {"noise", "fgn", "--hurst", "0.3", "--length", "100", "--paths", "2000", "--method", "mafbm"},
		"fbm-cholesky": {"noise", "fbm", "--hurst", "0.6", "--length", "64", "--paths", "3000", "--method", "cholesky"},
		"stable":       {"noise", "stable", "--alpha", "1.5", "--beta", "0.5", "--n", "70000", "--dim", "2", "--clamp", "20"},
		"isotropic":    {"noise", "stable", "--alpha", "1.2", "--isotropic", "--n", "70000", "--dim", "3"},
		"bridge":       {"noise", "bridge", "--length", "100", "--paths", "2000", "--epoch", "30"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			quiet, shown := filepath.Join(dir, name+"-q.npy"), filepath.Join(dir, name+".npy")
			code, _, stderr := runCLI(append(args, "--seed", "5", "--site", "3", "--device", "cpu", "--quiet", "--out", quiet)...)
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stderr)
			code, _, stderr = runCLI(append(args, "--seed", "5", "--site", "3", "--device", "cpu", "--out", shown)...)
			require.Equal(t, 0, code, stderr)

			var done []int
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if m := heartbeatRE.FindStringSubmatch(line); m != nil {
					d, _ := strconv.Atoi(m[2])
					total, _ := strconv.Atoi(m[3])
					assert.Less(t, d, total, line)
					done = append(done, d)
				}
			}
			require.GreaterOrEqual(t, len(done), 2, "heartbeat lines in %q", stderr)
			for i := 1; i < len(done); i++ {
				assert.Greater(t, done[i], done[i-1])
			}
			a, err := os.ReadFile(quiet)
			require.NoError(t, err)
			b, err := os.ReadFile(shown)
			require.NoError(t, err)
			assert.Equal(t, a, b, "blocks of rows vs one call")
		})
	}
}

// On a terminal each long-running command draws a bar fed by its run's reports (the last report
// always arrives, so even a short run draws it at 100%) and clears it; --quiet draws none.
func TestProgressBarOnTerminal(t *testing.T) {
	old, oldAfter := isTerminal, barAfter
	isTerminal, barAfter = func(io.Writer) bool { return true }, 0
	t.Cleanup(func() { isTerminal, barAfter = old, oldAfter })
	dir, tj := sampleDir(t)
	obj := filepath.Join(dir, "dw.json")
	require.NoError(t, os.WriteFile(obj, []byte(doubleWellJSON), 0o644))
	cases := map[string][]string{
		"scorekit sample: ula":          {"sample", "--target", tj, "--method", "ula", "--n", "20", "--steps", "30", "--out", filepath.Join(dir, "s.npy")},
		"scorekit sample: rtk-mala":     {"sample", "--target", tj, "--method", "rtk-mala", "--n", "20", "--steps", "40", "--out", filepath.Join(dir, "r.npy")},
		"scorekit optimize: fpgd":       {"optimize", "fpgd", "--objective", obj, "--n", "20", "--steps", "50", "--step", "0.01", "--hurst", "0.6", "--sigma", "0.5", "--out", filepath.Join(dir, "o.npy")},
		"scorekit noise normal":         {"noise", "normal", "--n", "100", "--out", filepath.Join(dir, "n.npy")},
		"scorekit noise":                {"noise", "fgn", "--hurst", "0.7", "--length", "10", "--paths", "5", "--out", filepath.Join(dir, "f.npy")},
		"scorekit sample: metropolis-c": {"sample", "--target", tj, "--method", "metropolis-constrained", "--constraint", filepath.Join(dir, "box.json"), "--n", "20", "--steps", "30", "--out", filepath.Join(dir, "c.npy")},
	}
	for label, args := range cases {
		code, _, stderr := runCLI(append(args, "--device", "cpu")...)
		require.Equal(t, 0, code, "%s: %s", label, stderr)
		assert.Contains(t, stderr, label, stderr)
		assert.Contains(t, stderr, "100%", "%s: %q", label, stderr)
		code, _, stderr = runCLI(append(args, "--device", "cpu", "--quiet")...)
		require.Equal(t, 0, code, "%s: %s", label, stderr)
		assert.Empty(t, stderr, label)
	}
}
