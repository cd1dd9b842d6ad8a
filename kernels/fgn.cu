// Fractional Gaussian noise by the Davies-Harte method (docs/math.md §4.1; the reference and its
// math are in ops/fgn.go). For float increments whose FFT takes several passes (m > 4096), a call
// of ops/cuda's FGN runs, per chunk of paths:
//
//   fgn_r<R>_f32       the FFT's first pass (radix R) over every pair's signal below, which it
//                      draws and forms in shared memory itself (fgn_first_pass): no spectrum
//                      buffer is written or read, and its output is bit for bit that of
//                      fgn_spectrum followed by fft_r<R>_f32;
//   (FFT passes)       the remaining passes of fft.cu, the last writing the increments (Extract);
//   fgn_cumsum_f32     for the path form, their running sums in place (a block scan per path).
//
// Otherwise (double, or a single-pass transform), per chunk of paths:
//
//   fgn_spectrum_<T>   for every pair of paths (2q, 2q + 1) the complex signal
//                      V^{2q} + i V^{2q+1} of their Hermitian vectors (a last path without partner:
//                      V^{2q} alone), written as interleaved complex values into buf (pairs, m),
//                      from the paths' normals drawn in the kernel exactly as kernels/random.cu
//                      draws them (bit-identical words and uniforms, Box-Muller in T);
//   (batched FFT)      buf <- FFT(buf), forward, unnormalised (ops/cuda fft); for float
//                      increments of a multi-pass plan its last pass writes dst[2q, k] =
//                      scale * Re and dst[2q + 1, k] = scale * Im of value k < n of pair q's
//                      transform (fft.cu, Extract) and nothing else; otherwise it transforms buf
//                      in place, then
//   fgn_increments_<T> writes those values from buf, or
//   fgn_path_<T>       writes the running sums of the same values (a block scan per path).
//
// Two paths per transform: V is Hermitian, so FFT(V) is real, and FFT(V^a + i V^b) =
// FFT(V^a) + i FFT(V^b) carries path a in its real and path b in its imaginary part — half the
// transforms, half the scratch and half the FFT traffic of one transform per path, and the
// extraction reads both halves of every complex value it loads. The rounding of the packed sums
// and of the transform is relative to the pair's norm (optest.FGNRowNorms).
//
// The embedding has n_e (a power of two >= 2) pairs and m = 2 n_e points. Pair j of a path is the
// Box-Muller pair (xi_{2j}, xi_{2j+1}) of the draw layout (ops/philox.go): float lane L holds the
// pairs 2L and 2L+1 (four normals), double lane L the pair L. The weights are
// w_0 = s_0, w_{n_e} = s_{n_e} and w_j = s_j / sqrt(2) otherwise (s_j = sqrt(lambda_j / m), computed
// on the host in double and rounded once to T), so that
//
//   V_0 = w_0 xi_0,  V_{n_e} = w_{n_e} xi_1,
//   V_j = w_j (xi_{2j} + i xi_{2j+1}),  V_{m-j} = conj(V_j)     (1 <= j < n_e).
//
// Everything is computed in T (the IEEE-exact build contracts nothing). Every parameter is 8
// bytes wide (pointers, long long, unsigned long long, double).

#include <cstdint>

#include "fft.cuh"
#include "normals.cuh"

// Threads per block of fgn_path_* (the launcher uses the same number).
#define FGN_SCAN_THREADS 256
#define FGN_SCAN_WARPS (FGN_SCAN_THREADS / 32)

namespace {

template <typename T>
struct Cplx;

template <>
struct Cplx<float> {
    typedef float2 type;
    __device__ __forceinline__ static float2 make(float re, float im) { return make_float2(re, im); }
};

template <>
struct Cplx<double> {
    typedef double2 type;
    __device__ __forceinline__ static double2 make(double re, double im) { return make_double2(re, im); }
};

// pack_pair forms the signal's values at j and m − j from Box-Muller pair j of paths a and b
// (normals (za0, za1) and (zb0, zb1)) with weight w = w_j: V^a_j = w·za0 + i w·za1, V^b_j likewise,
// at j V^a_j + i V^b_j and at m − j conj(V^a_j) + i conj(V^b_j) (0 < j < n_e). pack_zero forms
// those at 0 and n_e from pair 0 (w0 = w_0, wne = w_{n_e}). fgn_spectrum and fgn_first_pass both
// call them, so the two give the same bits.
template <typename T>
__device__ __forceinline__ void pack_pair(T w, T za0, T za1, T zb0, T zb1, typename Cplx<T>::type* at_j,
                                          typename Cplx<T>::type* at_mj) {
    const T a = w * za0, c = w * za1;
    const T a2 = w * zb0, c2 = w * zb1;
    *at_j = Cplx<T>::make(a - c2, c + a2);
    *at_mj = Cplx<T>::make(a + c2, a2 - c);
}

template <typename T>
__device__ __forceinline__ void pack_zero(T w0, T wne, T za0, T za1, T zb0, T zb1, typename Cplx<T>::type* at_0,
                                          typename Cplx<T>::type* at_ne) {
    *at_0 = Cplx<T>::make(w0 * za0, w0 * zb0);
    *at_ne = Cplx<T>::make(wne * za1, wne * zb1);
}

// fgn_spectrum writes V^{2q} + i V^{2q+1} for every pair q of paths: one thread per (pair,
// Philox lane), P Box-Muller pairs of each path each, in a grid-stride loop over the flat
// (pair, lane) index. With V^a_j = a + i c and V^b_j = a' + i c' the signal holds
// (a − c') + i (c + a') at j and conj(V^a_j) + i conj(V^b_j) = (a + c') + i (a' − c) at m − j.
template <typename T>
__device__ __forceinline__ void fgn_spectrum(typename Cplx<T>::type* __restrict__ buf,
                                             const T* __restrict__ w, long long paths, long long ne,
                                             unsigned long long seed, unsigned long long site,
                                             unsigned long long chain0) {
    constexpr int P = Normals<T>::W / 2;  // Box-Muller pairs per block: z[2p] cosine, z[2p + 1] sine
    if (paths <= 0 || ne < 2) {
        return;
    }
    const unsigned long long une = static_cast<unsigned long long>(ne);
    const unsigned long long m = 2 * une;
    const unsigned long long lanes = une / P;  // n_e is a power of two >= 2
    const unsigned long long pairs = (static_cast<unsigned long long>(paths) + 1) / 2;
    const unsigned long long total = pairs * lanes;
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    unsigned long long t = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= total) {
        return;
    }
    unsigned long long row = t / lanes;
    unsigned long long lane = t - row * lanes;
    const unsigned long long drow = stride / lanes;
    const unsigned long long dlane = stride - drow * lanes;
    const uint2 key = philox_key(seed);
    for (; t < total; t += stride) {
        const unsigned long long pa = 2 * row;
        const bool hasb = pa + 1 < static_cast<unsigned long long>(paths);
        T za[2 * P], zb[2 * P];
        Normals<T>::block(philox_block(key, site, static_cast<unsigned int>(chain0 + pa),
                                       static_cast<unsigned int>(lane)),
                          za);
        if (hasb) {
            Normals<T>::block(philox_block(key, site, static_cast<unsigned int>(chain0 + pa + 1),
                                           static_cast<unsigned int>(lane)),
                              zb);
        } else {
#pragma unroll
            for (int i = 0; i < 2 * P; ++i) {
                zb[i] = T(0);
            }
        }
        typename Cplx<T>::type* out = buf + row * m;
#pragma unroll
        for (int p = 0; p < P; ++p) {
            const unsigned long long j = lane * P + p;
            if (j == 0) {
                pack_zero<T>(w[0], w[une], za[0], za[1], zb[0], zb[1], &out[0], &out[une]);
            } else {
                pack_pair<T>(w[j], za[2 * p], za[2 * p + 1], zb[2 * p], zb[2 * p + 1], &out[j], &out[m - j]);
            }
        }
        lane += dlane;
        row += drow;
        if (lane >= lanes) {
            lane -= lanes;
            ++row;
        }
    }
}

// path_part is path i's value at k of the transformed buffer: the real part of pair i/2's signal for
// an even i, the imaginary part for an odd one.
template <typename T>
__device__ __forceinline__ T path_part(const typename Cplx<T>::type* __restrict__ buf,
                                  unsigned long long i, unsigned long long m, unsigned long long k) {
    const typename Cplx<T>::type v = buf[(i >> 1) * m + k];
    return (i & 1) != 0 ? v.y : v.x;
}

// fgn_increments: dst[i, k] = scale * path_part(buf, i, m, k) for k < n, scale rounded to T once
// (the plans whose FFT cannot write the increments itself: double, or a single pass).
template <typename T>
__device__ __forceinline__ void fgn_increments(T* __restrict__ dst,
                                               const typename Cplx<T>::type* __restrict__ buf,
                                               long long paths, long long n, long long m,
                                               double scale) {
    if (paths <= 0 || n <= 0) {
        return;
    }
    const T sc = static_cast<T>(scale);
    const unsigned long long un = static_cast<unsigned long long>(n);
    const unsigned long long um = static_cast<unsigned long long>(m);
    const unsigned long long total = static_cast<unsigned long long>(paths) * un;
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    unsigned long long t = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= total) {
        return;
    }
    unsigned long long row = t / un;
    unsigned long long col = t - row * un;
    const unsigned long long drow = stride / un;
    const unsigned long long dcol = stride - drow * un;
    for (; t < total; t += stride) {
        dst[t] = sc * path_part<T>(buf, row, um, col);
        col += dcol;
        row += drow;
        if (col >= un) {
            col -= un;
            ++row;
        }
    }
}

// scan_rows (fgn_path, fgn_cumsum): dst[i, k] = sum_{l <= k} x_l with x_l = load(i, l), one block
// of FGN_SCAN_THREADS threads per path (blocks stride over the paths), everything in double
// whatever T is (each output is rounded once, like the reference's): the path is walked in tiles
// of FGN_SCAN_THREADS values, thread r of the block taking value base + r, and
//   v     = inclusive scan of the warp's 32 values (Hillis-Steele: v += v[lane - d] for
//           d = 1, 2, 4, 8, 16),
//   B     = ((carry + S_0) + S_1 + ... + S_{w-1}) + v   (S_u: total of warp u of the tile, w this
//           thread's warp),
//   carry = (carry + S_0) + ... + S_{FGN_SCAN_WARPS-1}   (so carry equals the tile's last B).
// B_k passes through at most 5 + FGN_SCAN_WARPS + 5·FGN_SCAN_WARPS·floor(k / FGN_SCAN_THREADS)
// double roundings, each of a sum of consecutive x, and one rounding to T, so the f32 path's error
// does not grow with its length. The scan is memory-bound: the double arithmetic costs no time.
// Thread r loads its value before the tile's first barrier and stores B after it, so load may read
// dst itself (fgn_cumsum). Every thread forms its warp's offset and the next carry in one pass
// over the warp totals: the sequential sums above, one addition per warp total.
template <typename T, typename Load>
__device__ __forceinline__ void scan_rows(T* dst, long long paths, long long n, Load load) {
    __shared__ double warp_total[FGN_SCAN_WARPS];
    if (paths <= 0 || n <= 0) {
        return;
    }
    const unsigned int lane = threadIdx.x & 31u;
    const unsigned int warp = threadIdx.x >> 5;
    const unsigned long long un = static_cast<unsigned long long>(n);
    for (unsigned long long row = blockIdx.x; row < static_cast<unsigned long long>(paths);
         row += gridDim.x) {
        T* out = dst + row * un;
        double carry = 0.0;
        for (unsigned long long base = 0; base < un; base += FGN_SCAN_THREADS) {
            const unsigned long long k = base + threadIdx.x;
            double v = 0.0;
            if (k < un) {
                v = load(row, k);
            }
#pragma unroll
            for (unsigned int d = 1; d < 32; d <<= 1) {
                const double u = __shfl_up_sync(0xffffffffu, v, d);
                if (lane >= d) {
                    v += u;
                }
            }
            if (lane == 31) {
                warp_total[warp] = v;
            }
            __syncthreads();
            // acc runs through (carry + S_0) + … + S_u; this warp's offset is its value before S_warp
            // is added, the next tile's carry its last value.
            double acc = carry;
            double before = carry;
#pragma unroll
            for (unsigned int u = 0; u < FGN_SCAN_WARPS; ++u) {
                before = u == warp ? acc : before;
                acc += warp_total[u];
            }
            if (k < un) {
                out[k] = static_cast<T>(before + v);
            }
            carry = acc;
            __syncthreads();  // warp_total is rewritten by the next tile
        }
    }
}

// fgn_path: x_l = scale * path_part(buf, i, m, l), the products not rounded to T.
template <typename T>
__device__ __forceinline__ void fgn_path(T* __restrict__ dst,
                                         const typename Cplx<T>::type* __restrict__ buf,
                                         long long paths, long long n, long long m, double scale) {
    const unsigned long long um = static_cast<unsigned long long>(m);
    scan_rows<T>(dst, paths, n, [&](unsigned long long row, unsigned long long k) {
        return scale * static_cast<double>(path_part<T>(buf, row, um, k));
    });
}

// fgn_cumsum: dst[i, k] = sum_{l <= k} dst[i, l] in place, the values widened to double and summed
// by fgn_path's scan (the same roundings), each output rounded once to T. Every thread reads its
// value of a tile before the tile's first barrier and writes it after, so no value is read after it
// was overwritten. The float multi-pass plans write the increments with the FFT's last pass and
// sum them here: the path's inputs are the stored increments (x_l rounded to T), not fgn_path's
// unrounded products.
template <typename T>
__device__ __forceinline__ void fgn_cumsum(T* dst, long long paths, long long n) {
    const unsigned long long un = static_cast<unsigned long long>(n);
    scan_rows<T>(dst, paths, n, [&](unsigned long long row, unsigned long long k) {
        return static_cast<double>(dst[row * un + k]);
    });
}


// fgn_first_pass is the first pass (radix R = 2^LOGR, Ns = 1) of the float multi-pass FFT of every
// pair's signal with the signal generated in the block instead of loaded: no spectrum buffer is
// written or read. Its output is the first pass's output, bit for bit (the same values go through
// the same stages), written to dst (⌈paths/2⌉, m) complex; the remaining passes are fft.cu's.
//
// The pass's columns are j ∈ [0, cols), cols = m/R, column j holding elements j + cols·r, r < R.
// Element i of the signal comes from Box-Muller pair p = min(i, m − i) (pair 0 also gives element
// n_e), and p < n_e is element j + cols·r' with r' < R/2 of column j, its mirror m − p element
// r = R − 1 − r' of column cols − j (R − r' of column 0 when j = 0). A tile takes C columns closed
// under the mirror j ↔ cols − j, so that each pair it needs is drawn once, for both of its elements:
// with H = C/2, tile u ≥ 1 of a signal holds A = [u·H, u·H + H) and cols − A, tile 0 holds [0, H),
// cols − [1, H) and the self-mirrored cols/2 (column 0 is self-mirrored too). Its C·R/2 pairs are
// drawn into shared memory first — slot (column index ci, r') holding the signal's values at p and
// m − p, formed by pack_pair and pack_zero as in fgn_spectrum — then each thread loads its elements
// from there. A Philox lane serves pairs 2L and 2L + 1 (columns j and j ^ 1): the slot of an even
// column draws the lane for both when j + 1 is in the tile, an odd column whose j − 1 is in the
// tile draws nothing, and the threads share out the drawing slots only (C = 8: 5 columns of 8
// draw, 2.5 slots per thread and tile).
template <int LOGR>
__device__ __forceinline__ void fgn_first_pass(float2* __restrict__ dst, const float* __restrict__ w,
                                               const float2* __restrict__ tw, long long paths, long long ne,
                                               unsigned long long seed, unsigned long long site,
                                               unsigned long long chain0) {
    using S = Shape<float, LOGR>;
    constexpr int E = S::kE, R = S::kR, RT = S::kRT, C = S::kC, TPB = S::kThreads, H = C / 2;
    constexpr int HALF = R / 2;  // slots per column
    static_assert(C >= 2, "a tile needs a column and its mirror");
    __shared__ union {
        float2 z[C * HALF][2];  // slot: the values at p and at m − p
        float sbuf[S::kTile];   // the stages' exchange buffer, once the tile is loaded
    } sm;

    const long long m = 2 * ne, cols = m >> LOGR, tiles_per = cols / C;
    const long long pairs = (paths + 1) / 2, ntiles = pairs * tiles_per;
    const int tid = threadIdx.x;
    const int c = tid & (C - 1), t = tid >> S::kLogC;  // the strided thread mapping of fft_pass
    const int base = swizzle<float>(c << LOGR), rd = base ^ swizzle<float>(t), lin = swizzle<float>(tid);
    const uint2 key = philox_key(seed);

    // column of tile index ci in tile u of a signal, and the tile index of column x (−1: not in
    // the tile)
    auto col = [&](long long u, int ci) -> long long {
        if (ci < H) return u * H + ci;
        const int k = ci - H;
        if (u == 0) return k == 0 ? cols / 2 : cols - k;
        return cols - (u * H + k);
    };
    auto index_of = [&](long long u, long long x) -> int {
        if (u == 0) {
            if (x < H) return static_cast<int>(x);
            if (x == cols / 2) return H;
            if (x > cols - H) return H + static_cast<int>(cols - x);
            return -1;
        }
        if (x >= u * H && x < u * H + H) return static_cast<int>(x - u * H);
        const long long y = cols - x;
        if (y >= u * H && y < u * H + H) return H + static_cast<int>(y - u * H);
        return -1;
    };
    // The slots that draw (owners) and the slot of the lane's other pair they also form (−1: none),
    // for tile 0 (g = 0) and the others (g = 1: the same pattern for every u ≥ 1, since H is even
    // or, for C = 2, every slot draws alone). Work is spread over the owners' slots only, so every
    // thread draws about equally often.
    __shared__ signed char own_ci[2][C], own_other[2][C];
    __shared__ int own_n[2];
    if (tid == 0) {
        for (int g = 0; g < 2; ++g) {
            const long long u = g == 0 || tiles_per < 2 ? 0 : 1;
            int n = 0;
            for (int ci = 0; ci < C; ++ci) {
                const long long j = col(u, ci);
                if ((j & 1) != 0 && index_of(u, j - 1) >= 0) {
                    continue;  // the even column's slot draws this lane
                }
                own_ci[g][n] = static_cast<signed char>(ci);
                own_other[g][n] = static_cast<signed char>((j & 1) == 0 ? index_of(u, j + 1) : -1);
                ++n;
            }
            own_n[g] = n;
        }
    }
    __syncthreads();

    int log_tiles = 0;  // tiles_per = cols / C is a power of two
    while ((1LL << log_tiles) < tiles_per) {
        ++log_tiles;
    }
    for (long long tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
        const long long b = tile >> log_tiles, u = tile & (tiles_per - 1);
        const int g = u == 0 ? 0 : 1;

        // ---- draw the tile's pairs into the slots ----
        const unsigned long long pa = 2 * static_cast<unsigned long long>(b);
        const bool hasb = static_cast<long long>(pa) + 1 < paths;
        for (int idx = tid; idx < own_n[g] * HALF; idx += TPB) {
            const int o = idx / HALF, rr = idx - o * HALF;
            const int ci = own_ci[g][o], other = own_other[g][o];
            const long long j = col(u, ci);
            const long long p = j + cols * rr;
            const unsigned int lane = static_cast<unsigned int>(p >> 1);
            const bool second = (j & 1) != 0 || other >= 0;
            float za[4], zb[4] = {0.f, 0.f, 0.f, 0.f};
            normals_f32(philox_block(key, site, static_cast<unsigned int>(chain0 + pa), lane), second, &za[0], &za[1],
                        &za[2], &za[3]);
            if (hasb) {
                normals_f32(philox_block(key, site, static_cast<unsigned int>(chain0 + pa + 1), lane), second, &zb[0],
                            &zb[1], &zb[2], &zb[3]);
            }
            // the values of pair q of the lane (q = p & 1 for this slot, 1 for the other)
            auto form = [&](int q, long long pq, int slot) {
                if (pq == 0) {
                    pack_zero<float>(w[0], w[ne], za[0], za[1], zb[0], zb[1], &sm.z[slot][0], &sm.z[slot][1]);
                } else {
                    // q selects by value (an index would put the arrays in local memory)
                    pack_pair<float>(w[pq], q != 0 ? za[2] : za[0], q != 0 ? za[3] : za[1], q != 0 ? zb[2] : zb[0],
                                     q != 0 ? zb[3] : zb[1], &sm.z[slot][0], &sm.z[slot][1]);
                }
            };
            form(static_cast<int>(j & 1), p, ci * HALF + rr);
            if (other >= 0) {
                form(1, p + 1, other * HALF + rr);
            }
        }
        __syncthreads();

        // ---- load: v[mm] is element r = t + mm·RT of column col(u, c) ----
        float2 v[E];
        {
            const long long j = col(u, c);
            const int mc = (u == 0 && (c == 0 || c == H)) ? c : (c < H ? c + H : c - H);  // the mirror column
#pragma unroll
            for (int mm = 0; mm < E; ++mm) {
                const int r = t + mm * RT;
                if (r < HALF) {
                    v[mm] = sm.z[c * HALF + r][0];
                } else if (j == 0) {
                    v[mm] = sm.z[r == HALF ? 0 : R - r][1];  // r = R/2: element n_e, from pair 0
                } else {
                    v[mm] = sm.z[mc * HALF + (R - 1 - r)][1];
                }
            }
        }
        __syncthreads();  // the slots are the exchange buffer from here on

        stages<float, LOGR, 0>(v, sm.sbuf, tw, base, rd, t);

        // ---- store: column col(ci) of signal b is the run dst[b·m + col(ci)·R, +R) ----
        exchange<float, E>(
            v, sm.sbuf, [&](int q) { return rd ^ swizzle<float>(q * RT); },
            [&](int mm) { return lin ^ swizzle<float>(mm * TPB); });
        float2* const out = dst + b * m;
#pragma unroll
        for (int mm = 0; mm < E; ++mm) {
            const int i = tid + mm * TPB;
            out[col(u, i >> LOGR) * R + (i & (R - 1))] = v[mm];
        }
    }
}
}  // namespace

// fgn_spectrum_f32 / _f64: buf (⌈paths/2⌉, m) interleaved complex, w (n_e + 1) weights; path i uses
// chain chain0 + i of the draw (seed, site). See the file comment.
extern "C" __global__ void fgn_spectrum_f32(float* buf, const float* w, long long paths,
                                            long long ne, unsigned long long seed,
                                            unsigned long long site, unsigned long long chain0) {
    fgn_spectrum<float>(reinterpret_cast<float2*>(buf), w, paths, ne, seed, site, chain0);
}

extern "C" __global__ void fgn_spectrum_f64(double* buf, const double* w, long long paths,
                                            long long ne, unsigned long long seed,
                                            unsigned long long site, unsigned long long chain0) {
    fgn_spectrum<double>(reinterpret_cast<double2*>(buf), w, paths, ne, seed, site, chain0);
}

// fgn_increments_f32 / _f64: dst (paths, n) = scale * the paths' parts of buf[:, :n], buf
// (⌈paths/2⌉, m) complex.
extern "C" __global__ void fgn_increments_f32(float* dst, const float* buf, long long paths,
                                              long long n, long long m, double scale) {
    fgn_increments<float>(dst, reinterpret_cast<const float2*>(buf), paths, n, m, scale);
}

extern "C" __global__ void fgn_increments_f64(double* dst, const double* buf, long long paths,
                                              long long n, long long m, double scale) {
    fgn_increments<double>(dst, reinterpret_cast<const double2*>(buf), paths, n, m, scale);
}

// fgn_cumsum_f32: dst (paths, n) = its own running sums, in place; launched with FGN_SCAN_THREADS
// threads per block. (Only float plans write the increments from the FFT's last pass.)
extern "C" __global__ void fgn_cumsum_f32(float* dst, long long paths, long long n) {
    fgn_cumsum<float>(dst, paths, n);
}

// fgn_path_f32 / _f64: dst (paths, n) = running sums of scale * the paths' parts of buf[:, :n];
// launched with FGN_SCAN_THREADS threads per block.
extern "C" __global__ void fgn_path_f32(float* dst, const float* buf, long long paths, long long n,
                                        long long m, double scale) {
    fgn_path<float>(dst, reinterpret_cast<const float2*>(buf), paths, n, m, scale);
}

extern "C" __global__ void fgn_path_f64(double* dst, const double* buf, long long paths,
                                        long long n, long long m, double scale) {
    fgn_path<double>(dst, reinterpret_cast<const double2*>(buf), paths, n, m, scale);
}

// fgn_r<R>_f32: the first pass (radix R) of the float multi-pass FFT of fgn_spectrum's signals,
// generating them itself (fgn_first_pass): dst (⌈paths/2⌉, m) complex, w and the draw as for
// fgn_spectrum, tw the FFT's quarter-wave table. Launched with 512 threads per block, any grid.
#define FGN_FIRST_PASS(LOGR, R)                                                                          \
    extern "C" __global__ void __launch_bounds__(512, 2)                                                 \
        fgn_r##R##_f32(float* dst, const float* w, const float* tw, long long paths, long long ne,       \
                       unsigned long long seed, unsigned long long site, unsigned long long chain0) {    \
        fgn_first_pass<LOGR>(reinterpret_cast<float2*>(dst), w, reinterpret_cast<const float2*>(tw), paths, \
                             ne, seed, site, chain0);                                                    \
    }

FGN_FIRST_PASS(7, 128)
FGN_FIRST_PASS(8, 256)
FGN_FIRST_PASS(9, 512)
FGN_FIRST_PASS(10, 1024)
FGN_FIRST_PASS(11, 2048)
