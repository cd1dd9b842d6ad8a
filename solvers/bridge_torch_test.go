package solvers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The PyTorch twin (bench/peers/bridge_torch.py) reads a bridge file written here and integrates
// the same path: a flow bridge (deterministic) over two intervals, forward and backward, agrees
// with Simulate to 1e-12. It skips without a Python that imports torch and NumPy
// ($SCOREKIT_PYTHON, else python3 and /usr/bin/python3).
func TestBridgeTorchTwinIntegratesTheSamePath(t *testing.T) {
	script := filepath.Join("..", "bench", "peers", "bridge_torch.py")
	py := ""
	cands := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("SCOREKIT_PYTHON"); p != "" {
		cands = []string{p}
	}
	for _, c := range cands {
		if exec.Command(c, "-c", "import torch, numpy").Run() == nil {
			py = c
			break
		}
	}
	if py == "" {
		t.Skipf("no Python with torch and NumPy (tried %s) to run %s", strings.Join(cands, ", "), script)
	}
	dir := t.TempDir()
	const d, n = 3, 9
	b, err := NewFlowBridge([]float64{0, 0.5, 2}, 0.7, bridgeTestNets(t, 2, d, 30), bridgeTestNets(t, 2, d, 40))
	require.NoError(t, err)
	model := filepath.Join(dir, "b.safetensors")
	require.NoError(t, SaveBridge(model, b, nil))
	x0 := make([]float64, n*d)
	for i := range x0 {
		x0[i] = float64(i%7) - 3 + 0.1*float64(i)
	}
	host, err := tensor.FromF64(x0, n, d)
	require.NoError(t, err)
	xp := filepath.Join(dir, "x.npy")
	require.NoError(t, tensor.WriteNpy(xp, host))
	for _, c := range []struct{ from, to string }{{"0", "2"}, {"2", "0.25"}} {
		out := filepath.Join(dir, "y.npy")
		cmd := exec.Command(py, script, "simulate", "--model", model, "--x", xp, "--from", c.from, "--to", c.to, "--steps", "7", "--out", out)
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", msg)
		yt, err := tensor.ReadNpy(out)
		require.NoError(t, err)
		got, err := yt.Float64s()
		require.NoError(t, err)
		from, to := map[string]float64{"0": 0, "2": 2}[c.from], map[string]float64{"2": 2, "0.25": 0.25}[c.to]
		res, err := b.Simulate(ops.CPU(), host, BridgeSimConfig{From: from, To: to, Steps: 7})
		require.NoError(t, err)
		want, err := res.Samples.Float64s()
		require.NoError(t, err)
		require.InDeltaSlice(t, want, got, 1e-12, "%s → %s", c.from, c.to)
		res.Close()
	}
}
