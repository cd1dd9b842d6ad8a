package solvers

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/nn"
	"github.com/scorekit/scorekit/ops"
)

// A bridge file is an nn network set (nn.SaveSet) holding the networks "fwd-<k>" and "bwd-<k>"
// of the intervals k = 0 … M−1 (either direction may be absent) with the set information
//
//	kind   "schrodinger-bridge"
//	times  the observed times, comma-separated (shortest round-trip decimal)
//	eps    the diffusion ε
//	flow   "1" for a flow-matching bridge (NewFlowBridge); absent otherwise
//
// plus the caller's own keys (training information).
const BridgeKind = "schrodinger-bridge"

// SaveBridge writes b to path atomically, with info (keys without a dot, not kind, times or eps).
func SaveBridge(path string, b *Bridge, info map[string]string) error {
	if b == nil {
		return fmt.Errorf("save bridge: nil bridge")
	}
	s := nn.Set{Info: map[string]string{}}
	for k, v := range info {
		if k == "kind" || k == "times" || k == "eps" || k == "flow" {
			return fmt.Errorf("save bridge: info key %q is reserved", k)
		}
		s.Info[k] = v
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	var ts []string
	for _, t := range b.times {
		ts = append(ts, g(t))
	}
	s.Info["kind"], s.Info["times"], s.Info["eps"] = BridgeKind, strings.Join(ts, ","), g(b.eps)
	if b.flow {
		s.Info["flow"] = "1"
	}
	for k := range b.fwd {
		s.Names, s.Nets = append(s.Names, "fwd-"+strconv.Itoa(k)), append(s.Nets, b.fwd[k])
	}
	for k := range b.bwd {
		s.Names, s.Nets = append(s.Names, "bwd-"+strconv.Itoa(k)), append(s.Nets, b.bwd[k])
	}
	if err := nn.SaveSet(path, s); err != nil {
		return fmt.Errorf("save bridge: %w", err)
	}
	return nil
}

// LoadBridge reads a bridge file; it returns the bridge and the information keys other than
// kind, times and eps.
func LoadBridge(path string) (*Bridge, map[string]string, error) {
	s, err := nn.LoadSet(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load bridge: %w", err)
	}
	b, info, err := bridgeFromSet(s)
	if err != nil {
		return nil, nil, fmt.Errorf("load bridge %s: %w", path, err)
	}
	return b, info, nil
}

func bridgeFromSet(s nn.Set) (*Bridge, map[string]string, error) {
	if s.Info["kind"] != BridgeKind {
		return nil, nil, fmt.Errorf("set kind %q is not %q", s.Info["kind"], BridgeKind)
	}
	var times []float64
	for _, f := range strings.Split(s.Info["times"], ",") {
		t, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, nil, fmt.Errorf("times %q: %q is not a number", s.Info["times"], f)
		}
		times = append(times, t)
	}
	eps, err := strconv.ParseFloat(s.Info["eps"], 64)
	if err != nil {
		return nil, nil, fmt.Errorf("eps %q is not a number", s.Info["eps"])
	}
	if err := CheckBridgeTimes(times, eps); err != nil {
		return nil, nil, err
	}
	m := len(times) - 1
	byName := make(map[string]*ops.MLP)
	for i, name := range s.Names {
		byName[name] = s.Nets[i]
	}
	var fwd, bwd []*ops.MLP
	for _, dir := range []struct {
		prefix string
		dst    *[]*ops.MLP
	}{{"fwd-", &fwd}, {"bwd-", &bwd}} {
		for k := 0; k < m; k++ {
			if net, ok := byName[dir.prefix+strconv.Itoa(k)]; ok {
				*dir.dst = append(*dir.dst, net)
				delete(byName, dir.prefix+strconv.Itoa(k))
			}
		}
		if *dir.dst != nil && len(*dir.dst) != m {
			return nil, nil, fmt.Errorf("%d networks %s<k> for %d intervals: every interval needs one", len(*dir.dst), dir.prefix, m)
		}
	}
	for name := range byName {
		return nil, nil, fmt.Errorf("network %q is not fwd-<k> or bwd-<k> for an interval k < %d", name, m)
	}
	b, err := NewBridge(times, eps, fwd, bwd)
	if err != nil {
		return nil, nil, err
	}
	switch s.Info["flow"] {
	case "":
	case "1":
		b.flow = true
	default:
		return nil, nil, fmt.Errorf("flow %q: want \"1\" or no key", s.Info["flow"])
	}
	info := make(map[string]string)
	for k, v := range s.Info {
		if k != "kind" && k != "times" && k != "eps" && k != "flow" {
			info[k] = v
		}
	}
	return b, info, nil
}
