//go:build !cuda

package train

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/scorekit/scorekit/ops"
)

func perturbed(t *testing.T, m *ops.MLP, name string, delta float64) *ops.MLP {
	params := m.Params()
	for i := range params {
		if params[i].Name == name {
			for j := range params[i].Data {
				params[i].Data[j] += delta * math.Sin(float64(j+1))
			}
		}
	}
	out, err := ops.NewMLP(m.Config(), params)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFeatureUpdates(t *testing.T) {
	cfg := ops.MLPConfig{Dim: 2, Width: 6, Depth: 3, BlockLayers: 2, Fourier: 2, SigmaData: 1, BranchMult: 0.5, OutMult: 2}
	m, _ := ops.RandomMLP(cfg, 4)
	probe, err := NewProbe(gaussSource(t), 64, 0, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	same, err := FeatureUpdates(m, m, probe)
	if err != nil {
		t.Fatal(err)
	}
	if len(same) != 1+3*2+1 {
		t.Fatalf("%d layers, want 8", len(same))
	}
	for _, u := range same {
		if u.Total != 0 || u.Own != 0 || !(u.Before > 0) {
			t.Errorf("identical networks: %+v", u)
		}
	}
	// Changing blocks.1.0 moves nothing before it; its update is all its own; later layers move
	// without an own part.
	ups, err := FeatureUpdates(m, perturbed(t, m, "blocks.1.0.weight", 0.01), probe)
	if err != nil {
		t.Fatal(err)
	}
	for k, u := range ups {
		switch {
		case k < 3:
			if u.Total != 0 || u.Own != 0 {
				t.Errorf("%s (before the change): %+v", u.Name, u)
			}
		case k == 3:
			if u.Name != "blocks.1.0" || !u.Inner || u.Block != 1 || !(u.Total > 0) || math.Abs(u.Own-u.Total) > 1e-12*u.Total {
				t.Errorf("%s (the changed layer): %+v", u.Name, u)
			}
		default:
			if !(u.Total > 0) || u.Own != 0 {
				t.Errorf("%s (after the change): %+v", u.Name, u)
			}
		}
	}
	// The output layer's own update is γ ΔW_out φ(h): changing output.bias by δ·sin(j+1) gives an
	// RMS equal to that of the bias change.
	ups, _ = FeatureUpdates(m, perturbed(t, m, "output.bias", 0.1), probe)
	last := ups[len(ups)-1]
	want := 0.1 * math.Sqrt((math.Sin(1)*math.Sin(1)+math.Sin(2)*math.Sin(2))/2)
	if last.Name != "output" || math.Abs(last.Own-want) > 1e-12 || math.Abs(last.Total-want) > 1e-12 {
		t.Errorf("output: %+v, want Own = Total = %g", last, want)
	}
	other, _ := ops.RandomMLP(ops.MLPConfig{Dim: 2, Width: 6, Depth: 2, BlockLayers: 2, Fourier: 2, SigmaData: 1, BranchMult: 0.5, OutMult: 2}, 4)
	if _, err := FeatureUpdates(m, other, probe); err == nil || !strings.Contains(err.Error(), "architecture") {
		t.Errorf("different depths: %v", err)
	}
}

// TestFeatureUpdatesAcrossDepth prints the per-layer feature updates after a few steps for
// L = 2 … 16 (two-layer blocks) under depth-μP with and without the correction. It measures, it
// does not check; set SCOREKIT_FEATURE_UPDATES=1 to run it (SCOREKIT_FEATURE_STEPS: the number
// of steps, default 20).
func TestFeatureUpdatesAcrossDepth(t *testing.T) {
	if os.Getenv("SCOREKIT_FEATURE_UPDATES") == "" {
		t.Skip("a measurement: set SCOREKIT_FEATURE_UPDATES=1 to run it")
	}
	src := gaussSource(t)
	probe, _ := NewProbe(src, 512, 0, 0, 5)
	steps := 20
	if v := os.Getenv("SCOREKIT_FEATURE_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SCOREKIT_FEATURE_STEPS = %q: want a number of steps ≥ 1", v)
		}
		steps = n
	}
	fmt.Printf("two-layer blocks, W = 32, batch 256, η = 1e-2, %d steps, probe 512; RMS over units and probe, mean over blocks (seeds 1-3); excess: λ-weighted distance to the exact denoiser\n", steps)
	fmt.Printf("%-20s %3s %10s %10s %10s %10s %10s %10s\n", "param", "L", "inner.tot", "inner.own", "outer.tot", "outer.own", "out.tot", "excess")
	for _, p := range []Parametrization{DepthMuP, DepthMuPCorrected} {
		for _, depth := range []int{2, 4, 8, 16} {
			var it, io, ot, oo, ft, loss float64
			const seeds = 3
			for seed := uint64(1); seed <= seeds; seed++ {
				cfg := Config{Width: 32, Depth: depth, BlockLayers: 2, Fourier: 4, Param: p, LR: 1e-2, Batch: 256, Steps: steps, Seed: seed}
				tr, err := New(cfg, src)
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Run(); err != nil {
					t.Fatal(err)
				}
				ups, err := FeatureUpdates(tr.Initial(), tr.Model(), probe)
				if err != nil {
					t.Fatal(err)
				}
				l := excess(tr.Model(), probe)
				for _, u := range ups {
					switch {
					case u.Inner:
						it += u.Total / float64(depth*seeds)
						io += u.Own / float64(depth*seeds)
					case u.Block >= 0:
						ot += u.Total / float64(depth*seeds)
						oo += u.Own / float64(depth*seeds)
					case u.Name == "output":
						ft += u.Total / seeds
					}
				}
				loss += l / seeds
				tr.Close()
			}
			fmt.Printf("%-20s %3d %10.4f %10.4f %10.4f %10.4f %10.4f %10.4f\n", p, depth, it, io, ot, oo, ft, loss)
		}
	}
}
