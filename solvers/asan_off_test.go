//go:build !asan

package solvers

// asanBuild is set in builds with the address sanitizer (go test -asan).
const asanBuild = false
