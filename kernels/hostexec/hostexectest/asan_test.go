//go:build cudaemu && asan

package hostexectest

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

const asanBuild = true

// envASanChild makes the test binary run one broken kernel and die under the sanitizer.
const envASanChild = "SCOREKIT_HOSTEXEC_ASAN_CHILD"

// Under AddressSanitizer an off-by-one store into global memory, and a write past the dynamic
// shared memory, abort the process with the sanitizer's report of the bad access: each runs in a
// child process (this test binary, re-run) whose death and report are checked.
func TestOutOfBoundsUnderASan(t *testing.T) {
	if which := os.Getenv(envASanChild); which != "" {
		asanChild(t, which)
		return
	}
	for _, c := range []struct{ which, where string }{
		// out[100] of 100 doubles: the first byte past the 800-byte allocation.
		{"off_by_one_store", "0 bytes to the right of 800-byte region"},
		// s[64] of 64 doubles of dynamic shared memory.
		{"smem_overrun", "0 bytes to the right of 512-byte region"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfBoundsUnderASan$", "-test.count=1")
		cmd.Env = append(os.Environ(), envASanChild+"="+c.which)
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "%s: the child must die:\n%s", c.which, out)
		assert.Contains(t, string(out), "ERROR: AddressSanitizer: heap-buffer-overflow", c.which)
		assert.Contains(t, string(out), "WRITE of size 8", c.which)
		assert.Contains(t, string(out), c.where, c.which)
	}
}

func asanChild(t *testing.T, which string) {
	d := device(t)
	switch which {
	case "off_by_one_store":
		out := empty(t, d, 100)
		_ = d.Launch(kernel(t, d, which), tensor.Grid1D(1, 128), out, int64(100))
	case "smem_overrun":
		out := empty(t, d, 64)
		cfg := tensor.Grid1D(1, 64)
		cfg.SharedMem = 8 * 64
		_ = d.Launch(kernel(t, d, which), cfg, out)
	}
	t.Fatal("the sanitizer did not stop the bad access")
}
