package target

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The kinds this version evaluates.
const (
	KindGMM       = "gmm"
	KindEmpirical = "empirical"
	KindMLP       = "mlp"
)

// Kinds returns the kinds this version evaluates, in the order the documentation lists them.
func Kinds() []string { return []string{KindGMM, KindEmpirical, KindMLP} }

// plannedKinds are kinds of the command's contract that this version does not evaluate.
var plannedKinds = []string{"box", "ball", "polytope"}

// Target is a density that a score op can evaluate: its log-density, score and denoiser at any
// noise level, on any backend.
type Target interface {
	// Kind is KindGMM, KindEmpirical or KindMLP.
	Kind() string
	// Dim is the dimension d of the points the target lives on.
	Dim() int
	// Check validates the arguments of Evaluate for a backend running on dev without computing
	// anything (the same check every backend makes first).
	Check(dev tensor.Device, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error
	// Evaluate computes the requested outputs at every row of x (N, d), noised by noise, on b:
	// b.GMMScore for a mixture, b.EmpiricalScore for a data set, b.MLPScore for a network.
	Evaluate(b ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error
	// String is a short description: "gmm (K = 2, d = 2, isotropic)".
	String() string
}

// GMM is a Gaussian-mixture target.
type GMM struct {
	Mixture *ops.GMM
}

// Kind is KindGMM.
func (GMM) Kind() string { return KindGMM }

// Dim is the mixture's dimension.
func (g GMM) Dim() int { return g.Mixture.Dim() }

// Check validates Evaluate's arguments (ops.CheckGMMScore).
func (g GMM) Check(dev tensor.Device, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
	return ops.CheckGMMScore(dev, out, x, g.Mixture, noise)
}

// Evaluate runs b.GMMScore.
func (g GMM) Evaluate(b ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
	return b.GMMScore(out, x, g.Mixture, noise)
}

func (g GMM) String() string {
	return fmt.Sprintf("gmm (K = %d, d = %d, %v)", g.Mixture.K(), g.Mixture.Dim(), g.Mixture.Kind())
}

// Empirical is the optimal-denoiser target of a data set.
type Empirical struct {
	DataSet *ops.Empirical
	// File is the .npy file the data was read from, as resolved (empty when built in memory).
	File string
}

// Kind is KindEmpirical.
func (Empirical) Kind() string { return KindEmpirical }

// Dim is the dimension of the data points.
func (e Empirical) Dim() int { return e.DataSet.Dim() }

// Check validates Evaluate's arguments (ops.CheckEmpiricalScore).
func (e Empirical) Check(dev tensor.Device, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
	return ops.CheckEmpiricalScore(dev, out, x, e.DataSet, noise)
}

// Evaluate runs b.EmpiricalScore.
func (e Empirical) Evaluate(b ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
	return b.EmpiricalScore(out, x, e.DataSet, noise)
}

func (e Empirical) String() string {
	s := fmt.Sprintf("empirical (M = %d points, d = %d", e.DataSet.Points(), e.DataSet.Dim())
	if q := e.DataSet.MixtureSize(); q > 1 {
		s += fmt.Sprintf(", %d-term scale mixture", q)
	}
	return s + ")"
}

// MLP is a learned denoiser network (a checkpoint read by package nn). It has a score and a
// denoiser at every noise level σ > 0, no log-density and no noise-free score.
type MLP struct {
	Net *ops.MLP
	// Cov is the data covariance (d × d, row-major) stored with the network, nil when the checkpoint
	// has none; with the network's data mean it gives the samplers' start (solvers.SampleNoised).
	Cov []float64
	// File is the checkpoint the network was read from, as resolved (empty when built in memory).
	File string
}

// Kind is KindMLP.
func (MLP) Kind() string { return KindMLP }

// Dim is the network's data dimension.
func (m MLP) Dim() int { return m.Net.Dim() }

// Check validates Evaluate's arguments (ops.CheckMLPScore).
func (m MLP) Check(dev tensor.Device, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
	return ops.CheckMLPScore(dev, out, x, m.Net, noise)
}

// Evaluate runs b.MLPScore.
func (m MLP) Evaluate(b ops.Backend, out ops.ScoreOutputs, x *tensor.Tensor, noise ops.Noise) error {
	return b.MLPScore(out, x, m.Net, noise)
}

func (m MLP) String() string { return m.Net.String() }

// Load reads the target file at path (see the package documentation). A relative "data" path is
// resolved against the file's directory. Every error is one line starting with path.
func Load(path string) (Target, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, in front
		}
		return nil, fmt.Errorf("%s: cannot read the target file: %w", path, err)
	}
	t, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a target from its JSON text. A relative "data" path is resolved against baseDir
// (the working directory when baseDir is empty). Every error is one line naming the field.
func Parse(data []byte, baseDir string) (Target, error) {
	obj, err := readObject(data, "")
	if err != nil {
		return nil, err
	}
	raw, ok := obj.fields["kind"]
	if !ok {
		return nil, fmt.Errorf("kind: missing (want %s)", quotedList(Kinds(), "or"))
	}
	kind, err := asString(decodeValue(raw), "kind")
	if err != nil {
		return nil, err
	}
	switch kind {
	case KindGMM:
		return parseGMM(obj)
	case KindEmpirical:
		return parseEmpirical(obj, baseDir)
	case KindMLP:
		return parseMLP(obj, baseDir)
	}
	for _, k := range plannedKinds {
		if kind == k {
			return nil, fmt.Errorf("kind: %q is not available in this version (available: %s)",
				kind, strings.Join(Kinds(), ", "))
		}
	}
	return nil, fmt.Errorf("kind: unknown kind %q (known: %s)", kind, strings.Join(Kinds(), ", "))
}

// covarianceFields maps each covariance name to the field holding its parameters.
var covarianceFields = map[string]string{"isotropic": "vars", "diagonal": "diag", "full": "covs"}

const covarianceWant = `"isotropic" (with vars), "diagonal" (with diag) or "full" (with covs)`

func parseGMM(obj object) (Target, error) {
	const p = "gmm: "
	if err := obj.only(p, "a gmm target", "kind", "weights", "means", "covariance", "vars", "diag", "covs"); err != nil {
		return nil, err
	}
	var spec ops.GMMSpec
	var err error
	if spec.Weights, err = vectorField(obj, p, "weights", "one positive weight per component"); err != nil {
		return nil, err
	}
	if spec.Means, err = matrixField(obj, p, "means", "one mean per component"); err != nil {
		return nil, err
	}
	raw, ok := obj.fields["covariance"]
	if !ok {
		return nil, fmt.Errorf("%scovariance: missing (want %s)", p, covarianceWant)
	}
	cov, err := asString(decodeValue(raw), p+"covariance")
	if err != nil {
		return nil, err
	}
	field, ok := covarianceFields[cov]
	if !ok {
		return nil, fmt.Errorf("%scovariance: unknown covariance %q (want %s)", p, cov, covarianceWant)
	}
	for _, other := range []string{"vars", "diag", "covs"} {
		if _, given := obj.fields[other]; given && other != field {
			return nil, fmt.Errorf("%s%s: not used with covariance %q, which takes %s", p, other, cov, field)
		}
	}
	switch cov {
	case "isotropic":
		spec.Vars, err = vectorField(obj, p, "vars", "one variance per component")
	case "diagonal":
		spec.Diag, err = matrixField(obj, p, "diag", "d variances per component")
	default:
		spec.Covs, err = matricesField(obj, p, "covs", "one d × d covariance matrix per component")
	}
	if err != nil {
		return nil, err
	}
	g, err := ops.NewGMM(spec) // its errors start with "gmm: " and name the field
	if err != nil {
		return nil, err
	}
	return GMM{Mixture: g}, nil
}

func parseEmpirical(obj object, baseDir string) (Target, error) {
	const p = "empirical: "
	if err := obj.only(p, "an empirical target", "kind", "data", "mixture"); err != nil {
		return nil, err
	}
	raw, ok := obj.fields["data"]
	if !ok {
		return nil, fmt.Errorf("%sdata: missing (want the path of a .npy file of shape (points, dim))", p)
	}
	name, err := asString(decodeValue(raw), p+"data")
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%sdata: empty path (want the path of a .npy file of shape (points, dim))", p)
	}
	file := name
	if !filepath.IsAbs(file) && baseDir != "" {
		file = filepath.Join(baseDir, file)
	}
	x, err := tensor.ReadNpy(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) { // "read f: open f: no such file …": say the file once
			return nil, fmt.Errorf("%sdata %q: cannot read %s: %w", p, name, file, pe.Err)
		}
		return nil, fmt.Errorf("%sdata %q: %w", p, name, err)
	}
	if x.Rank() != 2 {
		return nil, fmt.Errorf("%sdata %q: shape %v: want (points, dim)", p, name, x.Shape())
	}
	set, err := ops.NewEmpirical(x)
	if err != nil {
		return nil, fmt.Errorf("%sdata %q: %s", p, name, strings.TrimPrefix(err.Error(), "empirical: "))
	}
	if raw, ok := obj.fields["mixture"]; ok {
		mix, err := readObject(raw, p+"mixture: ")
		if err != nil {
			return nil, err
		}
		mp := p + "mixture."
		if err := mix.only(p+"mixture: ", "a mixture", "weights", "scales"); err != nil {
			return nil, err
		}
		weights, err := vectorField(mix, mp, "weights", "one positive weight per mixture term")
		if err != nil {
			return nil, err
		}
		scales, err := vectorField(mix, mp, "scales", "one positive variance multiplier per mixture term")
		if err != nil {
			return nil, err
		}
		if set, err = set.WithMixture(weights, scales); err != nil {
			return nil, err // "empirical: mixture weights[0] = ...", names the field
		}
	}
	return Empirical{DataSet: set, File: file}, nil
}

// EncodeGMM writes spec as a target file's JSON (kind "gmm", the covariance named after the one
// of Vars, Diag and Covs that is set). The spec is validated by ops.NewGMM first. Numbers are
// written so that Parse reads back exactly the same float64 values.
func EncodeGMM(spec ops.GMMSpec) ([]byte, error) {
	g, err := ops.NewGMM(spec)
	if err != nil {
		return nil, err
	}
	v := struct {
		Kind       string        `json:"kind"`
		Weights    []float64     `json:"weights"`
		Means      [][]float64   `json:"means"`
		Covariance string        `json:"covariance"`
		Vars       []float64     `json:"vars,omitempty"`
		Diag       [][]float64   `json:"diag,omitempty"`
		Covs       [][][]float64 `json:"covs,omitempty"`
	}{KindGMM, spec.Weights, spec.Means, g.Kind().String(), spec.Vars, spec.Diag, spec.Covs}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("gmm: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// object is a JSON object whose keys have been checked for duplicates.
type object struct {
	fields map[string]json.RawMessage
}

// readObject reads data as exactly one JSON object; prefix starts every error message.
func readObject(data []byte, prefix string) (object, error) {
	obj := object{fields: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return obj, fmt.Errorf("%sempty: want a JSON object {\"kind\": ...}", prefix)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	syntax := func(err error) error {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			line, col := position(data, se.Offset)
			return fmt.Errorf("%sinvalid JSON at line %d, column %d: %s", prefix, line, col, se.Error())
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return fmt.Errorf("%sinvalid JSON: unexpected end of input (unclosed object or array?)", prefix)
		}
		return fmt.Errorf("%sinvalid JSON: %w", prefix, err)
	}
	tok, err := dec.Token()
	if err != nil {
		return obj, syntax(err)
	}
	if tok != json.Delim('{') {
		return obj, fmt.Errorf("%swant a JSON object {...}, found %s", prefix, describeToken(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return obj, syntax(err)
		}
		key := tok.(string) // inside an object the decoder only returns keys here
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return obj, syntax(err)
		}
		if _, dup := obj.fields[key]; dup {
			return obj, fmt.Errorf("%sfield %q is given twice", prefix, key)
		}
		obj.fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return obj, syntax(err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		rest := data[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		line, col := position(data, end)
		return obj, fmt.Errorf("%sunexpected data after the object at line %d, column %d", prefix, line, col)
	}
	return obj, nil
}

// only checks that every key of o is one of allowed (exactly, case included); the error for
// another key lists them. prefix starts the message, what names the object.
func (o object) only(prefix, what string, allowed ...string) error {
	keys := make([]string, 0, len(o.fields))
	for k := range o.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if known {
			continue
		}
		for _, a := range allowed {
			if strings.EqualFold(k, a) {
				return fmt.Errorf("%sunknown field %q (did you mean %q? field names are lower case)", prefix, k, a)
			}
		}
		return fmt.Errorf("%sunknown field %q (%s has %s)", prefix, k, what, strings.Join(allowed, ", "))
	}
	return nil
}

// position converts a byte offset of data into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// decodeValue decodes one raw JSON value (already checked to be valid) with numbers kept as text.
func decodeValue(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err // cannot happen: raw came out of a successful Decode
	}
	return v
}

// describe says what a decoded JSON value is, for "found ..." in errors.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", v)
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case []any:
		return fmt.Sprintf("an array of %d elements", len(v))
	case map[string]any:
		return "an object"
	case error:
		return v.Error()
	}
	return fmt.Sprintf("%T", v)
}

// describeToken describes the first token of a value.
func describeToken(tok json.Token) string {
	switch tok {
	case json.Delim('['):
		return "an array"
	case json.Delim('{'):
		return "an object"
	}
	return describe(tok)
}

func asString(v any, path string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, found %s", path, describe(v))
	}
	return s, nil
}

func asNumber(v any, path string) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s: want a number, found %s", path, describe(v))
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		return 0, fmt.Errorf("%s = %s: out of the float64 range", path, n)
	}
	return f, nil
}

func asArray(v any, path, want string) ([]any, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want %s, found %s", path, want, describe(v))
	}
	return a, nil
}

func asVector(v any, path string) ([]float64, error) {
	a, err := asArray(v, path, "an array of numbers")
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(a))
	for i, e := range a {
		if out[i], err = asNumber(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func asMatrix(v any, path string) ([][]float64, error) {
	a, err := asArray(v, path, "an array of arrays of numbers")
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(a))
	for i, e := range a {
		if out[i], err = asVector(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func asMatrices(v any, path string) ([][][]float64, error) {
	a, err := asArray(v, path, "an array of matrices (arrays of arrays of numbers)")
	if err != nil {
		return nil, err
	}
	out := make([][][]float64, len(a))
	for i, e := range a {
		if out[i], err = asMatrix(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// field returns the decoded value of a required field; purpose says what it holds.
func field(o object, prefix, name, purpose string) (any, error) {
	raw, ok := o.fields[name]
	if !ok {
		return nil, fmt.Errorf("%s%s: missing (want %s)", prefix, name, purpose)
	}
	return decodeValue(raw), nil
}

func vectorField(o object, prefix, name, purpose string) ([]float64, error) {
	v, err := field(o, prefix, name, "an array of numbers: "+purpose)
	if err != nil {
		return nil, err
	}
	return asVector(v, prefix+name)
}

func matrixField(o object, prefix, name, purpose string) ([][]float64, error) {
	v, err := field(o, prefix, name, "an array of arrays of numbers: "+purpose)
	if err != nil {
		return nil, err
	}
	return asMatrix(v, prefix+name)
}

func matricesField(o object, prefix, name, purpose string) ([][][]float64, error) {
	v, err := field(o, prefix, name, "an array of matrices: "+purpose)
	if err != nil {
		return nil, err
	}
	return asMatrices(v, prefix+name)
}

// quotedList writes `"a", "b" or "c"`.
func quotedList(items []string, conj string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}
