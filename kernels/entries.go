package kernels

import (
	"strings"
	"sync"
)

// Entry is one kernel entry of a module: its parameters as the source declares them, its launch
// bound and its static shared memory as the PTX says. The table (entries_gen.go) is generated from
// the sources and the PTX by `make ptx` (go run ./kernels/hostexec/gen); the launchers check every
// argument list against it.
type Entry struct {
	Module, Name string
	Params       []Param
	MaxThreads   int   // threads per block allowed by __launch_bounds__ (.maxntid), 0 when unbounded
	StaticShared int64 // bytes of static __shared__ memory
	// SyncFree reports that the entry's PTX has no barrier, warp collective or call: its threads
	// never wait for each other.
	SyncFree bool
}

// Param is one kernel parameter: its name and normalised C type ("float*", "const double*",
// "long long", "unsigned long long", "double"; every parameter is 8 bytes wide).
type Param struct {
	Name, Type string
}

// Pointer reports whether the parameter is a pointer.
func (p Param) Pointer() bool { return strings.HasSuffix(p.Type, "*") }

// Elem is a pointer parameter's element type without const ("float", "double", "unsigned int").
func (p Param) Elem() string {
	return strings.TrimPrefix(strings.TrimSuffix(p.Type, "*"), "const ")
}

// Entries returns every entry of every module (module by module, each in PTX order).
func Entries() []Entry { return entryTable }

var (
	entryIndexOnce sync.Once
	entryIndex     map[string]int // module/name → index into entryTable
)

// LookupEntry returns the entry name of module.
func LookupEntry(module, name string) (Entry, bool) {
	entryIndexOnce.Do(func() {
		entryIndex = make(map[string]int, len(entryTable))
		for i, e := range entryTable {
			entryIndex[e.Module+"/"+e.Name] = i
		}
	})
	i, ok := entryIndex[module+"/"+name]
	if !ok {
		return Entry{}, false
	}
	return entryTable[i], true
}
