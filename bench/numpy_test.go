package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/scorekit/scorekit/internal/host"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// numpyCase is one problem of BenchmarkCPUVsNumPy and the peer's arguments for it.
type numpyCase struct {
	name string
	args []string                           // score_numpy.py's arguments
	run  func(b *testing.B, be ops.Backend) // times b.N calls on be (the other CPU benchmarks' case)
}

// numpyCases: float64 problems of the other CPU benchmarks (benchRows, benchMixture, benchDataSet,
// newChainsRun): GMM scores (log p and score) at σ = 0.5 for the three covariance kinds, the
// empirical denoiser at σ = 0.5, and 100 fused MALA steps on an isotropic 4-component mixture.
var numpyCases = []numpyCase{
	gmmVsNumPy(gmmCase{kind: ops.Diagonal, n: 200000, k: 64, d: 16}),
	gmmVsNumPy(gmmCase{kind: ops.Isotropic, n: 200000, k: 64, d: 16}),
	gmmVsNumPy(gmmCase{kind: ops.Full, n: 20000, k: 64, d: 16}),
	empiricalVsNumPy(empiricalCase{n: 1000, m: 10000, d: 16}),
	empiricalVsNumPy(empiricalCase{n: 1000, m: 10000, d: 64}),
	malaVsNumPy(chainsCase{ops.ChainMALA, 10000, 16}),
}

// BenchmarkCPUVsNumPy times each problem on the CPU backend (ops.CPU(), the fast forms) and on the
// reference (ops.Reference()), and runs the NumPy peer bench/peers/score_numpy.py on the same
// problem size on this machine: numpy-s/op is NumPy's median time and x-numpy is NumPy's time over
// scorekit's (above 1: scorekit is faster). The peer runs once per problem, with the interpreter
// in $SCOREKIT_PYTHON (default python3, then /usr/bin/python3); without NumPy the ratio is left
// out and the reason logged. NumPy uses its BLAS's threads, scorekit GOMAXPROCS goroutines.
func BenchmarkCPUVsNumPy(b *testing.B) {
	b.Logf("machine: %s, %d logical CPUs, GOMAXPROCS %d", host.CPUModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	for _, c := range numpyCases {
		for _, be := range []ops.Backend{ops.CPU(), ops.Reference()} {
			b.Run(c.name+"/"+be.Name(), func(b *testing.B) {
				c.run(b, be)
				perOp := b.Elapsed().Seconds() / float64(b.N)
				np, err := numpyTime(c)
				if err != nil {
					b.Logf("NumPy peer: %v", err)
					return
				}
				b.ReportMetric(np, "numpy-s/op")
				b.ReportMetric(np/perOp, "x-numpy")
			})
		}
	}
}

func gmmVsNumPy(c gmmCase) numpyCase {
	return numpyCase{
		name: fmt.Sprintf("gmm/%v/N=%s/K=%d/d=%d", c.kind, pow10Label(c.n), c.k, c.d),
		args: []string{"--op", "gmm", "--kind", strings.ToLower(c.kind.String()), "--n", fmt.Sprint(c.n),
			"--k", fmt.Sprint(c.k), "--d", fmt.Sprint(c.d), "--sigma", "0.5"},
		run: func(b *testing.B, be ops.Backend) { benchGMMCase(b, onBackend(be), tensor.F64, c) },
	}
}

func empiricalVsNumPy(c empiricalCase) numpyCase {
	return numpyCase{
		name: fmt.Sprintf("empirical/N=%s/M=%s/d=%d", pow10Label(c.n), pow10Label(c.m), c.d),
		args: []string{"--op", "empirical", "--n", fmt.Sprint(c.n), "--m", fmt.Sprint(c.m), "--d", fmt.Sprint(c.d), "--sigma", "0.5"},
		run:  func(b *testing.B, be ops.Backend) { benchEmpiricalCase(b, onBackend(be), tensor.F64, c) },
	}
}

func malaVsNumPy(c chainsCase) numpyCase {
	return numpyCase{
		name: fmt.Sprintf("mala/chains=%s/K=%d/d=%d/steps=%d", pow10Label(c.chains), langevinK, c.d, chainsSteps),
		args: []string{"--op", "mala", "--n", fmt.Sprint(c.chains), "--k", fmt.Sprint(langevinK), "--d", fmt.Sprint(c.d),
			"--h", fmt.Sprint(langevinStepSize), "--steps", fmt.Sprint(chainsSteps)},
		run: func(b *testing.B, be ops.Backend) {
			benchChainsCase(b, chainsTarget{backend: func(*testing.B) (ops.Backend, func()) { return be, func() {} }}, tensor.F64, c)
		},
	}
}

// onBackend is the score benchmarks' target on be, with no skip and no peak.
func onBackend(be ops.Backend) scoreTarget {
	return scoreTarget{backend: func(*testing.B) (ops.Backend, func()) { return be, func() {} }}
}

var numpyTimes sync.Map // problem → float64 seconds or error

// numpyTime runs the NumPy peer once for c and returns its median seconds per evaluation.
func numpyTime(c numpyCase) (float64, error) {
	key := c.name
	if v, ok := numpyTimes.Load(key); ok {
		if err, bad := v.(error); bad {
			return 0, err
		}
		return v.(float64), nil
	}
	t, err := runNumPy(c)
	if err != nil {
		numpyTimes.Store(key, err)
		return 0, err
	}
	numpyTimes.Store(key, t)
	return t, nil
}

func runNumPy(c numpyCase) (float64, error) {
	pythons := []string{"python3", "/usr/bin/python3"}
	if py := os.Getenv("SCOREKIT_PYTHON"); py != "" {
		pythons = []string{py}
	}
	var errs []string
	for _, py := range pythons {
		t, err := runNumPyWith(py, c)
		if err == nil {
			return t, nil
		}
		errs = append(errs, err.Error())
	}
	return 0, errors.New(strings.Join(errs, "; "))
}

func runNumPyWith(py string, c numpyCase) (float64, error) {
	script := filepath.Join("peers", "score_numpy.py")
	cmd := exec.Command(py, append(append([]string{script}, c.args...), "--dtype", "float64", "--reps", "5")...)
	outb, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
			if i := strings.LastIndex(msg, "\n"); i >= 0 {
				msg = msg[i+1:]
			}
		}
		return 0, fmt.Errorf("%s %s: %s", py, script, msg)
	}
	var res struct {
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(outb, &res); err != nil || !(res.Seconds > 0) {
		return 0, fmt.Errorf("%s printed %q, want a JSON object with seconds > 0", script, strings.TrimSpace(string(outb)))
	}
	return res.Seconds, nil
}
