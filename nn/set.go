package nn

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// A network set: several named networks in one safetensors file (a Schrödinger bridge's
// per-interval networks, say). Network N's tensors are "N.<parameter>" and its architecture's
// metadata keys "N.<key>" (the keys of a single checkpoint); the metadata also holds
//
//	format          "scorekit.mlp-set"
//	format_version  "1"
//	networks        the names, comma-separated, in order
//
// and the set's own information (keys without a dot). Names are 1–64 characters of [A-Za-z0-9_-].
const (
	SetFormatName    = "scorekit.mlp-set"
	SetFormatVersion = "1"
)

var setKeys = []string{"format", "format_version", "networks"}

// Set is a list of named networks and the information stored with them.
type Set struct {
	Names []string
	Nets  []*ops.MLP
	// Info is free-form metadata: keys without a dot, not one of format, format_version, networks;
	// keys and values valid UTF-8.
	Info map[string]string
	// DType is the storage precision (F64 or F32), as in Meta.
	DType DType
}

func checkSetName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("network name %q: must have 1 to 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("network name %q: only letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

func encodeSet(s Set) ([]byte, error) {
	if len(s.Names) == 0 || len(s.Names) != len(s.Nets) {
		return nil, fmt.Errorf("network set: %d names for %d networks (need at least one of each, as many names as networks)", len(s.Names), len(s.Nets))
	}
	if s.DType != F64 && s.DType != F32 {
		return nil, fmt.Errorf("dtype %v: checkpoints hold F64 or F32", s.DType)
	}
	md := map[string]string{"format": SetFormatName, "format_version": SetFormatVersion, "networks": strings.Join(s.Names, ",")}
	for k, v := range s.Info {
		if strings.Contains(k, ".") || slices.Contains(setKeys, k) {
			return nil, fmt.Errorf("info key %q: reserved (a key of the format, or one with a dot)", k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("info key %q: key and value must be valid UTF-8", k)
		}
		md[k] = v
	}
	var tensors []outTensor
	for i, name := range s.Names {
		if err := checkSetName(name); err != nil {
			return nil, err
		}
		if slices.Contains(s.Names[:i], name) {
			return nil, fmt.Errorf("network name %q: given twice", name)
		}
		if s.Nets[i] == nil {
			return nil, fmt.Errorf("network %q is nil", name)
		}
		sub, err := Metadata(s.Nets[i], Meta{})
		if err != nil {
			return nil, err
		}
		for k, v := range sub {
			md[name+"."+k] = v
		}
		for _, p := range s.Nets[i].Params() {
			tensors = append(tensors, outTensor{name + "." + p.Name, p.Shape, p.Data})
		}
	}
	return encodeSafetensors(md, tensors, s.DType)
}

func decodeSet(r io.Reader) (Set, error) {
	f, err := readSafetensors(r)
	if err != nil {
		return Set{}, err
	}
	md := f.meta
	if md == nil || md["format"] != SetFormatName {
		return Set{}, fmt.Errorf("metadata format %q is not %q", md["format"], SetFormatName)
	}
	if v := md["format_version"]; v != SetFormatVersion {
		return Set{}, fmt.Errorf("metadata format_version %q is not supported (this reader reads %q)", v, SetFormatVersion)
	}
	if md["networks"] == "" {
		return Set{}, fmt.Errorf("metadata lacks \"networks\"")
	}
	s := Set{Names: strings.Split(md["networks"], ",")}
	subs := make(map[string]map[string]string)
	for i, name := range s.Names {
		if err := checkSetName(name); err != nil {
			return Set{}, fmt.Errorf("metadata networks: %w", err)
		}
		if slices.Contains(s.Names[:i], name) {
			return Set{}, fmt.Errorf("metadata networks: %q listed twice", name)
		}
		subs[name] = make(map[string]string)
	}
	for k, v := range md {
		name, key, dotted := strings.Cut(k, ".")
		if !dotted {
			if !slices.Contains(setKeys, k) {
				if s.Info == nil {
					s.Info = make(map[string]string)
				}
				s.Info[k] = v
			}
			continue
		}
		sub, ok := subs[name]
		if !ok {
			return Set{}, fmt.Errorf("metadata key %q: %q is not one of the networks %s", k, name, md["networks"])
		}
		sub[key] = v
	}
	params := make(map[string][]ops.MLPParam)
	cfgs := make(map[string]ops.MLPConfig)
	for _, name := range s.Names {
		cfg, info, err := parseMetadata(subs[name])
		if err != nil {
			return Set{}, fmt.Errorf("network %q: %w", name, err)
		}
		if info != nil {
			return Set{}, fmt.Errorf("network %q: unexpected metadata keys beside the architecture's", name)
		}
		if err := cfg.Check(); err != nil {
			return Set{}, fmt.Errorf("network %q: metadata: %w", name, err)
		}
		cfgs[name] = cfg
	}
	for _, t := range f.tensors {
		name, pname, _ := strings.Cut(t.name, ".")
		cfg, ok := cfgs[name]
		if !ok {
			return Set{}, fmt.Errorf("unexpected tensor %q: not a parameter of the networks %s", t.name, md["networks"])
		}
		want := ops.MLPParamShape(cfg, pname)
		if want == nil {
			return Set{}, fmt.Errorf("unexpected tensor %q: not a parameter of network %q (%s)", t.name, name, cfg)
		}
		if !slices.Equal(t.shape, want) {
			return Set{}, fmt.Errorf("tensor %q has shape %v, network %q (%s) needs %v", t.name, t.shape, name, cfg, want)
		}
		values, err := t.float64s()
		if err != nil {
			return Set{}, err
		}
		if t.dtype == F32 {
			s.DType = F32
		}
		params[name] = append(params[name], ops.MLPParam{Name: pname, Shape: t.shape, Data: values})
	}
	for _, name := range s.Names {
		m, err := ops.NewMLP(cfgs[name], params[name])
		if err != nil {
			return Set{}, fmt.Errorf("network %q: %w", name, err)
		}
		s.Nets = append(s.Nets, m)
	}
	return s, nil
}

// SaveSet writes the set to path atomically (as Save does: nothing is left behind on an error, an
// existing file keeps its content).
func SaveSet(path string, s Set) error {
	if err := tensor.WriteFileAtomic(path, func(w io.Writer) error {
		b, err := encodeSet(s)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("nn: save set: %w", err)
	}
	return nil
}

// LoadSet reads the network set at path: the safetensors checks of the package, the metadata of
// every listed network, exactly the tensors of their architectures, finite values.
func LoadSet(path string) (Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return Set{}, fmt.Errorf("nn: load set %s: %w", path, err)
	}
	defer f.Close()
	s, err := decodeSet(f)
	if err != nil {
		return Set{}, fmt.Errorf("nn: load set %s: %w", path, err)
	}
	return s, nil
}

// ReadSet reads a network set from memory (see LoadSet).
func ReadSet(b []byte) (Set, error) {
	s, err := decodeSet(bytes.NewReader(b))
	if err != nil {
		return Set{}, fmt.Errorf("nn: read set: %w", err)
	}
	return s, nil
}
