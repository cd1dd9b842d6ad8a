//go:build !cuda && !cudaemu

package tensor

// CUDABuild reports whether this binary was built with CUDA support (the `cuda` tag, or
// `cudaemu` for host-emulated devices).
const CUDABuild = false

// CUDAEmulated reports whether the CUDA devices of this build are emulated on the host.
const CUDAEmulated = false

// OpenCUDA opens GPU number ordinal. This build has no CUDA support, so it always fails with
// ErrNoCUDA.
func OpenCUDA(ordinal int) (*CUDADevice, error) { return nil, ErrNoCUDA }

// CUDADevice is a CUDA GPU; in this build none can be opened.
type CUDADevice struct{ cpuDevice }

// CUDADeviceCount returns 0 and ErrNoCUDA: this build has no CUDA support.
func CUDADeviceCount() (int, error) { return 0, ErrNoCUDA }
