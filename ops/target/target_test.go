package target

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// writeNpy writes a float64 (or, with f32, float32) array to dir/name and returns the path.
func writeNpy(t *testing.T, dir, name string, f32 bool, data []float64, shape ...int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var x *tensor.Tensor
	var err error
	if f32 {
		v := make([]float32, len(data))
		for i, d := range data {
			v[i] = float32(d)
		}
		x, err = tensor.FromF32(v, shape...)
	} else {
		x, err = tensor.FromF64(append([]float64(nil), data...), shape...)
	}
	require.NoError(t, err)
	require.NoError(t, tensor.WriteNpy(path, x))
	return path
}

// writeJSON writes text to dir/name and returns the path.
func writeJSON(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// points is a small (5, 3) data set.
var points = []float64{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}

const iso = `{"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]], "covariance": "isotropic", "vars": [1.0, 0.25]}`

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, dir, "points.npy", false, points, 5, 3)
	writeNpy(t, dir, "vector.npy", false, []float64{1, 2, 3}, 3)
	writeNpy(t, dir, "nan.npy", false, []float64{0, 1, math.NaN(), 2}, 2, 2)
	writeNpy(t, dir, "none.npy", false, nil, 0, 2)
	writeJSON(t, dir, "text.npy", "not an npy file")
	gmm := func(rest string) string { return `{"kind": "gmm", ` + rest + `}` }
	const wm = `"weights": [1, 2], "means": [[0, 0], [1, 1]], `
	cases := []struct {
		name string
		json string
		want []string
	}{
		// The file as a whole.
		{"empty file", "  \n", []string{"empty: want a JSON object"}},
		{"syntax error", `{"kind": "gmm",, "weights": [1]}`, []string{"invalid JSON at line 1, column 16", "invalid character ','"}},
		{"syntax error on line 3", "{\n  \"kind\": \"gmm\",\n  weights: [1]\n}", []string{"invalid JSON at line 3, column 3"}},
		{"unclosed object", `{"kind": "gmm", "weights": [1, 2]`, []string{"invalid JSON", "unexpected end of input"}},
		{"not an object", `[1, 2]`, []string{"want a JSON object", "found an array"}},
		{"a bare number", `3`, []string{"want a JSON object", "found the number 3"}},
		{"trailing data", iso + "\n\n  {}", []string{"unexpected data after the object at line 3, column 3"}},
		{"duplicate field", `{"kind": "gmm", "weights": [1], "weights": [2]}`, []string{`field "weights" is given twice`}},

		// kind.
		{"kind missing", `{"weights": [1]}`, []string{"kind: missing", `"gmm", "empirical" or "mlp"`}},
		{"kind not a string", `{"kind": 3}`, []string{"kind: want a string, found the number 3"}},
		{"kind null", `{"kind": null}`, []string{"kind: want a string, found null"}},
		{"unknown kind", `{"kind": "gauss"}`, []string{`kind: unknown kind "gauss" (known: gmm, empirical, mlp)`}},
		{"box", `{"kind": "box", "lo": [0], "hi": [1]}`, []string{`kind: "box" is not available in this version (available: gmm, empirical, mlp)`}},
		{"box", `{"kind": "box", "lo": [0], "hi": [1]}`, []string{`kind: "box" is not available in this version`}},
		{"polytope", `{"kind": "polytope"}`, []string{`kind: "polytope" is not available in this version`}},

		// gmm fields.
		{"unknown field", gmm(wm + `"covariance": "isotropic", "vars": [1, 1], "weight": [1]`),
			[]string{`gmm: unknown field "weight"`, "kind, weights, means, covariance, vars, diag, covs"}},
		{"field in the wrong case", gmm(`"Weights": [1], "means": [[0]], "covariance": "isotropic", "vars": [1]`),
			[]string{`gmm: unknown field "Weights" (did you mean "weights"?`}},
		{"weights missing", gmm(`"means": [[0]], "covariance": "isotropic", "vars": [1]`), []string{"gmm: weights: missing"}},
		{"means missing", gmm(`"weights": [1], "covariance": "isotropic", "vars": [1]`), []string{"gmm: means: missing"}},
		{"covariance missing", gmm(wm + `"vars": [1, 1]`), []string{"gmm: covariance: missing", `"isotropic" (with vars)`}},
		{"covariance not a string", gmm(wm + `"covariance": ["full"], "covs": []`), []string{"gmm: covariance: want a string, found an array"}},
		{"unknown covariance", gmm(wm + `"covariance": "spherical", "vars": [1, 1]`),
			[]string{`gmm: covariance: unknown covariance "spherical"`, `"diagonal" (with diag)`}},
		{"covariance name in the wrong case", gmm(wm + `"covariance": "Isotropic", "vars": [1, 1]`),
			[]string{`gmm: covariance: unknown covariance "Isotropic"`}},
		{"parameters of another covariance", gmm(wm + `"covariance": "isotropic", "vars": [1, 1], "diag": [[1, 1], [1, 1]]`),
			[]string{`gmm: diag: not used with covariance "isotropic", which takes vars`}},
		{"vars missing", gmm(wm + `"covariance": "isotropic"`), []string{"gmm: vars: missing", "one variance per component"}},
		{"diag missing", gmm(wm + `"covariance": "diagonal"`), []string{"gmm: diag: missing"}},
		{"covs missing", gmm(wm + `"covariance": "full"`), []string{"gmm: covs: missing"}},
		{"vars given for full", gmm(wm + `"covariance": "full", "vars": [1, 1]`), []string{`gmm: vars: not used with covariance "full", which takes covs`}},
		{"weights not an array", gmm(`"weights": "a", "means": [[0]], "covariance": "isotropic", "vars": [1]`),
			[]string{`gmm: weights: want an array of numbers, found the string "a"`}},
		{"weights null", gmm(`"weights": null, "means": [[0]], "covariance": "isotropic", "vars": [1]`),
			[]string{"gmm: weights: want an array of numbers, found null"}},
		{"null inside means", gmm(`"weights": [1, 1], "means": [[0], [null]], "covariance": "isotropic", "vars": [1, 1]`),
			[]string{"gmm: means[1][0]: want a number, found null"}},
		{"string inside vars", gmm(wm + `"covariance": "isotropic", "vars": [1, "2"]`),
			[]string{`gmm: vars[1]: want a number, found the string "2"`}},
		{"means not a matrix", gmm(`"weights": [1], "means": [0, 0], "covariance": "isotropic", "vars": [1]`),
			[]string{"gmm: means[0]: want an array of numbers, found the number 0"}},
		{"number out of range", gmm(`"weights": [1e999], "means": [[0]], "covariance": "isotropic", "vars": [1]`),
			[]string{"gmm: weights[0] = 1e999: out of the float64 range"}},
		{"no components", gmm(`"weights": [], "means": [], "covariance": "isotropic", "vars": []`),
			[]string{"gmm: weights: need at least one component"}},
		{"zero weight", gmm(`"weights": [1, 0], "means": [[0], [1]], "covariance": "isotropic", "vars": [1, 1]`),
			[]string{"gmm: weights[1] = 0: must be a finite number > 0"}},
		{"negative weight", gmm(`"weights": [-0.5, 1], "means": [[0], [1]], "covariance": "isotropic", "vars": [1, 1]`),
			[]string{"gmm: weights[0] = -0.5"}},
		{"zero variance", gmm(wm + `"covariance": "isotropic", "vars": [1, 0]`), []string{"gmm: vars[1] = 0: variances must be finite and > 0"}},
		{"negative diagonal variance", gmm(wm + `"covariance": "diagonal", "diag": [[1, 1], [-2, 1]]`),
			[]string{"gmm: diag[1][0] = -2: variances must be finite and > 0"}},
		{"means rows and weights disagree", gmm(`"weights": [1, 2], "means": [[0, 0]], "covariance": "isotropic", "vars": [1, 1]`),
			[]string{"gmm: means: 1 rows for 2 weights"}},
		{"ragged means", gmm(`"weights": [1, 2], "means": [[0, 0], [1]], "covariance": "isotropic", "vars": [1, 1]`),
			[]string{"gmm: means[1] has 1 coordinates, means[0] has 2"}},
		{"vars and weights disagree", gmm(wm + `"covariance": "isotropic", "vars": [1]`), []string{"gmm: vars: 1 values for 2 components"}},
		{"diag row of the wrong length", gmm(wm + `"covariance": "diagonal", "diag": [[1, 1], [1]]`),
			[]string{"gmm: diag[1] has 1 entries, dimension is 2"}},
		{"covs of the wrong size", gmm(wm + `"covariance": "full", "covs": [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0], [0, 1]]]`),
			[]string{"gmm: covs[0]: has 3 rows, dimension is 2"}},
		{"covs count", gmm(wm + `"covariance": "full", "covs": [[[1, 0], [0, 1]]]`), []string{"gmm: covs: 1 matrices for 2 components"}},
		{"covariance not symmetric", gmm(wm + `"covariance": "full", "covs": [[[1, 0.5], [0.4, 1]], [[1, 0], [0, 1]]]`),
			[]string{"gmm: covs[0]: not symmetric"}},
		{"covariance not positive definite", gmm(wm + `"covariance": "full", "covs": [[[1, 0], [0, 1]], [[1, 2], [2, 1]]]`),
			[]string{"gmm: covs[1]: not positive definite"}},
		{"covariance singular", gmm(wm + `"covariance": "full", "covs": [[[1, 1], [1, 1]], [[1, 0], [0, 1]]]`),
			[]string{"gmm: covs[0]: not positive definite"}},

		// empirical fields.
		{"data missing", `{"kind": "empirical"}`, []string{"empirical: data: missing", ".npy"}},
		{"data not a string", `{"kind": "empirical", "data": ["points.npy"]}`, []string{"empirical: data: want a string, found an array"}},
		{"data empty", `{"kind": "empirical", "data": ""}`, []string{"empirical: data: empty path"}},
		{"data file missing", `{"kind": "empirical", "data": "nope.npy"}`,
			[]string{`empirical: data "nope.npy": cannot read ` + filepath.Join(dir, "nope.npy") + ": no such file or directory"}},
		{"data not an npy file", `{"kind": "empirical", "data": "text.npy"}`, []string{`empirical: data "text.npy"`, "not a valid .npy file"}},
		{"data a directory", `{"kind": "empirical", "data": "."}`, []string{`empirical: data ".": cannot read ` + dir + ": is a directory"}},
		{"data of rank 1", `{"kind": "empirical", "data": "vector.npy"}`, []string{`empirical: data "vector.npy": shape [3]: want (points, dim)`}},
		{"data with NaN", `{"kind": "empirical", "data": "nan.npy"}`, []string{`empirical: data "nan.npy": data[1][0] = NaN: must be finite`}},
		{"data without points", `{"kind": "empirical", "data": "none.npy"}`, []string{`empirical: data "none.npy": data shape [0 2]: need at least one point`}},
		{"empirical unknown field", `{"kind": "empirical", "data": "points.npy", "model": "x"}`,
			[]string{`empirical: unknown field "model" (an empirical target has kind, data, mixture)`}},
		{"mixture not an object", `{"kind": "empirical", "data": "points.npy", "mixture": [1, 2]}`,
			[]string{"empirical: mixture: want a JSON object", "found an array"}},
		{"mixture unknown field", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1], "scale": [1]}}`,
			[]string{`empirical: mixture: unknown field "scale" (a mixture has weights, scales)`}},
		{"mixture weights missing", `{"kind": "empirical", "data": "points.npy", "mixture": {"scales": [1]}}`,
			[]string{"empirical: mixture.weights: missing"}},
		{"mixture scales missing", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1]}}`,
			[]string{"empirical: mixture.scales: missing"}},
		{"mixture lengths disagree", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1, 1], "scales": [1]}}`,
			[]string{"empirical: mixture: 2 weights and 1 scales"}},
		{"mixture scale not positive", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1, 1], "scales": [1, 0]}}`,
			[]string{"empirical: mixture scales[1] = 0: must be finite and > 0"}},
		{"mixture weight not positive", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [-1], "scales": [1]}}`,
			[]string{"empirical: mixture weights[0] = -1"}},
		{"mixture string inside", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": ["1"], "scales": [1]}}`,
			[]string{`empirical: mixture.weights[0]: want a number, found the string "1"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeJSON(t, dir, "t.json", c.json)
			tg, err := Load(path)
			require.Error(t, err)
			assert.Nil(t, tg)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, path+": "), "error %q does not start with the file name", msg)
			assert.NotContains(t, msg, "\n")
			for _, w := range c.want {
				assert.Contains(t, msg, w)
			}
			// Parse gives the same error without the file name.
			_, perr := Parse([]byte(c.json), dir)
			require.Error(t, perr)
			assert.Equal(t, msg, path+": "+perr.Error())
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.json")
	_, err := Load(path)
	require.Error(t, err)
	assert.Equal(t, path+": cannot read the target file: no such file or directory", err.Error())
	assert.ErrorIs(t, err, os.ErrNotExist)

	_, err = Load(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot read the target file: is a directory")
}

func TestLoadKinds(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, dir, "points.npy", true, points, 5, 3)
	abs := writeNpy(t, dir, "sub/points64.npy", false, points[:12], 3, 4)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "targets"), 0o755))
	cases := []struct {
		name    string
		file    string
		json    string
		kind    string
		k, d    int         // components (gmm) or points (empirical)
		cov     ops.CovKind // gmm only
		mixture int         // empirical only
		data    string      // empirical only: the resolved data file
		str     string
	}{
		{"isotropic", "t.json", iso, KindGMM, 2, 2, ops.Isotropic, 0, "", "gmm (K = 2, d = 2, isotropic)"},
		{"diagonal", "t.json", `{"kind": "gmm", "weights": [1, 2, 3], "means": [[0, 0, 0], [1, 1, 1], [2, 2, 2]],
			"covariance": "diagonal", "diag": [[1, 2, 3], [0.5, 0.5, 0.5], [1, 1, 1]]}`, KindGMM, 3, 3, ops.Diagonal, 0, "", "gmm (K = 3, d = 3, diagonal)"},
		{"full", "t.json", `{"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]], "covariance": "full",
			"covs": [[[1, 0.3], [0.3, 1]], [[0.5, 0], [0, 0.5]]]}`, KindGMM, 2, 2, ops.Full, 0, "", "gmm (K = 2, d = 2, full)"},
		{"one component in one dimension", "t.json", `{"covariance": "isotropic", "vars": [2], "means": [[-1]], "weights": [5], "kind": "gmm"}`,
			KindGMM, 1, 1, ops.Isotropic, 0, "", "gmm (K = 1, d = 1, isotropic)"},
		{"empirical, relative path", "t.json", `{"kind": "empirical", "data": "points.npy"}`, KindEmpirical, 5, 3, 0, 1,
			filepath.Join(dir, "points.npy"), "empirical (M = 5 points, d = 3)"},
		{"empirical, relative to the JSON file's directory", "targets/t.json", `{"kind": "empirical", "data": "../sub/points64.npy"}`,
			KindEmpirical, 3, 4, 0, 1, abs, "empirical (M = 3 points, d = 4)"},
		{"empirical, absolute path", "targets/t.json", `{"kind": "empirical", "data": "` + abs + `"}`, KindEmpirical, 3, 4, 0, 1, abs,
			"empirical (M = 3 points, d = 4)"},
		{"empirical with a scale mixture", "t.json", `{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1, 3], "scales": [1, 4]}}`,
			KindEmpirical, 5, 3, 0, 2, filepath.Join(dir, "points.npy"), "empirical (M = 5 points, d = 3, 2-term scale mixture)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, err := Load(writeJSON(t, dir, c.file, c.json))
			require.NoError(t, err)
			assert.Equal(t, c.kind, tg.Kind())
			assert.Equal(t, c.d, tg.Dim())
			assert.Equal(t, c.str, tg.String())
			switch v := tg.(type) {
			case GMM:
				require.Equal(t, KindGMM, c.kind)
				assert.Equal(t, c.k, v.Mixture.K())
				assert.Equal(t, c.d, v.Mixture.Dim())
				assert.Equal(t, c.cov, v.Mixture.Kind())
			case Empirical:
				require.Equal(t, KindEmpirical, c.kind)
				assert.Equal(t, c.k, v.DataSet.Points())
				assert.Equal(t, c.d, v.DataSet.Dim())
				assert.Equal(t, c.mixture, v.DataSet.MixtureSize())
				assert.Equal(t, c.data, v.File)
			default:
				t.Fatalf("Load returned %T", tg)
			}
		})
	}
}

func TestMixtureWeightsAreNormalised(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, dir, "points.npy", false, points, 5, 3)
	tg, err := Parse([]byte(`{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1, 3], "scales": [1, 4]}}`), dir)
	require.NoError(t, err)
	logW, scales := tg.(Empirical).DataSet.Mixture()
	assert.InDeltaSlice(t, []float64{math.Log(0.25), math.Log(0.75)}, logW, 1e-15)
	assert.Equal(t, []float64{1, 4}, scales)

	g, err := Parse([]byte(iso), "")
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{math.Log(0.3), math.Log(0.7)}, g.(GMM).Mixture.Params().LogWeights, 1e-15)
}

// evaluate runs every output a target has on the CPU reference at the given noise.
func evaluate(t *testing.T, eval func(out ops.ScoreOutputs) error, x *tensor.Tensor, k int) [][]float64 {
	t.Helper()
	n, d := x.Dim(0), x.Dim(1)
	newT := func(shape ...int) *tensor.Tensor {
		v, err := tensor.New(nil, x.DType(), shape...)
		require.NoError(t, err)
		return v
	}
	out := ops.ScoreOutputs{LogP: newT(n), Score: newT(n, d), Denoiser: newT(n, d)}
	if k > 0 {
		out.Resp = newT(n, k)
	}
	require.NoError(t, eval(out))
	var res [][]float64
	for _, o := range []*tensor.Tensor{out.LogP, out.Score, out.Denoiser, out.Resp} {
		if o == nil {
			continue
		}
		v, err := o.Float64s()
		require.NoError(t, err)
		res = append(res, v)
	}
	return res
}

// testPoints are n points in d dimensions spread over a few units, in dtype dt.
func testPoints(t *testing.T, dt tensor.DType, n, d int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, err)
	require.NoError(t, ops.CPU().Normal(x, ops.Draw{Seed: 11}))
	v, _ := x.F64()
	for i := range v {
		v[i] = 2*v[i] + 1
	}
	if dt == tensor.F64 {
		return x
	}
	v32 := make([]float32, len(v))
	for i := range v {
		v32[i] = float32(v[i])
	}
	x32, err := tensor.FromF32(v32, n, d)
	require.NoError(t, err)
	return x32
}

func TestGMMRoundTrip(t *testing.T) {
	specs := map[string]ops.GMMSpec{
		"isotropic": {Weights: []float64{0.3, 0.7, 1e-3}, Means: [][]float64{{0, 0}, {4, 1}, {-2.5, 1.0 / 3}},
			Vars: []float64{1, 0.25, 0.1}},
		"diagonal": {Weights: []float64{1, 2}, Means: [][]float64{{0.1, 0.2, 0.3}, {1, -1, 1}},
			Diag: [][]float64{{1, 2, 3}, {0.5, math.Pi, 0.7}}},
		"full": {Weights: []float64{0.3, 0.7}, Means: [][]float64{{0, 0}, {4, 1}},
			Covs: [][][]float64{{{1, 0.3}, {0.3, 1}}, {{0.5, 0.1}, {0.1, 1.0 / 7}}}},
	}
	dir := t.TempDir()
	b := ops.CPU()
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			text, err := EncodeGMM(spec)
			require.NoError(t, err)
			assert.Contains(t, string(text), `"covariance":"`+name+`"`)
			tg, err := Load(writeJSON(t, dir, name+".json", string(text)))
			require.NoError(t, err)
			direct, err := ops.NewGMM(spec)
			require.NoError(t, err)
			loaded := tg.(GMM).Mixture
			assert.Equal(t, direct.Params(), loaded.Params())

			for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
				x := testPoints(t, dt, 33, direct.Dim())
				for _, noise := range []ops.Noise{ops.AtSigma(0.7), ops.AtTime(0.3)} {
					require.NoError(t, tg.Check(tensor.CPU(), ops.ScoreOutputs{LogP: mustNew(t, dt, 33)}, x, noise))
					got := evaluate(t, func(out ops.ScoreOutputs) error { return tg.Evaluate(b, out, x, noise) }, x, direct.K())
					want := evaluate(t, func(out ops.ScoreOutputs) error { return b.GMMScore(out, x, direct, noise) }, x, direct.K())
					require.Len(t, got, 4)
					assert.Equal(t, want, got, "%v %v", dt, noise)
					for _, v := range got {
						for i, e := range v {
							require.False(t, math.IsNaN(e) || math.IsInf(e, 0), "output element %d = %v", i, e)
						}
					}
				}
			}
		})
	}
	_, err := EncodeGMM(ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0}}, Vars: []float64{-1}})
	assert.ErrorContains(t, err, "gmm: vars[0] = -1")
}

func mustNew(t *testing.T, dt tensor.DType, shape ...int) *tensor.Tensor {
	t.Helper()
	v, err := tensor.New(nil, dt, shape...)
	require.NoError(t, err)
	return v
}

func TestEmpiricalMatchesDirect(t *testing.T) {
	dir := t.TempDir()
	path := writeNpy(t, dir, "points.npy", true, points, 5, 3)
	b := ops.CPU()
	for _, mixture := range []string{"", `, "mixture": {"weights": [1, 3], "scales": [1, 4]}`} {
		tg, err := Load(writeJSON(t, dir, "t.json", `{"kind": "empirical", "data": "points.npy"`+mixture+`}`))
		require.NoError(t, err)
		data, err := tensor.ReadNpy(path)
		require.NoError(t, err)
		direct, err := ops.NewEmpirical(data)
		require.NoError(t, err)
		if mixture != "" {
			direct, err = direct.WithMixture([]float64{1, 3}, []float64{1, 4})
			require.NoError(t, err)
		}
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			x := testPoints(t, dt, 17, 3)
			noise := ops.AtSigma(0.4)
			got := evaluate(t, func(out ops.ScoreOutputs) error { return tg.Evaluate(b, out, x, noise) }, x, 0)
			want := evaluate(t, func(out ops.ScoreOutputs) error { return b.EmpiricalScore(out, x, direct, noise) }, x, 0)
			require.Len(t, got, 3)
			assert.Equal(t, want, got, "mixture %q, %v", mixture, dt)
		}

		// Responsibilities are a GMM output: Check and Evaluate refuse them for a data set.
		x := testPoints(t, tensor.F64, 2, 3)
		out := ops.ScoreOutputs{Resp: mustNew(t, tensor.F64, 2, 5)}
		assert.ErrorContains(t, tg.Check(tensor.CPU(), out, x, ops.AtSigma(1)), "responsibilities")
		assert.ErrorContains(t, tg.Evaluate(b, out, x, ops.AtSigma(1)), "responsibilities")
	}
}

func TestCheckRejectsADimensionMismatch(t *testing.T) {
	tg, err := Parse([]byte(iso), "")
	require.NoError(t, err)
	x := testPoints(t, tensor.F64, 4, 3)
	out := ops.ScoreOutputs{LogP: mustNew(t, tensor.F64, 4)}
	assert.ErrorContains(t, tg.Check(tensor.CPU(), out, x, ops.AtSigma(1)), "x has dimension 3, the target has 2")
	assert.ErrorContains(t, tg.Evaluate(ops.CPU(), out, x, ops.AtSigma(1)), "x has dimension 3, the target has 2")
}

func TestKinds(t *testing.T) {
	assert.Equal(t, []string{"gmm", "empirical", "mlp"}, Kinds())
	k := Kinds()
	k[0] = "changed"
	assert.Equal(t, "gmm", Kinds()[0])
}
