package solvers

import (
	"fmt"
	"math"
)

// Noise-level grids of the diffusion samplers (docs/math.md §5.1). A grid is a strictly decreasing
// list of VE noise levels σ_0 > σ_1 > … > σ_K ≥ 0: a sampler takes K steps, step i going from σ_i
// to σ_{i+1}. The grids built here end with σ_K = 0 (the samples are then those of the data, not
// of the data blurred by σ_min); a grid given by hand may stop at a σ_K > 0.

// The schedules of DiffusionConfig.Schedule.
const (
	// ScheduleEDM is the polynomial schedule of Karras et al. (2022), EDMSigmas.
	ScheduleEDM = "edm"
	// ScheduleLogSNR is uniform in log σ (uniform in the log signal-to-noise ratio), LogSNRSigmas.
	ScheduleLogSNR = "logsnr"
	// ScheduleTime is uniform in σ = t (the time of the VE probability-flow ODE), TimeUniformSigmas.
	ScheduleTime = "time"
)

// Schedules returns the schedule names, in the order the documentation lists them.
func Schedules() []string { return []string{ScheduleEDM, ScheduleLogSNR, ScheduleTime} }

// Defaults of the schedules: the noise range and the exponent of Karras et al. (2022), chosen for
// data scaled to unit variance (σ_max = 80 drowns such data, σ_min = 0.002 is below its
// resolution).
const (
	DefaultSigmaMin = 0.002
	DefaultSigmaMax = 80.0
	// DefaultRho is ρ = 7: it spends more steps at small σ, where the denoiser changes fastest
	// (Karras et al. found ρ ≈ 7 best on images; ρ = 1 is time-uniform, ρ → ∞ log-uniform).
	DefaultRho = 7.0
)

// EDMSigmas returns the n+1 noise levels of the polynomial schedule of Karras et al. (2022),
// docs/math.md §5.1:
//
//	σ_i = (σ_max^{1/ρ} + i/(n−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0 … n−1,   σ_n = 0
//
// so σ_0 = σ_max, σ_{n−1} = σ_min (exactly: the end points are set, not rounded through the
// power), and n ≥ 1 steps in all (n = 1 gives {σ_max, 0}). ρ = 1 is uniform in σ; as ρ → ∞ the
// levels tend to the log-uniform ones of LogSNRSigmas (the error is O(log²(σ_max/σ_min)/ρ)).
func EDMSigmas(n int, sigmaMin, sigmaMax, rho float64) ([]float64, error) {
	const op = "edm sigmas"
	if err := checkRange(op, n, sigmaMin, sigmaMax); err != nil {
		return nil, err
	}
	if !finitePositive(rho) {
		return nil, fmt.Errorf("%s: rho = %g: must be a finite number > 0", op, rho)
	}
	return schedule(n, sigmaMin, sigmaMax, func(u float64) float64 {
		a, b := math.Pow(sigmaMax, 1/rho), math.Pow(sigmaMin, 1/rho)
		return math.Pow(a+u*(b-a), rho)
	}), nil
}

// LogSNRSigmas returns n+1 noise levels uniform in log σ from σ_max down to σ_min, then 0:
//
//	σ_i = σ_max (σ_min/σ_max)^{i/(n−1)},  i = 0 … n−1,   σ_n = 0
//
// Every step but the last has the same length h = log(σ_i/σ_{i+1}) in λ = −log σ, the variable
// in which the exponential integrators (DPM-Solver and its multistep forms) are derived.
func LogSNRSigmas(n int, sigmaMin, sigmaMax float64) ([]float64, error) {
	const op = "log-snr sigmas"
	if err := checkRange(op, n, sigmaMin, sigmaMax); err != nil {
		return nil, err
	}
	return schedule(n, sigmaMin, sigmaMax, func(u float64) float64 {
		return math.Exp(math.Log(sigmaMax) + u*(math.Log(sigmaMin)-math.Log(sigmaMax)))
	}), nil
}

// TimeUniformSigmas returns n+1 noise levels uniform in σ from σ_max down to σ_min, then 0:
//
//	σ_i = σ_max + i/(n−1) (σ_min − σ_max),  i = 0 … n−1,   σ_n = 0
//
// Uniform in the time t = σ of the VE probability-flow ODE dx/dt = (x − D(x; t))/t. It spends
// almost all steps at large σ, where the ODE is nearly linear: it is the baseline the other two
// schedules improve on, not a good choice.
func TimeUniformSigmas(n int, sigmaMin, sigmaMax float64) ([]float64, error) {
	const op = "time-uniform sigmas"
	if err := checkRange(op, n, sigmaMin, sigmaMax); err != nil {
		return nil, err
	}
	return schedule(n, sigmaMin, sigmaMax, func(u float64) float64 {
		return sigmaMax + u*(sigmaMin-sigmaMax)
	}), nil
}

// Sigmas returns the grid of the named schedule (ScheduleEDM, ScheduleLogSNR or ScheduleTime) with
// n steps; rho is used by ScheduleEDM only.
func Sigmas(schedule string, n int, sigmaMin, sigmaMax, rho float64) ([]float64, error) {
	switch schedule {
	case ScheduleEDM:
		return EDMSigmas(n, sigmaMin, sigmaMax, rho)
	case ScheduleLogSNR:
		return LogSNRSigmas(n, sigmaMin, sigmaMax)
	case ScheduleTime:
		return TimeUniformSigmas(n, sigmaMin, sigmaMax)
	}
	return nil, fmt.Errorf("sigmas: unknown schedule %q (want %s)", schedule, quoteAll(Schedules()))
}

// CheckSigmas validates a noise-level grid given by hand: at least two levels (one step), every
// level finite, strictly decreasing, all positive except that the last may be 0.
func CheckSigmas(sigmas []float64) error {
	const op = "sigmas"
	if len(sigmas) < 2 {
		return fmt.Errorf("%s: %d level(s): need at least two (one step)", op, len(sigmas))
	}
	last := len(sigmas) - 1
	for i, s := range sigmas {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("%s[%d] = %g: levels must be finite", op, i, s)
		}
		if s < 0 || (s == 0 && i < last) {
			if i < last {
				return fmt.Errorf("%s[%d] = %g: levels must be > 0 (only the last may be 0)", op, i, s)
			}
			return fmt.Errorf("%s[%d] = %g: the last level must be ≥ 0", op, i, s)
		}
		if i > 0 && !(s < sigmas[i-1]) {
			return fmt.Errorf("%s[%d] = %g ≥ %s[%d] = %g: levels must decrease strictly", op, i, s, op, i-1, sigmas[i-1])
		}
	}
	return nil
}

// checkRange validates the arguments shared by the schedules.
func checkRange(op string, n int, sigmaMin, sigmaMax float64) error {
	if n < 1 {
		return fmt.Errorf("%s: steps = %d: need at least one", op, n)
	}
	if !finitePositive(sigmaMin) {
		return fmt.Errorf("%s: sigma min = %g: must be a finite number > 0", op, sigmaMin)
	}
	if !finitePositive(sigmaMax) {
		return fmt.Errorf("%s: sigma max = %g: must be a finite number > 0", op, sigmaMax)
	}
	if !(sigmaMin < sigmaMax) {
		return fmt.Errorf("%s: sigma min = %g ≥ sigma max = %g: need sigma min < sigma max", op, sigmaMin, sigmaMax)
	}
	return nil
}

// schedule evaluates level(u) at u = i/(n−1), i = 0 … n−1 (end points set exactly), then appends 0.
func schedule(n int, sigmaMin, sigmaMax float64, level func(u float64) float64) []float64 {
	out := make([]float64, n+1)
	out[0] = sigmaMax
	if n >= 2 {
		for i := 1; i < n-1; i++ {
			out[i] = level(float64(i) / float64(n-1))
		}
		out[n-1] = sigmaMin
	}
	return out
}

// quoteAll writes `"a", "b", "c"`.
func quoteAll(items []string) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", it)
	}
	return s
}
