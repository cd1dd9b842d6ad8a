package main

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Targets of the score tests, as specs (for the reference) and as the JSON the command reads.
var (
	isoSpec = ops.GMMSpec{Weights: []float64{0.3, 0.7}, Means: [][]float64{{0, 0}, {4, 1}}, Vars: []float64{1, 0.25}}
	isoJSON = `{"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]], "covariance": "isotropic", "vars": [1.0, 0.25]}`

	fullSpec = ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{0, 0}, {2, -1}},
		Covs: [][][]float64{{{1, 0.3}, {0.3, 1}}, {{0.5, 0}, {0, 0.5}}}}
	fullJSON = `{"kind": "gmm", "weights": [1, 2], "means": [[0, 0], [2, -1]], "covariance": "full",
		"covs": [[[1, 0.3], [0.3, 1]], [[0.5, 0], [0, 0.5]]]}`

	diagSpec = ops.GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0, 1}, {-1, 0}}, Diag: [][]float64{{1, 2}, {0.5, 0.25}}}
	diagJSON = `{"kind": "gmm", "weights": [1, 1], "means": [[0, 1], [-1, 0]], "covariance": "diagonal", "diag": [[1, 2], [0.5, 0.25]]}`

	line1DSpec = ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{2}}, Vars: []float64{3}}
	line1DJSON = `{"kind": "gmm", "weights": [1], "means": [[2]], "covariance": "isotropic", "vars": [3]}`

	// dataPoints is the (4, 2) data set of the empirical targets.
	dataPoints = []float64{0, 0, 1, 0, 0, 1, 3, 3}
	mixWeights = []float64{1, 3}
	mixScales  = []float64{1, 4}
)

// scoreFiles writes the targets, data and points of the score tests into a fresh directory.
type scoreFiles struct {
	dir                             string
	iso, full, diag, line, emp, mix string // target files
	x32, x64, one, line4, x3, empty string // point files
}

func newScoreFiles(t *testing.T) scoreFiles {
	t.Helper()
	dir := t.TempDir()
	f := scoreFiles{dir: dir}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	f.iso = write("iso.json", isoJSON)
	f.full = write("full.json", fullJSON)
	f.diag = write("diag.json", diagJSON)
	f.line = write("line.json", line1DJSON)
	// The empirical targets live in a subdirectory and name their data relative to it.
	writeTensor(t, filepath.Join(dir, "data", "points.npy"), tensor.F32, dataPoints, 4, 2)
	f.emp = write("targets/emp.json", `{"kind": "empirical", "data": "../data/points.npy"}`)
	f.mix = write("targets/mix.json", `{"kind": "empirical", "data": "../data/points.npy",
		"mixture": {"weights": [1, 3], "scales": [1, 4]}}`)

	x := make([]float64, 0, 2*37)
	for i := 0; i < 37; i++ {
		x = append(x, -3+0.25*float64(i), 2*math.Sin(float64(i)))
	}
	f.x32 = writeTensor(t, filepath.Join(dir, "x32.npy"), tensor.F32, x, 37, 2)
	f.x64 = writeTensor(t, filepath.Join(dir, "x64.npy"), tensor.F64, x, 37, 2)
	f.one = writeTensor(t, filepath.Join(dir, "one.npy"), tensor.F64, []float64{0.5, -0.25}, 2)
	f.line4 = writeTensor(t, filepath.Join(dir, "line4.npy"), tensor.F64, []float64{-1, 0, 2, 5}, 4)
	f.x3 = writeTensor(t, filepath.Join(dir, "x3.npy"), tensor.F32, []float64{1, 2, 3, 4, 5, 6}, 2, 3)
	f.empty = writeTensor(t, filepath.Join(dir, "empty.npy"), tensor.F32, nil, 0, 2)
	return f
}

// writeTensor writes values as a dt .npy file of the given shape and returns the path.
func writeTensor(t *testing.T, path string, dt tensor.DType, values []float64, shape ...int) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	x := hostTensor(t, dt, values, shape...)
	require.NoError(t, tensor.WriteNpy(path, x))
	return path
}

func hostTensor(t *testing.T, dt tensor.DType, values []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromFloat64s(dt, values, shape...)
	require.NoError(t, err)
	return x
}

// scoreReference evaluates what at x (already (N, d) in the run's dtype) with ops.CPU() directly.
func scoreReference(t *testing.T, eval func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor) error,
	x *tensor.Tensor, what string) ([]float64, []int) {
	t.Helper()
	shape := []int{x.Dim(0), x.Dim(1)}
	if what == "logp" {
		shape = shape[:1]
	}
	res, err := tensor.New(nil, x.DType(), shape...)
	require.NoError(t, err)
	var out ops.ScoreOutputs
	switch what {
	case "logp":
		out.LogP = res
	case "score":
		out.Score = res
	default:
		out.Denoiser = res
	}
	require.NoError(t, eval(ops.CPU(), out, x))
	v, err := res.Float64s()
	require.NoError(t, err)
	return v, shape
}

func gmmEval(t *testing.T, spec ops.GMMSpec, noise ops.Noise) func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor) error {
	g, err := ops.NewGMM(spec)
	require.NoError(t, err)
	return func(b ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor) error { return b.GMMScore(out, x, g, noise) }
}

func empiricalEval(t *testing.T, mixture bool, noise ops.Noise) func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor) error {
	// The command reads the data from a float32 file: the reference uses the same float32 values.
	e, err := ops.NewEmpirical(hostTensor(t, tensor.F32, dataPoints, 4, 2))
	require.NoError(t, err)
	if mixture {
		e, err = e.WithMixture(mixWeights, mixScales)
		require.NoError(t, err)
	}
	return func(b ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor) error {
		return b.EmpiricalScore(out, x, e, noise)
	}
}

// points reads a point file as the command will see it: (N, d) in dtype dt.
func points(t *testing.T, path string, dt tensor.DType, n, d int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.ReadNpy(path)
	require.NoError(t, err)
	v, err := x.Float64s()
	require.NoError(t, err)
	return hostTensor(t, dt, v, n, d)
}

func TestScoreMatchesTheCPUReference(t *testing.T) {
	f := newScoreFiles(t)
	type evalFn = func(ops.Backend, ops.ScoreOutputs, *tensor.Tensor) error
	cases := []struct {
		name   string
		target string
		level  []string // --sigma S or --time T
		eval   evalFn
		in     string
		n, d   int
		extra  []string
		dt     tensor.DType // the dtype of the output
	}{
		{"isotropic gmm, f32 input", f.iso, []string{"--sigma", "0.5"}, gmmEval(t, isoSpec, ops.AtSigma(0.5)), f.x32, 37, 2, nil, tensor.F32},
		{"isotropic gmm, f64 input", f.iso, []string{"--sigma", "2"}, gmmEval(t, isoSpec, ops.AtSigma(2)), f.x64, 37, 2, nil, tensor.F64},
		{"full gmm at a VP time", f.full, []string{"--time", "0.3"}, gmmEval(t, fullSpec, ops.AtTime(0.3)), f.x64, 37, 2, nil, tensor.F64},
		{"diagonal gmm, f32 input computed in f64", f.diag, []string{"--time", "1.5"}, gmmEval(t, diagSpec, ops.AtTime(1.5)), f.x32, 37, 2,
			[]string{"--dtype", "f64"}, tensor.F64},
		{"diagonal gmm, f64 input computed in f32", f.diag, []string{"--sigma", "0.1"}, gmmEval(t, diagSpec, ops.AtSigma(0.1)), f.x64, 37, 2,
			[]string{"--dtype", "f32"}, tensor.F32},
		{"empirical", f.emp, []string{"--sigma", "0.8"}, empiricalEval(t, false, ops.AtSigma(0.8)), f.x32, 37, 2, nil, tensor.F32},
		{"empirical at a VP time", f.emp, []string{"--time", "0.05"}, empiricalEval(t, false, ops.AtTime(0.05)), f.x64, 37, 2, nil, tensor.F64},
		{"empirical scale mixture", f.mix, []string{"--sigma", "0.3"}, empiricalEval(t, true, ops.AtSigma(0.3)), f.x64, 37, 2, nil, tensor.F64},
		{"one point as a rank-1 array", f.iso, []string{"--sigma", "0.7"}, gmmEval(t, isoSpec, ops.AtSigma(0.7)), f.one, 1, 2, nil, tensor.F64},
		{"a 1-D target's points as a rank-1 array", f.line, []string{"--sigma", "1"}, gmmEval(t, line1DSpec, ops.AtSigma(1)), f.line4, 4, 1,
			nil, tensor.F64},
	}
	for _, c := range cases {
		for _, what := range []string{"logp", "score", "denoiser"} {
			t.Run(c.name+"/"+what, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out.npy")
				args := append([]string{"score", "--target", c.target}, c.level...)
				args = append(args, "--in", c.in, "--out", out, "--device", "cpu")
				args = append(args, c.extra...)
				if what != "denoiser" { // the default
					args = append(args, "--what", what)
				}
				code, stdout, stderr := runCLI(args...)
				require.Equal(t, 0, code, "stderr %q", stderr)
				assert.Empty(t, stdout)
				assert.Contains(t, stderr, "scorekit: device cpu\n")
				assert.Contains(t, stderr, "scorekit: wrote "+out+": "+what)

				got, err := tensor.ReadNpy(out)
				require.NoError(t, err)
				assert.Equal(t, c.dt, got.DType())
				want, shape := scoreReference(t, c.eval, points(t, c.in, c.dt, c.n, c.d), what)
				assert.Equal(t, shape, got.Shape())
				v, err := got.Float64s()
				require.NoError(t, err)
				assert.Equal(t, want, v)
				for i, e := range v {
					require.False(t, math.IsNaN(e) || math.IsInf(e, 0), "element %d = %v", i, e)
				}
			})
		}
	}
}

// The outputs are tied together: for one Gaussian N(μ, v I) at VE level σ the score is
// −(x − μ)/(v + σ²) and the denoiser x + σ² score (Tweedie), whatever the implementation.
func TestScoreClosedForm(t *testing.T) {
	f := newScoreFiles(t)
	dir := t.TempDir()
	read := func(what string) []float64 {
		out := filepath.Join(dir, what+".npy")
		code, _, stderr := runCLI("score", "--target", f.line, "--sigma", "2", "--in", f.line4, "--what", what,
			"--device", "cpu", "--quiet", "--out", out)
		require.Equal(t, 0, code, "stderr %q", stderr)
		assert.Empty(t, stderr)
		x, err := tensor.ReadNpy(out)
		require.NoError(t, err)
		v, err := x.Float64s()
		require.NoError(t, err)
		return v
	}
	logp, score, den := read("logp"), read("score"), read("denoiser")
	const mu, v, s = 2.0, 3.0, 4.0 // mean, variance, σ²
	for i, x := range []float64{-1, 0, 2, 5} {
		assert.InDelta(t, -0.5*math.Log(2*math.Pi*(v+s))-(x-mu)*(x-mu)/(2*(v+s)), logp[i], 1e-14, "log p at %v", x)
		assert.InDelta(t, -(x-mu)/(v+s), score[i], 1e-15, "score at %v", x)
		assert.InDelta(t, x-s*(x-mu)/(v+s), den[i], 1e-14, "denoiser at %v", x)
	}
}

// --sigma 0 (and --time 0) evaluate the mixture itself: log p and ∇log p of p0 (the CPU
// reference with ops.NoNoise, and the closed form of one Gaussian), the identity denoiser.
func TestScoreOfTheTargetItself(t *testing.T) {
	f := newScoreFiles(t)
	dir := t.TempDir()
	read := func(target string, level []string, in, what string) []float64 {
		out := filepath.Join(dir, what+".npy")
		args := append([]string{"score", "--target", target}, level...)
		code, _, stderr := runCLI(append(args, "--in", in, "--what", what, "--device", "cpu", "--quiet", "--out", out)...)
		require.Equal(t, 0, code, "stderr %q", stderr)
		x, err := tensor.ReadNpy(out)
		require.NoError(t, err)
		v, err := x.Float64s()
		require.NoError(t, err)
		return v
	}
	for _, level := range [][]string{{"--sigma", "0"}, {"--time", "0"}} {
		for _, what := range []string{"logp", "score"} {
			want, _ := scoreReference(t, gmmEval(t, fullSpec, ops.NoNoise), points(t, f.x64, tensor.F64, 37, 2), what)
			assert.Equal(t, want, read(f.full, level, f.x64, what), "%v %s", level, what)
		}
		x := points(t, f.x64, tensor.F64, 37, 2)
		xv, _ := x.Float64s()
		assert.Equal(t, xv, read(f.full, level, f.x64, "denoiser"), "%v: the denoiser of no noise is the identity", level)
		// One Gaussian N(2, 3): log p and the score in closed form.
		logp, score := read(f.line, level, f.line4, "logp"), read(f.line, level, f.line4, "score")
		for i, x := range []float64{-1, 0, 2, 5} {
			assert.InDelta(t, -0.5*math.Log(2*math.Pi*3)-(x-2)*(x-2)/6, logp[i], 1e-14, "log p at %v", x)
			assert.InDelta(t, -(x-2)/3, score[i], 1e-15, "score at %v", x)
		}
	}
}

func TestScoreDefaultDevice(t *testing.T) {
	if tensor.CUDABuild {
		t.Skip("cuda build: the default device is the GPU (parity is checked by ops/optest)")
	}
	f := newScoreFiles(t)
	out := filepath.Join(t.TempDir(), "d.npy")
	code, stdout, stderr := runCLI("score", "--target", f.iso, "--sigma", "1", "--in", f.x32, "--quiet", "--out", out)
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Empty(t, stdout)
	assert.Empty(t, stderr)
	got, err := tensor.ReadNpy(out)
	require.NoError(t, err)
	assert.Equal(t, []int{37, 2}, got.Shape())
	v, err := got.Float64s()
	require.NoError(t, err)
	want, _ := scoreReference(t, gmmEval(t, isoSpec, ops.AtSigma(1)), points(t, f.x32, tensor.F32, 37, 2), "denoiser")
	assert.Equal(t, want, v)
}

// dirListing lists the names under dir, recursively.
func dirListing(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return err
	}))
	sort.Strings(names)
	return names
}

func TestScoreBadInput(t *testing.T) {
	f := newScoreFiles(t)
	write := func(name, text string) string {
		p := filepath.Join(f.dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	badJSON := write("bad.json", `{"kind": "gmm", "weights": [1, 2],}`)
	badWeight := write("weight.json", `{"kind": "gmm", "weights": [1, -2], "means": [[0], [1]], "covariance": "isotropic", "vars": [1, 1]}`)
	notSPD := write("spd.json", `{"kind": "gmm", "weights": [1], "means": [[0, 0]], "covariance": "full", "covs": [[[1, 2], [2, 1]]]}`)
	box := write("box.json", `{"kind": "box", "lo": [0], "hi": [1]}`)
	noData := write("nodata.json", `{"kind": "empirical", "data": "absent.npy"}`)
	notNpy := write("text.npy", "hello")
	rank3 := writeTensor(t, filepath.Join(f.dir, "rank3.npy"), tensor.F32, make([]float64, 8), 2, 2, 2)
	out := filepath.Join(f.dir, "out.npy")
	ok := func(extra ...string) []string { // a valid command line with extra flags appended
		return append([]string{"--target", f.iso, "--sigma", "1", "--in", f.x32, "--out", out, "--device", "cpu"}, extra...)
	}
	without := func(flag string, takesValue bool) []string {
		args := ok()
		for i, a := range args {
			if a == flag {
				n := 1
				if takesValue {
					n = 2
				}
				return append(args[:i:i], args[i+n:]...)
			}
		}
		t.Fatalf("no %s in %v", flag, args)
		return nil
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing target", without("--target", true), []string{"--target is required"}},
		{"missing noise level", without("--sigma", true), []string{"--sigma", "--time", "required"}},
		{"both sigma and time", ok("--time", "0.5"), []string{"either --sigma", "--time", "not both"}},
		{"sigma zero for a data set", ok("--sigma", "0", "--target", f.emp), []string{"σ = 0", "no density for a data set", "--sigma 0.01"}},
		{"sigma negative", ok("--sigma", "-0.5"), []string{"--sigma must be a finite number ≥ 0 (got -0.5)"}},
		{"sigma NaN", ok("--sigma", "NaN"), []string{"--sigma must be a finite number ≥ 0 (got NaN)"}},
		{"sigma infinite", ok("--sigma", "+Inf"), []string{"--sigma must be a finite number ≥ 0 (got +Inf)"}},
		{"sigma not a number", ok("--sigma", "big"), []string{"-sigma", "big"}},
		{"time zero for a data set", append(without("--sigma", true), "--time", "0", "--target", f.emp), []string{"t = 0", "no density for a data set"}},
		{"time NaN", append(without("--sigma", true), "--time", "nan"), []string{"--time must be a finite number ≥ 0 (got NaN)"}},
		{"time so large the denoiser is undefined", append(without("--sigma", true), "--time", "800"),
			[]string{"--time 800", "underflows to 0"}},
		{"unknown what", ok("--what", "gradient"), []string{`--what must be logp, score, denoiser (got "gradient")`}},
		{"bad dtype", ok("--dtype", "f16"), []string{`--dtype must be f32 or f64 (got "f16")`}},
		{"empty dtype", ok("--dtype", ""), []string{`--dtype must be f32 or f64 (got "")`}},
		{"bad device", ok("--device", "tpu"), []string{"--device", "tpu"}},
		{"missing in", without("--in", true), []string{"--in is required"}},
		{"missing out", without("--out", true), []string{"--out is required"}},
		{"out directory missing", ok("--out", filepath.Join(f.dir, "no", "d.npy")), []string{"--out", "does not exist"}},
		{"unknown flag", ok("--steps", "3"), []string{"steps"}},
		{"stray argument", ok("extra"), []string{`unexpected argument "extra"`}},
		{"target file missing", ok("--target", filepath.Join(f.dir, "absent.json")),
			[]string{"--target " + filepath.Join(f.dir, "absent.json") + ": cannot read the target file: no such file"}},
		{"target invalid JSON", ok("--target", badJSON), []string{"--target " + badJSON + ": invalid JSON at line 1"}},
		{"target weight not positive", ok("--target", badWeight), []string{"--target " + badWeight + ": gmm: weights[1] = -2"}},
		{"target covariance not positive definite", ok("--target", notSPD), []string{"gmm: covs[0]: not positive definite"}},
		{"target kind not available", ok("--target", box), []string{`kind: "box" is not available in this version`}},
		{"target data missing", ok("--target", noData), []string{`empirical: data "absent.npy": cannot read`}},
		{"input missing", ok("--in", filepath.Join(f.dir, "absent.npy")), []string{"--in: read " + filepath.Join(f.dir, "absent.npy")}},
		{"input not an npy file", ok("--in", notNpy), []string{"--in: read " + notNpy, "not a valid .npy"}},
		{"input of rank 3", ok("--in", rank3), []string{"--in " + rank3 + " has shape (2, 2, 2): want (N, 2)"}},
		{"input dimension differs from the target's", ok("--in", f.x3),
			[]string{"--in " + f.x3 + " has points of dimension 3 (shape (2, 3)), the target " + f.iso + " has dimension 2"}},
		{"rank-1 input of the wrong length", ok("--in", f.line4), []string{"--in " + f.line4 + " has shape (4,)", "dimension 2"}},
		{"input without points", ok("--in", f.empty), []string{"--in " + f.empty + " holds no points (shape (0, 2))"}},
	}
	if !tensor.CUDABuild {
		cases = append(cases, struct {
			name string
			args []string
			want []string
		}{"cuda in a cpu build", ok("--device", "cuda"), []string{"--device cuda", "-tags cuda"}})
	}
	before := dirListing(t, f.dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(append([]string{"score"}, c.args...)...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			requireOneLine(t, stderr, append(c.want, "scorekit score: ")...)
			assert.NoFileExists(t, out)
			assert.Equal(t, before, dirListing(t, f.dir), "a failed run wrote something")
		})
	}
}

func TestScoreFailureLeavesExistingOutputUntouched(t *testing.T) {
	f := newScoreFiles(t)
	out := filepath.Join(f.dir, "out.npy")
	old := []byte("not overwritten")
	require.NoError(t, os.WriteFile(out, old, 0o644))
	before := dirListing(t, f.dir)
	for _, args := range [][]string{
		{"--sigma", "-1"},
		{"--sigma", "1", "--time", "1"},
		{"--sigma", "1", "--in", f.x3},
		{"--sigma", "1", "--what", "hessian"},
		{"--sigma", "1", "--target", filepath.Join(f.dir, "absent.json")},
	} {
		args = append([]string{"score", "--target", f.iso, "--in", f.x32, "--out", out, "--device", "cpu"}, args...)
		code, _, stderr := runCLI(args...)
		assert.Equal(t, 2, code, "%v", args)
		requireOneLine(t, stderr, "scorekit score: ")
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, old, got, "%v", args)
	}
	assert.Equal(t, before, dirListing(t, f.dir))

	// A successful run replaces it.
	code, _, stderr := runCLI("score", "--target", f.iso, "--sigma", "1", "--in", f.x32, "--out", out, "--device", "cpu", "--quiet")
	require.Equal(t, 0, code, "stderr %q", stderr)
	x, err := tensor.ReadNpy(out)
	require.NoError(t, err)
	assert.Equal(t, []int{37, 2}, x.Shape())
}

func TestScoreWriteFailureIsARuntimeError(t *testing.T) {
	if _, err := os.Stat("/proc/version"); err != nil {
		t.Skip("uses /proc/version, beside which no file can be created")
	}
	f := newScoreFiles(t)
	before, err := os.ReadFile("/proc/version")
	require.NoError(t, err)
	code, _, stderr := runCLI("score", "--target", f.iso, "--sigma", "1", "--in", f.x32, "--device", "cpu", "--quiet",
		"--out", "/proc/version")
	assert.Equal(t, 1, code)
	requireOneLine(t, stderr, "scorekit score: write /proc/version")
	after, err := os.ReadFile("/proc/version")
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestScoreHelp(t *testing.T) {
	for _, args := range [][]string{{"score", "--help"}, {"score", "-h"}, {"help", "score"}} {
		code, stdout, stderr := runCLI(args...)
		assert.Equal(t, 0, code, "%v", args)
		assert.Empty(t, stderr)
		for _, want := range []string{"Usage: scorekit score", "--sigma", "--time", "--what", "logp", "denoiser",
			`"kind": "empirical"`, "rank-1"} {
			assert.Contains(t, stdout, want, "%v", args)
		}
	}
	code, stdout, _ := runCLI("--help")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^  score +evaluate a target`, stdout)
}
