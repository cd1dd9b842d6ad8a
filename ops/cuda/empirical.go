//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Knobs that tests turn to force the paths a small problem would not take.
var (
	// maxChunkPoints > 0 streams the data from the host in chunks of at most this many points
	// (rounded down to whole tiles) whenever M exceeds it, even when it would fit on the device.
	maxChunkPoints = 0
	// forceSplits > 0 fixes how many blocks share the data range of one row tile.
	forceSplits = 0
	// globalAccumulators keeps the accumulators in global memory where the register entry
	// (empirical_score_reg_f32) would serve.
	globalAccumulators = false
	// freeMemory reports the device's free and total memory.
	freeMemory = func(b *Backend) (free, total int64, err error) { return b.dev.MemInfo() }
)

// EmpiricalScore: see ops.Backend. It streams the data through an online softmax
// (kernels/empirical.cu). When the data fits on the device beside the working memory, it is
// uploaded once per dtype (the first call waits for that copy) and kept until Close, shared by
// every copy of the target holding the same data tensor (WithMixture); the op is then one launch,
// or two when too few query rows fill the GPU and several blocks share a row tile's data (a
// second kernel merges their states; that scratch is kept between calls too). Otherwise the data
// is copied from the host in chunks that fit, the per-row state carried between launches; that
// path waits for each copy. Outputs must not overlap x, the levels, or each other. The call does
// not synchronise at the end: callers do before reading the outputs.
func (b *Backend) EmpiricalScore(out ops.ScoreOutputs, x *tensor.Tensor, e *ops.Empirical, noise ops.Noise) error {
	defer b.enter()()
	if err := ops.CheckEmpiricalScore(b.dev, out, x, e, noise); err != nil {
		return err
	}
	n, d, m := x.Dim(0), e.Dim(), e.Points()
	if n == 0 {
		return nil
	}
	if d > empiricalMaxDim {
		return fmt.Errorf("empirical score: dimension %d exceeds %d", d, empiricalMaxDim)
	}
	if err := checkEmpiricalOverlap(out, x, noise.Levels); err != nil {
		return err
	}
	dt := x.DType()
	kind, err := empiricalNoiseKind(noise.Kind)
	if err != nil {
		return err
	}
	rowTiles := (n + empiricalRows - 1) / empiricalRows
	if rowTiles > math.MaxInt32 {
		return fmt.Errorf("empirical score: %d rows need more than 2^31 blocks", n)
	}
	mix, amax := empiricalMixture(e)
	mixDev, err := b.upload(e, "empirical mixture", tensor.F64, mix, len(mix)/2, 2)
	if err != nil {
		return fmt.Errorf("empirical score: %w", err)
	}

	p, err := b.planEmpirical(e, dt, n, out)
	if err != nil {
		return err
	}
	defer p.close()

	var scratch *tensor.Tensor
	if p.scratch > 0 {
		if scratch, err = b.scratch.get("empirical state", dt, p.scratch); err != nil {
			return fmt.Errorf("empirical score: scratch for %d splits × %d rows × %d columns: %w", p.splits, n, d, err)
		}
	}
	var state, slotY, slotZ *tensor.Tensor
	slotStride := int64(0)
	if p.splits > 1 || p.chunks > 1 {
		if state, err = scratch.View(0, p.splits*n*2); err != nil {
			return fmt.Errorf("empirical score: %w", err)
		}
	}
	if p.splits > 1 {
		off := p.splits * n * 2
		slotStride = int64(n) * int64(d)
		if out.Denoiser != nil {
			if slotY, err = scratch.View(off, p.splits*n*d); err != nil {
				return fmt.Errorf("empirical score: %w", err)
			}
			off += p.splits * n * d
		}
		if out.Score != nil {
			if slotZ, err = scratch.View(off, p.splits*n*d); err != nil {
				return fmt.Errorf("empirical score: %w", err)
			}
		}
	} else {
		slotY, slotZ = out.Denoiser, out.Score
	}

	entry := empiricalEntry(dt, d, p.vectors)
	if globalAccumulators {
		entry = "empirical_score_" + dt.String()
	}
	k, err := b.kernel("empirical", entry)
	if err != nil {
		return err
	}
	levels := noise.Levels
	tile := empiricalTile(dt)
	cfg := tensor.LaunchConfig{Grid: [3]int{rowTiles, p.splits, 1}, Block: [3]int{empiricalThreads, 1, 1}}
	logm := math.Log(float64(m))
	for c := 0; c < p.chunks; c++ {
		m0 := c * p.chunk
		count := min(p.chunk, m-m0)
		data, err := p.chunkData(m0, count)
		if err != nil {
			return fmt.Errorf("empirical score: data points %d..%d: %w", m0, m0+count, err)
		}
		tiles := (count + tile - 1) / tile
		perSplit := (tiles + p.splits - 1) / p.splits
		flags := int64(0)
		if c > 0 {
			flags |= 1 // resume the state of the earlier chunks
		}
		if p.splits == 1 && c == p.chunks-1 {
			flags |= 2 // write the outputs
		}
		err = b.launch(k, cfg, empiricalScoreArgs{X: x, Levels: levels, Level: noise.Level, Kind: kind,
			AScale: noise.Scale, SVar: noise.Var, Data: data, Count: int64(count), TilesPerSplit: int64(perSplit),
			N: int64(n), D: int64(d), Mix: mixDev, NQ: int64(e.MixtureSize()), LogM: logm, AMax: amax,
			SlotY: slotY, SlotZ: slotZ, SlotStride: slotStride, State: state, Flags: flags,
			OutLogP: out.LogP, OutScore: out.Score, OutDen: out.Denoiser})
		if err != nil {
			return fmt.Errorf("empirical score: %w", err)
		}
	}
	if p.splits == 1 {
		return nil
	}
	if k, err = b.typedKernel("empirical", "empirical_finalize", dt); err != nil {
		return err
	}
	width := int64(1)
	if out.Score != nil || out.Denoiser != nil {
		width = int64(d)
	}
	err = b.launch(k, b.gridFor(int64(n)*width), empiricalFinalizeArgs{Levels: levels, Level: noise.Level,
		Kind: kind, AScale: noise.Scale, SVar: noise.Var, N: int64(n), D: int64(d), LogM: logm, AMax: amax,
		SlotY: slotY, SlotZ: slotZ, SlotStride: slotStride, State: state, Splits: int64(p.splits),
		OutLogP: out.LogP, OutScore: out.Score, OutDen: out.Denoiser})
	if err != nil {
		return fmt.Errorf("empirical score: %w", err)
	}
	return nil
}

// empiricalPlan says where the data comes from and how the work is cut.
type empiricalPlan struct {
	splits  int // blocks per row tile
	chunk   int // data points per launch
	chunks  int // launches
	scratch int // elements of scratch (state and per-split accumulators)
	vectors int // vector outputs asked for

	resident *tensor.Tensor // the whole data set on the device (cached), or nil
	e        *ops.Empirical
	dt       tensor.DType
	d        int
	devBuf   *tensor.Tensor // chunk buffer on the device (chunked path; the backend's scratch)
	hostBuf  *tensor.Tensor // conversion buffer on the host when the data's dtype differs
}

// chunkData returns the device copy of data points [m0, m0+count).
func (p *empiricalPlan) chunkData(m0, count int) (*tensor.Tensor, error) {
	if p.resident != nil {
		return p.resident.View(m0*p.d, count, p.d)
	}
	dst, err := p.devBuf.View(0, count, p.d)
	if err != nil {
		return nil, err
	}
	src := p.e.Data()
	if src.DType() == p.dt {
		v, err := src.View(m0*p.d, count, p.d)
		if err != nil {
			return nil, err
		}
		return dst, dst.CopyFrom(v)
	}
	h, err := p.hostBuf.View(0, count, p.d)
	if err != nil {
		return nil, err
	}
	convertRows(h, src, m0*p.d, count*p.d)
	return dst, dst.CopyFrom(h)
}

func (p *empiricalPlan) close() {
	if p.hostBuf != nil {
		p.hostBuf.Close()
	}
}

// planEmpirical decides residency, chunking and splits for n query rows (planEmpiricalLayout),
// uploads the data when it is to stay on the device, and takes the chunk buffer otherwise.
func (b *Backend) planEmpirical(e *ops.Empirical, dt tensor.DType, n int, out ops.ScoreOutputs) (*empiricalPlan, error) {
	m, d := e.Points(), e.Dim()
	prob := empiricalProblem{m: m, d: d, n: n, dt: dt, sms: b.sms(), device: b.dev.Name(),
		maxChunkPoints: maxChunkPoints, forceSplits: forceSplits}
	if out.Score != nil {
		prob.vectors++
	}
	if out.Denoiser != nil {
		prob.vectors++
	}
	key := paramKey{e.Data(), "empirical data", dt}
	cached := b.table(key)
	prob.resident = cached != nil
	if !prob.resident || prob.forced() {
		free, total, err := freeMemory(b)
		if err != nil {
			return nil, fmt.Errorf("empirical score: query free device memory: %w", err)
		}
		prob.free = free + b.tables.evictable() // tables of earlier calls make room when needed
		prob.total = total
	}
	lay, err := planEmpiricalLayout(prob)
	if err != nil {
		return nil, err
	}
	p := &empiricalPlan{e: e, dt: dt, d: d, splits: lay.splits, chunk: lay.chunk, chunks: lay.chunks, scratch: lay.scratch,
		vectors: prob.vectors}
	size := int64(dt.Size())
	switch lay.mode {
	case empiricalResident:
		p.resident = cached.t
	case empiricalUpload:
		if err := b.ensureFree(int64(m)*int64(d)*size + int64(p.scratch)*size + lay.headroom); err != nil {
			return nil, fmt.Errorf("empirical score: %w", err)
		}
		if p.resident, err = b.uploadEmpiricalData(e, dt, key); err != nil {
			return nil, err
		}
	default:
		if err := b.ensureFree(int64(p.chunk)*int64(d)*size + int64(p.scratch)*size + lay.headroom); err != nil {
			return nil, fmt.Errorf("empirical score: %w", err)
		}
		if p.devBuf, err = b.scratch.get("empirical chunk", dt, p.chunk*d); err != nil {
			return nil, fmt.Errorf("empirical score: chunk buffer of %d points × %d: %w", p.chunk, d, err)
		}
		if e.Data().DType() != dt {
			if p.hostBuf, err = tensor.New(tensor.CPU(), dt, p.chunk, d); err != nil {
				return nil, fmt.Errorf("empirical score: host chunk buffer: %w", err)
			}
		}
	}
	return p, nil
}

// uploadEmpiricalData copies the whole data set to the device as dt and keeps it in the
// backend's table cache under key (the data tensor is immutable, so copies of e made by
// WithMixture share it).
func (b *Backend) uploadEmpiricalData(e *ops.Empirical, dt tensor.DType, key paramKey) (*tensor.Tensor, error) {
	if c := b.table(key); c != nil {
		return c.t, nil
	}
	src := e.Data()
	if src.DType() != dt {
		h, err := tensor.New(tensor.CPU(), dt, e.Points(), e.Dim())
		if err != nil {
			return nil, fmt.Errorf("empirical score: convert data to %v: %w", dt, err)
		}
		convertRows(h, src, 0, e.Points()*e.Dim())
		src = h
	}
	t, err := b.keep(key, src)
	if err != nil {
		return nil, fmt.Errorf("empirical score: data (%d × %d %v): %w", e.Points(), e.Dim(), dt, err)
	}
	return t, nil
}

// convertRows writes elements [off, off+count) of the host tensor src into the host tensor dst
// (from element 0), converting between f32 and f64.
func convertRows(dst, src *tensor.Tensor, off, count int) {
	if dst.DType() == tensor.F32 {
		out, _ := dst.F32()
		in, _ := src.F64()
		for i, v := range in[off : off+count] {
			out[i] = float32(v)
		}
		return
	}
	out, _ := dst.F64()
	in, _ := src.F32()
	for i, v := range in[off : off+count] {
		out[i] = float64(v)
	}
}

// empiricalMixture returns the kernel's mixture table — pairs (A_q − max A, 1/m_q) with
// A_q = log π_q − d/2 log m_q — and max A.
func empiricalMixture(e *ops.Empirical) ([]float64, float64) {
	logW, scales := e.Mixture()
	half := 0.5 * float64(e.Dim())
	mix := make([]float64, 2*len(scales))
	amax := math.Inf(-1)
	for q, s := range scales {
		mix[2*q] = logW[q] - half*math.Log(s)
		mix[2*q+1] = 1 / s
		amax = math.Max(amax, mix[2*q])
	}
	for q := range scales {
		mix[2*q] -= amax
	}
	return mix, amax
}

// empiricalNoiseKind maps a noise kind to the kernel's code.
func empiricalNoiseKind(k ops.NoiseKind) (int64, error) {
	switch k {
	case ops.VE:
		return 1, nil
	case ops.VP:
		return 2, nil
	case ops.Affine:
		return 3, nil
	}
	return 0, fmt.Errorf("empirical score: noise kind %v is not supported", k)
}

// checkEmpiricalOverlap refuses outputs that share memory with the inputs or with each other:
// the kernel reads x for every data tile and keeps its accumulators in the outputs.
func checkEmpiricalOverlap(out ops.ScoreOutputs, x, levels *tensor.Tensor) error {
	type named struct {
		name string
		t    *tensor.Tensor
	}
	outs := []named{{"log p", out.LogP}, {"score", out.Score}, {"denoiser", out.Denoiser}}
	ins := []named{{"x", x}, {"the per-row levels", levels}}
	for i, o := range outs {
		if o.t == nil {
			continue
		}
		for _, in := range append(ins, outs[i+1:]...) {
			if in.t != nil && overlaps(o.t, in.t) {
				return fmt.Errorf("empirical score: the %s output overlaps %s: outputs must not share memory with the inputs or with each other", o.name, in.name)
			}
		}
	}
	return nil
}

// overlaps reports whether two device tensors share any byte.
func overlaps(a, b *tensor.Tensor) bool {
	pa, pb := a.DevicePtr(), b.DevicePtr()
	na, nb := uintptr(a.Bytes()), uintptr(b.Bytes())
	return na > 0 && nb > 0 && pa < pb+nb && pb < pa+na
}
