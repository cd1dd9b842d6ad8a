package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/scorekit/scorekit/tensor"
)

var mergeHelp = `Usage: scorekit merge --out X.npy [--stats S.json] [--quiet] SHARD.npy...

Joins the shards of one run (the .npy files written with --shard i/n by sample, noise or
optimize, each with its manifest SHARD.manifest.json beside it) into the file the unsplit run
writes, byte for byte. The shards may come in any order; they are checked first, and on any
problem nothing is written:
  - every manifest is there, and every file is the one its manifest describes (its SHA-256);
  - the shards are of one run: the same command, scorekit version and configuration (every flag
    that shapes the numbers, input files by their content), the same output (--out, --trajectory,
    …), dtype and kind of device (the CPU and a GPU agree within the ops' tolerance, not bit for
    bit);
  - shards 0 … n−1 of the same n are all there, each once: no gap and no overlap.
The output is written atomically (a temporary file renamed over X.npy).

Flags:
  --out X.npy     the merged file (required; not one of the shards)
  --stats S.json  the run's statistics combined from the shards' (each manifest keeps its shard's):
                  counts summed (n, rows, score evaluations, NaN chains, clipped values), rates
                  averaged with the shards' weights (acceptance over the finite chains, rejection
                  over the chains, the step size's geometric mean over the chains), wall_seconds summed over the shards with wall_seconds_max
                  beside it, the device of every shard, and a "shards" list with each shard's
                  rows, device and wall time; a median (fpgd's escape median_step) cannot be
                  combined and is left out
  --quiet         say nothing on stderr unless something fails

Example (4 shards of 10,000 chains, run anywhere, then merged):
  for i in 0 1 2 3; do
    scorekit sample --target t.json --method heun --n 10000 --steps 35 --seed 1 \
        --shard $i/4 --out x.$i.npy --quiet
  done
  scorekit merge --out x.npy --stats stats.json x.0.npy x.1.npy x.2.npy x.3.npy
`

// runMerge is `scorekit merge`.
func runMerge(args []string, stdout, stderr io.Writer) int {
	return exitStatus(stderr, "scorekit merge", merge(args, stdout, stderr))
}

// mergeShard is one shard file and its manifest.
type mergeShard struct {
	path string
	man  shardManifest
	info tensor.NpyInfo
}

func merge(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scorekit merge")
	var out, statsPath string
	var quiet bool
	fs.StringVar(&out, "out", "", "")
	fs.StringVar(&statsPath, "stats", "", "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mergeHelp)
			return err
		}
		return usagef("%v (see scorekit merge --help)", err)
	}
	paths := fs.Args()
	for _, p := range paths {
		if strings.HasPrefix(p, "-") {
			return usagef("%q after the shard files: flags go before them (see scorekit merge --help)", p)
		}
	}
	if len(paths) == 0 {
		return usagef("no shard files given (scorekit merge --out X.npy SHARD.npy...)")
	}
	if err := checkOutputs(out, []namedPath{{"--stats", statsPath}}); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, p := range paths {
		a := absPath(p)
		if a == absPath(out) {
			return usagef("--out %s is one of the shard files", out)
		}
		if seen[a] {
			return usagef("%s is given twice", p)
		}
		seen[a] = true
	}
	start := time.Now()
	shards, err := readShards(paths)
	if err != nil {
		return err
	}
	var statsJSON []byte
	if statsPath != "" {
		combined, err := combineStats(shards)
		if err != nil {
			return err
		}
		if statsJSON, err = renderStats(combined); err != nil {
			return err
		}
	}
	first := shards[0].man
	shape := append([]int(nil), first.Shape...)
	shape[first.Axis] = int(first.Total)
	dt := shards[0].info.DType
	if err := tensor.WriteFileAtomic(out, func(w io.Writer) error { return concatShards(w, shards, dt, shape) }); err != nil {
		return err
	}
	written := []string{out}
	if statsJSON != nil {
		if err := tensor.WriteFileAtomic(statsPath, func(w io.Writer) error { _, err := w.Write(statsJSON); return err }); err != nil {
			return err
		}
		written = append(written, statsPath)
	}
	if !quiet {
		fmt.Fprintf(stderr, "scorekit: merged %d shards of %s (%s): %s %v in %v; wrote %s\n", len(shards), first.Command,
			first.Output, shapeString(shape), dt, time.Since(start).Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}

// readShards reads every shard's manifest, checks each file against its manifest and the shards
// against each other, and returns them in shard order.
func readShards(paths []string) ([]mergeShard, error) {
	shards := make([]mergeShard, 0, len(paths))
	for _, p := range paths {
		s := mergeShard{path: p}
		mp := manifestPath(p)
		b, err := os.ReadFile(mp)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if _, serr := os.Stat(p); serr != nil {
					return nil, usagef("%s: %v", p, serr)
				}
				return nil, usagef("%s has no manifest %s (was it written with --shard, and did its run finish?)", p, mp)
			}
			return nil, usagef("%s: %v", mp, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s.man); err != nil {
			return nil, usagef("%s is not a shard manifest: %v", mp, err)
		}
		m := &s.man
		if m.Format != manifestFormat {
			return nil, usagef("%s: manifest format %d, this scorekit reads format %d", mp, m.Format, manifestFormat)
		}
		if s.info, err = tensor.StatNpy(p); err != nil {
			return nil, usagef("%v", err)
		}
		digest, err := fileDigest(p)
		if err != nil {
			return nil, err
		}
		if digest != m.SHA256 {
			return nil, usagef("%s is not the file its manifest describes (SHA-256 %.12s…, the manifest says %.12s…): rerun that shard",
				p, digest, m.SHA256)
		}
		if !s.info.Little || !slices.Equal(s.info.Shape, m.Shape) || s.info.DType.String() != m.DType ||
			m.Axis < 0 || m.Axis >= len(m.Shape) || uint64(m.Shape[m.Axis]) != m.Rows[1]-m.Rows[0] {
			return nil, usagef("%s does not match its manifest (shape %v %v, the manifest says %v %s)", p, s.info.Shape,
				s.info.DType, m.Shape, m.DType)
		}
		shards = append(shards, s)
	}
	ref := shards[0]
	for _, s := range shards[1:] {
		if err := sameRun(ref, s); err != nil {
			return nil, err
		}
	}
	// Shards 0 … n−1, each once, each with the rows ⌊iN/n⌋ … of its index.
	count := ref.man.Shard[1]
	byIndex := map[uint64]mergeShard{}
	for _, s := range shards {
		i := s.man.Shard[0]
		if prev, dup := byIndex[i]; dup {
			return nil, usagef("shard %d/%d is given twice (%s and %s)", i, count, prev.path, s.path)
		}
		lo, hi := shardSpec{i, count}.rows(ref.man.Total)
		if s.man.Rows != [2]uint64{lo, hi} || i >= count {
			return nil, usagef("%s: shard %d/%d of %d rows should hold rows %d…%d, its manifest says %d…%d",
				s.path, i, count, ref.man.Total, lo, hi-1, s.man.Rows[0], s.man.Rows[1]-1)
		}
		byIndex[i] = s
	}
	if uint64(len(byIndex)) != count {
		var missing []string
		for i := uint64(0); i < count && len(missing) < 8; i++ {
			if _, ok := byIndex[i]; !ok {
				lo, hi := shardSpec{i, count}.rows(ref.man.Total)
				missing = append(missing, fmt.Sprintf("%d/%d (rows %d…%d)", i, count, lo, hi-1))
			}
		}
		more := ""
		if n := count - uint64(len(byIndex)); n > uint64(len(missing)) {
			more = fmt.Sprintf(" and %d more", n-uint64(len(missing)))
		}
		return nil, usagef("%d of %d shards are missing: %s%s", count-uint64(len(byIndex)), count,
			strings.Join(missing, ", "), more)
	}
	sort.Slice(shards, func(a, b int) bool { return shards[a].man.Shard[0] < shards[b].man.Shard[0] })
	return shards, nil
}

// sameRun checks that shard s belongs to the run of ref: the first difference is the error.
func sameRun(ref, s mergeShard) error {
	a, b := ref.man, s.man
	differ := func(what string, x, y any) error {
		return usagef("%s and %s are not shards of one run: %s %v and %v", ref.path, s.path, what, x, y)
	}
	switch {
	case a.Command != b.Command:
		return differ("command", a.Command, b.Command)
	case a.Scorekit != b.Scorekit:
		return differ("scorekit version", a.Scorekit, b.Scorekit)
	case a.Output != b.Output:
		return differ("output", a.Output, b.Output)
	case a.Config != b.Config:
		for i := 0; i < len(a.Lines) && i < len(b.Lines); i++ {
			if a.Lines[i] != b.Lines[i] {
				return differ("configuration", a.Lines[i], b.Lines[i])
			}
		}
		return differ("configuration (hash)", a.Config[:12], b.Config[:12])
	case a.Backend != b.Backend:
		return usagef("%s ran on %s and %s on %s: the two agree within the ops' tolerance, not bit for bit; run every shard on one kind of device",
			ref.path, a.Backend, s.path, b.Backend)
	case a.DType != b.DType:
		return differ("dtype", a.DType, b.DType)
	case a.Shard[1] != b.Shard[1]:
		return differ("shard count", a.Shard[1], b.Shard[1])
	case a.Total != b.Total || a.Axis != b.Axis || len(a.Shape) != len(b.Shape):
		return differ("size", fmt.Sprintf("%d rows on axis %d", a.Total, a.Axis), fmt.Sprintf("%d rows on axis %d", b.Total, b.Axis))
	}
	for k := range a.Shape {
		if k != a.Axis && a.Shape[k] != b.Shape[k] {
			return differ("shape", shapeString(a.Shape), shapeString(b.Shape))
		}
	}
	return nil
}

// concatShards writes the .npy of the merged array (dt, shape) to w: for every index of the axes
// before the chain axis, each shard's slab in shard order. The shards' bytes are copied as they
// are (little-endian, as scorekit writes them).
func concatShards(w io.Writer, shards []mergeShard, dt tensor.DType, shape []int) error {
	if _, err := w.Write(tensor.NpyHeader(dt, shape)); err != nil {
		return err
	}
	axis := shards[0].man.Axis
	outer := 1
	for _, s := range shape[:axis] {
		outer *= s
	}
	inner := int64(dt.Size())
	for _, s := range shape[axis+1:] {
		inner *= int64(s)
	}
	files := make([]*os.File, len(shards))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, s := range shards {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		files[i] = f
	}
	for o := 0; o < outer; o++ {
		for i, s := range shards {
			slab := int64(s.man.Rows[1]-s.man.Rows[0]) * inner
			r := io.NewSectionReader(files[i], s.info.DataOffset+int64(o)*slab, slab)
			if _, err := io.Copy(w, r); err != nil {
				return fmt.Errorf("read %s: %w", s.path, err)
			}
		}
	}
	// The files were checked against their digests before; a file changed since is caught here.
	for i, s := range shards {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(files[i], 0, s.info.DataOffset+s.info.DataBytes)); err != nil {
			return fmt.Errorf("read %s: %w", s.path, err)
		}
		if hex.EncodeToString(h.Sum(nil)) != s.man.SHA256 {
			return fmt.Errorf("%s changed while it was merged", s.path)
		}
	}
	return nil
}

// Statistics. Each key of a shard's statistics combines by a rule; a key without one must be the
// same in every shard (the run's configuration: method, seed, steps, …) and is kept.
const (
	statSum        = "sum"         // counts
	statMin        = "min"         // the first NaN chain (an index in the whole run)
	statMeanChains = "mean-chains" // a rate over chains: weight n (or rows)
	statMeanFinite = "mean-finite" // a mean over the finite chains: weight n − nan_chains
	statGeoMean    = "geo-mean"    // a geometric mean over chains (MALA's adapted step sizes): weight n
	statDevice     = "device"      // kept when all agree, else the list of distinct devices
	statEscape     = "escape"      // fpgd's escape summary
	statWall       = "wall"        // summed; the maximum beside it
)

var statRules = map[string]string{
	"n": statSum, "rows": statSum, "score_evals_total": statSum, "nan_chains": statSum, "clamped": statSum,
	"nan_first_chain": statMin, "acceptance_rate": statMeanFinite, "final_value_mean": statMeanFinite,
	"rejection_rate": statMeanChains, "step_size": statGeoMean, "device": statDevice, "escape": statEscape, "wall_seconds": statWall,
}

// combineStats combines the shards' statistics (see mergeHelp).
func combineStats(shards []mergeShard) (map[string]any, error) {
	stats := make([]map[string]any, len(shards))
	for i, s := range shards {
		dec := json.NewDecoder(bytes.NewReader(s.man.Stats))
		dec.UseNumber()
		if err := dec.Decode(&stats[i]); err != nil {
			return nil, usagef("%s: the statistics of its manifest: %v", manifestPath(s.path), err)
		}
	}
	num := func(m map[string]any, key string) float64 {
		if n, ok := m[key].(json.Number); ok {
			f, _ := n.Float64()
			return f
		}
		return 0
	}
	chains := func(m map[string]any) float64 {
		if _, ok := m["n"]; ok {
			return num(m, "n")
		}
		return num(m, "rows")
	}
	keys := map[string]bool{}
	for _, m := range stats {
		for k := range m {
			keys[k] = true
		}
	}
	out := map[string]any{}
	for _, k := range sortedKeys(keys) {
		var present []map[string]any
		for _, m := range stats {
			if _, ok := m[k]; ok {
				present = append(present, m)
			}
		}
		switch statRules[k] {
		case statSum:
			out[k] = sumNumbers(present, k)
		case statMin:
			best := math.Inf(1)
			for _, m := range present {
				best = math.Min(best, num(m, k))
			}
			out[k] = json.Number(fmt.Sprint(int64(best)))
		case statMeanChains, statMeanFinite:
			s, w := 0.0, 0.0
			for _, m := range present {
				wi := chains(m)
				if statRules[k] == statMeanFinite {
					wi -= num(m, "nan_chains")
				}
				s += num(m, k) * wi
				w += wi
			}
			if w > 0 {
				out[k] = s / w
			}
		case statGeoMean:
			s, w := 0.0, 0.0
			for _, m := range present {
				s += math.Log(num(m, k)) * chains(m)
				w += chains(m)
			}
			if w > 0 {
				out[k] = math.Exp(s / w)
			}
		case statDevice:
			var devs []string
			for _, m := range stats {
				d := fmt.Sprint(m[k])
				if !contains(devs, d) {
					devs = append(devs, d)
				}
			}
			if len(devs) == 1 {
				out[k] = devs[0]
			} else {
				out[k] = devs
			}
		case statWall:
			sum, most := 0.0, 0.0
			for _, m := range present {
				sum += num(m, k)
				most = math.Max(most, num(m, k))
			}
			out[k], out["wall_seconds_max"] = sum, most
		case statEscape:
			e, err := combineEscape(present, chains)
			if err != nil {
				return nil, err
			}
			out[k] = e
		default:
			v := fmt.Sprint(stats[0][k])
			for i, m := range stats {
				if fmt.Sprint(m[k]) != v {
					return nil, usagef("the statistics %q of %s and %s differ (%v and %v), and it has no rule to combine",
						k, shards[0].path, shards[i].path, stats[0][k], m[k])
				}
			}
			out[k] = stats[0][k]
		}
	}
	var per []map[string]any
	for i, s := range shards {
		per = append(per, map[string]any{"shard": shardSpec{s.man.Shard[0], s.man.Shard[1]}.String(), "file": s.path,
			"rows": s.man.Rows, "device": stats[i]["device"], "wall_seconds": stats[i]["wall_seconds"]})
	}
	out["shards"] = per
	return out, nil
}

// sumNumbers sums the key over the maps: as integers when every value is one.
func sumNumbers(ms []map[string]any, key string) json.Number {
	var si int64
	var sf float64
	ints := true
	for _, m := range ms {
		n, _ := m[key].(json.Number)
		if i, err := n.Int64(); err == nil && ints {
			si += i
		} else {
			ints = false
		}
		f, _ := n.Float64()
		sf += f
	}
	if ints {
		return json.Number(fmt.Sprint(si))
	}
	return json.Number(fmt.Sprint(sf))
}

// combineEscape combines fpgd's escape summaries: the threshold the same, the escaped chains
// summed, the fraction over all chains, the mean step weighted by the escaped chains; the median
// is left out (the shards' medians do not give the whole run's).
func combineEscape(ms []map[string]any, chains func(map[string]any) float64) (map[string]any, error) {
	out := map[string]any{}
	var escaped, n, stepSum float64
	for i, m := range ms {
		e, ok := m["escape"].(map[string]any)
		if !ok {
			return nil, usagef("the escape statistics of a shard are not an object")
		}
		for _, k := range []string{"coord", "threshold", "below"} {
			if i == 0 {
				out[k] = e[k]
			} else if fmt.Sprint(e[k]) != fmt.Sprint(out[k]) {
				return nil, usagef("the shards' escape %s differ (%v and %v)", k, out[k], e[k])
			}
		}
		num := func(k string) float64 {
			v, _ := e[k].(json.Number)
			f, _ := v.Float64()
			return f
		}
		escaped += num("escaped")
		stepSum += num("mean_step") * num("escaped")
		n += chains(m)
	}
	out["escaped"] = json.Number(fmt.Sprint(int64(escaped)))
	if n > 0 {
		out["fraction"] = escaped / n
	}
	if escaped > 0 {
		out["mean_step"] = stepSum / escaped
	}
	return out, nil
}
