package nn

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// torchScript is the PyTorch twin of the network and the format.
var torchScript = filepath.Join("..", "bench", "peers", "mlp_torch.py")

// torchPython is the first interpreter (of $SCOREKIT_PYTHON alone when set, else python3 and
// /usr/bin/python3) that imports torch and NumPy; the test skips, saying why, without one.
func torchPython(t *testing.T) string {
	cands := []string{"python3", "/usr/bin/python3"}
	if py := os.Getenv("SCOREKIT_PYTHON"); py != "" {
		cands = []string{py}
	}
	var why []string
	for _, py := range cands {
		out, err := exec.Command(py, "-c", "import torch, numpy").CombinedOutput()
		if err == nil {
			return py
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		why = append(why, py+": "+lines[len(lines)-1]+" ("+err.Error()+")")
	}
	t.Skipf("no Python with torch and NumPy to run %s: %s", torchScript, strings.Join(why, "; "))
	return ""
}

func runTorch(t *testing.T, py string, args ...string) {
	t.Helper()
	out, err := exec.Command(py, append([]string{torchScript}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", torchScript, strings.Join(args, " "), out)
}

// torchEval runs the script's eval mode: D(x; σ) for every test σ, as (len(σ), N, d).
func torchEval(t *testing.T, py, dir, model string, x []float64, n, d int) []float64 {
	xt, err := tensor.FromF64(x, n, d)
	require.NoError(t, err)
	xp, out := filepath.Join(dir, "x.npy"), filepath.Join(dir, "d.npy")
	require.NoError(t, tensor.WriteNpy(xp, xt))
	var sig []string
	for _, s := range testSigmas {
		sig = append(sig, strconv.FormatFloat(s, 'g', -1, 64))
	}
	runTorch(t, py, "eval", "--model", model, "--x", xp, "--sigma", strings.Join(sig, ","), "--out", out)
	dt, err := tensor.ReadNpy(out)
	require.NoError(t, err)
	require.Equal(t, []int{len(testSigmas), n, d}, dt.Shape())
	v, err := dt.Float64s()
	require.NoError(t, err)
	return v
}

// goEval is the Go reference on the same points, in torchEval's layout.
func goEval(m *ops.MLP, x []float64, n int) []float64 {
	d := m.Dim()
	out := make([]float64, 0, len(testSigmas)*n*d)
	row := make([]float64, d)
	for _, s := range testSigmas {
		for i := 0; i < n; i++ {
			m.DenoiseRow(row, x[i*d:(i+1)*d], s)
			out = append(out, row...)
		}
	}
	return out
}

// assertClose checks |got − want| ≤ tol·(1 + |want|) elementwise and logs the largest error.
func assertClose(t *testing.T, want, got []float64, tol float64, what string) {
	t.Helper()
	require.Len(t, got, len(want))
	worst, at := 0.0, 0
	for i := range want {
		if e := math.Abs(got[i]-want[i]) / (1 + math.Abs(want[i])); e > worst || math.IsNaN(e) {
			worst, at = e, i
			if math.IsNaN(e) {
				break
			}
		}
	}
	t.Logf("%s: largest error %.3g (relative to 1 + |ref|) at %d", what, worst, at)
	assert.True(t, worst <= tol, "%s: entry %d: got %v, want %v (error %.3g > %g)", what, at, got[at], want[at], worst, tol)
}

// TestTorchTwinMatchesGo: a checkpoint written here, evaluated by the PyTorch module, gives the Go
// reference's outputs to 1e-12 (float64, different summation orders and SiLU formulas); a
// checkpoint of fresh parameters written by PyTorch (F64 and F32) loads here and gives PyTorch's
// outputs. The outputs include σ = 0 (x itself) and σ from 0.002 to 80.
func TestTorchTwinMatchesGo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch (several seconds)")
	}
	py := torchPython(t)
	const tol = 1e-12
	for name, c := range testConfigs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			m := randomNet(t, c, 41)
			meta := testMeta(c.Dim)
			model := filepath.Join(dir, "go.safetensors")
			require.NoError(t, Save(model, m, meta))

			const n = 23
			rng := rand.New(rand.NewPCG(5, 6))
			x := make([]float64, n*c.Dim)
			for i := range x {
				x[i] = 2 * rng.NormFloat64()
			}
			want := goEval(m, x, n)
			assertClose(t, want, torchEval(t, py, dir, model, x, n, c.Dim), tol, "Go checkpoint, PyTorch vs Go")

			dtypes := []string{"f64"}
			if c.Fourier > 0 {
				dtypes = append(dtypes, "f32") // once is enough
			}
			for _, dt := range dtypes {
				written := filepath.Join(dir, "torch-"+dt+".safetensors")
				runTorch(t, py, "save", "--like", model, "--seed", "9", "--out", written, "--dtype", dt)
				tm, tmeta, err := Load(written)
				require.NoError(t, err)
				assert.Equal(t, c, tm.Config())
				assert.Equal(t, map[string]DType{"f64": F64, "f32": F32}[dt], tmeta.DType)
				assert.Equal(t, "9", tmeta.Info["seed"])
				assert.Equal(t, len(meta.Cov), len(tmeta.Cov))
				assert.False(t, sameBits(m.Packed(), tm.Packed()), "PyTorch should have drawn new parameters")
				assertClose(t, torchEval(t, py, dir, written, x, n, c.Dim), goEval(tm, x, n), tol,
					"PyTorch checkpoint ("+dt+"), Go vs PyTorch")
			}
		})
	}
}
