package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// BrownianSpec is what Backend.Brownian draws: paths on [0, Horizon] sampled at t_k = k·Horizon/n,
// k = 1..n; with Epoch = τ > 0 steps, restarted as a Brownian bridge pinned to 0 at every multiple
// of τ steps (docs/math.md §4.4); with Increments, the differences B(t_k) − B(t_{k−1}) instead.
//
// The last epoch, when τ does not divide n, is not shortened: its r = n mod τ points are the first
// r points of a bridge over the full τ steps (the epoch goes on past the end of the output), so
// the variance at in-epoch step j is h·j(τ − j)/τ in every epoch, and the first n columns of a
// longer draw are the draw of n columns. Its endpoint is computed from the normals of all τ steps,
// so that epoch costs τ normals however few points are written.
type BrownianSpec struct {
	Horizon    float64
	Epoch      int
	Increments bool
}

// MaxBrownianNormals bounds the normals one path consumes (n, or ⌈n/τ⌉·τ with epochs): column
// indices must stay within the 32-bit Philox lane of the draw layout.
const MaxBrownianNormals = 1 << 32

// Normals is the number of normal columns a path of n points consumes: n, or ⌈n/τ⌉·τ with epochs.
func (s BrownianSpec) Normals(n int) int64 {
	if s.Epoch <= 0 {
		return int64(n)
	}
	tau := int64(s.Epoch)
	return (int64(n) + tau - 1) / tau * tau
}

// CheckBrownian validates Brownian's arguments: dst (paths, n) on dev with n ≥ 1, a finite
// horizon T > 0, an epoch τ ≥ 0 and at most MaxBrownianNormals normals per path.
func CheckBrownian(dev tensor.Device, dst *tensor.Tensor, s BrownianSpec, d Draw) error {
	const op = "brownian"
	if err := checkFill(op, dev, dst, d); err != nil {
		return err
	}
	n := dst.Dim(1)
	if n < 1 {
		return fmt.Errorf("%s: destination shape %v: need at least one point per path", op, dst.Shape())
	}
	if !(s.Horizon > 0) || math.IsInf(s.Horizon, 0) {
		return fmt.Errorf("%s: horizon T = %g: must be a finite number > 0", op, s.Horizon)
	}
	if s.Epoch < 0 {
		return fmt.Errorf("%s: epoch τ = %d steps: must be ≥ 0 (0: no epochs)", op, s.Epoch)
	}
	if m := s.Normals(n); m > MaxBrownianNormals {
		return fmt.Errorf("%s: %d points with epoch %d use %d normals per path: at most 2^32", op, n, s.Epoch, m)
	}
	return nil
}

// normalStream reads the normals of one chain at one site column by column (the numbers Normal
// writes, in the f32 or f64 stream), generating each Philox block once while the columns stay in
// it.
type normalStream struct {
	seed, site uint64
	chain      uint32
	f32        bool
	lane       int64
	vals       [4]float64
}

func newNormalStream(seed, site uint64, chain uint32, f32 bool) normalStream {
	return normalStream{seed: seed, site: site, chain: chain, f32: f32, lane: -1}
}

// at returns the normal of column j.
func (s *normalStream) at(j int64) float64 {
	per := int64(2)
	if s.f32 {
		per = 4
	}
	if l := j / per; l != s.lane {
		s.lane = l
		blk := philoxBlock(s.seed, s.site, s.chain, uint32(l))
		if s.f32 {
			for p := 0; p < 2; p++ {
				s.vals[2*p], s.vals[2*p+1] = normalPair32(blk[2*p], blk[2*p+1])
			}
		} else {
			s.vals[0], s.vals[1] = normalPair64(blk)
		}
	}
	return s.vals[j%per]
}

// Brownian fills dst (paths, n), row i from chain d.FirstChain+i, with h = T/n and ξ_j the normals
// of the draw at site d.Site (column j of the Normal fill, in dst's precision), in float64:
//
//	plain (τ = 0):  B_k = √h · Σ_{j<k} ξ_j                       (ascending sum), dst[i, k−1] = B_k
//	epochs (τ > 0): for k in epoch e, e τ < k ≤ (e+1) τ, in-epoch step m = k − e τ,
//	                L_m = Σ_{q<m} ξ_{eτ+q},  L_τ its total over the whole epoch (ascending sums),
//	                B_k = √h · (L_m − (m/τ) · L_τ)
//
// so B is 0 exactly at every multiple of τ (m = τ: L_τ − 1·L_τ) and has variance h m(τ − m)/τ
// inside an epoch; the last epoch, when τ does not divide n, is the start of a full-length bridge
// (see BrownianSpec). Increments: dst[i, k−1] = B_k − B_{k−1} (B_0 = 0), the difference of the
// float64 values. Stored values are rounded once.
func (b cpuBackend) Brownian(dst *tensor.Tensor, s BrownianSpec, d Draw) error {
	if err := CheckBrownian(tensor.CPU(), dst, s, d); err != nil {
		return err
	}
	rows, n := dst.Dim(0), dst.Dim(1)
	f32 := dst.DType() == tensor.F32
	sh := math.Sqrt(s.Horizon / float64(n))
	seg := int64(n) // the length of a segment: the epoch, or the whole path
	if s.Epoch > 0 {
		seg = int64(s.Epoch)
	}
	rd := rowsOf(dst)
	cost := 12 * int(s.Normals(n))
	b.parallelRows(rows, cost, func(lo, hi int) {
		out := make([]float64, n)
		for i := lo; i < hi; i++ {
			chain := uint32(d.FirstChain + uint64(i))
			xi := newNormalStream(d.Seed, d.Site, chain, f32)
			prev := 0.0
			for e0 := int64(0); e0 < int64(n); e0 += seg {
				total := 0.0
				if s.Epoch > 0 {
					ahead := newNormalStream(d.Seed, d.Site, chain, f32)
					for q := int64(0); q < seg; q++ {
						total += ahead.at(e0 + q)
					}
				}
				l := 0.0
				for m := int64(1); m <= seg && e0+m <= int64(n); m++ {
					l += xi.at(e0 + m - 1)
					v := l
					if s.Epoch > 0 {
						v = l - float64(m)/float64(seg)*total
					}
					v *= sh
					if s.Increments {
						v, prev = v-prev, v
					}
					out[e0+m-1] = v
				}
			}
			rd.set(i, out)
		}
	})
	return nil
}
