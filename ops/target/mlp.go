package target

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scorekit/scorekit/nn"
)

// parseMLP reads {"kind": "mlp", "model": "m.safetensors"}: a checkpoint written by nn.Save (or by
// the PyTorch definition of the same network).
func parseMLP(obj object, baseDir string) (Target, error) {
	const p = "mlp: "
	if err := obj.only(p, "an mlp target", "kind", "model"); err != nil {
		return nil, err
	}
	raw, ok := obj.fields["model"]
	if !ok {
		return nil, fmt.Errorf("%smodel: missing (want the path of a .safetensors checkpoint)", p)
	}
	name, err := asString(decodeValue(raw), p+"model")
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%smodel: empty path (want the path of a .safetensors checkpoint)", p)
	}
	file := name
	if !filepath.IsAbs(file) && baseDir != "" {
		file = filepath.Join(baseDir, file)
	}
	if _, err := os.Stat(file); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%smodel %q: cannot read %s: %w", p, name, file, err)
	}
	net, meta, err := nn.Load(file)
	if err != nil {
		return nil, fmt.Errorf("%smodel %q: %w", p, name, err)
	}
	return MLP{Net: net, Cov: meta.Cov, File: file}, nil
}
