//go:build cudaemu && asan

package hostexec

// go build -asan instruments C but not C++: the kernels and the runtime need it too.

/*
#cgo CXXFLAGS: -fsanitize=address -fno-omit-frame-pointer
*/
import "C"
