package dense_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
	"github.com/scorekit/scorekit/tensor/dense"
)

// The library tour of the README: a batch of standard normals on a device, written to .npy and
// handed to gorgonia.org/tensor.
func Example() {
	b := ops.CPU() // or cuda.New(gpu) in a CUDA build
	x, _ := tensor.New(b.Device(), tensor.F32, 100000, 16)
	defer x.Close()
	// Chain i's coordinate j at site s is a pure function of (seed, i, s, j): the same on CPU and
	// GPU, whatever the batch size.
	if err := b.Normal(x, ops.Draw{Seed: 42, Site: 0}); err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "tour")
	defer os.RemoveAll(dir)
	if err := tensor.WriteNpy(filepath.Join(dir, "x.npy"), x); err != nil { // atomic
		panic(err)
	}
	d, _ := dense.FromTensor(x) // a *tensor.Dense of gorgonia.org/tensor over the same memory
	v := d.Data().([]float32)
	mean, sq := 0.0, 0.0
	for _, e := range v {
		mean += float64(e)
		sq += float64(e) * float64(e)
	}
	mean /= float64(len(v))
	fmt.Printf("%v, mean %.3f, variance %.3f\n", d.Shape(), mean, sq/float64(len(v))-mean*mean) // ±0.0008, ±0.0011
	// Output: (100000, 16), mean -0.001, variance 1.001
}
