package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// What the optimize subcommands (fpgd, sgdo) share: the start, the host-memory check and the NaN
// warning.

// parseStart parses --x0, comma-separated finite coordinates (nil when empty).
func parseStart(x0 string) ([]float64, error) {
	if x0 == "" {
		return nil, nil
	}
	var out []float64
	for i, s := range strings.Split(x0, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, usagef("--x0: coordinate %d %q is not a finite number", i+1, s)
		}
		out = append(out, v)
	}
	return out, nil
}

// startFor is the start of every chain on f: x0, or the origin (x_1 = −1 on a double well, the
// left well) when --x0 was not given; it checks x0's length and that the n chains' noise paths
// (one per chain and coordinate) number at most 2^32.
func startFor(f solvers.Objective, x0 []float64, n int) ([]float64, error) {
	d := f.Dim()
	if x0 == nil {
		x0 = make([]float64, d)
		if _, doubleWell := f.(solvers.DoubleWell); doubleWell {
			x0[0] = -1
		}
	}
	if len(x0) != d {
		return nil, usagef("--x0 has %d coordinates, the objective %s has dimension %d", len(x0), objectiveName(f), d)
	}
	if uint64(n)*uint64(d) > 1<<32 {
		return nil, usagef("--n %d × dimension %d is more than 2^32 noise paths (one per chain and coordinate)", n, d)
	}
	return x0, nil
}

// checkDescentFits checks that the host holds the final states of n chains and, with thin > 0,
// the trace of steps/thin + 1 rows, in float64; size names the chains in the flags' terms.
func checkDescentFits(n, d, steps, thin int, size string) error {
	rows := int64(1)
	if thin > 0 {
		rows += int64(steps / thin)
	}
	return checkFits(tensor.CPU(), 8*(rows+1)*int64(n)*int64(d),
		fmt.Sprintf("%s × d %d (× %d rows with --trace) in float64 on the host", size, d, rows))
}

// warnNaN tells stderr about chains that turned NaN or ±Inf among the n of sh and returns the
// first such chain (its index in the whole run) for --stats (nil when none did).
func warnNaN(stderr io.Writer, method string, rep solvers.NaNReport, n int, sh *shardRun) *int {
	if rep.Chains == 0 {
		return nil
	}
	first := sh.globalRow(rep.First)
	fmt.Fprintf(stderr, "scorekit optimize %s: warning: %d of %d chains turned NaN or ±Inf (first: chain %d, at step %d); they are in the output as they are\n",
		method, rep.Chains, n, first, rep.Step)
	return &first
}

// replicatedStart is the (n, len(row)) tensor of dtype dt on dev whose rows all equal row.
func replicatedStart(dev tensor.Device, dt tensor.DType, row []float64, n int) (*tensor.Tensor, error) {
	v := make([]float64, 0, n*len(row))
	for i := 0; i < n; i++ {
		v = append(v, row...)
	}
	xh, err := tensor.FromFloat64s(dt, v, n, len(row))
	if err != nil {
		return nil, err
	}
	if dev.Kind() == tensor.KindCPU {
		return xh, nil
	}
	defer xh.Close()
	x, err := xh.CopyTo(dev)
	if err != nil {
		return nil, fmt.Errorf("copy the start to %s: %w", dev.Name(), err)
	}
	return x, nil
}

// writeDescent renders --stats (st) and --plot (po, with the trace when there is one) and then
// writes every output (and a shard's manifests); nothing is written when a rendering fails.
func writeDescent(out, trace, stats, plot string, st any, po optimizePlot, final, traced *tensor.Tensor,
	traceSteps []int, sh *shardRun, backend string) ([]string, error) {
	var statsJSON, png []byte
	var err error
	if stats != "" {
		if statsJSON, err = renderStats(st); err != nil {
			return nil, err
		}
	}
	if plot != "" {
		if traced != nil {
			if po.trace, err = traced.Float64s(); err != nil {
				return nil, err
			}
			po.traceSteps = traceSteps
		}
		if png, err = renderOptimize(po); err != nil {
			return nil, err
		}
	}
	return sh.write([]npyOutput{{out, final, "--out", 0}, {trace, traced, "--trace", 1}},
		[]fileOutput{{stats, statsJSON}, {plot, png}}, backend, st)
}

// descentShard reads --shard of an optimize subcommand (fs parsed) for its n chains, sets *first
// to the shard's first chain and checks the outputs (with the shard's manifests).
func descentShard(command string, fs *flag.FlagSet, shard string, seed uint64, n int, first *uint64,
	out, trace, stats, plot string) (*shardRun, error) {
	sh, err := newShardRun(command, fs, shard, seed, "objective")
	if err != nil {
		return nil, err
	}
	if err := sh.setRows(n, "chains"); err != nil {
		return nil, err
	}
	*first = sh.first()
	outputs := []namedPath{{"--trace", trace}, {"--stats", stats}, {"--plot", plot}}
	return sh, checkOutputs(out, sh.manifestOutputs(out, outputs))
}
