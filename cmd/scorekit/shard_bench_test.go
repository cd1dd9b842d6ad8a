package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkShardOverhead: what splitting a run into shards costs on one machine. Heun at 35 score
// evaluations on the 2-D mixture, N chains, as one run (shards=1, no manifest) or as n shards run
// one after the other (each writes its rows and manifest) followed by their merge, all in this
// process. Metrics: chain-steps/s of the whole job, and MB/s of the merge alone (the merged file's
// bytes over the merge's time).
func BenchmarkShardOverhead(b *testing.B) {
	dir := b.TempDir()
	tj := filepath.Join(dir, "t.json")
	writeBenchFile(b, tj, sampleTargetJSON)
	for _, n := range []int{20000, 200000} {
		for _, shards := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("N=%d/shards=%d", n, shards), func(b *testing.B) {
				base := []string{"sample", "--target", tj, "--method", "heun", "--n", strconv.Itoa(n), "--steps", "35",
					"--seed", "1", "--quiet"}
				var mergeNs int64
				for i := 0; i < b.N; i++ {
					if shards == 1 {
						if code, _, stderr := runCLI(append(base, "--out", filepath.Join(dir, "one.npy"))...); code != 0 {
							b.Fatal(stderr)
						}
						continue
					}
					var files []string
					for s := 0; s < shards; s++ {
						f := filepath.Join(dir, fmt.Sprintf("s%d.npy", s))
						if code, _, stderr := runCLI(append(base, "--shard", fmt.Sprintf("%d/%d", s, shards), "--out", f)...); code != 0 {
							b.Fatal(stderr)
						}
						files = append(files, f)
					}
					start := nowNs()
					if code, _, stderr := runCLI(append([]string{"merge", "--out", filepath.Join(dir, "merged.npy"), "--quiet"}, files...)...); code != 0 {
						b.Fatal(stderr)
					}
					mergeNs += nowNs() - start
				}
				const steps = 18 // heun: 35 evaluations are 18 steps
				if s := b.Elapsed().Seconds(); s > 0 {
					b.ReportMetric(float64(n)*steps*float64(b.N)/s, "chain-steps/s")
				}
				if mergeNs > 0 {
					b.ReportMetric(float64(n*2*4)*float64(b.N)/(float64(mergeNs)/1e9)/1e6, "merge-MB/s")
				}
			})
		}
	}
}

func writeBenchFile(b *testing.B, path, content string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}

func nowNs() int64 { return time.Now().UnixNano() }
