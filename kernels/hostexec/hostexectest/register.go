//go:build cudaemu

package hostexectest

/*
#cgo CXXFLAGS: -std=c++17 -O2 -fno-fast-math -fno-strict-aliasing -Wno-unknown-pragmas
void hostexectest_register(void);
*/
import "C"

import (
	_ "github.com/scorekit/scorekit/kernels/hostexec" // the runtime the test kernels run on
)

func init() { C.hostexectest_register() }
