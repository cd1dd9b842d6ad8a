package nn

import (
	"bytes"
	"testing"

	"github.com/scorekit/scorekit/ops"
)

// FuzzRead: no input makes Read panic, and whatever it accepts writes back and reads again to the
// same network and metadata. Seeds: valid checkpoints of small networks of both block kinds (F64
// with a covariance and info, F32, a zero-size embed.freq) and two broken files. (Small seeds keep
// the engine fast: every mutation of a large file re-reads all of it.)
func FuzzRead(f *testing.F) {
	for _, c := range []ops.MLPConfig{
		{Dim: 2, Width: 3, Depth: 1, BlockLayers: 2, Fourier: 1, SigmaData: 0.5, BranchMult: 0.3, OutMult: 1.1},
		{Dim: 1, Width: 2, Depth: 2, BlockLayers: 1, Fourier: 0, SigmaData: 2, BranchMult: 1, OutMult: 0.25},
	} {
		m := randomNet(f, c, 31)
		for _, meta := range []Meta{testMeta(c.Dim), {DType: F32}} {
			var buf bytes.Buffer
			if err := Write(&buf, m, meta); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes())
		}
	}
	f.Add([]byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, meta, err := ReadBytes(b)
		if err != nil {
			if m != nil {
				t.Fatal("network returned with an error")
			}
			return
		}
		var buf bytes.Buffer
		if err := Write(&buf, m, meta); err != nil {
			t.Fatalf("an accepted checkpoint does not write back: %v", err)
		}
		m2, meta2, err := ReadBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("a rewritten checkpoint does not read: %v", err)
		}
		if m2.Config() != m.Config() || !sameBits(m.Packed(), m2.Packed()) || !sameBits(meta.Cov, meta2.Cov) ||
			meta2.DType != meta.DType || len(meta2.Info) != len(meta.Info) {
			t.Fatal("write → read changed the checkpoint")
		}
		for k, v := range meta.Info {
			if meta2.Info[k] != v {
				t.Fatalf("info %q changed", k)
			}
		}
	})
}

// FuzzReadHeader fuzzes the JSON header alone, in front of a valid checkpoint's data section, so
// that mutations reach the entry, offset, metadata and architecture checks instead of stopping at
// the length prefix. Same properties as FuzzRead.
func FuzzReadHeader(f *testing.F) {
	m := randomNet(f, testConfigs["two-layer"], 32)
	var buf bytes.Buffer
	if err := Write(&buf, m, testMeta(3)); err != nil {
		f.Fatal(err)
	}
	header, data := splitFile(buf.Bytes())
	f.Add(string(header))
	f.Add(`{"__metadata__":{"format":"scorekit.mlp-denoiser"},"a":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`)
	f.Fuzz(func(t *testing.T, header string) {
		b := joinFile(header, data)
		m, meta, err := ReadBytes(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Write(&out, m, meta); err != nil {
			t.Fatalf("an accepted checkpoint does not write back: %v", err)
		}
		m2, _, err := ReadBytes(out.Bytes())
		if err != nil || !sameBits(m.Packed(), m2.Packed()) {
			t.Fatalf("write → read changed the checkpoint (%v)", err)
		}
	})
}
