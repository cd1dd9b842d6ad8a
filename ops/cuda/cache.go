package cuda

import (
	"container/list"
	"errors"
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

// The backend's device memory, in two kinds:
//
//   - tables: device copies of immutable targets (mixture parameters and their per-level
//     constants, data sets, fGn weights, MA-fBM transitions, domains, FFT twiddles), keyed by the
//     target, the array and the dtype. They are kept under a byte budget with least-recently-used
//     eviction; the tables an op is using are never evicted during that op (they may exceed the
//     budget while it runs). Release frees a target's tables at once.
//   - scratch: work buffers of the ops (FFT and fGn work space, the empirical score's state and
//     chunk buffers, the clamp counter), one per (name, dtype), reused between calls and grown
//     when too small, so that a call allocates and frees nothing in the steady state (a free
//     synchronises the device).
//
// Both are freed by Close. The backend serialises its ops (Backend.op), so the cache is used by
// one call at a time.

// paramKey names one table: the immutable target it belongs to (*ops.GMM, the data tensor of an
// *ops.Empirical, *ops.MAFBM, *ops.Domain, or a comparable value such as fgnWeightsOwner), which
// array, and the dtype it was converted to.
type paramKey struct {
	owner any
	name  string
	dtype tensor.DType
}

// tableEntry is one cached table.
type tableEntry struct {
	key   paramKey
	t     *tensor.Tensor
	bytes int64
	op    uint64 // the last op that used it
	// level is what the table was last computed for, for tables an op rewrites (the per-level
	// constants of a mixture): an op that finds the level it wants skips the rewrite.
	level   [2]float64
	leveled bool
}

// tableCache keeps tables under a byte budget (see the file comment).
type tableCache struct {
	budget int64
	used   int64
	op     uint64     // the current op's number
	lru    *list.List // of *tableEntry, most recently used first
	items  map[paramKey]*list.Element
	// drain waits until no queued kernel can still read a table (the device's synchronisation)
	// before one is freed.
	drain func() error
	// evicted counts the tables freed to stay within the budget (for tests and diagnostics).
	evicted int
}

func newTableCache(budget int64, drain func() error) *tableCache {
	return &tableCache{budget: budget, lru: list.New(), items: map[paramKey]*list.Element{}, drain: drain}
}

// beginOp starts a new op: the tables it touches from now on are protected from eviction.
func (c *tableCache) beginOp() { c.op++ }

// get returns the table for key, or nil, marking it used by the current op.
func (c *tableCache) get(key paramKey) *tableEntry {
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*tableEntry)
	e.op = c.op
	return e
}

// put adds t under key (used by the current op), first evicting least-recently-used tables of
// earlier ops until it fits the budget (when they cannot make room, the budget is exceeded while
// the current op runs). It returns the new entry.
func (c *tableCache) put(key paramKey, t *tensor.Tensor) (*tableEntry, error) {
	if el, ok := c.items[key]; ok { // replace (callers do not, but keep the books right)
		c.remove(el)
	}
	if err := c.makeRoom(t.Bytes()); err != nil {
		return nil, err
	}
	e := &tableEntry{key: key, t: t, bytes: t.Bytes(), op: c.op}
	c.items[key] = c.lru.PushFront(e)
	c.used += e.bytes
	return e, nil
}

// makeRoom evicts least-recently-used tables not used by the current op until bytes more fit the
// budget, or nothing more can be evicted.
func (c *tableCache) makeRoom(bytes int64) error {
	drained := false
	for c.used+bytes > c.budget {
		el := c.lru.Back()
		for el != nil && el.Value.(*tableEntry).op == c.op {
			el = el.Prev()
		}
		if el == nil {
			return nil
		}
		if !drained && c.drain != nil {
			if err := c.drain(); err != nil {
				return fmt.Errorf("evict tables: %w", err)
			}
			drained = true
		}
		if err := c.free(el); err != nil {
			return err
		}
		c.evicted++
	}
	return nil
}

// evictBytes evicts least-recently-used tables not used by the current op until at least bytes
// have been freed, or nothing more can be evicted.
func (c *tableCache) evictBytes(bytes int64) error {
	used := c.used
	return c.makeRoom(c.budget - used + bytes)
}

// evictable is the number of bytes makeRoom could free now (tables not used by the current op).
func (c *tableCache) evictable() int64 {
	var n int64
	for el := c.lru.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*tableEntry); e.op != c.op {
			n += e.bytes
		}
	}
	return n
}

// release frees every table of owner.
func (c *tableCache) release(owner any) error {
	var errs []error
	drained := false
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*tableEntry).key.owner == owner {
			if !drained && c.drain != nil {
				if err := c.drain(); err != nil {
					return fmt.Errorf("release tables: %w", err)
				}
				drained = true
			}
			if err := c.free(el); err != nil {
				errs = append(errs, err)
			}
		}
		el = next
	}
	return errors.Join(errs...)
}

// closeAll frees every table.
func (c *tableCache) closeAll() error {
	var errs []error
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if err := c.free(el); err != nil {
			errs = append(errs, err)
		}
		el = next
	}
	return errors.Join(errs...)
}

func (c *tableCache) remove(el *list.Element) *tableEntry {
	e := el.Value.(*tableEntry)
	c.lru.Remove(el)
	delete(c.items, e.key)
	c.used -= e.bytes
	return e
}

func (c *tableCache) free(el *list.Element) error {
	e := c.remove(el)
	if err := e.t.Close(); err != nil {
		return fmt.Errorf("free table %s (%v): %w", e.key.name, e.key.dtype, err)
	}
	return nil
}

// scratchKey names a work buffer.
type scratchKey struct {
	name  string
	dtype tensor.DType
}

// scratchPool keeps one work buffer per key, grown when a call needs more.
type scratchPool struct {
	bufs  map[scratchKey]*tensor.Tensor
	alloc func(dt tensor.DType, elems int) (*tensor.Tensor, error)
	drain func() error
}

func newScratchPool(alloc func(dt tensor.DType, elems int) (*tensor.Tensor, error), drain func() error) *scratchPool {
	return &scratchPool{bufs: map[scratchKey]*tensor.Tensor{}, alloc: alloc, drain: drain}
}

// get returns the buffer name of dt with at least elems elements (its contents unspecified),
// replacing a smaller one once the queued work that may read it has drained.
func (p *scratchPool) get(name string, dt tensor.DType, elems int) (*tensor.Tensor, error) {
	key := scratchKey{name, dt}
	if t, ok := p.bufs[key]; ok {
		if t.Len() >= elems {
			return t, nil
		}
		if p.drain != nil {
			if err := p.drain(); err != nil {
				return nil, err
			}
		}
		delete(p.bufs, key)
		if err := t.Close(); err != nil {
			return nil, err
		}
	}
	t, err := p.alloc(dt, elems)
	if err != nil {
		return nil, fmt.Errorf("allocate %s (%s): %w", name, tensor.HumanBytes(int64(elems)*int64(dt.Size())), err)
	}
	p.bufs[key] = t
	return t, nil
}

// held returns the buffer name of dt if the pool has one.
func (p *scratchPool) held(name string, dt tensor.DType) *tensor.Tensor {
	return p.bufs[scratchKey{name, dt}]
}

// drop frees the buffer name of dt (after draining).
func (p *scratchPool) drop(name string, dt tensor.DType) error {
	key := scratchKey{name, dt}
	t, ok := p.bufs[key]
	if !ok {
		return nil
	}
	if p.drain != nil {
		if err := p.drain(); err != nil {
			return err
		}
	}
	delete(p.bufs, key)
	return t.Close()
}

// bytes is the memory the pool holds.
func (p *scratchPool) bytes() int64 {
	var n int64
	for _, t := range p.bufs {
		n += t.Bytes()
	}
	return n
}

func (p *scratchPool) closeAll() error {
	var errs []error
	for k, t := range p.bufs {
		if err := t.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(p.bufs, k)
	}
	return errors.Join(errs...)
}
