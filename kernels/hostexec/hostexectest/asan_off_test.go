//go:build cudaemu && !asan

package hostexectest

// asanBuild reports whether the test binary was built with -asan.
const asanBuild = false
