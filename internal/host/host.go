// Package host describes the machine a program runs on, for the provenance lines of benchmark
// and study reports.
package host

import (
	"os"
	"runtime"
	"strings"
)

// CPUModel is the "model name" of /proc/cpuinfo, or GOARCH where there is none.
func CPUModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if key, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
