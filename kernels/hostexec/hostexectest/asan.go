//go:build cudaemu && asan

package hostexectest

// go build -asan instruments C but not C++: the test kernels need it too.

/*
#cgo CXXFLAGS: -fsanitize=address -fno-omit-frame-pointer
*/
import "C"
