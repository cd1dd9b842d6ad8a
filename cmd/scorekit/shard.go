package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/tensor"
)

// Shards. `--shard i/n` on sample, noise and optimize runs only the chains
// [⌊iN/n⌋, ⌊(i+1)N/n⌋) of the N the command line asks for — chain c of a run is a pure function
// of (seed, c), so those rows are the unsplit run's rows bit for bit — and writes, beside every
// .npy output, a manifest (shard.go: shardManifest) that `scorekit merge` checks before it
// concatenates the shards.

// shardFlagHelp is the --shard paragraph of the commands' help, its text from column col.
func shardFlagHelp(col int) string {
	lines := wrapWords(`run only shard i of n (0 ≤ i < n ≤ N): the rows [⌊iN/n⌋, ⌊(i+1)N/n⌋) of the N
chains or paths asked for, bit for bit the unsplit run's rows, and beside every .npy output X.npy
a manifest X.manifest.json; 'scorekit merge' joins the shards into the unsplit run's file.
--shard env takes i from SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN; n from
SLURM_ARRAY_TASK_COUNT) or from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, which needs
--shard env/n)`, 96-col)
	var b strings.Builder
	head := "  --shard i/n"
	b.WriteString(head + strings.Repeat(" ", max(col-len(head), 1)) + lines[0] + "\n")
	for _, l := range lines[1:] {
		b.WriteString(strings.Repeat(" ", col) + l + "\n")
	}
	return b.String()
}

// Environment variables that --shard env reads.
const (
	envSlurmID    = "SLURM_ARRAY_TASK_ID"
	envSlurmMin   = "SLURM_ARRAY_TASK_MIN"
	envSlurmCount = "SLURM_ARRAY_TASK_COUNT"
	envSlurmStep  = "SLURM_ARRAY_TASK_STEP"
	envK8sIndex   = "JOB_COMPLETION_INDEX"
)

// maxShards bounds n in --shard i/n (a shard has at least one of at most 2^32 chains).
const maxShards = 1 << 32

// shardSpec is a parsed --shard: shard index of count (count 0: the whole run).
type shardSpec struct{ index, count uint64 }

func (s shardSpec) active() bool { return s.count > 0 }

func (s shardSpec) String() string { return fmt.Sprintf("%d/%d", s.index, s.count) }

// rows is the row range [lo, hi) of the shard in a run of total rows: ⌊iN/n⌋ to ⌊(i+1)N/n⌋.
func (s shardSpec) rows(total uint64) (lo, hi uint64) {
	if !s.active() {
		return 0, total
	}
	at := func(i uint64) uint64 { // ⌊i·total/count⌋ without overflow (i ≤ count ≤ 2^32)
		h, l := bits.Mul64(i, total)
		q, _ := bits.Div64(h, l, s.count)
		return q
	}
	return at(s.index), at(s.index + 1)
}

// parseShard parses --shard: "" (no shard), "i/n", "env" or "env/n", reading the environment
// through getenv.
func parseShard(v string, getenv func(string) string) (shardSpec, error) {
	if v == "" {
		return shardSpec{}, nil
	}
	bad := func(format string, args ...any) (shardSpec, error) {
		return shardSpec{}, usagef("--shard %s: "+format, append([]any{v}, args...)...)
	}
	idx, cnt, hasCount := strings.Cut(v, "/")
	var count uint64
	if hasCount {
		c, err := strconv.ParseUint(cnt, 10, 64)
		if err != nil || c < 1 || c > maxShards {
			return bad("the shard count n must be an integer in [1, 2^32] (want i/n, env or env/n)")
		}
		count = c
	}
	if idx != "env" {
		if !hasCount {
			return bad("want i/n (shard i of n, 0 ≤ i < n), env or env/n")
		}
		i, err := strconv.ParseUint(idx, 10, 64)
		if err != nil {
			return bad("the shard index i must be a non-negative integer (want i/n)")
		}
		if i >= count {
			return bad("the shard index must be below the count (shards are numbered 0 … %d)", count-1)
		}
		return shardSpec{i, count}, nil
	}
	slurm, k8s := getenv(envSlurmID), getenv(envK8sIndex)
	switch {
	case slurm != "" && k8s != "":
		return bad("both %s and %s are set; give the shard as i/n", envSlurmID, envK8sIndex)
	case slurm == "" && k8s == "":
		return bad("neither %s (a Slurm array job) nor %s (a Kubernetes Indexed Job) is set", envSlurmID, envK8sIndex)
	}
	envInt := func(name string) (uint64, bool, error) {
		s := getenv(name)
		if s == "" {
			return 0, false, nil
		}
		u, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0, true, usagef("--shard %s: %s=%q is not a non-negative integer", v, name, s)
		}
		return u, true, nil
	}
	var index uint64
	if k8s != "" {
		i, _, err := envInt(envK8sIndex)
		if err != nil {
			return shardSpec{}, err
		}
		if !hasCount {
			return bad("a Kubernetes Indexed Job does not tell the number of shards: give it as env/n (n = the Job's completions)")
		}
		index = i
	} else {
		id, _, err := envInt(envSlurmID)
		if err != nil {
			return shardSpec{}, err
		}
		lo, hasMin, err := envInt(envSlurmMin)
		if err != nil {
			return shardSpec{}, err
		}
		if step, hasStep, err := envInt(envSlurmStep); err != nil {
			return shardSpec{}, err
		} else if hasStep && step != 1 {
			return bad("%s=%d: the array must be contiguous (e.g. --array=0-%s) for its tasks to be the shards", envSlurmStep, step, "N")
		}
		if hasMin {
			if id < lo {
				return bad("%s=%d is below %s=%d", envSlurmID, id, envSlurmMin, lo)
			}
			id -= lo
		}
		index = id
		c, hasEnvCount, err := envInt(envSlurmCount)
		if err != nil {
			return shardSpec{}, err
		}
		switch {
		case !hasCount && !hasEnvCount:
			return bad("%s is not set: give the number of shards as env/n", envSlurmCount)
		case hasCount && hasEnvCount && c != count:
			return bad("the array has %s=%d tasks, not %d", envSlurmCount, c, count)
		case !hasCount:
			if c < 1 || c > maxShards {
				return bad("%s=%d is not a shard count in [1, 2^32]", envSlurmCount, c)
			}
			count = c
		}
	}
	if index >= count {
		return bad("the task's index %d is not below the number of shards %d", index, count)
	}
	return shardSpec{index, count}, nil
}

// shardRun is the sharding of one command's run: the shard, the configuration that identifies the
// run (every flag that shapes the numbers, input files by their content), and the row range.
type shardRun struct {
	spec    shardSpec
	command string   // "sample", "noise fgn", "optimize fpgd", …
	config  []string // "--name=value" lines, sorted by name
	files   []string // flags of config naming input files, replaced by their digests in resolve
	total   uint64
	lo, hi  uint64
	seed    uint64
}

// presentationFlags change what is written or shown, not the numbers: they are left out of the
// configuration (the outputs that change what a run computes are kept as yes/no).
var presentationFlags = map[string]bool{"out": true, "plot": true, "stats": true, "quiet": true, "shard": true, "device": true}

// outputFlags name optional output files whose presence is part of the configuration.
var outputFlags = map[string]bool{"trajectory": true, "augmented-trajectory": true, "trace": true}

// newShardRun reads --shard (the flag shard of fs, already parsed) and, when given, the
// configuration of the command's run from fs. fileFlags are the flags naming input files.
func newShardRun(command string, fs *flag.FlagSet, shard string, seed uint64, fileFlags ...string) (*shardRun, error) {
	spec, err := parseShard(shard, os.Getenv)
	if err != nil {
		return nil, err
	}
	r := &shardRun{spec: spec, command: command, seed: seed}
	if !spec.active() {
		return r, nil
	}
	files := map[string]bool{}
	for _, f := range fileFlags {
		files[f] = true
	}
	fs.VisitAll(func(f *flag.Flag) {
		switch name, v := f.Name, f.Value.String(); {
		case presentationFlags[name]:
		case outputFlags[name]:
			r.config = append(r.config, fmt.Sprintf("--%s=%t", name, v != ""))
		case files[name] && v != "":
			r.config = append(r.config, "--"+name+"="+v)
			r.files = append(r.files, name)
		default:
			r.config = append(r.config, "--"+name+"="+v)
		}
	})
	return r, nil
}

// setRows fixes the run's size, total rows (chains or paths), and the shard's range in it.
func (r *shardRun) setRows(total int, what string) error {
	r.total = uint64(total)
	r.lo, r.hi = r.spec.rows(r.total)
	if r.spec.active() && r.spec.count > r.total {
		return usagef("--shard %v: %d shards of %d %s leave some shards empty (use at most %d)",
			r.spec, r.spec.count, total, what, total)
	}
	return nil
}

// n is the shard's number of rows; first is the index of its first row (its FirstChain);
// globalRow is the run's index of the shard's row i.
func (r *shardRun) n() int              { return int(r.hi - r.lo) }
func (r *shardRun) first() uint64       { return r.lo }
func (r *shardRun) globalRow(i int) int { return int(r.lo) + i }

// scope qualifies the description of a size by the shard: "--n 1000 × --dim 5", or "--n 1000 ×
// --dim 5 (shard 1/4: rows 250…499)".
func (r *shardRun) scope(desc string) string {
	if !r.spec.active() {
		return desc
	}
	return fmt.Sprintf("%s (shard %v: rows %d…%d)", desc, r.spec, r.lo, r.hi-1)
}

// describe says how many rows the run computes: "1000 chains", or "chains 250…499 of 1000
// (shard 1/4)".
func (r *shardRun) describe(what string) string {
	if !r.spec.active() {
		return fmt.Sprintf("%d %s", r.total, what)
	}
	return fmt.Sprintf("%s %d…%d of %d (shard %v)", what, r.lo, r.hi-1, r.total, r.spec)
}

// resolve replaces the input files of the configuration by the digests of their contents (and of
// the files they name, for a target): shards run on different machines see the same inputs under
// different paths, and a changed file must not merge with the old one's shards.
func (r *shardRun) resolve() error {
	if !r.spec.active() {
		return nil
	}
	for _, name := range r.files {
		for i, line := range r.config {
			path, ok := strings.CutPrefix(line, "--"+name+"=")
			if !ok {
				continue
			}
			d, err := inputDigest(path)
			if err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
			r.config[i] = "--" + name + "=sha256:" + d
		}
	}
	return nil
}

// inputDigest is the SHA-256 of the file at path; for a JSON object naming other files ("data",
// "model": a target), of its bytes followed by theirs.
func inputDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) == nil {
		for _, key := range []string{"data", "model"} {
			var name string
			if raw, ok := obj[key]; !ok || json.Unmarshal(raw, &name) != nil {
				continue
			}
			if !filepath.IsAbs(name) {
				name = filepath.Join(filepath.Dir(path), name)
			}
			f, err := os.Open(name)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// shardManifest describes one .npy output of a shard.
type shardManifest struct {
	Format   int             `json:"format"`
	Scorekit string          `json:"scorekit"`
	Command  string          `json:"command"`
	Config   string          `json:"config"` // SHA-256 of the configuration lines
	Lines    []string        `json:"configuration"`
	Seed     uint64          `json:"seed"`
	Output   string          `json:"output"` // the flag that named this file: --out, --trajectory, …
	Axis     int             `json:"axis"`   // the array's chain axis
	Shard    [2]uint64       `json:"shard"`
	Rows     [2]uint64       `json:"rows"`
	Total    uint64          `json:"total_rows"`
	Backend  string          `json:"backend"` // cpu or cuda: the two agree within the ops' tolerance, not bitwise
	DType    string          `json:"dtype"`
	Shape    []int           `json:"shape"`
	SHA256   string          `json:"sha256"` // of the .npy file
	Stats    json.RawMessage `json:"stats"`
}

const manifestFormat = 1

// manifestPath is the manifest beside the .npy file path: x.npy → x.manifest.json.
func manifestPath(npy string) string {
	return strings.TrimSuffix(npy, ".npy") + ".manifest.json"
}

// manifestOutputs adds the manifests of the .npy outputs to a list of optional outputs, for
// checkOutputs: no manifest may overwrite another output.
func (r *shardRun) manifestOutputs(out string, optional []namedPath) []namedPath {
	if !r.spec.active() {
		return optional
	}
	all := append([]namedPath{}, optional...)
	all = append(all, namedPath{"the manifest of --out", manifestPath(out)})
	for _, p := range optional {
		if p.path != "" && outputFlags[strings.TrimPrefix(p.flag, "--")] {
			all = append(all, namedPath{"the manifest of " + p.flag, manifestPath(p.path)})
		}
	}
	return all
}

// write writes the outputs (writeOutputs) and then, for a shard, each .npy output's manifest
// with the shard's statistics st. The manifests come last: a shard whose run stopped before them
// has none, and merge refuses it.
func (r *shardRun) write(npys []npyOutput, files []fileOutput, backend string, st any) ([]string, error) {
	written, err := writeOutputs(npys, files)
	if err != nil || !r.spec.active() {
		return written, err
	}
	stats, err := json.Marshal(st)
	if err != nil {
		return written, fmt.Errorf("stats: %w", err)
	}
	sum := sha256.Sum256([]byte(strings.Join(r.config, "\n")))
	for _, o := range npys {
		if o.path == "" {
			continue
		}
		digest, err := fileDigest(o.path)
		if err != nil {
			return written, err
		}
		m := shardManifest{Format: manifestFormat, Scorekit: version, Command: r.command,
			Config: hex.EncodeToString(sum[:]), Lines: r.config, Seed: r.seed, Output: o.flag, Axis: o.axis,
			Shard: [2]uint64{r.spec.index, r.spec.count}, Rows: [2]uint64{r.lo, r.hi}, Total: r.total,
			Backend: backend, DType: o.t.DType().String(), Shape: o.t.Shape(), SHA256: digest, Stats: stats}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return written, err
		}
		path := manifestPath(o.path)
		if err := tensor.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err }); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// fileDigest is the SHA-256 of the file at path, in hex.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// backendKind names the kind of a device for the manifests: shards that ran on different kinds
// agree within the ops' tolerance only, so merge refuses to join them.
func backendKind(dev tensor.Device) string {
	if dev.Kind() == tensor.KindCPU {
		return "cpu"
	}
	return "cuda"
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
