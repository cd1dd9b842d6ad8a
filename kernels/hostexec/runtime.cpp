//go:build cudaemu

// runtime.cpp — runs host-compiled kernels under the CUDA execution model (see cuda_host.h):
// blocks on a pool of worker threads, the threads of a block as Boost.Context fibers scheduled in a
// chosen order, block barriers and warp collectives with their completion rules, deadlock and
// divergence reports, launch-limit checks and device memory.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/context/fiber.hpp>

#include "cuda_host.h"
#include "hostexec.h"

#if defined(__SANITIZE_ADDRESS__)
#define HOSTEXEC_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace cudahost {

CUDAHOST_TLS const uint3* tls_thread_idx = nullptr;
CUDAHOST_TLS uint3 tls_block_idx;
CUDAHOST_TLS dim3 tls_block_dim;
CUDAHOST_TLS dim3 tls_grid_dim;
CUDAHOST_TLS unsigned char* tls_dynamic_smem = nullptr;

// The generated registry (zz_registry.cpp).
extern const Entry* const module_entries[];
extern const int module_counts[];
extern const int module_count;

namespace {

namespace bctx = boost::context;

constexpr int kWarpLanes = 32;
constexpr unsigned int kAll = 0xffffffffu;

// Thrown inside a fiber to unwind it when its launch has failed.
struct Abort {};

std::string basename_of(const char* path) {
    const char* s = std::strrchr(path, '/');
    return s ? s + 1 : path;
}

std::string site_string(const Site& s) {
    return std::string(s.what) + " at " + basename_of(s.file) + ":" + std::to_string(s.line);
}

bool same_site(const Site& a, const Site& b) {
    if (a.line != b.line) return false;
    if (a.file == b.file && a.what == b.what) return true;  // the same literals (the usual case)
    return std::strcmp(a.file, b.file) == 0 && std::strcmp(a.what, b.what) == 0;
}

std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

// lanes_string writes a lane set as "0-15, 17".
std::string lanes_string(unsigned int m) {
    std::string out;
    for (int i = 0; i < kWarpLanes;) {
        if (!(m >> i & 1u)) {
            ++i;
            continue;
        }
        int j = i;
        while (j + 1 < kWarpLanes && (m >> (j + 1) & 1u)) ++j;
        if (!out.empty()) out += ", ";
        out += i == j ? std::to_string(i) : std::to_string(i) + "-" + std::to_string(j);
        i = j + 1;
    }
    return out.empty() ? "none" : out;
}

// Guard bytes past the end of allocations and dynamic shared memory (see hostexec.h). Under the
// address sanitizer there are none: allocations have exactly their size, and the sanitizer's own
// red zones report an overflow as one.
#if HOSTEXEC_ASAN
constexpr std::size_t kGuardBytes = 0;
#else
constexpr std::size_t kGuardBytes = 64;
#endif
constexpr unsigned char kCanary = 0xcd;

// canary_overrun returns the first offset in [0, n) of p where the canary was overwritten, or −1.
long long canary_overrun(const unsigned char* p, std::size_t n) {
#if HOSTEXEC_ASAN
    (void)p;
    (void)n;
    return -1;  // the guard bytes are poisoned: the sanitizer reports the write itself
#else
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] != kCanary) return static_cast<long long>(i);
    }
    return -1;
#endif
}

// guard marks n bytes at p as out of bounds.
void guard(unsigned char* p, std::size_t n) {
#if HOSTEXEC_ASAN
    (void)p;
    (void)n;
#else
    std::memset(p, kCanary, n);
#endif
}

// allocate returns size bytes aligned to align followed by kGuardBytes guard bytes (0 under the
// address sanitizer, whose red zone follows the exact size), or nullptr.
unsigned char* allocate(std::size_t size, std::size_t align, std::size_t* total) {
#if HOSTEXEC_ASAN
    *total = size;
#else
    *total = (size + kGuardBytes + align - 1) & ~(align - 1);
#endif
    void* p = nullptr;
    if (posix_memalign(&p, align, *total == 0 ? 1 : *total) != 0) return nullptr;
    return static_cast<unsigned char*>(p);
}

// Configuration (set between launches).
struct Config {
    int order = HOSTEXEC_FORWARD;
    std::uint64_t seed = 1;
    int workers = 1;
    std::size_t stack_bytes = 256 << 10;
};
Config config;

// Stacks of CUDA threads: mmap'd with a guard page below, kept per worker thread and reused.
class StackPool {
   public:
    ~StackPool() {
        for (auto& s : free_) {
            munmap(static_cast<char*>(s.sp) - s.size - guard(), s.size + guard());
        }
    }
    bctx::stack_context take(std::size_t size) {
        if (size != size_) {  // the configuration changed: drop the old stacks
            for (auto& s : free_) munmap(static_cast<char*>(s.sp) - s.size - guard(), s.size + guard());
            free_.clear();
            size_ = size;
        }
        if (!free_.empty()) {
            bctx::stack_context s = free_.back();
            free_.pop_back();
            return s;
        }
        void* p = mmap(nullptr, size + guard(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        mprotect(p, guard(), PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
        bctx::stack_context s;
        s.size = size;
        s.sp = static_cast<char*>(p) + guard() + size;
        return s;
    }
    void give(const bctx::stack_context& s) {
        if (s.size == size_) {
            free_.push_back(s);
        } else {
            munmap(static_cast<char*>(s.sp) - s.size - guard(), s.size + guard());
        }
    }

   private:
    static std::size_t guard() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }
    std::vector<bctx::stack_context> free_;
    std::size_t size_ = 0;
};

thread_local StackPool stack_pool;
thread_local bctx::stack_context last_stack;  // the stack PooledStack handed out last

// The stack allocator Boost.Context calls: it hands out pooled stacks.
struct PooledStack {
    std::size_t size;
    bctx::stack_context allocate() {
        last_stack = stack_pool.take(size);
        return last_stack;
    }
    void deallocate(bctx::stack_context& s) noexcept { stack_pool.give(s); }
};

enum class State { Ready, AtBarrier, AtWarp, Done };

struct Block;

// One CUDA thread.
struct Thread {
    uint3 idx;
    int lin, warp, lane;
    State state = State::Ready;
    bool plain = false;  // run as a plain call (a sync-free entry): it must never wait
    bctx::fiber fib;    // the suspended thread, held by the scheduler
    bctx::fiber sched;  // the scheduler, held by the running thread
    Site site{"", 0, ""};
    // Warp collective in progress.
    std::uint64_t in = 0, out = 0;
    int b = 0;
    Block* block = nullptr;
#if HOSTEXEC_ASAN
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
    void* fake_stack = nullptr;
#endif
};

// A pending warp collective: __syncwarp (mode −1) or a shuffle.
struct WarpOp {
    Site site;
    int mode;
    unsigned int mask;
    int c;
    unsigned int arrived;
};

struct Launch {
    const Entry* entry;
    const std::uint64_t* args;
    dim3 grid, block;
    std::int64_t dyn_shared;
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::string error;

    void set_error(const std::string& msg) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.load()) {
            error = msg;
            failed.store(true);
        }
    }
};

// One block in execution on a worker thread.
struct Block {
    Launch* launch;
    uint3 bidx;
    std::vector<Thread> threads;
    std::vector<std::vector<WarpOp>> warp_ops;  // pending collectives per warp
    std::vector<unsigned int> live;             // per warp: lanes that exist and have not exited
    std::vector<unsigned int> exists;           // per warp: lanes that exist
    int alive = 0;                              // threads not done
    int at_barrier = 0;
    Site barrier_site{"", 0, ""};
    bool aborting = false;
    std::string error;
#if HOSTEXEC_ASAN
    const void* worker_stack_bottom = nullptr;
    std::size_t worker_stack_size = 0;
#endif

    std::string where() const {
        return format("kernel %s: block (%u, %u, %u)", launch->entry->name, bidx.x, bidx.y, bidx.z);
    }
    std::string thread_where(const Thread& t) const {
        return where() + format(", thread (%u, %u, %u) (warp %d, lane %d)", t.idx.x, t.idx.y, t.idx.z, t.warp,
                                t.lane);
    }
    void fail(const std::string& msg) {
        if (error.empty()) error = msg;
        aborting = true;
    }
};

CUDAHOST_TLS Thread* current = nullptr;

// --- fiber switches (annotated for AddressSanitizer, which must know which stack is live) ---

// Inside the thread's fiber: give control back to the scheduler; returns when resumed.
void yield_to_scheduler(Thread* t, bool dying) {
#if HOSTEXEC_ASAN
    __sanitizer_start_switch_fiber(dying ? nullptr : &t->fake_stack, t->block->worker_stack_bottom,
                                   t->block->worker_stack_size);
#else
    (void)dying;
#endif
    t->sched = std::move(t->sched).resume();
#if HOSTEXEC_ASAN
    __sanitizer_finish_switch_fiber(t->fake_stack, nullptr, nullptr);
#endif
}

// In the scheduler: run thread t until it blocks or ends.
void resume_thread(Block& b, Thread* t) {
    current = t;
    tls_thread_idx = &t->idx;
#if HOSTEXEC_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, t->stack_bottom, t->stack_size);
#endif
    t->fib = std::move(t->fib).resume();
#if HOSTEXEC_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    current = nullptr;
    tls_thread_idx = nullptr;
    (void)b;
}

// no_wait fails the launch when a thread run as a plain call reaches a barrier or collective.
void no_wait(Thread* t, const Site& site) {
    if (!t->plain) return;
    t->block->fail(t->block->thread_where(*t) + ": " + site_string(site) +
                   ": the entry's PTX has no barrier or warp collective, so its threads run without fibers "
                   "(the entry table is stale: run make ptx)");
    throw Abort{};
}

// wait suspends the running thread in state s until the scheduler releases it; an aborting block
// unwinds it instead.
void wait(Thread* t, State s) {
    t->state = s;
    yield_to_scheduler(t, false);
    if (t->block->aborting) throw Abort{};
}

Thread* running(const Site& site) {
    Thread* t = current;
    if (t == nullptr) {
        std::fprintf(stderr, "hostexec: %s called outside a kernel\n", site_string(site).c_str());
        std::abort();
    }
    return t;
}

// --- completion rules ---

void release_barrier(Block& b) {
    for (auto& t : b.threads) {
        if (t.state == State::AtBarrier) t.state = State::Ready;
    }
    b.at_barrier = 0;
}

// barrier_check releases the block barrier when every live thread waits at it.
void barrier_check(Block& b) {
    if (b.at_barrier > 0 && b.at_barrier == b.alive) release_barrier(b);
}

// op_check completes warp collective i of warp w when every live lane of its mask has arrived:
// shuffles compute each lane's result by the PTX shfl.sync rule first.
void op_check(Block& b, int w, std::size_t i) {
    WarpOp& op = b.warp_ops[w][i];
    const unsigned int need = op.mask & b.live[w];
    if ((op.arrived & need) != need) return;
    Thread* lanes = &b.threads[static_cast<std::size_t>(w) * kWarpLanes];
    if (op.mode >= 0) {
        for (int l = 0; l < kWarpLanes; ++l) {
            if (!(op.arrived >> l & 1u)) continue;
            Thread& t = lanes[l];
            const int bval = t.b & 0x1f;
            const int cval = op.c & 0x1f;
            const int segmask = (op.c >> 8) & 0x1f;
            const int max_lane = (l & segmask) | (cval & ~segmask);
            const int min_lane = l & segmask;
            int j = l;
            bool p = false;
            switch (op.mode) {
                case kShflUp: j = l - bval; p = j >= max_lane; break;
                case kShflDown: j = l + bval; p = j <= max_lane; break;
                case kShflBfly: j = l ^ bval; p = j <= max_lane; break;
                default: j = min_lane | (bval & ~segmask); p = j <= max_lane; break;
            }
            if (!p) j = l;
            if (!(op.arrived >> j & 1u)) {
                b.fail(b.thread_where(t) + format(": %s reads lane %d, which %s (its value is undefined)",
                                                  site_string(op.site).c_str(), j,
                                                  (b.exists[w] >> j & 1u) == 0 ? "does not exist in this block"
                                                  : (b.live[w] >> j & 1u) == 0 ? "has exited"
                                                                               : "is not in the mask"));
                return;
            }
            t.out = lanes[j].in;
        }
    }
    for (int l = 0; l < kWarpLanes; ++l) {
        if (op.arrived >> l & 1u) {
            lanes[l].state = State::Ready;
        }
    }
    b.warp_ops[w].erase(b.warp_ops[w].begin() + static_cast<std::ptrdiff_t>(i));
}

// warp_collective: the running thread arrives at a warp collective and waits for its completion.
void warp_collective(const Site& site, int mode, unsigned int mask, int c, Thread* t) {
    no_wait(t, site);
    Block& b = *t->block;
    if (!(mask >> t->lane & 1u)) {
        b.fail(b.thread_where(*t) + format(": %s with mask 0x%08x, which does not name the calling lane",
                                           site_string(site).c_str(), mask));
        throw Abort{};
    }
    auto& ops = b.warp_ops[t->warp];
    std::size_t i = 0;
    for (; i < ops.size(); ++i) {
        WarpOp& op = ops[i];
        const bool same = same_site(op.site, site) && op.mode == mode && op.mask == mask && op.c == c;
        if (same) break;
        if (op.mask & mask) {
            b.fail(b.thread_where(*t) +
                   format(": divergent warp: this lane reached %s (mask 0x%08x) while lanes %s wait at %s (mask "
                          "0x%08x)",
                          site_string(site).c_str(), mask, lanes_string(op.arrived).c_str(),
                          site_string(op.site).c_str(), op.mask));
            throw Abort{};
        }
    }
    if (i == ops.size()) ops.push_back(WarpOp{site, mode, mask, c, 0});
    ops[i].arrived |= 1u << t->lane;
    t->site = site;
    t->state = State::AtWarp;
    op_check(b, t->warp, i);
    if (b.aborting) throw Abort{};
    if (t->state == State::Ready) return;  // completed by this arrival
    wait(t, State::AtWarp);
}

// thread_exit: bookkeeping when a thread returns from the kernel.
void thread_exit(Block& b, Thread* t) {
    t->state = State::Done;
    --b.alive;
    b.live[t->warp] &= ~(1u << t->lane);
    if (b.aborting) return;
    // Collectives that were waiting for this lane may now be complete.
    auto& ops = b.warp_ops[t->warp];
    for (std::size_t i = 0; i < ops.size();) {
        const std::size_t before = ops.size();
        op_check(b, t->warp, i);
        if (b.aborting) return;
        if (ops.size() == before) ++i;
    }
    barrier_check(b);
}

// deadlock_report describes where the live threads of a stuck block wait: the pending warp
// collectives (who waits, for whom) and the block barrier.
std::string deadlock_report(Block& b) {
    std::string out = b.where() + ": deadlock: no thread can run;";
    for (std::size_t w = 0; w < b.warp_ops.size(); ++w) {
        if (b.warp_ops[w].empty()) continue;
        out += format(" warp %d:", static_cast<int>(w));
        for (const WarpOp& op : b.warp_ops[w]) {
            const unsigned int missing = op.mask & b.live[w] & ~op.arrived;
            out += format(" lanes %s wait at %s (mask 0x%08x) for lanes %s;", lanes_string(op.arrived).c_str(),
                          site_string(op.site).c_str(), op.mask, lanes_string(missing).c_str());
        }
        unsigned int at_barrier = 0;
        for (int l = 0; l < kWarpLanes; ++l) {
            const std::size_t k = w * kWarpLanes + static_cast<std::size_t>(l);
            if (k < b.threads.size() && b.threads[k].state == State::AtBarrier) at_barrier |= 1u << l;
        }
        if (at_barrier != 0) out += format(" lanes %s wait at the block barrier;", lanes_string(at_barrier).c_str());
        const unsigned int exited = b.exists[w] & ~b.live[w];
        if (exited != 0) out += format(" lanes %s have exited;", lanes_string(exited).c_str());
    }
    if (b.at_barrier > 0) {
        out += format(" %d of %d live threads wait at %s", b.at_barrier, b.alive, site_string(b.barrier_site).c_str());
    }
    return out;
}

// --- the block scheduler ---

// thread_order returns the order in which the block's n threads run in a round.
std::vector<int> thread_order(int n) {
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = config.order == HOSTEXEC_REVERSE ? n - 1 - i : i;
    return order;
}

// set_thread fills t's coordinates as thread i of a block of dimensions bd.
void set_thread(Thread& t, int i, dim3 bd) {
    t.idx = uint3{static_cast<unsigned>(i) % bd.x, static_cast<unsigned>(i) / bd.x % bd.y,
                  static_cast<unsigned>(i) / (bd.x * bd.y)};
    t.lin = i;
    t.warp = i / kWarpLanes;
    t.lane = i % kWarpLanes;
}

// run_plain runs the threads of a sync-free entry's block one after another as plain calls.
void run_plain(Block& b, int n, std::mt19937_64& rng) {
    Launch& L = *b.launch;
    std::vector<int> order = thread_order(n);
    if (config.order == HOSTEXEC_RANDOM) std::shuffle(order.begin(), order.end(), rng);
    Thread t;
    t.plain = true;
    t.block = &b;
    for (int i : order) {
        set_thread(t, i, L.block);
        current = &t;
        tls_thread_idx = &t.idx;
        try {
            L.entry->call(L.entry->fn, L.args);
        } catch (Abort&) {
        } catch (std::exception& e) {
            b.fail(b.thread_where(t) + ": exception: " + e.what());
        }
        current = nullptr;
        tls_thread_idx = nullptr;
        if (b.aborting) return;
    }
}

// run_fibers runs the block's threads as fibers: rounds in the chosen order, each thread running
// until it waits or ends, until every thread has ended, the block fails, or no thread can run.
void run_fibers(Block& b, int n, std::mt19937_64& rng) {
    Launch& L = *b.launch;
    const int warps = (n + kWarpLanes - 1) / kWarpLanes;
    b.threads.resize(static_cast<std::size_t>(n));
    b.warp_ops.resize(static_cast<std::size_t>(warps));
    b.live.assign(static_cast<std::size_t>(warps), 0u);
    b.exists.assign(static_cast<std::size_t>(warps), 0u);
    b.alive = n;
    PooledStack alloc{config.stack_bytes};
    for (int i = 0; i < n; ++i) {
        Thread& t = b.threads[static_cast<std::size_t>(i)];
        set_thread(t, i, L.block);
        t.block = &b;
        b.live[t.warp] |= 1u << t.lane;
        b.exists[t.warp] |= 1u << t.lane;
        Thread* tp = &t;
        Launch* lp = &L;
        Block* bp = &b;
        t.fib = bctx::fiber(std::allocator_arg, alloc, [tp, lp, bp](bctx::fiber&& sched) {
            tp->sched = std::move(sched);
#if HOSTEXEC_ASAN
            __sanitizer_finish_switch_fiber(nullptr, &bp->worker_stack_bottom, &bp->worker_stack_size);
#endif
            try {
                if (!bp->aborting) lp->entry->call(lp->entry->fn, lp->args);
            } catch (Abort&) {
            } catch (std::exception& e) {
                bp->fail(bp->thread_where(*tp) + ": exception: " + e.what());
            }
            thread_exit(*bp, tp);
#if HOSTEXEC_ASAN
            __sanitizer_start_switch_fiber(nullptr, bp->worker_stack_bottom, bp->worker_stack_size);
#endif
            return std::move(tp->sched);
        });
#if HOSTEXEC_ASAN
        // The stack the constructor just took (its top is sp): the bounds the switch annotations name.
        t.stack_bottom = static_cast<char*>(last_stack.sp) - last_stack.size;
        t.stack_size = last_stack.size;
#endif
    }

    std::vector<int> order = thread_order(n);
    while (b.alive > 0) {
        if (config.order == HOSTEXEC_RANDOM) std::shuffle(order.begin(), order.end(), rng);
        bool ran = false;
        for (int i : order) {
            Thread& t = b.threads[static_cast<std::size_t>(i)];
            if (t.state != State::Ready) continue;
            resume_thread(b, &t);
            ran = true;
            if (b.aborting) break;
        }
        if (b.aborting) break;
        if (!ran && b.alive > 0) {
            b.fail(deadlock_report(b));
            break;
        }
        if (L.failed.load(std::memory_order_relaxed)) {  // another block failed: stop early
            b.aborting = true;
            break;
        }
    }
    if (b.aborting) {
        // Unwind every thread that has not ended (each throws Abort at its wait point).
        for (auto& t : b.threads) {
            if (t.state != State::Done && t.fib) resume_thread(b, &t);
        }
    }
}

// run_block runs block bidx of launch L on the calling worker thread; it returns false when the
// block failed (L's error set).
bool run_block(Launch& L, uint3 bidx, std::mt19937_64& rng) {
    Block b;
    b.launch = &L;
    b.bidx = bidx;
    const int n = static_cast<int>(L.block.x * L.block.y * L.block.z);

    tls_block_idx = bidx;
    tls_block_dim = L.block;
    tls_grid_dim = L.grid;
    // The dynamic shared memory: exactly the launch's bytes, filled with 0xff (a NaN pattern), so
    // that a read before any write sees garbage, as on the device, followed by guard bytes (or,
    // under the address sanitizer, its red zone).
    unsigned char* dyn = nullptr;
    const std::size_t dyn_bytes = static_cast<std::size_t>(L.dyn_shared);
    std::size_t dyn_alloc = 0;
    if (L.dyn_shared > 0) {
        dyn = allocate(dyn_bytes, 16, &dyn_alloc);
        if (dyn == nullptr) {
            L.set_error(format("kernel %s: cannot allocate %lld bytes of dynamic shared memory on the host",
                               L.entry->name, static_cast<long long>(L.dyn_shared)));
            return false;
        }
        std::memset(dyn, 0xff, dyn_bytes);
        guard(dyn + dyn_bytes, dyn_alloc - dyn_bytes);
    }
    tls_dynamic_smem = dyn;

    if (L.entry->sync_free) {
        run_plain(b, n, rng);
    } else {
        run_fibers(b, n, rng);
    }

    if (dyn != nullptr) {
        const long long at = canary_overrun(dyn + dyn_bytes, dyn_alloc - dyn_bytes);
        if (at >= 0) {
            b.fail(b.where() + format(": a write past the end of the dynamic shared memory (%lld bytes), at byte %lld",
                                      static_cast<long long>(L.dyn_shared), static_cast<long long>(dyn_bytes) + at));
        }
        std::free(dyn);
    }
    tls_dynamic_smem = nullptr;
    if (!b.error.empty()) {
        L.set_error(b.error);
        return false;
    }
    return true;
}

// --- the worker pool ---

class Pool {
   public:
    // run executes every block of L on up to config.workers threads (the caller is one of them).
    void run(Launch& L) {
        const unsigned long long total = static_cast<unsigned long long>(L.grid.x) * L.grid.y * L.grid.z;
        const int helpers = static_cast<int>(std::min<unsigned long long>(total, config.workers) - 1);
        std::atomic<unsigned long long> next{0};
        auto work = [&L, &next, total](int worker) {
            std::mt19937_64 rng(config.seed * 0x9e3779b97f4a7c15ull + static_cast<unsigned long long>(worker));
            for (;;) {
                const unsigned long long i = next.fetch_add(1);
                if (i >= total || L.failed.load(std::memory_order_relaxed)) break;
                const uint3 bidx{static_cast<unsigned>(i % L.grid.x), static_cast<unsigned>(i / L.grid.x % L.grid.y),
                                 static_cast<unsigned>(i / (static_cast<unsigned long long>(L.grid.x) * L.grid.y))};
                rng.seed(config.seed * 0x9e3779b97f4a7c15ull + i);
                if (!run_block(L, bidx, rng)) break;
            }
        };
        if (helpers <= 0) {
            work(0);
            return;
        }
        ensure(helpers);
        {
            std::lock_guard<std::mutex> lock(mu_);
            job_ = work;
            pending_ = helpers;
            wanted_ = helpers;
            ++generation_;
        }
        cv_.notify_all();
        work(0);
        std::unique_lock<std::mutex> lock(mu_);
        done_.wait(lock, [this] { return pending_ == 0; });
        job_ = nullptr;
    }

   private:
    void ensure(int n) {
        while (static_cast<int>(threads_.size()) < n) {
            const int id = static_cast<int>(threads_.size()) + 1;
            threads_.emplace_back([this, id] { loop(id); });
            threads_.back().detach();
        }
    }
    void loop(int id) {
        unsigned long long seen = 0;
        for (;;) {
            std::function<void(int)> job;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] { return generation_ != seen && id <= wanted_; });
                seen = generation_;
                job = job_;
            }
            job(id);
            {
                std::lock_guard<std::mutex> lock(mu_);
                if (--pending_ == 0) done_.notify_all();
            }
        }
    }
    std::mutex mu_;
    std::condition_variable cv_, done_;
    std::function<void(int)> job_;
    int pending_ = 0, wanted_ = 0;
    unsigned long long generation_ = 0;
    std::vector<std::thread> threads_;
};

Pool& pool() {
    static Pool* p = new Pool;  // never destroyed: its threads outlive static destruction
    return *p;
}

std::mutex registry_mu;

// registry returns the entries (the generated modules, then registered ones); the caller holds
// registry_mu.
std::vector<const Entry*>& registry() {
    static std::vector<const Entry*>* all = [] {
        auto* v = new std::vector<const Entry*>;
        for (int m = 0; m < module_count; ++m) {
            for (int i = 0; i < module_counts[m]; ++i) v->push_back(&module_entries[m][i]);
        }
        return v;
    }();
    return *all;
}

const Entry* entry_at(int i) {
    std::lock_guard<std::mutex> lock(registry_mu);
    auto& reg = registry();
    if (i < 0 || i >= static_cast<int>(reg.size())) return nullptr;
    return reg[static_cast<std::size_t>(i)];
}

}  // namespace

// --- what kernels call (cuda_host.h) ---

void syncthreads(Site site) {
    Thread* t = running(site);
    no_wait(t, site);
    Block& b = *t->block;
    if (b.at_barrier > 0 && !same_site(b.barrier_site, site)) {
        b.fail(b.thread_where(*t) + ": divergent barrier: this thread reached " + site_string(site) + " while " +
               std::to_string(b.at_barrier) + " thread(s) wait at " + site_string(b.barrier_site));
        throw Abort{};
    }
    b.barrier_site = site;
    t->site = site;
    ++b.at_barrier;
    t->state = State::AtBarrier;
    barrier_check(b);
    if (t->state == State::Ready) return;  // the last to arrive
    wait(t, State::AtBarrier);
}

void syncwarp(Site site, unsigned int mask) {
    Thread* t = running(site);
    warp_collective(site, -1, mask, 0, t);
}

std::uint64_t shfl_bits(Site site, int mode, unsigned int mask, std::uint64_t v, int b, int c) {
    Thread* t = running(site);
    t->in = v;
    t->b = b;
    warp_collective(site, mode, mask, c, t);
    return t->out;
}

void fail(Site site, const char* message) {
    Thread* t = running(site);
    t->block->fail(t->block->thread_where(*t) + ": " + site_string(site) + ": " + message);
    throw Abort{};
}

}  // namespace cudahost

// --- C interface ---

using cudahost::config;

extern "C" void hostexec_configure(int order, uint64_t seed, int workers, int64_t stack_bytes) {
    config.order = order;
    config.seed = seed;
    config.workers = workers < 1 ? 1 : workers;
    config.stack_bytes = static_cast<std::size_t>(stack_bytes);
}

extern "C" int hostexec_entries(void) {
    std::lock_guard<std::mutex> lock(cudahost::registry_mu);
    return static_cast<int>(cudahost::registry().size());
}

extern "C" int hostexec_register(const void* entries, int n) {
    std::lock_guard<std::mutex> lock(cudahost::registry_mu);
    auto& reg = cudahost::registry();
    const auto* e = static_cast<const cudahost::Entry*>(entries);
    for (int i = 0; i < n; ++i) reg.push_back(&e[i]);
    return static_cast<int>(reg.size());
}

extern "C" void hostexec_entry(int i, const char** module, const char** name, int* params, int* max_threads,
                               int64_t* static_shared) {
    const cudahost::Entry* e = cudahost::entry_at(i);
    *module = e->module;
    *name = e->name;
    *params = e->params;
    *max_threads = e->max_threads;
    *static_shared = e->static_shared;
}

extern "C" int hostexec_launch(int entry, const int64_t grid[3], const int64_t block[3], int64_t dyn_shared,
                               int64_t max_shared, const uint64_t* args, int nargs, char* err, int errlen) {
    using cudahost::format;
    auto fail = [&](const std::string& msg) {
        std::snprintf(err, static_cast<std::size_t>(errlen), "%s", msg.c_str());
        return -1;
    };
    const cudahost::Entry* e = cudahost::entry_at(entry);
    if (e == nullptr) return fail(format("no kernel entry %d", entry));
    if (nargs != e->params) {
        return fail(format("kernel %s takes %d parameters, the launch passes %d", e->name, e->params, nargs));
    }
    // The launch limits of compute capability 8.x / 9.0 (CUDA_ERROR_INVALID_VALUE on a device).
    for (int i = 0; i < 3; ++i) {
        if (grid[i] < 1 || block[i] < 1) {
            return fail(format("kernel %s: grid (%lld, %lld, %lld) and block (%lld, %lld, %lld) must be positive",
                               e->name, (long long)grid[0], (long long)grid[1], (long long)grid[2],
                               (long long)block[0], (long long)block[1], (long long)block[2]));
        }
    }
    const long long threads = block[0] * block[1] * block[2];
    if (block[0] > 1024 || block[1] > 1024 || block[2] > 64 || threads > 1024) {
        return fail(format("kernel %s: block (%lld, %lld, %lld) exceeds 1024 threads (x, y ≤ 1024, z ≤ 64)", e->name,
                           (long long)block[0], (long long)block[1], (long long)block[2]));
    }
    if (e->max_threads > 0 && threads > e->max_threads) {
        return fail(format("kernel %s: block of %lld threads exceeds its __launch_bounds__ of %d", e->name, threads,
                           e->max_threads));
    }
    if (grid[0] > 2147483647LL || grid[1] > 65535 || grid[2] > 65535) {
        return fail(format("kernel %s: grid (%lld, %lld, %lld) exceeds (2^31 − 1, 65535, 65535)", e->name,
                           (long long)grid[0], (long long)grid[1], (long long)grid[2]));
    }
    if (e->static_shared > 48 * 1024) {
        return fail(format("kernel %s: %lld bytes of static shared memory exceed 48 KiB", e->name,
                           (long long)e->static_shared));
    }
    if (dyn_shared < 0 || e->static_shared + dyn_shared > max_shared) {
        return fail(format("kernel %s: %lld bytes of dynamic and %lld of static shared memory exceed the %lld bytes "
                           "a block may use",
                           e->name, (long long)dyn_shared, (long long)e->static_shared, (long long)max_shared));
    }
    static std::mutex one_at_a_time;  // the pool runs one launch at a time
    std::lock_guard<std::mutex> lock(one_at_a_time);
    cudahost::Launch L;
    L.entry = e;
    L.args = args;
    L.grid = dim3{static_cast<unsigned>(grid[0]), static_cast<unsigned>(grid[1]), static_cast<unsigned>(grid[2])};
    L.block = dim3{static_cast<unsigned>(block[0]), static_cast<unsigned>(block[1]), static_cast<unsigned>(block[2])};
    L.dyn_shared = dyn_shared;
    try {
        cudahost::pool().run(L);
    } catch (std::bad_alloc&) {
        return fail(format("kernel %s: out of host memory for thread stacks", e->name));
    }
    if (L.failed.load()) return fail(L.error);
    return 0;
}

extern "C" uintptr_t hostexec_alloc(int64_t bytes, int fill) {
    const std::size_t size = static_cast<std::size_t>(bytes);
    std::size_t n = 0;
    unsigned char* p = cudahost::allocate(size, 256, &n);
    if (p == nullptr) return 0;
    std::memset(p, fill, size);
    cudahost::guard(p + size, n - size);
    return reinterpret_cast<uintptr_t>(p);
}

extern "C" int hostexec_check(uintptr_t p, int64_t bytes, int64_t* at) {
    const std::size_t size = static_cast<std::size_t>(bytes);
#if HOSTEXEC_ASAN
    const std::size_t n = size;
#else
    const std::size_t n = (size + cudahost::kGuardBytes + 255) & ~static_cast<std::size_t>(255);
#endif
    const long long off = cudahost::canary_overrun(reinterpret_cast<const unsigned char*>(p) + size, n - size);
    if (off < 0) return 0;
    *at = static_cast<int64_t>(size) + off;
    return -1;
}

extern "C" void hostexec_free(uintptr_t p) { std::free(reinterpret_cast<void*>(p)); }

extern "C" void hostexec_copy_in(uintptr_t dst, const void* src, int64_t bytes) {
    if (bytes > 0) std::memmove(reinterpret_cast<void*>(dst), src, static_cast<std::size_t>(bytes));
}

extern "C" void hostexec_copy_out(void* dst, uintptr_t src, int64_t bytes) {
    if (bytes > 0) std::memmove(dst, reinterpret_cast<const void*>(src), static_cast<std::size_t>(bytes));
}

extern "C" void hostexec_copy_on(uintptr_t dst, uintptr_t src, int64_t bytes) {
    if (bytes > 0) std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), static_cast<std::size_t>(bytes));
}
