package nn

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSafetensorsReferenceBytes: the writer produces, byte for byte, the files of the reference
// implementation's own serialisation tests (huggingface/safetensors, tensor.rs: test_serialization,
// test_serialization_forced_alignement, test_empty), and the reader reads them back.
func TestSafetensorsReferenceBytes(t *testing.T) {
	f32s := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	file := func(n uint64, header string, data []byte) []byte {
		return append(append(binary.LittleEndian.AppendUint64(nil, n), header...), data...)
	}
	six := []float64{0, 1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name    string
		meta    map[string]string
		tensors []outTensor
		want    []byte
	}{
		{"serialization", nil, []outTensor{{"attn.0", []int{1, 2, 3}, six}},
			file(64, `{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32s(0, 1, 2, 3, 4, 5))},
		{"forced alignment", nil, []outTensor{{"attn0", []int{1, 1, 2, 3}, six}},
			file(72, `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, f32s(0, 1, 2, 3, 4, 5))},
		{"empty", nil, nil, file(8, `{}      `, nil)},
		{"empty with metadata", map[string]string{"framework": "pt"}, nil,
			file(40, `{"__metadata__":{"framework":"pt"}}     `, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeSafetensors(tc.meta, tc.tensors, F32)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			f, err := readSafetensors(bytes.NewReader(tc.want))
			require.NoError(t, err)
			assert.Equal(t, tc.meta, f.meta)
			require.Len(t, f.tensors, len(tc.tensors))
			for i, tt := range tc.tensors {
				assert.Equal(t, tt.name, f.tensors[i].name)
				assert.Equal(t, tt.shape, f.tensors[i].shape)
				v, err := f.tensors[i].float64s()
				require.NoError(t, err)
				assert.Equal(t, tt.values, v)
			}
		})
	}
}
