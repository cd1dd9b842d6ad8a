package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/internal/perfmodel"
)

// hotEntries are the entries of the modelled workloads with the blocks per SM that their design
// (and the performance model's predictions) rely on: the registers ptxas gives them must leave at
// least that many blocks of that size resident by the register file.
var hotEntries = []struct {
	entry     string
	threads   int
	minBlocks int
}{
	{"gmm_score_row4_f32", 256, 4},  // 64 regs: exactly 4 (65 would give 3)
	{"gmm_score_row16_f32", 256, 3}, // __launch_bounds__(256, 3): 80 regs at most
	{"gmm_score_warp1_f32", 256, 4}, // 4 blocks = 32 warps hide the butterfly's shuffle latency
	{"gmm_score_warp2_f32", 256, 4}, //
	{"empirical_score_f32", 256, 2}, // __launch_bounds__(256, 2): 128 regs at most
	{"empirical_score_reg_f32", 256, 2},
	{"chains_mala_row2_f32", 256, 3},  // 391 blocks of 1e5 chains in one wave on an H100
	{"chains_mala_row16_f32", 256, 3}, // __launch_bounds__(256, 3): state in memory, 80 regs at most
	{"chains_ula_row16_f32", 256, 3},
	{"chains_uld_row16_f32", 256, 3},
	{"chains_mala_row16_f64", 256, 2}, // __launch_bounds__(256, 2): 128 regs at most
	{"chains_ula_row16_f64", 256, 2},
	{"fgn_spectrum_f32", 256, 5}, // memory-bound: 40 warps per SM, 48 regs at most
	{"fgn_r512_f32", 512, 2},     // __launch_bounds__(512, 2): 64 regs at most
	{"fft_r512_f32", 512, 2},     // __launch_bounds__(512, 2): 64 regs at most
	{"fft_r256_f32", 512, 2},
	{"fgn_increments_f32", 256, 8},
	{"fgn_cumsum_f32", 256, 8}, // memory-bound: a full SM of warps, 32 regs at most
	{"normal_f32", 256, 8},
}

// resource is one line of kernels/ptx/resources.txt.
type resource struct{ regs, stack int }

func readResources(t *testing.T, name string) map[[2]string]resource {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	res := map[[2]string]resource{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		require.Len(t, fields, 5, "resources.txt: %q", line)
		regs, err := strconv.Atoi(fields[3])
		require.NoError(t, err, line)
		stack, err := strconv.Atoi(fields[4])
		require.NoError(t, err, line)
		res[[2]string{fields[2], fields[1]}] = resource{regs, stack}
	}
	require.NoError(t, sc.Err())
	return res
}

// TestHotEntriesKeepTheirOccupancy reads the register table that make check-ptx keeps equal to
// ptxas and fails when an entry of a modelled workload has a stack frame (spilled registers
// live there) or so many registers that fewer blocks than its design relies on fit on an SM.
func TestHotEntriesKeepTheirOccupancy(t *testing.T) {
	res := readResources(t, "../../kernels/ptx/resources.txt")
	for _, g := range gpus {
		for _, h := range hotEntries {
			r, ok := res[[2]string{h.entry, g.Arch}]
			if !assert.True(t, ok, "%s %s is not in kernels/ptx/resources.txt", h.entry, g.Arch) {
				continue
			}
			assert.Zero(t, r.stack, "%s %s: %d B of stack: spills or local arrays in a hot kernel", h.entry, g.Arch, r.stack)
			got := perfmodel.BlocksByRegs(g, r.regs, h.threads)
			assert.GreaterOrEqual(t, got, h.minBlocks,
				"%s %s: %d registers leave %d blocks of %d threads per SM, the design relies on %d (at most %d registers)",
				h.entry, g.Arch, r.regs, got, h.threads, h.minBlocks, maxRegs(g, h.threads, h.minBlocks))
		}
	}
}

// maxRegs is the most registers per thread that keep blocks blocks of threads threads resident.
func maxRegs(g perfmodel.GPU, threads, blocks int) int {
	r := 0
	for n := 1; n <= 255; n++ {
		if perfmodel.BlocksByRegs(g, n, threads) >= blocks {
			r = n
		}
	}
	return r
}

// TestHotEntriesCoverTheWorkloads: every entry a modelled workload launches, on either device,
// is guarded by hotEntries.
func TestHotEntriesCoverTheWorkloads(t *testing.T) {
	guarded := map[string]int{}
	for _, h := range hotEntries {
		guarded[h.entry] = h.threads
	}
	for _, w := range workloads() {
		for _, g := range gpus {
			ls, err := w.launches(g.SMs)
			require.NoError(t, err, w.name)
			require.Len(t, ls, len(w.models), w.name)
			for _, l := range ls {
				threads, ok := guarded[l.Entry]
				if assert.True(t, ok, "%s launches %s, which hotEntries does not guard", w.name, l.Entry) {
					assert.Equal(t, l.Threads, threads, "%s: block size of %s", w.name, l.Entry)
				}
			}
		}
	}
}

func TestParsePtxas(t *testing.T) {
	out := []byte(`ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'fft_r512_f32' for 'sm_90'
ptxas info    : Function properties for fft_r512_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 59 registers, 16384 bytes smem
ptxas info    : Compiling entry function 'normal_f32' for 'sm_90'
ptxas info    : Function properties for normal_f32
    16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 30 registers
`)
	assert.Equal(t, map[string]entryInfo{
		"fft_r512_f32": {Regs: 59, StaticShared: 16384},
		"normal_f32":   {Regs: 30, Stack: 16, SpillStores: 8, SpillLoads: 12},
	}, parsePtxas(out))
}

func TestReplaceSection(t *testing.T) {
	section := sectionTitle + "\n\nnew\n"
	doc := "# Results\n\n## Measured\n\nrows\n"
	appended := string(replaceSection([]byte(doc), []byte(section)))
	assert.Equal(t, doc+"\n"+section, appended)
	assert.Equal(t, appended, string(replaceSection([]byte(appended), []byte(section))), "replacing is idempotent")

	middle := "# Results\n\n" + sectionTitle + "\n\nold\nlines\n\n## Later\n\nkept\n"
	assert.Equal(t, "# Results\n\n"+section+"\n## Later\n\nkept\n", string(replaceSection([]byte(middle), []byte(section))))
}
