package main

import (
	"errors"
	"flag"
	"io"
	"math"
	"strings"
	"testing"
)

// The constraint file parser never panics; a domain it accepts has a dimension and finite
// parameters, and every error is one line.
func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{
		sampleBoxJSON,
		`{"kind": "ball", "center": [0, 1, 2], "radius": 1.5}`,
		`{"kind": "polytope", "a": [[1, 0], [0, 1], [-1, -1]], "b": [1, 1, 0]}`,
		`{"kind": "box", "lo": [1e400], "hi": [2]}`,
		`{"kind": "ball", "center": [], "radius": -1}`,
		`{"kind": "polytope", "a": [[0, 0]], "b": [1]}`,
		`{"kind": "box", "lo": [[[[[[[[[[0]]]]]]]]]], "hi": [1]}`,
		`{"kind": "box", "kind": "ball"}`,
		`[1, 2]`, ``, `{"kind": 3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dom, err := parseConstraint(data)
		if err != nil {
			oneLineError(t, err)
			return
		}
		if dom == nil || dom.Dim() < 1 {
			t.Fatalf("accepted %q as a domain of dimension < 1", data)
		}
	})
}

// The objective file parser never panics; an objective it accepts evaluates to finite values at
// the origin.
func FuzzParseObjective(f *testing.F) {
	for _, s := range []string{
		doubleWellJSON,
		`{"kind": "rastrigin", "dim": 3, "a": 10}`,
		`{"kind": "quadratic", "curvatures": [1, 4], "center": [0, 1]}`,
		`{"kind": "quadratic", "curvatures": [1e308, 1e308]}`,
		`{"kind": "double-well", "dim": 99999999999999999999}`,
		`{"kind": "double-well", "dim": -1}`,
		`{"kind": "rastrigin", "dim": 2, "a": "x"}`,
		`{"kind": "nope"}`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := parseObjective(data)
		if err != nil {
			oneLineError(t, err)
			return
		}
		d := obj.Dim()
		if d < 1 || d > 1<<20 {
			t.Fatalf("accepted %q with dimension %d", data, d)
		}
		x, g := make([]float64, d), make([]float64, d)
		if v := obj.Value(x); math.IsNaN(v) {
			t.Fatalf("%q: NaN at the origin", data)
		}
		obj.Grad(g, x)
	})
}

// Every subcommand's flag parser takes any command line without panicking, and refuses what it
// refuses with a one-line usage error (numbers: negative, huge, NaN, Inf, hex, empty lists).
func FuzzFlags(f *testing.F) {
	for _, s := range []string{
		"--target t.json --method heun --n 100 --steps 20 --out x.npy",
		"--target t.json --method mala --n 1e3 --steps -1 --out x.npy",
		"--target t.json --method ula --n 99999999999999999999 --steps 5 --step-size nan --out x.npy",
		"--target t.json --method ddim --n 4 --steps 10 --eta inf --sigma-max 0x10 --out x.npy",
		"--n 5 --dim 3 --seed 18446744073709551616 --out x.npy",
		"--hurst 1.5 --length 10 --paths 3 --out x.npy",
		"--hurst 0.3 --length 0 --paths 3 --method mafbm --k 17 --out x.npy",
		"--alpha 2.5 --beta -1.1 --n 3 --clamp -0 --out x.npy",
		"--length 10 --paths 2 --epoch -3 --horizon 1e309 --out x.npy",
		"--objective o.json --hurst 0.7 --step 0.1 --sigma 1 --steps 10 --n 4 --x0 1,,2 --out x.npy",
		"--target t.json --in x.npy --sigma -1 --out s.npy",
		"--target t.json --in x.npy --time 1e-400 --out s.npy",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		check := func(err error) {
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				var u usageError
				if !errors.As(err, &u) {
					t.Fatalf("%q: not a usage error: %v", line, err)
				}
				oneLineError(t, err)
			}
		}
		_, err := parseSample(args, io.Discard)
		check(err)
		_, err = parseScore(args, io.Discard)
		check(err)
		_, err = parseNoise("normal", args, io.Discard)
		check(err)
		_, err = parseFractional("fbm", args, io.Discard)
		check(err)
		_, err = parseStable(args, io.Discard)
		check(err)
		_, err = parseBridge(args, io.Discard)
		check(err)
		_, err = parseFPGD(args, io.Discard)
		check(err)
	})
}

// oneLineError fails unless err has a non-empty one-line message.
func oneLineError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.TrimSpace(msg) == "" || strings.Contains(strings.TrimRight(msg, "\n"), "\n") {
		t.Fatalf("error message %q is not one line", msg)
	}
}
