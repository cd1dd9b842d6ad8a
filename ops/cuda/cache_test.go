package cuda

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// The table cache on host tensors (its logic does not depend on the device): least recently used
// first out, the current op's tables kept, release by owner, the drain before any free.
func TestTableCache(t *testing.T) {
	drains := 0
	c := newTableCache(3*80, func() error { drains++; return nil }) // three tables of 10 float64
	table := func() *tensor.Tensor {
		x, err := tensor.New(nil, tensor.F64, 10)
		require.NoError(t, err)
		return x
	}
	owners := []int{0, 1, 2, 3, 4}
	key := func(i int) paramKey { return paramKey{&owners[i], "t", tensor.F64} }
	put := func(i int) *tensor.Tensor {
		x := table()
		_, err := c.put(key(i), x)
		require.NoError(t, err)
		return x
	}
	c.beginOp()
	t0, t1, t2 := put(0), put(1), put(2)
	assert.Equal(t, int64(240), c.used)
	assert.Zero(t, drains)

	c.beginOp()
	require.NotNil(t, c.get(key(0))) // 0 becomes the most recent: 1 is now the oldest
	put(3)
	assert.True(t, t1.Closed(), "the least recently used table is evicted")
	assert.False(t, t0.Closed() || t2.Closed())
	assert.Equal(t, 1, drains, "the device drains before a table is freed")
	assert.Equal(t, 1, c.evicted)

	// Everything the current op touched stays, past the budget if need be.
	require.NotNil(t, c.get(key(2)))
	t4 := put(4)
	assert.Equal(t, int64(4*80), c.used, "0, 2, 3 and 4 are this op's: none can go")
	assert.Zero(t, c.evictable())

	// The next op: recency is 4, 2, 3, 0 (most recent first); adding 1 frees 0, then 3.
	c.beginOp()
	assert.Equal(t, int64(4*80), c.evictable())
	put(1)
	assert.Nil(t, c.get(key(0)))
	assert.Nil(t, c.get(key(3)))
	assert.Equal(t, int64(3*80), c.used)
	require.NoError(t, c.release(&owners[2]))
	assert.True(t, t2.Closed())
	assert.Equal(t, int64(2*80), c.used)
	require.NoError(t, c.evictBytes(100)) // frees 4; 1 is this op's
	assert.True(t, t4.Closed())
	assert.Equal(t, int64(80), c.used)
	require.NoError(t, c.closeAll())
	assert.Zero(t, c.used)
	assert.Empty(t, c.items)
}

// The scratch pool grows a buffer (after draining) and otherwise hands back the one it has.
func TestScratchPool(t *testing.T) {
	allocs, drains := 0, 0
	p := newScratchPool(func(dt tensor.DType, n int) (*tensor.Tensor, error) {
		allocs++
		return tensor.New(nil, dt, n)
	}, func() error { drains++; return nil })
	a, err := p.get("x", tensor.F32, 100)
	require.NoError(t, err)
	b, err := p.get("x", tensor.F32, 50)
	require.NoError(t, err)
	assert.Same(t, a, b)
	assert.Equal(t, 1, allocs)
	c, err := p.get("x", tensor.F32, 200)
	require.NoError(t, err)
	assert.True(t, a.Closed())
	assert.Equal(t, 200, c.Len())
	assert.Equal(t, 1, drains)
	_, err = p.get("x", tensor.F64, 10) // another dtype is another buffer
	require.NoError(t, err)
	assert.Equal(t, int64(200*4+10*8), p.bytes())
	require.NoError(t, p.drop("x", tensor.F32))
	assert.Nil(t, p.held("x", tensor.F32))
	require.NoError(t, p.closeAll())
	assert.Zero(t, p.bytes())
}
