package cuda

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/tensor"
)

// Every entry of every kernel module is served by exactly one argument struct, whose fields are
// the entry's parameters: the same names in the same order and matching kinds. (The entry table
// itself is checked against the PTX .entry lists and the sources in package kernels.)
func TestArgsStructsMatchEntries(t *testing.T) {
	used := make([]int, len(argsFor))
	for _, e := range kernels.Entries() {
		var match []int
		for i, a := range argsFor {
			if a.pattern.MatchString(e.Name) {
				match = append(match, i)
			}
		}
		if len(match) != 1 {
			t.Errorf("entry %s/%s matches %d argument structs, want exactly one", e.Module, e.Name, len(match))
			continue
		}
		used[match[0]]++
		typ := reflect.TypeOf(argsFor[match[0]].args)
		slots, err := argLayout(typ)
		require.NoError(t, err)
		assert.NoError(t, checkLayout(e, typ, slots), "entry %s", e.Name)
	}
	for i, n := range used {
		assert.NotZero(t, n, "argument struct %T serves no entry", argsFor[i].args)
	}
}

// packArgs puts the fields in parameter order, passes nil tensors as null pointers and refuses a
// struct whose fields are out of order, missing, of the wrong kind, or a tensor of the wrong
// dtype.
func TestPackArgs(t *testing.T) {
	e, ok := kernels.LookupEntry("gmm", "gmm_prep_f32")
	require.True(t, ok)
	consts, _ := tensor.New(nil, tensor.F32, 4)
	params, _ := tensor.New(nil, tensor.F32, 4)
	got, err := packArgs(e, gmmPrepArgs{Consts: consts, Params: params, D: 3, K: 2, Cov: 1, A: 0.5, S: math.Pi})
	require.NoError(t, err)
	assert.Equal(t, []any{consts, params, int64(3), int64(2), int64(1), 0.5, math.Pi}, got)

	got, err = packArgs(e, gmmPrepArgs{Consts: consts})
	require.NoError(t, err)
	assert.Equal(t, uintptr(0), got[1], "a nil tensor is a null pointer")

	f64, _ := tensor.New(nil, tensor.F64, 4)
	_, err = packArgs(e, gmmPrepArgs{Consts: f64, Params: params})
	assert.ErrorContains(t, err, "needs f32 data")

	type swapped struct {
		Params, Consts *tensor.Tensor
		D, K, Cov      int64
		A, S           float64
	}
	_, err = packArgs(e, swapped{})
	assert.ErrorContains(t, err, "parameter 0 is float* consts")

	type short struct {
		Consts, Params *tensor.Tensor
		D, K, Cov      int64
		A              float64
	}
	_, err = packArgs(e, short{})
	assert.ErrorContains(t, err, "takes 7 parameters")

	type wrongKind struct {
		Consts, Params *tensor.Tensor
		D, K           int64
		Cov            uint64
		A, S           float64
	}
	_, err = packArgs(e, wrongKind{})
	assert.ErrorContains(t, err, "cov is long long")

	// Arrays stand for numbered parameters.
	ce, ok := kernels.LookupEntry("diffusion", "combine_f64")
	require.True(t, ok)
	var c combineArgs
	c.C[2] = 7
	got, err = packArgs(ce, c)
	require.NoError(t, err)
	require.Len(t, got, len(ce.Params))
	for i, p := range ce.Params {
		if p.Name == "c2" {
			assert.Equal(t, 7.0, got[i])
		}
		if strings.HasPrefix(p.Name, "t") && p.Pointer() {
			assert.Equal(t, uintptr(0), got[i])
		}
	}
}
