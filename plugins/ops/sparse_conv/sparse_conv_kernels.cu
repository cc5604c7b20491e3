// SparseConv: gather -> GEMM over an output-stationary neighbour map, fp32 accumulation; bias, a residual and
// the activation fused in the epilogue. Output-stationary means each block owns its output tile for the whole
// reduction over (k, c_in): no atomics, and a fixed summation order (k ascending, then c_in ascending), so
// results are bitwise deterministic.
//
// The map comes either as it is ([K, M]) or as its ConvPlan ([K + 1 + ceil(K/32), M], conv_plan_kernels.cu):
// the same map with its columns grouped by which offsets they use, the column -> output row permutation and
// each column's offset mask. Tiles of 64 consecutive columns then need few offsets, and the masks say which
// ones without reading the map.
//
// Two paths, picked in sparseConv():
//  - fp16 on sm_80 and newer: tensor cores (mma.sync m16n8k16, fp16 inputs, fp32 accumulation). A block owns
//    64 map columns x 16/32/64/128 output channels (the smallest that covers C_out, up to 128) with 4 warps.
//    The reduction runs over the tile's active offsets and C_in flattened, 32 at a time: with C_in = 16 a stage
//    holds two offsets, with C_in = 5 six and a half, so thin layers pad to 32 once per tile, not per offset.
//    Each warp skips the mma of a 16-row fragment none of whose rows has an input for the offsets of that k16
//    step. Gathers are double-buffered through registers, so the next stage's global loads are in flight
//    during the current stage's MMAs. When the grid would leave SMs idle (few tiles), each tile's active
//    offsets are split over up to kMaxSplits blocks, whose fp32 partial sums a second kernel adds in split
//    order (deterministic) before the epilogue; this needs the workspace sparseConvWorkspaceSize gives.
//  - fp32 (and fp16 on older GPUs): CUDA-core FMAs on 64 x 64 tiles, exact fp32 arithmetic (never TF32).
// Both take any channel count (edges are zero-padded in shared memory; 16-byte vector loads only when
// C_in % 8 == 0 and the pointers allow it), any kernel volume, and skip the offsets that have no input in
// the block's 64 rows (most offsets of a sparse map, near a tile's sites).
#include <climits>

#include "device_common.cuh"
#include "ops/sparse_conv/sparse_conv_kernels.h"

namespace sparsetrt {
namespace kernels {
namespace {

__device__ __forceinline__ float activate(float v, Activation act, float alpha) {
  switch (act) {
    case Activation::kRelu:
      return v > 0.0f ? v : 0.0f;
    case Activation::kLeakyRelu:
      return v > 0.0f ? v : v * alpha;
    case Activation::kSigmoid:
      return 1.0f / (1.0f + expf(-v));  // expf, not __expf: fp32 results must match the reference closely
    default:
      return v;
  }
}

// The map as the kernels read it: column i of `entries` (row k at entries + k * m_total) feeds output row
// perm[i] (i itself without a plan). A plan also gives each column's offset bitmask, `words` 32-bit words
// (word w of column i at masks + w * m_total + i).
struct MapView {
  const int32_t* entries;
  const int32_t* perm;    // null: the identity (a plain map)
  const uint32_t* masks;  // null: a plain map
  int32_t words;
};

// The output row of map column i, or -1 when a plan names none in [0, M) (a plan that did not come from
// ConvPlan: never written through).
__device__ __forceinline__ int64_t outputRow(const MapView& map, int64_t i, int64_t m_total) {
  if (map.perm == nullptr) return i;
  const int32_t r = map.perm[i];
  return r >= 0 && r < m_total ? r : -1;
}

// Epilogue of one output element: bias, residual, activation (fp32), then the output type.
template <typename T>
__device__ __forceinline__ float finish(float v, const T* bias, const T* residual, int64_t row, int32_t co,
                                        int32_t c_out, Activation act, float alpha) {
  if (bias != nullptr) v += detail::toFloat(bias[co]);
  if (residual != nullptr) v += detail::toFloat(residual[row * c_out + co]);
  return activate(v, act, alpha);
}

// ------------------------------------------------------------------------------- CUDA cores (fp32)
constexpr int kTileM = 64;         // output sites per block
constexpr int kTileN = 64;         // output channels per block
constexpr int kTileK = 16;         // input channels per shared-memory stage
constexpr int kConvThreads = 256;  // 16 x 16 threads, each a 4 x 4 micro-tile

template <typename T>
__global__ void __launch_bounds__(kConvThreads)
    gatherGemmKernel(const T* __restrict__ x, MapView map, const T* __restrict__ w, const T* __restrict__ bias,
                     const T* __restrict__ residual, T* __restrict__ out, int64_t n_in, int64_t m_total, int64_t kvol,
                     int32_t c_in, int32_t c_out, Activation act, float alpha) {
  // +1 padding: the stores below walk the first index across a warp; an odd row length keeps them on
  // distinct banks.
  __shared__ float xs[kTileK][kTileM + 1];
  __shared__ float ws[kTileK][kTileN + 1];
  __shared__ int32_t rows[kTileM];

  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kTileM;
  const int32_t co0 = static_cast<int32_t>(blockIdx.y) * kTileN;

  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

  for (int64_t k = 0; k < kvol; ++k) {
    int32_t r = -1;
    if (tid < kTileM) {
      const int64_t m = m0 + tid;
      // With a plan, the column's mask says whether to read the entry at all.
      const bool listed =
          map.masks == nullptr || (m < m_total && ((map.masks[(k >> 5) * m_total + m] >> (k & 31)) & 1u) != 0);
      r = m < m_total && listed ? map.entries[k * m_total + m] : -1;
      if (r >= n_in) r = -1;  // not a row of the features (kernels.h): no input, never read
      rows[tid] = r;
    }
    // Skip offsets with no input for the whole tile. Also the barrier that publishes rows[] (the last reads
    // of the previous offset's rows[] precede the __syncthreads closing its last stage).
    if (!__syncthreads_or(r >= 0)) continue;

    for (int32_t c0 = 0; c0 < c_in; c0 += kTileK) {
      for (int e = tid; e < kTileM * kTileK; e += kConvThreads) {
        const int rr = e / kTileK, c = e % kTileK;  // consecutive threads read consecutive channels of a row
        const int32_t row = rows[rr];
        const int32_t ci = c0 + c;
        xs[c][rr] = (row >= 0 && ci < c_in) ? detail::toFloat(x[static_cast<int64_t>(row) * c_in + ci]) : 0.0f;
      }
      for (int e = tid; e < kTileN * kTileK; e += kConvThreads) {
        const int j = e / kTileK, c = e % kTileK;
        const int32_t co = co0 + j, ci = c0 + c;
        ws[c][j] =
            (co < c_out && ci < c_in) ? detail::toFloat(w[(static_cast<int64_t>(co) * kvol + k) * c_in + ci]) : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int c = 0; c < kTileK; ++c) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = xs[c][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = ws[c][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      __syncthreads();  // before the next stage overwrites xs/ws
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= m_total) continue;
    const int64_t row = outputRow(map, m, m_total);
    if (row < 0) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int32_t co = co0 + tx + 16 * j;  // consecutive threads: consecutive channels, coalesced stores
      if (co >= c_out) continue;
      out[row * c_out + co] = detail::fromFloat<T>(finish(acc[i][j], bias, residual, row, co, c_out, act, alpha));
    }
  }
}

template <typename T>
cudaError_t launchCudaCoreConv(const void* x, int64_t n_in, int64_t c_in, const MapView& map, int64_t kvol, int64_t m,
                               const void* w, const void* bias, const void* residual, int64_t c_out, Activation act,
                               float alpha, void* out, cudaStream_t stream) {
  const int64_t m_tiles = (m + kTileM - 1) / kTileM, n_tiles = (c_out + kTileN - 1) / kTileN;
  if (m_tiles > INT32_MAX || n_tiles > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned int>(m_tiles), static_cast<unsigned int>(n_tiles));
  return detail::launch<gatherGemmKernel<T>>(grid, kConvThreads, 0, stream, static_cast<const T*>(x), map,
                                             static_cast<const T*>(w), static_cast<const T*>(bias),
                                             static_cast<const T*>(residual), static_cast<T*>(out), n_in, m, kvol,
                                             static_cast<int32_t>(c_in), static_cast<int32_t>(c_out), act, alpha);
}

// ------------------------------------------------------------------------------- tensor cores (fp16)
constexpr int kMmaThreads = 128;  // 4 warps
constexpr int kMmaRows = 64;      // map columns (output rows) per block
constexpr int kGroupRows = 16;    // rows of one mma fragment: the granularity of skipping
constexpr int kGroups = kMmaRows / kGroupRows;
constexpr int kMmaK = 32;  // reduction elements per stage: two m16n8k16 steps
// Shared-memory row pitch in halves: 80 bytes, so the 8 row addresses of each ldmatrix phase fall on 8
// distinct 16-byte bank groups (0, 80, 160, ... mod 128 are all different) and 16-byte stores stay aligned.
constexpr int kPitch = kMmaK + 8;
constexpr int kOffsetWindow = 256;  // offsets whose activity is listed at a time (any K works, window by window)
constexpr int kWindowWords = kOffsetWindow / 32;

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// The input row that map column m reads through offset k, or -1 (an entry outside [0, N): never read).
__device__ __forceinline__ int32_t mapEntry(const MapView& map, int64_t k, int64_t m, int64_t m_total, int64_t n_in) {
  if (m >= m_total) return -1;
  const int32_t row = map.entries[k * m_total + m];
  return row >= 0 && row < n_in ? row : -1;
}

// Loads 16 reduction elements [r, r + 16) of one row into two 16-byte registers: element r is channel
// r % C_in of the row's input through active offset a = r / C_in (`rowp(a)` gives the input row's
// features, or null when it has none). Zeros past `len` or for a null row. kVec: C_in % 8 == 0 and 16-byte
// aligned rows, so each group of 8 lies within one offset and is either wholly inside or wholly outside.
template <bool kVec, typename RowOf>
__device__ __forceinline__ void loadSixteen(RowOf rowp, int32_t r, int32_t len, int32_t c_in, uint4 (&reg)[2]) {
  if (kVec) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int32_t rr = r + 8 * h;
      const __half* p = rr < len ? rowp(rr / c_in) : nullptr;
      reg[h] = p != nullptr ? __ldg(reinterpret_cast<const uint4*>(p + rr % c_in)) : make_uint4(0, 0, 0, 0);
    }
  } else {
    uint32_t u[8];
    int32_t a = r / c_in, c = r % c_in;
    const unsigned short* p = r < len ? reinterpret_cast<const unsigned short*>(rowp(a)) : nullptr;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      uint32_t half2[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int32_t rr = r + 2 * i + e;
        half2[e] = (rr < len && p != nullptr) ? __ldg(p + c) : 0u;
        if (++c == c_in) {  // the next element belongs to the next active offset
          c = 0;
          ++a;
          p = rr + 1 < len ? reinterpret_cast<const unsigned short*>(rowp(a)) : nullptr;
        }
      }
      u[i] = half2[0] | (half2[1] << 16);  // the lower address in the low half, as a 32-bit load would give it
    }
    reg[0] = make_uint4(u[0], u[1], u[2], u[3]);
    reg[1] = make_uint4(u[4], u[5], u[6], u[7]);
  }
}

// MI x NJ m16n8 accumulator tiles per warp, warps arranged WM x WN: the block covers 64 x (WN * NJ * 8).
// gridDim.z > 1 splits each tile's active offsets over that many blocks, which write fp32 partial sums to
// `partial` ([splits, M, C_out]) for reducePartialsKernel instead of finishing the output.
template <int MI, int NJ, int WM, int WN, bool kVec>
__global__ void __launch_bounds__(kMmaThreads)
    mmaConvKernel(const __half* __restrict__ x, MapView map, const __half* __restrict__ w,
                  const __half* __restrict__ bias, const __half* __restrict__ residual, __half* __restrict__ out,
                  float* __restrict__ partial, int64_t n_in, int64_t m_total, int64_t kvol, int32_t c_in, int32_t c_out,
                  Activation act, float alpha) {
  constexpr int kBM = WM * MI * 16, kBN = WN * NJ * 8;
  static_assert(kBM == kMmaRows && WM * WN * 32 == kMmaThreads, "4 warps over 64 rows");
  static_assert(NJ % 2 == 0, "B fragments are loaded two n8 tiles per ldmatrix.x4");
  // Stage tasks: 16 reduction elements of one row each. A: 64 rows x 2 = 128 tasks, one per thread; B: kBN x 2.
  constexpr int kBTasks = (kBN * 2 + kMmaThreads - 1) / kMmaThreads;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) __half a_smem[2][kBM * kPitch];
  __shared__ __align__(16) __half b_smem[2][kBN * kPitch];
  __shared__ uint32_t group_words[kGroups][kWindowWords];  // per 16-row group: offsets of the window it uses
  __shared__ int32_t active[kOffsetWindow];                // the window's offsets any row uses, ascending
  __shared__ uint8_t active_groups[kOffsetWindow];         // bit g: group g uses active[a]
  __shared__ int32_t num_active;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm0 = (warp / WN) * (MI * 16), wn0 = (warp % WN) * (NJ * 8);
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int32_t n0 = static_cast<int32_t>(blockIdx.y) * kBN;
  const int splits = static_cast<int>(gridDim.z), part = static_cast<int>(blockIdx.z);
  const int a_row = tid >> 1, a_half = tid & 1;  // this thread's A task
  const int64_t a_m = m0 + a_row;

  float acc[MI][NJ][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NJ; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  uint4 a_reg[2], b_reg[kBTasks][2];
  int32_t a_begin = 0, len = 0;  // this block's active offsets [a_begin, ...), len = their count x C_in
  // The input row of this thread's A row through active offset a (cached: consecutive stages often share it).
  int32_t cached_a = -1;
  const __half* cached_row = nullptr;
  auto a_rowp = [&](int32_t a) -> const __half* {
    if (a != cached_a) {
      cached_a = a;
      const int32_t row = mapEntry(map, active[a_begin + a], a_m, m_total, n_in);
      cached_row = row >= 0 ? x + static_cast<int64_t>(row) * c_in : nullptr;
    }
    return cached_row;
  };
  // Stage s: reduction elements [32 s, 32 s + 32) (global -> registers).
  auto load = [&](int32_t s) {
    loadSixteen<kVec>(a_rowp, kMmaK * s + 16 * a_half, len, c_in, a_reg);
#pragma unroll
    for (int t = 0; t < kBTasks; ++t) {
      const int e = tid + t * kMmaThreads;
      if (e < kBN * 2) {
        const int32_t co = n0 + (e >> 1);
        auto w_rowp = [&](int32_t a) -> const __half* {
          return co < c_out ? w + (static_cast<int64_t>(co) * kvol + active[a_begin + a]) * c_in : nullptr;
        };
        loadSixteen<kVec>(w_rowp, kMmaK * s + 16 * (e & 1), len, c_in, b_reg[t]);
      }
    }
  };
  // Registers -> shared buffer `buf`.
  auto store = [&](int buf) {
    uint4* a_dst = reinterpret_cast<uint4*>(&a_smem[buf][a_row * kPitch + 16 * a_half]);
    a_dst[0] = a_reg[0];
    a_dst[1] = a_reg[1];
#pragma unroll
    for (int t = 0; t < kBTasks; ++t) {
      const int e = tid + t * kMmaThreads;
      if (e < kBN * 2) {
        uint4* b_dst = reinterpret_cast<uint4*>(&b_smem[buf][(e >> 1) * kPitch + 16 * (e & 1)]);
        b_dst[0] = b_reg[t][0];
        b_dst[1] = b_reg[t][1];
      }
    }
  };
  // The warp's MI x NJ tiles over the 32 reduction elements of buffer `buf` (stage s). Fragment layouts: PTX
  // ISA, mma.m16n8k16 with .f16 A (row) / B (col); ldmatrix.x4 hands out four 8x8 matrices, matrix q addressed
  // by lanes 8q..8q+7. A fragment whose 16 rows have no input for the k16 step's offsets is skipped (its A
  // rows are zeros): the decision is warp-uniform, so the warp's collectives stay whole.
  auto compute = [&](int buf, int32_t s) {
    const __half* a_s = a_smem[buf];
    const __half* b_s = b_smem[buf];
#pragma unroll
    for (int ks = 0; ks < kMmaK; ks += 16) {
      const int32_t r0 = kMmaK * s + ks;
      if (r0 >= len) break;  // past the reduction: all zeros
      const int32_t a_lo = r0 / c_in, a_hi = (r0 + 15 < len ? r0 + 15 : len - 1) / c_in;
      uint32_t used = 0;  // bit g: group g uses an offset of this step
      for (int32_t a = a_lo; a <= a_hi; ++a) used |= active_groups[a_begin + a];
      bool run[MI];
      bool any = false;
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        run[i] = ((used >> ((wm0 + 16 * i) / kGroupRows)) & 1u) != 0;
        any = any || run[i];
      }
      if (!any) continue;
      uint32_t af[MI][4], bf[NJ][2];
#pragma unroll
      for (int j = 0; j < NJ; j += 2) {
        // Matrices: n tile j / j + 1 (lane >> 4), channels ks / ks + 8 ((lane >> 3) & 1): b0, b1 of two tiles.
        // Rows of b_smem are output channels with reduction elements contiguous, i.e. B in the "col" layout.
        const __half* p = b_s + (wn0 + (j + (lane >> 4)) * 8 + (lane & 7)) * kPitch + ks + ((lane >> 3) & 1) * 8;
        SPT_PTX("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n",
                (SPT_PTX_OUT("r", bf[j][0]), SPT_PTX_OUT("r", bf[j][1]), SPT_PTX_OUT("r", bf[j + 1][0]),
                 SPT_PTX_OUT("r", bf[j + 1][1])),
                (SPT_PTX_IN("r", sharedAddress(p))), ("memory"));
      }
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        if (!run[i]) continue;
        // Matrices: rows 0-7 / 8-15 (lane & 15), elements ks / ks + 8 (lane >> 4): a0..a3 of the fragment.
        const __half* p = a_s + (wm0 + i * 16 + (lane & 15)) * kPitch + ks + (lane >> 4) * 8;
        SPT_PTX("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n",
                (SPT_PTX_OUT("r", af[i][0]), SPT_PTX_OUT("r", af[i][1]), SPT_PTX_OUT("r", af[i][2]),
                 SPT_PTX_OUT("r", af[i][3])),
                (SPT_PTX_IN("r", sharedAddress(p))), ("memory"));
#pragma unroll
        for (int j = 0; j < NJ; ++j)
          SPT_PTX(
              "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
              "{%0, %1, %2, %3};\n",
              (SPT_PTX_INOUT("f", acc[i][j][0]), SPT_PTX_INOUT("f", acc[i][j][1]), SPT_PTX_INOUT("f", acc[i][j][2]),
               SPT_PTX_INOUT("f", acc[i][j][3])),
              (SPT_PTX_IN("r", af[i][0]), SPT_PTX_IN("r", af[i][1]), SPT_PTX_IN("r", af[i][2]),
               SPT_PTX_IN("r", af[i][3]), SPT_PTX_IN("r", bf[j][0]), SPT_PTX_IN("r", bf[j][1])),
              ());
      }
    }
  };

  for (int64_t kb = 0; kb < kvol; kb += kOffsetWindow) {
    const int window = static_cast<int>(kvol - kb < kOffsetWindow ? kvol - kb : kOffsetWindow);
    const int words = (window + 31) / 32;
    // Which offsets of the window each 16-row group uses.
    if (map.masks != nullptr) {
      // From the plan's column masks: threads 0-63 and 64-127 OR the masks of their row over 16 lanes, for
      // alternate words.
      const int r = tid & 63;
      for (int wd = tid >> 6; wd < words; wd += 2) {
        const int64_t word = (kb >> 5) + wd, m = m0 + r;
        uint32_t bits = m < m_total ? map.masks[word * m_total + m] : 0u;
        if (wd == words - 1 && (window & 31) != 0) bits &= (1u << (window & 31)) - 1u;
#pragma unroll
        for (int d = 8; d >= 1; d >>= 1) bits |= __shfl_xor_sync(0xffffffffu, bits, d);
        if ((lane & 15) == 0) group_words[r / kGroupRows][wd] = bits;
      }
    } else {
      // From the map itself: a warp per offset (coalesced), a ballot per 32 rows.
      for (int i = tid; i < kGroups * kWindowWords; i += kMmaThreads)
        group_words[i / kWindowWords][i % kWindowWords] = 0;
      __syncthreads();
      for (int j = warp; j < window; j += kMmaThreads / 32) {
        const int64_t k = kb + j;
        const uint32_t lo = __ballot_sync(0xffffffffu, mapEntry(map, k, m0 + lane, m_total, n_in) >= 0);
        const uint32_t hi = __ballot_sync(0xffffffffu, mapEntry(map, k, m0 + 32 + lane, m_total, n_in) >= 0);
        if (lane == 0) {
          const uint32_t used[kGroups] = {lo & 0xFFFFu, lo >> 16, hi & 0xFFFFu, hi >> 16};
#pragma unroll
          for (int g = 0; g < kGroups; ++g)
            if (used[g] != 0) atomicOr(&group_words[g][j >> 5], 1u << (j & 31));
        }
      }
    }
    __syncthreads();
    // List the offsets any group uses, in ascending order (the fixed summation order), 32 at a time by ballot.
    if (warp == 0) {
      int base = 0;
      for (int wd = 0; wd < words; ++wd) {
        uint32_t groups = 0;
#pragma unroll
        for (int g = 0; g < kGroups; ++g) groups |= ((group_words[g][wd] >> lane) & 1u) << g;
        const uint32_t mask = __ballot_sync(0xffffffffu, groups != 0);
        if (groups != 0) {
          const int a = base + __popc(mask & ((1u << lane) - 1u));
          active[a] = static_cast<int32_t>(kb + 32 * wd + lane);
          active_groups[a] = static_cast<uint8_t>(groups);
        }
        base += __popc(mask);
      }
      if (lane == 0) num_active = base;
    }
    __syncthreads();
    // This block's share of the active offsets (all of them unless split), the same in every thread.
    a_begin = static_cast<int32_t>(int64_t{num_active} * part / splits);
    const int32_t a_end = static_cast<int32_t>(int64_t{num_active} * (part + 1) / splits);
    len = (a_end - a_begin) * c_in;
    cached_a = -1;
    const int32_t stages = (len + kMmaK - 1) / kMmaK;  // block-uniform
    if (stages > 0) {
      load(0);
      store(0);
      __syncthreads();
      for (int32_t s = 0; s < stages; ++s) {
        // One barrier per stage: buffer s & 1 is read here; buffer (s + 1) & 1 was last read in stage s - 1,
        // which every thread finished before the barrier that closed it.
        if (s + 1 < stages) load(s + 1);  // in flight during the MMAs
        compute(static_cast<int>(s & 1), s);
        if (s + 1 < stages) store(static_cast<int>((s + 1) & 1));
        __syncthreads();
      }
    }
    // The next window rewrites the lists only after the barriers following its group pass, which every thread
    // reaches after its last read of this window's lists (the barrier closing the last stage, or the one above).
  }

  // Epilogue: fragment element e of tile (i, j) is row g (+8 for e >= 2), column 2t + (e & 1).
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < MI; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + wm0 + i * 16 + g + 8 * h;
      if (m >= m_total) continue;
      if (splits > 1) {  // partial sums, finished by reducePartialsKernel
        float* p = partial + (static_cast<int64_t>(part) * m_total + m) * c_out;
#pragma unroll
        for (int j = 0; j < NJ; ++j) {
          const int32_t co = n0 + wn0 + j * 8 + 2 * t;
          if (co < c_out) p[co] = acc[i][j][2 * h];
          if (co + 1 < c_out) p[co + 1] = acc[i][j][2 * h + 1];
        }
        continue;
      }
      const int64_t row = outputRow(map, m, m_total);
      if (row < 0) continue;
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        const int32_t co = n0 + wn0 + j * 8 + 2 * t;
        if (co >= c_out) continue;
        const float v0 = finish(acc[i][j][2 * h], bias, residual, row, co, c_out, act, alpha);
        __half* o = out + row * c_out + co;
        if (co + 1 < c_out) {
          const float v1 = finish(acc[i][j][2 * h + 1], bias, residual, row, co + 1, c_out, act, alpha);
          if ((reinterpret_cast<uintptr_t>(o) & 3u) == 0) {
            *reinterpret_cast<__half2*>(o) = __floats2half2_rn(v0, v1);
          } else {
            o[0] = __float2half_rn(v0);
            o[1] = __float2half_rn(v1);
          }
        } else {
          o[0] = __float2half_rn(v0);
        }
      }
    }
  }
#else
  // Never launched below sm_80 (sparseConv checks the device); this keeps older targets compiling.
  (void)x, (void)map, (void)w, (void)bias, (void)residual, (void)out, (void)partial, (void)n_in, (void)m_total,
      (void)kvol, (void)c_in, (void)c_out, (void)act, (void)alpha;
#endif
}

// out[perm[m]] = act(sum over splits, in split order, of partial[s, m] + bias + residual).
__global__ void reducePartialsKernel(const float* __restrict__ partial, int splits, MapView map,
                                     const __half* __restrict__ bias, const __half* __restrict__ residual,
                                     __half* __restrict__ out, int64_t m_total, int32_t c_out, Activation act,
                                     float alpha) {
  SPT_GRID_STRIDE(idx, m_total * c_out) {
    const int64_t m = idx / c_out;
    const auto co = static_cast<int32_t>(idx % c_out);
    float v = 0.0f;
    for (int s = 0; s < splits; ++s) v += partial[s * m_total * c_out + idx];
    const int64_t row = outputRow(map, m, m_total);
    if (row >= 0) out[row * c_out + co] = __float2half_rn(finish(v, bias, residual, row, co, c_out, act, alpha));
  }
}

template <int MI, int NJ, int WM, int WN>
cudaError_t launchMmaConv(const void* x, int64_t n_in, int64_t c_in, const MapView& map, int64_t kvol, int64_t m,
                          const void* w, const void* bias, const void* residual, int64_t c_out, Activation act,
                          float alpha, void* out, int splits, float* partial, cudaStream_t stream) {
  constexpr int kBN = WN * NJ * 8;
  const int64_t m_tiles = (m + kMmaRows - 1) / kMmaRows, n_tiles = (c_out + kBN - 1) / kBN;
  if (m_tiles > INT32_MAX || n_tiles > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned int>(m_tiles), static_cast<unsigned int>(n_tiles),
                  static_cast<unsigned int>(splits));
  // 16-byte loads need whole 8-channel groups and aligned rows; otherwise 2-byte loads, same results.
  const bool vec =
      c_in % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
  const auto* xh = static_cast<const __half*>(x);
  const auto* wh = static_cast<const __half*>(w);
  const auto* bh = static_cast<const __half*>(bias);
  const auto* rh = static_cast<const __half*>(residual);
  auto* oh = static_cast<__half*>(out);
  const auto ci = static_cast<int32_t>(c_in), co = static_cast<int32_t>(c_out);
  cudaError_t err =
      vec ? detail::launch<mmaConvKernel<MI, NJ, WM, WN, true>>(grid, kMmaThreads, 0, stream, xh, map, wh, bh, rh, oh,
                                                                partial, n_in, m, kvol, ci, co, act, alpha)
          : detail::launch<mmaConvKernel<MI, NJ, WM, WN, false>>(grid, kMmaThreads, 0, stream, xh, map, wh, bh, rh, oh,
                                                                 partial, n_in, m, kvol, ci, co, act, alpha);
  if (err != cudaSuccess || splits == 1) return err;
  return detail::launch<reducePartialsKernel>(detail::blocksFor(m * c_out), detail::kThreads, 0, stream, partial,
                                              splits, map, bh, rh, oh, m, co, act, alpha);
}

cudaError_t launchTensorCoreConv(const void* x, int64_t n_in, int64_t c_in, const MapView& map, int64_t kvol, int64_t m,
                                 const void* w, const void* bias, const void* residual, int64_t c_out, Activation act,
                                 float alpha, void* out, int splits, float* partial, cudaStream_t stream) {
  // The narrowest block that covers C_out (up to 128): no tensor-core work on channels that do not exist
  // for thin layers, and one gather of the input rows for up to 128 output channels.
#define SPT_MMA_CONV(MI, NJ, WM, WN)                                                                            \
  launchMmaConv<MI, NJ, WM, WN>(x, n_in, c_in, map, kvol, m, w, bias, residual, c_out, act, alpha, out, splits, \
                                partial, stream)
  if (c_out <= 16) return SPT_MMA_CONV(1, 2, 4, 1);
  if (c_out <= 32) return SPT_MMA_CONV(1, 4, 4, 1);
  if (c_out <= 64) return SPT_MMA_CONV(2, 4, 2, 2);
  return SPT_MMA_CONV(2, 8, 2, 2);
#undef SPT_MMA_CONV
}

int64_t mmaBlockColumns(int64_t c_out) { return c_out <= 16 ? 16 : c_out <= 32 ? 32 : c_out <= 64 ? 64 : 128; }

// Device facts, two attribute queries each: no synchronization, capturable.
bool deviceAttribute(cudaDeviceAttr attr, int* value) {
  int device = 0;
  return cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetAttribute(value, attr, device) == cudaSuccess;
}

// mma.sync m16n8k16 with fp16 inputs needs sm_80.
bool tensorCoresAvailable() {
  int major = 0;
  return deviceAttribute(cudaDevAttrComputeCapabilityMajor, &major) && major >= 8;
}

}  // namespace

int64_t sparseConvSplits(int64_t num_out, int64_t c_out, int64_t kernel_volume, int multiprocessors,
                         std::size_t workspace_size) {
  if (num_out <= 0 || c_out <= 0 || kernel_volume < 2 || kernel_volume > kOffsetWindow) return 1;
  const int64_t blocks =
      (num_out + kMmaRows - 1) / kMmaRows * ((c_out + mmaBlockColumns(c_out) - 1) / mmaBlockColumns(c_out));
  const int64_t target = 2 * static_cast<int64_t>(std::max(multiprocessors, 1));  // two blocks per SM at least
  if (blocks >= target) return 1;
  int64_t splits = std::min<int64_t>({kSparseConvMaxSplits, (target + blocks - 1) / blocks, kernel_volume});
  const std::size_t per_split = static_cast<std::size_t>(num_out * c_out) * sizeof(float);
  while (splits > 1 && static_cast<std::size_t>(splits) * per_split > workspace_size) --splits;
  return splits;
}

std::size_t sparseConvWorkspaceSize(int64_t num_out, int64_t c_out, int64_t kernel_volume) {
  // A split grid has splits x M partial rows; splitting only pays while the grid has fewer than two blocks per
  // SM, which keeps that below kSparseConvSplitRows for the largest GPUs we build for.
  if (num_out <= 0 || c_out <= 0 || kernel_volume < 2 || kernel_volume > kOffsetWindow) return 0;
  const int64_t rows = std::min<int64_t>(kSparseConvMaxSplits * num_out, kSparseConvSplitRows);
  return alignUp(static_cast<std::size_t>(rows * c_out) * sizeof(float));
}

cudaError_t sparseConv(DataType dtype, const void* d_features, int64_t num_in, int64_t c_in, const int32_t* d_map,
                       MapLayout layout, int64_t kernel_volume, int64_t num_out, const void* d_weight,
                       const void* d_bias, const void* d_residual, int64_t c_out, Activation activation, float alpha,
                       void* d_out, void* d_workspace, std::size_t workspace_size, cudaStream_t stream) {
  if (num_in < 0 || c_in < 0 || kernel_volume < 1 || kernel_volume > INT32_MAX || num_out < 0 || c_out < 0 ||
      c_in > INT32_MAX || c_out > INT32_MAX || num_out > INT32_MAX || kernel_volume * c_in > INT32_MAX)
    return cudaErrorInvalidValue;
  if (num_out == 0 || c_out == 0) return cudaSuccess;
  MapView map{d_map, nullptr, nullptr, 0};
  if (layout == MapLayout::kPlan) {
    const int64_t words = (kernel_volume + 31) / 32;
    map.perm = d_map + kernel_volume * num_out;
    map.masks = reinterpret_cast<const uint32_t*>(d_map + (kernel_volume + 1) * num_out);
    map.words = static_cast<int32_t>(words);
  }
  switch (dtype) {
    case DataType::kFloat32:
      return launchCudaCoreConv<float>(d_features, num_in, c_in, map, kernel_volume, num_out, d_weight, d_bias,
                                       d_residual, c_out, activation, alpha, d_out, stream);
    case DataType::kFloat16:
      if (tensorCoresAvailable()) {
        int sms = 1;
        if (!deviceAttribute(cudaDevAttrMultiProcessorCount, &sms)) sms = 1;
        const int64_t splits =
            sparseConvSplits(num_out, c_out, kernel_volume, sms, d_workspace != nullptr ? workspace_size : 0);
        return launchTensorCoreConv(d_features, num_in, c_in, map, kernel_volume, num_out, d_weight, d_bias, d_residual,
                                    c_out, activation, alpha, d_out, static_cast<int>(splits),
                                    static_cast<float*>(d_workspace), stream);
      }
      return launchCudaCoreConv<__half>(d_features, num_in, c_in, map, kernel_volume, num_out, d_weight, d_bias,
                                        d_residual, c_out, activation, alpha, d_out, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace sparsetrt
