package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkpointParts are the metadata and tensors Save writes for the test network (with a
// covariance).
func checkpointParts(t *testing.T) (map[string]string, []outTensor) {
	c := testConfigs["two-layer"]
	m := randomNet(t, c, 21)
	meta := testMeta(c.Dim)
	md, err := Metadata(m, meta)
	require.NoError(t, err)
	var ts []outTensor
	for _, p := range m.Params() {
		ts = append(ts, outTensor{p.Name, p.Shape, p.Data})
	}
	return md, append(ts, outTensor{CovName, []int{c.Dim, c.Dim}, meta.Cov})
}

func buildFile(t *testing.T, md map[string]string, ts []outTensor, dt DType) []byte {
	b, err := encodeSafetensors(md, ts, dt)
	require.NoError(t, err)
	return b
}

// splitFile returns the header and data of a well-formed file.
func splitFile(b []byte) (header, data []byte) {
	n := binary.LittleEndian.Uint64(b)
	return b[8 : 8+n], b[8+n:]
}

// joinFile is the file with header (padded with spaces to a multiple of 8) and data.
func joinFile(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

// editHeader decodes the header of a well-formed file into generic JSON, lets edit change it, and
// re-encodes it in front of the unchanged data.
func editHeader(t *testing.T, b []byte, edit func(h map[string]any)) []byte {
	header, data := splitFile(b)
	var h map[string]any
	require.NoError(t, json.Unmarshal(header, &h))
	edit(h)
	enc, err := json.Marshal(h)
	require.NoError(t, err)
	return joinFile(string(enc), data)
}

func entry(h map[string]any, name string) map[string]any { return h[name].(map[string]any) }

func metadata(h map[string]any) map[string]any { return h["__metadata__"].(map[string]any) }

func without(ts []outTensor, name string) []outTensor {
	var out []outTensor
	for _, t := range ts {
		if t.name != name {
			out = append(out, t)
		}
	}
	return out
}

func replaced(ts []outTensor, name string, fn func(*outTensor)) []outTensor {
	out := make([]outTensor, len(ts))
	for i, t := range ts {
		t.values = append([]float64(nil), t.values...)
		if t.name == name {
			fn(&t)
		}
		out[i] = t
	}
	return out
}

func TestReadRejects(t *testing.T) {
	md, ts := checkpointParts(t)
	valid := buildFile(t, md, ts, F64)
	header, data := splitFile(valid)
	c := testConfigs["two-layer"]
	w := c.Width

	mdWith := func(edit func(map[string]string)) map[string]string {
		out := map[string]string{}
		for k, v := range md {
			out[k] = v
		}
		edit(out)
		return out
	}
	withBits := func(name string, i int, bits uint64) []byte {
		b := bytes.Clone(valid)
		h, _ := splitFile(b)
		var hdr map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(h, &hdr))
		var e struct {
			DataOffsets []int `json:"data_offsets"`
		}
		require.NoError(t, json.Unmarshal(hdr[name], &e))
		binary.LittleEndian.PutUint64(b[8+len(h)+e.DataOffsets[0]+8*i:], bits)
		return b
	}

	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "empty file"},
		{"shorter than the length", valid[:5], "truncated: 5 bytes, shorter than the 8-byte header length"},
		{"absurd header length", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length 1099511627776 bytes exceeds the limit of 100000000"},
		{"header length past the end", valid[:8+len(header)-3], "truncated: the header length says"},
		{"header length too short", binary.LittleEndian.AppendUint64(nil, 1), "too short for a JSON object"},
		{"truncated data", valid[:len(valid)-1], "truncated: the header declares"},
		{"no data", valid[:8+len(header)], "truncated: the header declares"},
		{"trailing bytes", append(bytes.Clone(valid), 0), "bytes after the last tensor"},
		{"invalid JSON", joinFile(`{"a": [1, 2}`, nil), "header: invalid JSON"},
		{"JSON not an object", joinFile(`[1, 2, 3]`, nil), "does not start with '{'"},
		{"leading space", joinFile(` {}`, nil), "does not start with '{'"},
		{"two objects", joinFile(`{}{}`, nil), "data after the object"},
		{"NUL padding", append(binary.LittleEndian.AppendUint64(nil, 8), "{}\x00\x00\x00\x00\x00\x00"...), "invalid JSON"},
		{"invalid UTF-8", joinFile("{\"\xff\":{}}", nil), "not valid UTF-8"},
		{"duplicate tensor", joinFile(strings.Replace(string(header), `{"__metadata__":`, `{"data.mean":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},"__metadata__":`, 1), data), `header: key "data.mean" appears twice`},
		{"duplicate metadata", joinFile(strings.Replace(string(header), `{"__metadata__":{`, `{"__metadata__":{},"__metadata__":{`, 1), data), `key "__metadata__" appears twice`},
		{"duplicate metadata key", joinFile(strings.Replace(string(header), `{"__metadata__":{`, `{"__metadata__":{"dim":"4",`, 1), data), `__metadata__: key "dim" appears twice`},
		{"duplicate entry field", joinFile(strings.Replace(string(header), `"output.bias":{"dtype":"F64",`, `"output.bias":{"dtype":"F64","dtype":"F64",`, 1), data), `tensor "output.bias": key "dtype" appears twice`},
		{"metadata value not a string", editHeader(t, valid, func(h map[string]any) { metadata(h)["steps"] = 20000 }), `value of "steps" is 20000, not a string`},
		{"unknown entry field", editHeader(t, valid, func(h map[string]any) { entry(h, "input.bias")["align"] = 8 }), `tensor "input.bias": unknown field "align"`},
		{"entry lacks shape", editHeader(t, valid, func(h map[string]any) { delete(entry(h, "input.bias"), "shape") }), `tensor "input.bias": entry lacks shape`},
		{"entry not an object", editHeader(t, valid, func(h map[string]any) { h["input.bias"] = []int{1} }), `tensor "input.bias": not a JSON object`},
		{"unsupported dtype BF16", editHeader(t, valid, func(h map[string]any) { entry(h, "input.bias")["dtype"] = "BF16" }), `tensor "input.bias": dtype "BF16" is not supported`},
		{"unsupported dtype I64", editHeader(t, valid, func(h map[string]any) { entry(h, "output.bias")["dtype"] = "I64" }), `tensor "output.bias": dtype "I64" is not supported`},
		{"dtype not a string", editHeader(t, valid, func(h map[string]any) { entry(h, "output.bias")["dtype"] = 8 }), `tensor "output.bias": dtype 8 is not a string`},
		{"negative offset", editHeader(t, valid, func(h map[string]any) { entry(h, "data.mean")["data_offsets"] = []int{-8, 16} }), "entry 0 = -8 is not a non-negative integer"},
		{"fractional offset", editHeader(t, valid, func(h map[string]any) { entry(h, "data.mean")["data_offsets"] = []float64{0, 23.5} }), "entry 1 = 23.5 is not a non-negative integer"},
		{"three offsets", editHeader(t, valid, func(h map[string]any) { entry(h, "data.mean")["data_offsets"] = []int{0, 24, 48} }), "want [begin, end]"},
		{"offsets reversed", editHeader(t, valid, func(h map[string]any) { entry(h, "data.mean")["data_offsets"] = []int{24, 0} }), `tensor "data.mean": data_offsets [24, 0] end before they begin`},
		{"offsets far out of range", editHeader(t, valid, func(h map[string]any) {
			entry(h, "data.mean")["data_offsets"] = []uint64{1 << 62, 1<<62 + 24}
		}), "reach past"},
		{"shape overflows", editHeader(t, valid, func(h map[string]any) {
			entry(h, "data.mean")["shape"] = []int{1 << 30, 1 << 30, 1 << 30}
		}), "needs more than"},
		{"offsets disagree with the shape", editHeader(t, valid, func(h map[string]any) { entry(h, "data.mean")["shape"] = []int{2} }), `tensor "data.mean": shape [2] of F64 needs 16 bytes, data_offsets [0, 24] give 24`},
		{"offsets disagree with the dtype", editHeader(t, valid, func(h map[string]any) { entry(h, "data.mean")["dtype"] = "F32" }), `shape [3] of F32 needs 12 bytes`},
		{"overlap", editHeader(t, valid, func(h map[string]any) {
			entry(h, "blocks.0.1.bias")["data_offsets"] = entry(h, "blocks.0.0.bias")["data_offsets"]
		}), "overlap tensor"},
		{"gap", func() []byte {
			// Every tensor after input.bias moves 8 bytes on; 8 unused bytes follow input.bias.
			var end float64
			b := editHeader(t, valid, func(h map[string]any) {
				end = entry(h, "input.bias")["data_offsets"].([]any)[1].(float64)
				for k, v := range h {
					if k == "__metadata__" {
						continue
					}
					off := v.(map[string]any)["data_offsets"].([]any)
					if off[0].(float64) >= end {
						off[0], off[1] = off[0].(float64)+8, off[1].(float64)+8
					}
				}
			})
			hd, dt := splitFile(b)
			dt = append(append(bytes.Clone(dt[:int(end)]), make([]byte, 8)...), dt[int(end):]...)
			return joinFile(string(hd), dt)
		}(), "gap in the tensor data: bytes"},
		{"data beyond the last tensor", editHeader(t, valid, func(h map[string]any) {
			entry(h, CovName)["shape"] = []int{2, 2}
			entry(h, CovName)["data_offsets"].([]any)[1] = entry(h, CovName)["data_offsets"].([]any)[0].(float64) + 32
		}), "bytes after the last tensor"},
		{"NaN value", withBits("blocks.1.0.weight", 5, math.Float64bits(math.NaN())), `tensor "blocks.1.0.weight": entry 5 = NaN is not finite`},
		{"Inf value", withBits("output.bias", 2, math.Float64bits(math.Inf(-1))), `tensor "output.bias": entry 2 = -Inf is not finite`},
		{"NaN covariance", withBits(CovName, 0, math.Float64bits(math.NaN())), `tensor "data.cov": entry 0 = NaN is not finite`},
		{"no metadata", buildFile(t, nil, ts, F64), "no __metadata__: not a scorekit.mlp-denoiser checkpoint"},
		{"unknown format", buildFile(t, mdWith(func(m map[string]string) { m["format"] = "pt" }), ts, F64), `metadata format "pt" is not "scorekit.mlp-denoiser"`},
		{"no format", buildFile(t, mdWith(func(m map[string]string) { delete(m, "format") }), ts, F64), `metadata has no "format"`},
		{"format version", buildFile(t, mdWith(func(m map[string]string) { m["format_version"] = "2" }), ts, F64), `format_version "2" is not supported`},
		{"missing metadata keys", buildFile(t, mdWith(func(m map[string]string) { delete(m, "width"); delete(m, "out_mult") }), ts, F64), "metadata lacks width, out_mult"},
		{"other activation", buildFile(t, mdWith(func(m map[string]string) { m["activation"] = "relu" }), ts, F64), `metadata activation "relu": this network is defined with "silu"`},
		{"other embedding", buildFile(t, mdWith(func(m map[string]string) { m["embedding"] = "positional" }), ts, F64), `metadata embedding "positional"`},
		{"width not an integer", buildFile(t, mdWith(func(m map[string]string) { m["width"] = "16.0" }), ts, F64), `metadata width "16.0" is not an integer`},
		{"sigma_data not a number", buildFile(t, mdWith(func(m map[string]string) { m["sigma_data"] = "NaN" }), ts, F64), `metadata sigma_data "NaN" is not a finite number`},
		{"architecture invalid", buildFile(t, mdWith(func(m map[string]string) { m["block_layers"] = "3" }), ts, F64), "metadata: mlp: block layers = 3"},
		{"missing tensors", buildFile(t, md, without(without(ts, "output.bias"), "blocks.1.1.weight"), F64), "missing tensors blocks.1.1.weight, output.bias"},
		{"extra tensor", buildFile(t, md, append(ts[:len(ts):len(ts)], outTensor{"blocks.2.0.weight", []int{w, w}, make([]float64, w*w)}), F64), `unexpected tensor "blocks.2.0.weight"`},
		{"wrong shape", buildFile(t, md, replaced(ts, "input.weight", func(o *outTensor) { o.shape = []int{o.shape[1], o.shape[0]} }), F64), `tensor "input.weight" has shape [11 16], the architecture`},
		{"dimension mismatch", buildFile(t, mdWith(func(m map[string]string) { m["dim"] = "4" }), ts, F64), `tensor "data.mean" has shape [3], the architecture (d = 4,`},
		{"covariance of the wrong dimension", buildFile(t, md, replaced(ts, CovName, func(o *outTensor) { o.shape, o.values = []int{2, 2}, []float64{1, 0, 0, 1} }), F64), `tensor "data.cov" has shape [2 2], the architecture (d = 3,`},
		{"covariance not symmetric", buildFile(t, md, replaced(ts, CovName, func(o *outTensor) { o.values[1] += 1 }), F64), "data.cov is not symmetric"},
		{"covariance indefinite", buildFile(t, md, replaced(ts, CovName, func(o *outTensor) {
			for i := range 3 {
				o.values[4*i] = -o.values[4*i]
			}
		}), F64), "data.cov: diagonal entry (0, 0)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadBytes(tc.file)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			require.NoError(t, os.WriteFile(path, tc.file, 0o644))
			_, _, err = Load(path)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "nn: load "+path+": "), msg)
			assert.Contains(t, msg, tc.want)
			assert.NotContains(t, msg, "\n")
		})
	}

	// The checks are not over-eager: the unchanged parts, re-encoded the same ways, read.
	for _, b := range [][]byte{
		valid,
		buildFile(t, md, ts, F32),
		editHeader(t, valid, func(map[string]any) {}), // sorted key order, no __metadata__ first
		joinFile(string(header)+"   \t\n ", data),     // any JSON whitespace after the object
	} {
		_, _, err := ReadBytes(b)
		require.NoError(t, err)
	}
	// Mixed dtypes are fine; F32 anywhere makes the checkpoint F32.
	var mixed []any
	for i, o := range ts {
		if i%3 == 1 {
			mixed = append(mixed, mixedTensor{o, F32})
		} else {
			mixed = append(mixed, o)
		}
	}
	_, meta, err := ReadBytes(buildMixed(t, md, mixed))
	require.NoError(t, err)
	assert.Equal(t, F32, meta.DType)
	_, _, err = Load(filepath.Join(t.TempDir(), "absent.safetensors"))
	require.ErrorContains(t, err, "absent.safetensors")
}

// mixedTensor is a tensor with its own dtype, for a file that mixes F32 and F64.
type mixedTensor struct {
	outTensor
	dtype DType
}

// buildMixed writes each tensor in its own dtype (the first ones F32, the rest F64) with the
// reverse of canonical order in the data section: readers must not assume either.
func buildMixed(t *testing.T, md map[string]string, ts []any) []byte {
	h := map[string]any{"__metadata__": md}
	var data []byte
	for i := len(ts) - 1; i >= 0; i-- {
		var o outTensor
		dt := F64
		switch v := ts[i].(type) {
		case mixedTensor:
			o, dt = v.outTensor, v.dtype
		case outTensor:
			o = v
		}
		begin := len(data)
		for _, v := range o.values {
			if dt == F32 {
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(v)))
			} else {
				data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
			}
		}
		h[o.name] = map[string]any{"dtype": dt.String(), "shape": o.shape, "data_offsets": []int{begin, len(data)}}
	}
	enc, err := json.Marshal(h)
	require.NoError(t, err)
	return joinFile(string(enc), data)
}
