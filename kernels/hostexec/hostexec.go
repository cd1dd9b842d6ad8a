//go:build cudaemu

package hostexec

/*
#cgo CXXFLAGS: -std=c++17 -O2 -fno-fast-math -fno-strict-aliasing -Wno-unknown-pragmas
#cgo LDFLAGS: -lboost_context -lstdc++ -lm -lpthread
#include <stdlib.h>
#include "hostexec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Order is the order in which the threads of a block run between barriers.
type Order int

const (
	Forward Order = iota // thread 0 first
	Reverse              // the last thread first
	Random               // a new random permutation every round, from Options.Seed
)

func (o Order) String() string {
	switch o {
	case Forward:
		return "forward"
	case Reverse:
		return "reverse"
	case Random:
		return "random"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// Options configure the execution; see Configure.
type Options struct {
	Order      Order
	Seed       uint64 // of the random order
	Workers    int    // threads running blocks concurrently (≥ 1)
	StackBytes int64  // stack of one CUDA thread
}

// Environment variables read by DefaultOptions.
const (
	EnvOrder   = "SCOREKIT_EMU_ORDER"   // forward (default), reverse, random or random:<seed>
	EnvWorkers = "SCOREKIT_EMU_WORKERS" // default: the number of CPUs
	EnvStack   = "SCOREKIT_EMU_STACK_KB"
)

// DefaultOptions reads the options from the environment (see the Env constants).
func DefaultOptions() (Options, error) {
	o := Options{Order: Forward, Seed: 1, Workers: runtime.NumCPU(), StackBytes: 256 << 10}
	if v := os.Getenv(EnvOrder); v != "" {
		name, seed, hasSeed := strings.Cut(v, ":")
		switch name {
		case "forward":
			o.Order = Forward
		case "reverse":
			o.Order = Reverse
		case "random":
			o.Order = Random
		default:
			return o, fmt.Errorf("%s=%q: want forward, reverse, random or random:<seed>", EnvOrder, v)
		}
		if hasSeed {
			s, err := strconv.ParseUint(seed, 10, 64)
			if err != nil || name != "random" {
				return o, fmt.Errorf("%s=%q: a seed goes with random only, as random:<unsigned integer>", EnvOrder, v)
			}
			o.Seed = s
		}
	}
	if v := os.Getenv(EnvWorkers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return o, fmt.Errorf("%s=%q: want a positive integer", EnvWorkers, v)
		}
		o.Workers = n
	}
	if v := os.Getenv(EnvStack); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 16 || n > 1<<20 {
			return o, fmt.Errorf("%s=%q: want kibibytes in [16, 1048576]", EnvStack, v)
		}
		o.StackBytes = n << 10
	}
	return o, nil
}

var (
	mu      sync.Mutex
	current Options
	entries map[string]Entry // module/name → entry
	// envErr is a bad setting in the environment: every launch fails with it, so that a misspelt
	// order never silently runs the default one.
	envErr error
)

func init() {
	o, err := DefaultOptions()
	if err == nil {
		err = Configure(o)
	}
	if err != nil {
		envErr = fmt.Errorf("hostexec: %w", err)
	}
}

// Configure sets the options for the following launches.
func Configure(o Options) error {
	if o.Order < Forward || o.Order > Random {
		return fmt.Errorf("hostexec: invalid order %d", o.Order)
	}
	if o.Workers < 1 {
		return fmt.Errorf("hostexec: %d workers: want at least 1", o.Workers)
	}
	if o.StackBytes < 16<<10 {
		return fmt.Errorf("hostexec: stack of %d bytes: want at least 16 KiB", o.StackBytes)
	}
	mu.Lock()
	defer mu.Unlock()
	C.hostexec_configure(C.int(o.Order), C.uint64_t(o.Seed), C.int(o.Workers), C.int64_t(o.StackBytes))
	current = o
	return nil
}

// Current returns the options in force.
func Current() Options {
	mu.Lock()
	defer mu.Unlock()
	return current
}

// Entry is a host-compiled kernel entry.
type Entry struct {
	index        int
	Module, Name string
	Params       int   // number of 8-byte parameters
	MaxThreads   int   // __launch_bounds__, 0 when none
	StaticShared int64 // bytes
}

func table() map[string]Entry {
	mu.Lock()
	defer mu.Unlock()
	if n := int(C.hostexec_entries()); entries == nil || len(entries) != n { // entries were registered
		n := int(C.hostexec_entries())
		entries = make(map[string]Entry, n)
		for i := 0; i < n; i++ {
			var mod, name *C.char
			var params, maxThreads C.int
			var shared C.int64_t
			C.hostexec_entry(C.int(i), &mod, &name, &params, &maxThreads, &shared)
			e := Entry{index: i, Module: C.GoString(mod), Name: C.GoString(name), Params: int(params),
				MaxThreads: int(maxThreads), StaticShared: int64(shared)}
			entries[e.Module+"/"+e.Name] = e
		}
	}
	return entries
}

// Lookup returns the entry name of module.
func Lookup(module, name string) (Entry, error) {
	e, ok := table()[module+"/"+name]
	if !ok {
		return Entry{}, fmt.Errorf("hostexec: kernel %s not found in module %s", name, module)
	}
	return e, nil
}

// All returns every host-compiled entry.
func All() []Entry {
	t := table()
	out := make([]Entry, 0, len(t))
	for _, e := range t {
		out = append(out, e)
	}
	return out
}

// MaxSharedBytes is the shared memory a block may use without an opt-in attribute (48 KiB).
const MaxSharedBytes = 48 << 10

// Launch runs entry e over grid × block threads with dynShared bytes of dynamic shared memory and
// one 8-byte argument per parameter. It returns when every block has finished, with an error that
// names the kernel, block and threads for a violated launch limit, a deadlock, a divergent barrier
// or warp collective, or a read from a lane that does not take part.
func Launch(e Entry, grid, block [3]int, dynShared int, args []uint64) error {
	if envErr != nil {
		return envErr
	}
	if len(args) != e.Params {
		return fmt.Errorf("kernel %s takes %d parameters, the launch passes %d", e.Name, e.Params, len(args))
	}
	var g, b [3]C.int64_t
	for i := 0; i < 3; i++ {
		g[i], b[i] = C.int64_t(grid[i]), C.int64_t(block[i])
	}
	var argp *C.uint64_t
	if len(args) > 0 {
		argp = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	var msg [2048]C.char
	rc := C.hostexec_launch(C.int(e.index), &g[0], &b[0], C.int64_t(dynShared), C.int64_t(MaxSharedBytes), argp,
		C.int(len(args)), &msg[0], C.int(len(msg)))
	runtime.KeepAlive(args)
	if rc != 0 {
		return errors.New(C.GoString(&msg[0]))
	}
	return nil
}

// Alloc returns bytes of host memory standing for device memory: one allocation of its own
// (256-byte aligned), every byte set to fill. It returns 0 when the host is out of memory.
func Alloc(bytes int64, fill byte) uintptr {
	return uintptr(C.hostexec_alloc(C.int64_t(bytes), C.int(fill)))
}

// Check reports whether a write went past the end of the allocation p of bytes bytes (into its
// guard bytes), and the first such byte's offset from p. Under the address sanitizer the guard
// bytes are poisoned instead and Check always reports none.
func Check(p uintptr, bytes int64) (overrun bool, at int64) {
	var off C.int64_t
	if C.hostexec_check(C.uintptr_t(p), C.int64_t(bytes), &off) != 0 {
		return true, int64(off)
	}
	return false, 0
}

// Free releases memory from Alloc.
func Free(p uintptr) { C.hostexec_free(C.uintptr_t(p)) }

// CopyToDevice copies bytes from Go memory src to device memory dst.
func CopyToDevice(dst uintptr, src unsafe.Pointer, bytes int64) {
	C.hostexec_copy_in(C.uintptr_t(dst), src, C.int64_t(bytes))
}

// CopyFromDevice copies bytes from device memory src to Go memory dst.
func CopyFromDevice(dst unsafe.Pointer, src uintptr, bytes int64) {
	C.hostexec_copy_out(dst, C.uintptr_t(src), C.int64_t(bytes))
}

// CopyOnDevice copies bytes between device allocations.
func CopyOnDevice(dst, src uintptr, bytes int64) {
	C.hostexec_copy_on(C.uintptr_t(dst), C.uintptr_t(src), C.int64_t(bytes))
}
