package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/scorekit/scorekit/tensor"
)

// closeBackend runs the cleanup of openBackend and reports its error through *err unless an
// earlier error is already there: `defer closeBackend(cleanup, &err)` with a named error result.
func closeBackend(cleanup func() error, err *error) {
	if cerr := cleanup(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// npyOutput is a tensor to write as .npy to path ("": not asked for); flag names the output and
// axis is its chain axis (for the manifests of shards).
type npyOutput struct {
	path string
	t    *tensor.Tensor
	flag string
	axis int
}

// fileOutput is rendered bytes to write to path (nil data: not asked for).
type fileOutput struct {
	path string
	data []byte
}

// writeOutputs writes, each atomically and in order, the tensors and then the rendered files that
// were asked for, and returns their paths in that order. Everything is rendered before: a failure
// here is one of writing.
func writeOutputs(npys []npyOutput, files []fileOutput) ([]string, error) {
	var written []string
	for _, o := range npys {
		if o.path == "" {
			continue
		}
		if err := tensor.WriteNpy(o.path, o.t); err != nil {
			return written, err
		}
		written = append(written, o.path)
	}
	for _, o := range files {
		if o.data == nil {
			continue
		}
		if err := tensor.WriteFileAtomic(o.path, func(w io.Writer) error { _, err := w.Write(o.data); return err }); err != nil {
			return written, err
		}
		written = append(written, o.path)
	}
	return written, nil
}

// renderStats renders --stats: st as indented JSON with a final newline.
func renderStats(st any) ([]byte, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return append(b, '\n'), nil
}
