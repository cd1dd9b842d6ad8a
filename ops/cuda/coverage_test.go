//go:build cuda || cudaemu

package cuda

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/scorekit/scorekit/kernels"
)

// Kernel coverage: every entry of every module must be launched by this package's tests (on a
// GPU, and under the host execution of kernels in CI). Tests that take their backend from
// backend(t) are credited with the entries they launched; after a full run TestMain lists every
// entry with its launch count and the tests that launched it (with -v, or with
// SCOREKIT_KERNEL_COVERAGE=1), and fails when an entry was never launched.

var (
	coverageMu sync.Mutex
	launchedBy = map[string]map[string]bool{} // entry → tests
)

// trackLaunches credits t with the launches made while it runs.
func trackLaunches(t *testing.T) {
	before := gpu.LaunchCounts()
	t.Cleanup(func() {
		after := gpu.LaunchCounts()
		coverageMu.Lock()
		defer coverageMu.Unlock()
		for k, v := range after {
			if v > before[k] {
				if launchedBy[k] == nil {
					launchedBy[k] = map[string]bool{}
				}
				launchedBy[k][t.Name()] = true
			}
		}
	})
}

// reportKernelCoverage prints the coverage table when asked and, after a full run of the suite
// (no -run filter, not -short), reports false when an entry was never launched.
func reportKernelCoverage() bool {
	counts := gpu.LaunchCounts()
	entries := kernels.Entries()
	full := flag.Lookup("test.run").Value.String() == "" && !testing.Short()
	show := testing.Verbose() || os.Getenv("SCOREKIT_KERNEL_COVERAGE") == "1"
	var missing []string
	if show {
		fmt.Printf("kernel coverage (%d entries):\n", len(entries))
	}
	for _, e := range entries {
		n := counts[e.Name]
		if n == 0 {
			missing = append(missing, e.Module+"/"+e.Name)
		}
		if !show {
			continue
		}
		var tests []string
		for name := range launchedBy[e.Name] {
			tests = append(tests, name)
		}
		sort.Strings(tests)
		more := ""
		if len(tests) > 3 {
			more = fmt.Sprintf(" and %d more", len(tests)-3)
			tests = tests[:3]
		}
		fmt.Printf("  %-10s %-32s %8d launches  %s%s\n", e.Module, e.Name, n, strings.Join(tests, ", "), more)
	}
	if full && len(missing) > 0 {
		fmt.Printf("FAIL: %d kernel entries were never launched by the ops/cuda tests: %s\n", len(missing),
			strings.Join(missing, ", "))
		return false
	}
	return true
}

// totalLaunches is the number of kernel launches gpu has completed (all entries).
func totalLaunches() int64 {
	n := int64(0)
	for _, v := range gpu.LaunchCounts() {
		n += v
	}
	return n
}

// launchesDuring runs f and returns the number of kernel launches made meanwhile (the tests do not
// run in parallel, so they are f's).
func launchesDuring(f func()) int64 {
	before := totalLaunches()
	f()
	return totalLaunches() - before
}
