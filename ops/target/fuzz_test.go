package target

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The target file parser never panics and every error is one line; a target it accepts has a
// dimension, and its score at a point is finite (a mixture at the origin, without noise; a data
// set at unit noise).
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	if err := tensor.WriteNpy(filepath.Join(dir, "points.npy"), mustF64(f, []float64{0, 1, 2, 3, -1, 0.5}, 3, 2)); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]], "covariance": "isotropic", "vars": [1.0, 0.25]}`,
		`{"kind": "gmm", "weights": [1, 2], "means": [[0, 0], [4, 1]], "covariance": "diagonal", "diag": [[1, 2], [0.5, 0.5]]}`,
		`{"kind": "gmm", "weights": [1, 1], "means": [[0, 0], [4, 1]], "covariance": "full", "covs": [[[1, 0.3], [0.3, 1]], [[0.5, 0], [0, 0.5]]]}`,
		`{"kind": "gmm", "weights": [1], "means": [[1e400]], "covariance": "isotropic", "vars": [1]}`,
		`{"kind": "gmm", "weights": [1], "means": [[0]], "covariance": "full", "covs": [[[-1]]]}`,
		`{"kind": "gmm", "weights": [[[[[[[[[[[[1]]]]]]]]]]]]}`,
		`{"kind": "empirical", "data": "points.npy"}`,
		`{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [1, 1], "scales": [1, 4]}}`,
		`{"kind": "empirical", "data": "missing.npy"}`,
		`{"kind": "mlp"}`, `{"kind": 7}`, `{}`, `[]`, `{"kind": "gmm", "kind": "gmm"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if strings.Contains(string(data), "/") { // data paths stay in the fixture directory
			return
		}
		tg, err := Parse(data, dir)
		if err != nil {
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line", msg)
			}
			return
		}
		d := tg.Dim()
		if d < 1 || tg.String() == "" {
			t.Fatalf("accepted %q: dimension %d, %q", data, d, tg.String())
		}
		if d > 64 {
			return
		}
		x, _ := tensor.New(nil, tensor.F64, 1, d)
		score, _ := tensor.New(nil, tensor.F64, 1, d)
		noise := ops.AtSigma(1)
		if _, isGMM := tg.(GMM); isGMM {
			noise = ops.NoNoise
		}
		if err := tg.Evaluate(ops.CPU(), ops.ScoreOutputs{Score: score}, x, noise); err != nil {
			t.Fatalf("%q: score at the origin: %v", data, err)
		}
		v, _ := score.F64()
		for _, s := range v {
			if math.IsNaN(s) || math.IsInf(s, 0) {
				t.Fatalf("%q: score %v at the origin", data, v)
			}
		}
	})
}

func mustF64(f *testing.F, v []float64, shape ...int) *tensor.Tensor {
	x, err := tensor.FromF64(v, shape...)
	if err != nil {
		f.Fatal(err)
	}
	return x
}
