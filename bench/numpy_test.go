package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// peerPythons are the interpreters tried for the peers scripts run here, in order:
// $SCOREKIT_PYTHON alone when set, else python3 and /usr/bin/python3.
func peerPythons() []string {
	if py := os.Getenv("SCOREKIT_PYTHON"); py != "" {
		return []string{py}
	}
	return []string{"python3", "/usr/bin/python3"}
}

func runNumPy(c numpyCase) (float64, error) {
	var errs []string
	for _, py := range peerPythons() {
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

// numpyPython is the first of peerPythons that imports NumPy, or why there is none.
func numpyPython() (string, error) { return peerPython("numpy") }

// peerPython is the first of peerPythons that imports module, or why there is none.
func peerPython(module string) (string, error) {
	var errs []string
	for _, py := range peerPythons() {
		out, err := exec.Command(py, "-c", "import "+module).CombinedOutput()
		if err == nil {
			return py, nil
		}
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		errs = append(errs, py+": "+msg)
	}
	return "", errors.New(strings.Join(errs, "; "))
}

// TestNumPyPeerGMMMatchesReference: the NumPy peer's two GMM forms — the expanded one it times and
// gmm_definition, the float64 function every variant of score_torch.py and score_jax.py is checked
// against before timing — compute scorekit's GMMScore. Both run (score_numpy.py --check-dir) on
// the benchmarks' mixtures (benchMixture: isotropic, diagonal with per-coordinate variances,
// full) and rows (benchRows), at the benchmarks' VE level (a = 1) and at a VP level (a ≠ 1, so the
// scaled means and variances are exercised too), and must match ops.Reference() to
// 1e-9·(1 + |ref|) per element in log p and the score. Skipped, with the reason, where no
// interpreter imports NumPy.
func TestNumPyPeerGMMMatchesReference(t *testing.T) {
	py, err := numpyPython()
	if err != nil {
		t.Skipf("no Python with NumPy for the peer: %v", err)
	}
	const n, k, d = 37, 8, 17
	for _, kind := range []ops.CovKind{ops.Isotropic, ops.Diagonal, ops.Full} {
		for _, noise := range []ops.Noise{gmmNoise, ops.AtTime(0.3)} {
			t.Run(fmt.Sprintf("%v/%v", kind, noise.Kind), func(t *testing.T) {
				g, err := benchMixture(kind, k, d)
				require.NoError(t, err)
				x, err := benchRows(tensor.CPU(), tensor.F64, n, d, 3)
				require.NoError(t, err)
				score, err := tensor.New(nil, tensor.F64, n, d)
				require.NoError(t, err)
				logp, err := tensor.New(nil, tensor.F64, n)
				require.NoError(t, err)
				require.NoError(t, ops.Reference().GMMScore(ops.ScoreOutputs{Score: score, LogP: logp}, x, g, noise))
				a, s, ok := noise.ScaleVar(noise.Level)
				require.True(t, ok)

				dir := t.TempDir()
				p := g.Params()
				varShape := []int{k, d}
				if kind == ops.Isotropic {
					varShape = []int{k}
				}
				inputs := map[string]struct {
					v     []float64
					shape []int
				}{
					"logw": {p.LogWeights, []int{k}},
					"mu":   {p.Means, []int{k, d}},
					"var":  {p.Lambda, varShape},
				}
				if kind == ops.Full {
					inputs["u"] = struct {
						v     []float64
						shape []int
					}{p.U, []int{k, d, d}}
				}
				require.NoError(t, tensor.WriteNpy(filepath.Join(dir, "x.npy"), x))
				for name, in := range inputs {
					arr, err := tensor.FromF64(in.v, in.shape...)
					require.NoError(t, err, name)
					require.NoError(t, tensor.WriteNpy(filepath.Join(dir, name+".npy"), arr))
				}
				cmd := exec.Command(py, filepath.Join("peers", "score_numpy.py"), "--op", "gmm", "--check-dir", dir,
					"--a", strconv.FormatFloat(a, 'g', -1, 64), "--s", strconv.FormatFloat(s, 'g', -1, 64))
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s", out)

				wantLogP, err := logp.Float64s()
				require.NoError(t, err)
				wantScore, err := score.Float64s()
				require.NoError(t, err)
				for _, form := range []string{"expanded", "definition"} {
					for _, o := range []struct {
						name string
						want []float64
					}{{"logp", wantLogP}, {"score", wantScore}} {
						got, err := tensor.ReadNpy(filepath.Join(dir, o.name+"_"+form+".npy"))
						require.NoError(t, err)
						gv, err := got.Float64s()
						require.NoError(t, err)
						require.Len(t, gv, len(o.want), "%s %s", form, o.name)
						worst, at := 0.0, 0
						for i, w := range o.want {
							if e := math.Abs(gv[i]-w) / (1 + math.Abs(w)); math.IsNaN(e) || e > worst {
								worst, at = e, i
								if math.IsNaN(e) {
									break
								}
							}
						}
						t.Logf("%s form, %s: largest error %.3g", form, o.name, worst)
						assert.LessOrEqual(t, worst, 1e-9, "NumPy %s form, %s: element %d is %g, the reference %g",
							form, o.name, at, gv[at], o.want[at])
					}
				}
			})
		}
	}
}
