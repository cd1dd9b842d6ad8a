//go:build !cuda

package tensor

// CUDABuild reports whether this binary was built with the `cuda` tag.
const CUDABuild = false

// OpenCUDA opens GPU number ordinal. This build has no CUDA support, so it always fails with
// ErrNoCUDA.
func OpenCUDA(ordinal int) (*CUDADevice, error) { return nil, ErrNoCUDA }

// CUDADevice is a CUDA GPU; in this build none can be opened.
type CUDADevice struct{ cpuDevice }

// CUDADeviceCount returns 0 and ErrNoCUDA: this build has no CUDA support.
func CUDADeviceCount() (int, error) { return 0, ErrNoCUDA }
