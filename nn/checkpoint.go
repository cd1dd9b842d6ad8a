package nn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The checkpoint format: what the metadata says and how tensors map to an ops.MLP.
const (
	FormatName      = "scorekit.mlp-denoiser" // metadata "format"
	FormatVersion   = "1"                     // metadata "format_version"
	Activation      = "silu"                  // metadata "activation": φ(z) = z·sigmoid(z)
	Embedding       = "fourier(log(sigma)/4)" // metadata "embedding": cos/sin(2π f_k c_noise), c_noise = ¼ ln σ
	Preconditioning = "edm"                   // metadata "preconditioning": Karras et al. (2022)

	// CovName is the optional (d, d) tensor of the data covariance.
	CovName = "data.cov"
)

// Metadata keys of the architecture, in the order the package doc lists them. Every other key of
// a checkpoint's __metadata__ is training information (Meta.Info).
var archKeys = []string{"format", "format_version", "dim", "width", "depth", "block_layers", "fourier",
	"sigma_data", "branch_mult", "out_mult", "activation", "embedding", "preconditioning"}

// ReservedKeys are the metadata keys that describe the architecture; Meta.Info may not use them.
func ReservedKeys() []string { return slices.Clone(archKeys) }

// covTol is the relative tolerance of the covariance checks: symmetric to covTol of the entries'
// scale, smallest eigenvalue ≥ −covTol × the largest (room for float32 storage and for a
// covariance computed by a GEMM whose (i, j) and (j, i) entries were summed in different orders).
const covTol = 1e-6

// Meta is what a checkpoint holds besides the network.
type Meta struct {
	// Info is free-form training information (parametrization, steps, seed, final_loss, …), stored
	// as metadata keys beside the architecture's; keys and values must be valid UTF-8 and no key
	// may be one of ReservedKeys. Load returns every key that is not reserved (nil when none).
	Info map[string]string
	// Cov is the optional data covariance, (d, d) row-major, for the sampler's exact start: finite,
	// symmetric and positive semi-definite (to a relative 1e-6). Nil: none.
	Cov []float64
	// DType is the storage precision: Save writes F64 (the zero value) or F32; Load reports F32
	// when any tensor of the file was stored in F32.
	DType DType
}

// Save writes m and meta to path as a safetensors checkpoint, atomically: the bytes go to a
// temporary file in the same directory, which is synced and renamed over path only when all was
// written. On any error nothing is left behind and an existing file at path keeps its content.
func Save(path string, m *ops.MLP, meta Meta) error {
	if err := tensor.WriteFileAtomic(path, func(w io.Writer) error {
		b, err := encode(m, meta)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("nn: save: %w", err) // "write <path>: <problem>"
	}
	return nil
}

// Write writes m and meta as a safetensors checkpoint to w (nothing is written when m or meta is
// invalid).
func Write(w io.Writer, m *ops.MLP, meta Meta) error {
	b, err := encode(m, meta)
	if err != nil {
		return fmt.Errorf("nn: write checkpoint: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("nn: write checkpoint: %w", err)
	}
	return nil
}

// Load reads the checkpoint at path (see Read).
func Load(path string) (*ops.MLP, Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("nn: load %s: %w", path, err)
	}
	defer f.Close()
	m, meta, err := decode(f)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("nn: load %s: %w", path, err)
	}
	return m, meta, nil
}

// Read reads a checkpoint from r, to its end: the safetensors layout and the checks of the package
// doc, the metadata (format, version, every architecture key), exactly the tensors of that
// architecture with their shapes (plus data.cov, optional), finite values; then builds the network
// with ops.NewMLP. F32 tensors are widened exactly.
func Read(r io.Reader) (*ops.MLP, Meta, error) {
	m, meta, err := decode(r)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("nn: read checkpoint: %w", err)
	}
	return m, meta, nil
}

// ReadBytes is Read on an in-memory file.
func ReadBytes(b []byte) (*ops.MLP, Meta, error) { return Read(bytes.NewReader(b)) }

// Metadata returns the __metadata__ that Save writes for m and meta: the architecture's keys and
// meta.Info.
func Metadata(m *ops.MLP, meta Meta) (map[string]string, error) {
	if m == nil {
		return nil, errors.New("nil network")
	}
	c := m.Config()
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	out := map[string]string{
		"format":          FormatName,
		"format_version":  FormatVersion,
		"dim":             strconv.Itoa(c.Dim),
		"width":           strconv.Itoa(c.Width),
		"depth":           strconv.Itoa(c.Depth),
		"block_layers":    strconv.Itoa(c.BlockLayers),
		"fourier":         strconv.Itoa(c.Fourier),
		"sigma_data":      g(c.SigmaData),
		"branch_mult":     g(c.BranchMult),
		"out_mult":        g(c.OutMult),
		"activation":      Activation,
		"embedding":       Embedding,
		"preconditioning": Preconditioning,
	}
	for k, v := range meta.Info {
		if _, reserved := out[k]; reserved {
			return nil, fmt.Errorf("info key %q is reserved for the architecture (%s)", k, joinNames(archKeys))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("info key %q: key and value must be valid UTF-8", k)
		}
		out[k] = v
	}
	return out, nil
}

func encode(m *ops.MLP, meta Meta) ([]byte, error) {
	if m == nil {
		return nil, errors.New("nil network")
	}
	if meta.DType != F64 && meta.DType != F32 {
		return nil, fmt.Errorf("dtype %v: checkpoints hold F64 or F32", meta.DType)
	}
	md, err := Metadata(m, meta)
	if err != nil {
		return nil, err
	}
	var tensors []outTensor
	for _, p := range m.Params() {
		tensors = append(tensors, outTensor{p.Name, p.Shape, p.Data})
	}
	if meta.Cov != nil {
		d := m.Dim()
		if err := checkCov(meta.Cov, d); err != nil {
			return nil, err
		}
		tensors = append(tensors, outTensor{CovName, []int{d, d}, meta.Cov})
	}
	return encodeSafetensors(md, tensors, meta.DType)
}

func decode(r io.Reader) (*ops.MLP, Meta, error) {
	f, err := readSafetensors(r)
	if err != nil {
		return nil, Meta{}, err
	}
	cfg, info, err := parseMetadata(f.meta)
	if err != nil {
		return nil, Meta{}, err
	}
	if err := cfg.Check(); err != nil {
		return nil, Meta{}, fmt.Errorf("metadata: %w", err)
	}
	names := ops.MLPParamNames(cfg)
	var missing []string
	for _, name := range names {
		if f.tensor(name) == nil {
			missing = append(missing, name)
		}
	}
	if missing != nil {
		return nil, Meta{}, fmt.Errorf("missing tensors %s for the architecture (%s)", joinNames(missing), cfg)
	}
	meta := Meta{Info: info}
	var params []ops.MLPParam
	for _, t := range f.tensors {
		want := ops.MLPParamShape(cfg, t.name)
		if t.name == CovName {
			want = []int{cfg.Dim, cfg.Dim}
		}
		if want == nil {
			return nil, Meta{}, fmt.Errorf("unexpected tensor %q: not a parameter of the architecture (%s)", t.name, cfg)
		}
		if !slices.Equal(t.shape, want) {
			return nil, Meta{}, fmt.Errorf("tensor %q has shape %v, the architecture (%s) needs %v", t.name, t.shape, cfg, want)
		}
		values, err := t.float64s()
		if err != nil {
			return nil, Meta{}, err
		}
		if t.dtype == F32 {
			meta.DType = F32
		}
		if t.name == CovName {
			if err := checkCov(values, cfg.Dim); err != nil {
				return nil, Meta{}, err
			}
			meta.Cov = values
			continue
		}
		params = append(params, ops.MLPParam{Name: t.name, Shape: t.shape, Data: values})
	}
	m, err := ops.NewMLP(cfg, params)
	if err != nil {
		return nil, Meta{}, err
	}
	return m, meta, nil
}

// float64s decodes the tensor's little-endian bytes; every value must be finite.
func (t *stTensor) float64s() ([]float64, error) {
	n := len(t.data) / int(t.dtype.size())
	out := make([]float64, n)
	for i := range out {
		var v float64
		if t.dtype == F32 {
			v = float64(math.Float32frombits(leUint32(t.data[4*i:])))
		} else {
			v = math.Float64frombits(leUint64(t.data[8*i:]))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("tensor %q: entry %d = %g is not finite", t.name, i, v)
		}
		out[i] = v
	}
	return out, nil
}

func leUint32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func leUint64(b []byte) uint64 {
	return uint64(leUint32(b)) | uint64(leUint32(b[4:]))<<32
}

// parseMetadata reads the architecture from __metadata__ and returns the remaining keys as Info.
func parseMetadata(md map[string]string) (ops.MLPConfig, map[string]string, error) {
	var c ops.MLPConfig
	if md == nil {
		return c, nil, fmt.Errorf("no __metadata__: not a %s checkpoint", FormatName)
	}
	if f, ok := md["format"]; !ok {
		return c, nil, fmt.Errorf("metadata has no \"format\": not a %s checkpoint", FormatName)
	} else if f != FormatName {
		return c, nil, fmt.Errorf("metadata format %q is not %q", f, FormatName)
	}
	var missing []string
	for _, k := range archKeys {
		if _, ok := md[k]; !ok {
			missing = append(missing, k)
		}
	}
	if missing != nil {
		return c, nil, fmt.Errorf("metadata lacks %s", joinNames(missing))
	}
	if v := md["format_version"]; v != FormatVersion {
		return c, nil, fmt.Errorf("metadata format_version %q is not supported (this reader reads %q)", v, FormatVersion)
	}
	for _, fixed := range []struct{ key, want string }{
		{"activation", Activation}, {"embedding", Embedding}, {"preconditioning", Preconditioning},
	} {
		if v := md[fixed.key]; v != fixed.want {
			return c, nil, fmt.Errorf("metadata %s %q: this network is defined with %q", fixed.key, v, fixed.want)
		}
	}
	var err error
	ints := []struct {
		key string
		dst *int
	}{{"dim", &c.Dim}, {"width", &c.Width}, {"depth", &c.Depth}, {"block_layers", &c.BlockLayers}, {"fourier", &c.Fourier}}
	for _, f := range ints {
		if *f.dst, err = strconv.Atoi(md[f.key]); err != nil {
			return c, nil, fmt.Errorf("metadata %s %q is not an integer", f.key, md[f.key])
		}
	}
	floats := []struct {
		key string
		dst *float64
	}{{"sigma_data", &c.SigmaData}, {"branch_mult", &c.BranchMult}, {"out_mult", &c.OutMult}}
	for _, f := range floats {
		v, err := strconv.ParseFloat(strings.TrimSpace(md[f.key]), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return c, nil, fmt.Errorf("metadata %s %q is not a finite number", f.key, md[f.key])
		}
		*f.dst = v
	}
	var info map[string]string
	for k, v := range md {
		if !slices.Contains(archKeys, k) {
			if info == nil {
				info = make(map[string]string)
			}
			info[k] = v
		}
	}
	return c, info, nil
}

// checkCov checks a (d, d) covariance: finite, symmetric to covTol of max(|c_ij|, |c_ji|,
// √(c_ii c_jj)), non-negative diagonal, smallest eigenvalue ≥ −covTol × max(largest, 0).
func checkCov(c []float64, d int) error {
	if len(c) != d*d {
		return fmt.Errorf("%s: %d values, a (%d, %d) covariance has %d", CovName, len(c), d, d, d*d)
	}
	for i, v := range c {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: entry (%d, %d) = %g is not finite", CovName, i/d, i%d, v)
		}
	}
	for i := 0; i < d; i++ {
		if c[i*d+i] < 0 {
			return fmt.Errorf("%s: diagonal entry (%d, %d) = %g is negative", CovName, i, i, c[i*d+i])
		}
	}
	for i := 0; i < d; i++ {
		for j := i + 1; j < d; j++ {
			a, b := c[i*d+j], c[j*d+i]
			scale := max(math.Abs(a), math.Abs(b), math.Sqrt(c[i*d+i]*c[j*d+j]))
			if math.Abs(a-b) > covTol*scale {
				return fmt.Errorf("%s is not symmetric: (%d, %d) = %g, (%d, %d) = %g", CovName, i, j, a, j, i, b)
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(d, slices.Clone(c)), false) {
		return fmt.Errorf("%s: eigendecomposition failed", CovName)
	}
	ev := eig.Values(nil) // ascending
	if lo, hi := ev[0], ev[d-1]; lo < -covTol*max(hi, 0) {
		return fmt.Errorf("%s is not positive semi-definite: smallest eigenvalue %g, largest %g", CovName, lo, hi)
	}
	return nil
}
