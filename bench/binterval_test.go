package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Brownian intervals (docs/math.md §4.6, ops.Backend.BrownianIncrements): paths × q increments
// W(s_j, t_j) of one draw, the q queries shared by every path (times tensors of shape (1, q)).
// The queries are the q steps of a walk over [0, T] in equal steps T/q (q = 1000, off the dyadic
// grid), asked in walk order ("sequential") or in a fixed random permutation of it ("random"):
// the same values, but the CPU's cache of recent nodes (ops.BrownianInterval) helps only the
// first, whose per-query cost is about log2((T/q)/resolution) + 1 Philox blocks against about
// D + log2((T/q)/resolution) in random order (s from the root, t from s's descent). The GPU descends from the root for every query, so the order does not
// matter there. Metric "queries/s" = paths·q per second; the bytes counted are the output's.
//
// Benchmark names:
//
//	BenchmarkBrownianIncrements[CUDA]/depth=<D>/<sequential|random>/<dtype>/paths=<paths>/q=<q>

// bintervalCase is one (paths, q) problem.
type bintervalCase struct{ paths, q int }

func benchBrownianIncrements(b *testing.B, backend ops.Backend, cases []bintervalCase, fits func(int64) error) {
	for _, depth := range []int{20, 40} {
		for _, order := range []string{"sequential", "random"} {
			for _, dt := range DTypes {
				for _, c := range cases {
					name := fmt.Sprintf("depth=%d/%s/%v/paths=%s/q=%s", depth, order, dt, CountLabel(c.paths), CountLabel(c.q))
					b.Run(name, func(b *testing.B) {
						bytes := int64(c.paths) * int64(c.q) * int64(dt.Size())
						if fits != nil {
							if err := fits(bytes); err != nil {
								Skipf(b, "%v (%d, %d): %v", dt, c.paths, c.q, err)
							}
						}
						const T = 1.0
						s, u := make([]float64, c.q), make([]float64, c.q)
						for k := range s {
							s[k], u[k] = T*float64(k)/float64(c.q), T*float64(k+1)/float64(c.q)
						}
						if order == "random" {
							rng := rand.New(rand.NewPCG(1, 2))
							rng.Shuffle(c.q, func(i, j int) { s[i], s[j], u[i], u[j] = s[j], s[i], u[j], u[i] })
						}
						dev := backend.Device()
						st := benchTimes(b, dev, s)
						defer st.Close()
						ut := benchTimes(b, dev, u)
						defer ut.Close()
						dst, err := tensor.New(dev, dt, c.paths, c.q)
						if err != nil {
							b.Fatal(err)
						}
						defer dst.Close()
						spec := ops.BrownianIntervalSpec{Horizon: T, Depth: depth}
						d := ops.Draw{Seed: 0x5eed}
						RunBandwidth(b, dev, bytes, func() error {
							d.Site++
							return backend.BrownianIncrements(dst, st, ut, spec, d)
						})
						reportRate(b, int64(c.paths)*int64(c.q), "queries/s")
					})
				}
			}
		}
	}
}

// benchTimes is a (1, len(v)) float64 tensor of v on dev.
func benchTimes(b *testing.B, dev tensor.Device, v []float64) *tensor.Tensor {
	b.Helper()
	h, err := tensor.FromF64(v, 1, len(v))
	if err != nil {
		b.Fatal(err)
	}
	if dev == tensor.CPU() {
		return h
	}
	x, err := h.CopyTo(dev)
	if err != nil {
		b.Fatal(err)
	}
	return x
}

func BenchmarkBrownianIncrements(b *testing.B) {
	benchBrownianIncrements(b, ops.CPU(), []bintervalCase{{64, 1000}}, nil)
}
