package nn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
)

func testSet(t *testing.T) Set {
	return Set{Names: []string{"fwd-0", "bwd_1"},
		Nets: []*ops.MLP{randomNet(t, testConfigs["two-layer"], 1), randomNet(t, testConfigs["one-layer-no-fourier"], 2)},
		Info: map[string]string{"times": "0,1", "note": "ünïcode"}}
}

func TestSetRoundTripIsBitExact(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []DType{F64, F32} {
		s := testSet(t)
		s.DType = dt
		path := filepath.Join(dir, "set.safetensors")
		require.NoError(t, SaveSet(path, s))
		got, err := LoadSet(path)
		require.NoError(t, err)
		require.Equal(t, s.Names, got.Names)
		require.Equal(t, s.Info, got.Info)
		require.Equal(t, dt, got.DType)
		for i := range s.Nets {
			require.Equal(t, s.Nets[i].Config(), got.Nets[i].Config())
			want := s.Nets[i].Packed()
			if dt == F32 {
				want = append([]float64(nil), want...)
				for j, v := range want {
					want[j] = float64(float32(v))
				}
			}
			require.True(t, sameBits(want, got.Nets[i].Packed()), "%s, network %s", dt, s.Names[i])
		}
		// a single-network checkpoint is not a set, nor the reverse
		_, _, err = Load(path)
		require.ErrorContains(t, err, "not \"scorekit.mlp-denoiser\"")
	}
	single := filepath.Join(dir, "one.safetensors")
	require.NoError(t, Save(single, randomNet(t, testConfigs["two-layer"], 3), Meta{}))
	_, err := LoadSet(single)
	require.ErrorContains(t, err, "is not \"scorekit.mlp-set\"")
}

func TestSetRejects(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.safetensors")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	for _, c := range []struct {
		mod  func(*Set)
		want string
	}{
		{func(s *Set) { s.Names = s.Names[:1] }, "2 networks"},
		{func(s *Set) { s.Names, s.Nets = nil, nil }, "need at least one"},
		{func(s *Set) { s.Names[1] = "fwd-0" }, "given twice"},
		{func(s *Set) { s.Names[1] = "a.b" }, "only letters"},
		{func(s *Set) { s.Names[1] = "" }, "1 to 64"},
		{func(s *Set) { s.Nets[1] = nil }, "is nil"},
		{func(s *Set) { s.Info["networks"] = "x" }, "reserved"},
		{func(s *Set) { s.Info["fwd-0.width"] = "3" }, "reserved"},
		{func(s *Set) { s.Info["bad"] = "\xff" }, "UTF-8"},
		{func(s *Set) { s.DType = 7 }, "F64 or F32"},
	} {
		s := testSet(t)
		c.mod(&s)
		err := SaveSet(path, s)
		require.ErrorContains(t, err, c.want)
		b, _ := os.ReadFile(path)
		require.Equal(t, "old", string(b), "a failed save keeps the existing file")
	}

	s := testSet(t)
	good, err := encodeSet(s)
	require.NoError(t, err)
	_, err = ReadSet(good)
	require.NoError(t, err)
	for _, c := range []struct {
		edit func(h map[string]any)
		want string
	}{
		{func(h map[string]any) { metadata(h)["format_version"] = "2" }, "format_version \"2\""},
		{func(h map[string]any) { delete(metadata(h), "networks") }, "lacks \"networks\""},
		{func(h map[string]any) { metadata(h)["networks"] = "fwd-0,fwd-0" }, "listed twice"},
		{func(h map[string]any) { metadata(h)["networks"] = "fwd-0" }, "\"bwd_1\" is not one of the networks"},
		{func(h map[string]any) { metadata(h)["networks"] = "fwd-0,bwd_1,extra" }, "network \"extra\""},
		{func(h map[string]any) { metadata(h)["fwd-0.width"] = "17" }, "needs [17 11]"},
		{func(h map[string]any) { metadata(h)["fwd-0.extra"] = "1" }, "unexpected metadata keys"},
		{func(h map[string]any) { rename(h, "fwd-0.input.bias", "other.input.bias") }, "unexpected tensor \"other.input.bias\""},
		{func(h map[string]any) { rename(h, "fwd-0.input.bias", "fwd-0.bogus") }, "not a parameter of network \"fwd-0\""},
	} {
		b := editHeader(t, good, c.edit)
		_, err := ReadSet(b)
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), c.want), "want %q in %q", c.want, err)
	}
	_, err = ReadSet(good[:len(good)-3])
	require.Error(t, err)
}

func rename(h map[string]any, from, to string) {
	h[to] = h[from]
	delete(h, from)
}
