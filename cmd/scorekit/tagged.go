package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
)

// decodeTagged decodes a JSON object whose field tag names its variant (an objective's "kind",
// an SDE spec's "family") into dst, a pointer to a struct holding every variant's fields. The tag
// must be present, a string and one of variants; every field present must be one the variant
// takes (fields returns them, false for an unknown variant); values must have their field's type.
// It returns the variant. Each error names the field and the problem, fields in sorted order.
func decodeTagged(data []byte, tag string, variants []string, fields func(variant string) ([]string, bool), dst any) (string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return "", fmt.Errorf("not a JSON object: %v", err)
	}
	want := strings.Join(variants, ", ")
	var variant string
	if v, ok := raw[tag]; !ok {
		return "", fmt.Errorf("%q is missing (want one of %s)", tag, want)
	} else if err := json.Unmarshal(v, &variant); err != nil {
		return "", fmt.Errorf("%q must be a string (one of %s)", tag, want)
	}
	allowed, ok := fields(variant)
	if !ok {
		return "", fmt.Errorf("%q: unknown %s %q (want one of %s)", tag, tag, variant, want)
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !contains(allowed, name) {
			return "", fmt.Errorf("unknown field %q for %s %q (it takes %s)", name, tag, variant, strings.Join(allowed, ", "))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Type.Kind() == reflect.Float64 && strings.HasPrefix(te.Value, "number") {
				return "", fmt.Errorf("%q: %s is not a finite number", te.Field, te.Value)
			}
			return "", fmt.Errorf("%q: %s is not a valid %s", te.Field, te.Value, te.Type)
		}
		return "", err
	}
	return variant, nil
}

// loadFlagFile reads the file a flag names and parses it; a usage error names the flag (and the
// path, for a parse error).
func loadFlagFile[T any](flag, path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, usagef("--%s: %v", flag, err)
	}
	v, err := parse(data)
	if err != nil {
		return zero, usagef("--%s %s: %v", flag, path, err)
	}
	return v, nil
}
