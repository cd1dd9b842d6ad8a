// hostexec.h — the C interface of the host execution of kernels (runtime.cpp), called from Go
// through cgo (hostexec.go).
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The thread orders within a block.
enum { HOSTEXEC_FORWARD = 0, HOSTEXEC_REVERSE = 1, HOSTEXEC_RANDOM = 2 };

// hostexec_configure sets the thread order (and the seed of the random order), the number of worker
// threads running blocks (≥ 1) and the stack size of one CUDA thread in bytes. Call it between
// launches only.
void hostexec_configure(int order, uint64_t seed, int workers, int64_t stack_bytes);

// hostexec_entries returns the number of kernel entries; hostexec_entry describes entry i.
int hostexec_entries(void);
void hostexec_entry(int i, const char** module, const char** name, int* params, int* max_threads,
                    int64_t* static_shared);

// hostexec_launch runs entry i over grid × block with dyn_shared bytes of dynamic shared memory (at
// most max_shared − the entry's static shared memory) and the 8-byte arguments args[0..nargs).
// It returns 0, or −1 with a message in err (NUL-terminated, at most errlen bytes).
int hostexec_launch(int entry, const int64_t grid[3], const int64_t block[3], int64_t dyn_shared,
                    int64_t max_shared, const uint64_t* args, int nargs, char* err, int errlen);

// Device memory: one heap allocation each (256-byte aligned), so an address sanitizer sees every
// out-of-bounds access; device addresses travel as integers. hostexec_alloc fills the new memory
// with fill and returns 0 when the host is out of memory. Past the end of every allocation lie at
// least 64 guard bytes: poisoned for the address sanitizer when it is on, else a canary pattern
// that hostexec_check reads: it returns −1 and the first overwritten offset past the end in *at
// when a write went past the allocation's bytes, 0 otherwise.
uintptr_t hostexec_alloc(int64_t bytes, int fill);
int hostexec_check(uintptr_t p, int64_t bytes, int64_t* at);
void hostexec_free(uintptr_t p);

// hostexec_register adds n entries (host-compiled kernels of another translation unit, e.g. test
// kernels) to the registry; entries points to an array of cudahost::Entry that must outlive the
// process. It returns the number of entries now registered.
int hostexec_register(const void* entries, int n);
void hostexec_copy_in(uintptr_t dst, const void* src, int64_t bytes);
void hostexec_copy_out(void* dst, uintptr_t src, int64_t bytes);
void hostexec_copy_on(uintptr_t dst, uintptr_t src, int64_t bytes);

#ifdef __cplusplus
}
#endif
