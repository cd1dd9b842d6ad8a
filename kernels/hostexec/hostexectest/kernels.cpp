//go:build cudaemu

// Test kernels of the host execution layer: correct ones that pin its semantics and broken ones
// that it must catch (see doc.go). Written like kernels/*.cu, compiled only for the host.

#include "../cuda_host.h"
#include "../hostexec.h"

namespace hostexectest {

// block_sum<Barrier>: out[block] = Σ of the block's inputs, through shared memory; thread 0 adds
// what every thread stored. Without the barrier thread 0 may read slots not yet written.
template <bool Barrier>
__device__ void block_sum(const double* in, double* out, long long n) {
    __shared__ double s[1024];
    const int t = threadIdx.x;
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + t;
    s[t] = i < n ? in[i] : 0.0;
    if (Barrier) {
        __syncthreads();
    }
    if (t == 0) {
        double acc = 0.0;
        for (unsigned j = 0; j < blockDim.x; ++j) acc += s[j];
        out[blockIdx.x] = acc;
    }
}

extern "C" __global__ void block_sum_ok(const double* in, double* out, long long n) { block_sum<true>(in, out, n); }
extern "C" __global__ void block_sum_no_barrier(const double* in, double* out, long long n) {
    block_sum<false>(in, out, n);
}

// shuffles: for every thread four results of the shuffles with width w: xor 3, up 2, down 5 and
// idx (7·lane + 3) mod 32, of the value 1000·block + thread.
extern "C" __global__ void shuffles(double* out, long long w) {
    const int t = threadIdx.x;
    const double v = 1000.0 * blockIdx.x + t;
    const int lane = t & 31;
    const int width = static_cast<int>(w);
    double* o = out + 4 * (static_cast<long long>(blockIdx.x) * blockDim.x + t);
    o[0] = __shfl_xor_sync(0xffffffffu, v, 3, width);
    o[1] = __shfl_up_sync(0xffffffffu, v, 2u, width);
    o[2] = __shfl_down_sync(0xffffffffu, v, 5u, width);
    o[3] = __shfl_sync(0xffffffffu, v, (7 * lane + 3) % 32, width);
}

// indices: every thread writes (threadIdx, blockIdx, blockDim, gridDim) at its global linear index.
extern "C" __global__ void indices(double* out) {
    const long long block = (static_cast<long long>(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const long long thread = (static_cast<long long>(threadIdx.z) * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const long long per = static_cast<long long>(blockDim.x) * blockDim.y * blockDim.z;
    double* o = out + 12 * (block * per + thread);
    const unsigned v[12] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                            blockDim.x,  blockDim.y,  blockDim.z,  gridDim.x,  gridDim.y,  gridDim.z};
    for (int i = 0; i < 12; ++i) o[i] = v[i];
}

// count: every thread adds 1 to *counter (8-byte words).
extern "C" __global__ void count(unsigned long long* counter) { atomicAdd(counter, 1ull); }

// divergent_shuffle: lanes 0–15 shuffle in a branch the other lanes skip, then everyone shuffles
// again: the warp's lanes wait at two different shuffles.
extern "C" __global__ void divergent_shuffle(double* out) {
    double v = threadIdx.x;
    if ((threadIdx.x & 31) < 16) {
        v += __shfl_xor_sync(0xffffffffu, v, 1);
    }
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    out[threadIdx.x] = v;
}

// shuffle_after_exit: lanes 16–31 return early; lanes 0–15 read them.
extern "C" __global__ void shuffle_after_exit(double* out) {
    if ((threadIdx.x & 31) >= 16) {
        return;
    }
    double v = threadIdx.x;
    v += __shfl_xor_sync(0xffffffffu, v, 16);
    out[threadIdx.x] = v;
}

// divergent_barrier: the first warp waits at one __syncthreads, the others at another.
extern "C" __global__ void divergent_barrier(double* out) {
    if (threadIdx.x < 32) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0;
}

// warp_deadlock: lanes 0–15 wait at a __syncwarp naming the whole warp while lanes 16–31 wait at
// the block barrier.
extern "C" __global__ void warp_deadlock(double* out) {
    if ((threadIdx.x & 31) < 16) {
        __syncwarp();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0;
}

// off_by_one_store: writes out[0..n] — one element past the n it was given.
extern "C" __global__ void off_by_one_store(double* out, long long n) {
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i <= n) {
        out[i] = 1.0;
    }
}

// smem_overrun: thread t writes dynamic shared element t + 1 (the launch gives blockDim doubles).
extern "C" __global__ void smem_overrun(double* out) {
    double* s = reinterpret_cast<double*>(dynamic_smem);
    s[threadIdx.x + 1] = 1.0;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

// smem_uninitialised: reads dynamic shared memory nobody wrote (0xff bytes: NaN).
extern "C" __global__ void smem_uninitialised(double* out) {
    const double* s = reinterpret_cast<const double*>(dynamic_smem);
    out[threadIdx.x] = s[threadIdx.x];
}

// bench_shuffles: n rounds of one shuffle per lane (the cost of a warp collective here).
extern "C" __global__ void bench_shuffles(double* out, long long n) {
    double v = threadIdx.x;
    for (long long i = 0; i < n; ++i) v += __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x + blockIdx.x * blockDim.x] = v;
}

// bench_store: one store per thread, as a sync-free entry (the cost of a thread here).
extern "C" __global__ void bench_store(double* out, long long n) {
    out[threadIdx.x + blockIdx.x * blockDim.x] = static_cast<double>(n);
}

// last_writer: every thread stores its index into out[0]: the order threads run in decides.
extern "C" __global__ void last_writer(double* out) { out[0] = threadIdx.x; }

// stale_sync_free waits at a barrier although its entry says its threads never wait.
extern "C" __global__ void stale_sync_free(double* out) {
    __syncthreads();
    out[threadIdx.x] = 1.0;
}

const cudahost::Entry entries[] = {
    cudahost::make_entry("hostexectest", "bench_shuffles", 0, 0, false, &bench_shuffles),
    cudahost::make_entry("hostexectest", "bench_store", 0, 0, true, &bench_store),
    cudahost::make_entry("hostexectest", "last_writer", 0, 0, true, &last_writer),
    cudahost::make_entry("hostexectest", "stale_sync_free", 0, 0, true, &stale_sync_free),
    cudahost::make_entry("hostexectest", "block_sum_ok", 1024, 8192, false, &block_sum_ok),
    cudahost::make_entry("hostexectest", "block_sum_no_barrier", 1024, 8192, false, &block_sum_no_barrier),
    cudahost::make_entry("hostexectest", "shuffles", 0, 0, false, &shuffles),
    cudahost::make_entry("hostexectest", "indices", 0, 0, false, &indices),
    cudahost::make_entry("hostexectest", "count", 64, 0, false, &count),
    cudahost::make_entry("hostexectest", "divergent_shuffle", 0, 0, false, &divergent_shuffle),
    cudahost::make_entry("hostexectest", "shuffle_after_exit", 0, 0, false, &shuffle_after_exit),
    cudahost::make_entry("hostexectest", "divergent_barrier", 0, 0, false, &divergent_barrier),
    cudahost::make_entry("hostexectest", "warp_deadlock", 0, 0, false, &warp_deadlock),
    cudahost::make_entry("hostexectest", "off_by_one_store", 0, 0, false, &off_by_one_store),
    cudahost::make_entry("hostexectest", "smem_overrun", 0, 0, false, &smem_overrun),
    cudahost::make_entry("hostexectest", "smem_uninitialised", 0, 0, false, &smem_uninitialised),
    // An entry that declares more static shared memory than a block may have.
    cudahost::make_entry("hostexectest", "too_much_static_shared", 0, 50 * 1024, false, &count),
};

}  // namespace hostexectest

extern "C" void hostexectest_register(void) {
    hostexec_register(hostexectest::entries, sizeof hostexectest::entries / sizeof hostexectest::entries[0]);
}
