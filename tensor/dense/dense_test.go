package dense

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gtensor "gorgonia.org/tensor"

	"github.com/scorekit/scorekit/tensor"
)

func TestBridge(t *testing.T) {
	x, _ := tensor.FromF64([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	d, err := FromTensor(x)
	require.NoError(t, err)
	assert.Equal(t, gtensor.Shape{2, 3}, d.Shape())
	require.NoError(t, d.SetAt(9.0, 1, 2))
	xd, _ := x.F64()
	assert.Equal(t, 9.0, xd[5], "FromTensor shares host memory")

	y, err := ToTensor(d)
	require.NoError(t, err)
	yd, _ := y.F64()
	yd[0] = -7
	assert.Equal(t, -7.0, xd[0], "FromDense shares a contiguous Dense's memory")

	// A transposed view is materialised in C order.
	tr, err := gtensor.T(gtensor.New(gtensor.WithShape(2, 3), gtensor.WithBacking([]float32{1, 2, 3, 4, 5, 6})))
	require.NoError(t, err)
	z, err := ToTensor(tr.(*gtensor.Dense))
	require.NoError(t, err)
	assert.Equal(t, []int{3, 2}, z.Shape())
	zd, _ := z.F32()
	assert.Equal(t, []float32{1, 4, 2, 5, 3, 6}, zd)

	_, err = ToTensor(gtensor.New(gtensor.WithShape(2), gtensor.WithBacking([]int{1, 2})))
	require.ErrorContains(t, err, "not supported")
}
