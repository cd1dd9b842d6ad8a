package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchedulesEndpointsAndMonotone(t *testing.T) {
	for _, name := range Schedules() {
		rho := 0.0
		if name == ScheduleEDM {
			rho = DefaultRho
		}
		for _, n := range []int{1, 2, 3, 18, 100} {
			s, err := Sigmas(name, n, DefaultSigmaMin, DefaultSigmaMax, rho)
			require.NoError(t, err, "%s n=%d", name, n)
			require.Len(t, s, n+1, "%s n=%d", name, n)
			assert.Equal(t, DefaultSigmaMax, s[0], "%s n=%d: first level", name, n)
			assert.Equal(t, 0.0, s[n], "%s n=%d: last level", name, n)
			if n >= 2 {
				assert.Equal(t, DefaultSigmaMin, s[n-1], "%s n=%d: last positive level", name, n)
			}
			require.NoError(t, CheckSigmas(s), "%s n=%d", name, n)
		}
	}
}

func TestScheduleShapes(t *testing.T) {
	const n, lo, hi = 12, 0.01, 50.0
	edm, err := EDMSigmas(n, lo, hi, 7)
	require.NoError(t, err)
	for i := 0; i < n; i++ { // the formula of docs/math.md §5.1
		u := float64(i) / float64(n-1)
		want := math.Pow(math.Pow(hi, 1.0/7)+u*(math.Pow(lo, 1.0/7)-math.Pow(hi, 1.0/7)), 7)
		assert.InDelta(t, want, edm[i], 1e-12*want, "edm level %d", i)
	}
	logs, err := LogSNRSigmas(n, lo, hi)
	require.NoError(t, err)
	for i := 0; i+2 < n; i++ { // constant ratio: equal steps in log σ
		assert.InDelta(t, logs[0]/logs[1], logs[i]/logs[i+1], 1e-12, "log-snr ratio %d", i)
	}
	lin, err := TimeUniformSigmas(n, lo, hi)
	require.NoError(t, err)
	for i := 0; i+2 < n; i++ { // constant difference
		assert.InDelta(t, lin[0]-lin[1], lin[i]-lin[i+1], 1e-12, "time-uniform step %d", i)
	}
	// ρ = 1 is the time-uniform schedule.
	one, err := EDMSigmas(n, lo, hi, 1)
	require.NoError(t, err)
	assert.InDeltaSlice(t, lin, one, 1e-12)
	// ρ → ∞ tends to the log-uniform schedule with error O(1/ρ): ten times ρ, a tenth the gap.
	prev := math.Inf(1)
	for _, rho := range []float64{1e2, 1e3, 1e4} {
		s, err := EDMSigmas(n, lo, hi, rho)
		require.NoError(t, err)
		gap := 0.0
		for i := 0; i < n; i++ {
			gap = math.Max(gap, math.Abs(s[i]-logs[i])/logs[i])
		}
		assert.Less(t, gap, prev/5, "rho = %g", rho)
		prev = gap
	}
	assert.Less(t, prev, 2e-3, "rho = 1e4: largest relative gap to the log-uniform levels")
}

func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		n        int
		lo, hi   float64
		rho      float64
		schedule string
		want     string
	}{
		{"no steps", 0, 0.002, 80, 7, ScheduleEDM, "steps = 0"},
		{"negative steps", -3, 0.002, 80, 7, ScheduleLogSNR, "steps = -3"},
		{"min = max", 5, 1, 1, 7, ScheduleEDM, "sigma min = 1 ≥ sigma max = 1"},
		{"min > max", 5, 2, 1, 0, ScheduleTime, "sigma min = 2 ≥ sigma max = 1"},
		{"zero min", 5, 0, 1, 7, ScheduleEDM, "sigma min = 0"},
		{"NaN max", 5, 0.1, math.NaN(), 0, ScheduleLogSNR, "sigma max = NaN"},
		{"infinite max", 5, 0.1, math.Inf(1), 0, ScheduleTime, "sigma max = +Inf"},
		{"zero rho", 5, 0.1, 1, 0, ScheduleEDM, "rho = 0"},
		{"negative rho", 5, 0.1, 1, -1, ScheduleEDM, "rho = -1"},
		{"unknown schedule", 5, 0.1, 1, 0, "cosine", `unknown schedule "cosine" (want "edm", "logsnr", "time")`},
	} {
		_, err := Sigmas(c.schedule, c.n, c.lo, c.hi, c.rho)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
}

func TestCheckSigmas(t *testing.T) {
	for _, good := range [][]float64{{1, 0}, {80, 1, 0.002}, {3, 2, 1, 0}} {
		assert.NoError(t, CheckSigmas(good), "%v", good)
	}
	for _, c := range []struct {
		sigmas []float64
		want   string
	}{
		{nil, "0 level(s)"},
		{[]float64{1}, "1 level(s)"},
		{[]float64{1, 2}, "sigmas[1] = 2 ≥ sigmas[0] = 1"},
		{[]float64{2, 1, 1, 0}, "sigmas[2] = 1 ≥ sigmas[1] = 1"},
		{[]float64{2, 0, 0}, "sigmas[1] = 0: levels must be > 0"},
		{[]float64{2, -1}, "sigmas[1] = -1: the last level must be ≥ 0"},
		{[]float64{math.NaN(), 1}, "sigmas[0] = NaN"},
		{[]float64{math.Inf(1), 1}, "sigmas[0] = +Inf"},
	} {
		err := CheckSigmas(c.sigmas)
		require.Error(t, err, "%v", c.sigmas)
		assert.Contains(t, err.Error(), c.want, "%v", c.sigmas)
	}
}
