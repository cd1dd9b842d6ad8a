package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/scorekit/scorekit/ops"
)

// constraintHelp documents the constraint file of --constraint.
const constraintHelp = `Constraint files (--constraint C.json), a closed convex domain M of the target's dimension d:
  {"kind": "box", "lo": [l1, …, ld], "hi": [h1, …, hd]}          l_j ≤ x_j ≤ h_j (l_j < h_j)
  {"kind": "ball", "center": [c1, …, cd], "radius": r}          ‖x − c‖ ≤ r (r > 0)
  {"kind": "polytope", "a": [[a11, …, a1d], …], "b": [b1, …]}     A x ≤ b (no zero row of A)
Every number finite; a field of another kind, a repeated field or anything else is refused.
`

// constraintFields are the fields of each constraint kind, "kind" first.
var constraintFields = map[string][]string{
	"box":      {"kind", "lo", "hi"},
	"ball":     {"kind", "center", "radius"},
	"polytope": {"kind", "a", "b"},
}

// loadConstraint reads the constraint file at path (see constraintHelp). Every error is a
// usageError of one line starting with "--constraint path:".
func loadConstraint(path string) (*ops.Domain, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, usagef("--constraint %s: cannot read the constraint file: %v", path, err)
	}
	dom, err := parseConstraint(data)
	if err != nil {
		return nil, usagef("--constraint %s: %v", path, err)
	}
	return dom, nil
}

// parseConstraint decodes a constraint domain from its JSON text, strictly: exactly one object,
// no repeated field, only the fields of its kind, each of the documented type.
func parseConstraint(data []byte) (*ops.Domain, error) {
	fields, err := readJSONObject(data)
	if err != nil {
		return nil, err
	}
	kinds := []string{"box", "ball", "polytope"}
	raw, ok := fields["kind"]
	if !ok {
		return nil, fmt.Errorf("kind: missing (want %q, %q or %q)", kinds[0], kinds[1], kinds[2])
	}
	var kind string
	if err := decodeField(raw, &kind); err != nil {
		return nil, fmt.Errorf("kind: want a string (%q, %q or %q)", kinds[0], kinds[1], kinds[2])
	}
	allowed, ok := constraintFields[kind]
	if !ok {
		return nil, fmt.Errorf("kind: unknown constraint kind %q (want %q, %q or %q)", kind, kinds[0], kinds[1], kinds[2])
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(allowed, k) {
			return nil, fmt.Errorf("%s: unknown field %q (a %s has %s)", kind, k, kind, strings.Join(allowed, ", "))
		}
	}
	for _, k := range allowed[1:] {
		if _, ok := fields[k]; !ok {
			return nil, fmt.Errorf("%s: %s: missing (a %s has %s)", kind, k, kind, strings.Join(allowed, ", "))
		}
	}
	vector := func(name string) ([]float64, error) {
		var v []float64
		if err := decodeField(fields[name], &v); err != nil || len(v) == 0 {
			return nil, fmt.Errorf("%s: %s: want a non-empty array of numbers", kind, name)
		}
		return v, nil
	}
	var dom *ops.Domain
	switch kind {
	case "box":
		lo, err := vector("lo")
		if err != nil {
			return nil, err
		}
		hi, err := vector("hi")
		if err != nil {
			return nil, err
		}
		dom, err = ops.NewBox(lo, hi)
		if err != nil {
			return nil, err
		}
	case "ball":
		c, err := vector("center")
		if err != nil {
			return nil, err
		}
		var r float64
		if err := decodeField(fields["radius"], &r); err != nil {
			return nil, fmt.Errorf("ball: radius: want a number")
		}
		if dom, err = ops.NewBall(c, r); err != nil {
			return nil, err
		}
	case "polytope":
		var a [][]float64
		if err := decodeField(fields["a"], &a); err != nil || len(a) == 0 {
			return nil, fmt.Errorf("polytope: a: want a non-empty array of rows (arrays of numbers)")
		}
		for i, row := range a {
			if row == nil {
				return nil, fmt.Errorf("polytope: a[%d]: want an array of numbers", i)
			}
		}
		b, err := vector("b")
		if err != nil {
			return nil, err
		}
		if dom, err = ops.NewPolytope(a, b); err != nil {
			return nil, err
		}
	}
	return dom, nil
}

// decodeField decodes one JSON value into v, refusing null (which encoding/json would accept as
// "nothing" for slices and numbers).
func decodeField(raw json.RawMessage, v any) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fmt.Errorf("null")
	}
	return json.Unmarshal(raw, v)
}

// readJSONObject reads data as exactly one JSON object and returns its fields; a repeated key,
// anything but an object or data after it is an error.
func readJSONObject(data []byte) (map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("empty: want a JSON object {\"kind\": ...}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := 1, 1
			for _, c := range data[:min(int(se.Offset), len(data))] {
				if c == '\n' {
					line, col = line+1, 1
				} else {
					col++
				}
			}
			return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("invalid JSON: unexpected end of input (unclosed object or array?)")
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object {\"kind\": ...}, found %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("field %q is given twice", key)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the object")
	}
	return fields, nil
}

// checkInside returns a usageError when a row of x (n rows of d values) lies outside dom (a
// non-finite coordinate never lies inside): how many, and the first.
func checkInside(flagName string, dom *ops.Domain, x []float64, d int) error {
	first, count := -1, 0
	for i := 0; i+d <= len(x); i += d {
		if !dom.Contains(x[i : i+d]) {
			if first < 0 {
				first = i / d
			}
			count++
		}
	}
	if count > 0 {
		return usagef("%s: %d of %d initial states lie outside the %v of --constraint (first: row %d = %v); the chains must start inside",
			flagName, count, len(x)/d, dom.Kind(), first, x[first*d:(first+1)*d])
	}
	return nil
}
