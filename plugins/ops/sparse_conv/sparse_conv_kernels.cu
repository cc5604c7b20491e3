// SparseConv: gather -> GEMM over an output-stationary neighbour map, fp32 accumulation, bias and
// activation fused in the epilogue. Output-stationary means each block owns its output tile for the whole
// reduction over (k, c_in): no atomics, and a fixed summation order (k ascending, then c_in ascending), so
// results are bitwise deterministic.
//
// Two paths, picked in sparseConv():
//  - fp16 on sm_80 and newer: tensor cores (mma.sync m16n8k16, fp16 inputs, fp32 accumulation). A block owns
//    64 output rows x 16/32/64/128 output channels (the smallest that covers C_out, up to 128) with 4 warps;
//    input rows are gathered through the map into shared memory 32 channels at a time, double-buffered
//    through registers so the next stage's global loads are in flight during the current stage's MMAs.
//  - fp32 (and fp16 on older GPUs): CUDA-core FMAs on 64 x 64 tiles, exact fp32 arithmetic (never TF32).
// Both take any channel count (edges are zero-padded in shared memory; 16-byte vector loads only when
// C_in % 8 == 0 and the pointers allow it), any kernel volume, and skip the offsets that have no input in
// the block's 64 rows (most offsets of a sparse map, near a tile's sites).
#include <climits>

#include "device_common.cuh"
#include "sparsetrt/kernels.h"

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

// ------------------------------------------------------------------------------- CUDA cores (fp32)
constexpr int kTileM = 64;         // output sites per block
constexpr int kTileN = 64;         // output channels per block
constexpr int kTileK = 16;         // input channels per shared-memory stage
constexpr int kConvThreads = 256;  // 16 x 16 threads, each a 4 x 4 micro-tile

template <typename T>
__global__ void __launch_bounds__(kConvThreads)
    gatherGemmKernel(const T* __restrict__ x, const int32_t* __restrict__ neighbors, const T* __restrict__ w,
                     const T* __restrict__ bias, T* __restrict__ out, int64_t n_in, int64_t m_total, int64_t kvol,
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
      r = m < m_total ? neighbors[k * m_total + m] : -1;
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
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int32_t co = co0 + tx + 16 * j;  // consecutive threads: consecutive channels, coalesced stores
      if (co >= c_out) continue;
      float v = acc[i][j];
      if (bias != nullptr) v += detail::toFloat(bias[co]);
      out[m * c_out + co] = detail::fromFloat<T>(activate(v, act, alpha));
    }
  }
}

template <typename T>
cudaError_t launchCudaCoreConv(const void* x, int64_t n_in, int64_t c_in, const int32_t* neighbors, int64_t kvol,
                               int64_t m, const void* w, const void* bias, int64_t c_out, Activation act, float alpha,
                               void* out, cudaStream_t stream) {
  const int64_t m_tiles = (m + kTileM - 1) / kTileM, n_tiles = (c_out + kTileN - 1) / kTileN;
  if (m_tiles > INT32_MAX || n_tiles > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned int>(m_tiles), static_cast<unsigned int>(n_tiles));
  return detail::launch<gatherGemmKernel<T>>(grid, kConvThreads, 0, stream, static_cast<const T*>(x), neighbors,
                                             static_cast<const T*>(w), static_cast<const T*>(bias),
                                             static_cast<T*>(out), n_in, m, kvol, static_cast<int32_t>(c_in),
                                             static_cast<int32_t>(c_out), act, alpha);
}

// ------------------------------------------------------------------------------- tensor cores (fp16)
constexpr int kMmaThreads = 128;  // 4 warps
constexpr int kMmaRows = 64;      // output rows per block (= the granularity of offset skipping)
constexpr int kMmaK = 32;         // input channels per stage: two m16n8k16 steps
// Shared-memory row pitch in halves: 80 bytes, so the 8 row addresses of each ldmatrix phase fall on 8
// distinct 16-byte bank groups (0, 80, 160, ... mod 128 are all different) and 16-byte stores stay aligned.
constexpr int kPitch = kMmaK + 8;
constexpr int kOffsetWindow = 256;  // offsets whose activity is listed at a time (any K works, window by window)

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Loads 16 consecutive halves rowp[c .. c + 16) into two 16-byte registers, zeros past c_in or for a null row.
// kVec: C_in % 8 == 0 and 16-byte aligned rows, so each group of 8 is either wholly inside or wholly outside.
template <bool kVec>
__device__ __forceinline__ void loadSixteen(const __half* rowp, int32_t c, int32_t c_in, uint4 (&r)[2]) {
  if (kVec) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int32_t cc = c + 8 * h;
      r[h] = (rowp != nullptr && cc < c_in) ? __ldg(reinterpret_cast<const uint4*>(rowp + cc)) : make_uint4(0, 0, 0, 0);
    }
  } else {
    const unsigned short* p = reinterpret_cast<const unsigned short*>(rowp);
    uint32_t u[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int32_t cc = c + 2 * i;
      const uint32_t lo = (p != nullptr && cc < c_in) ? __ldg(p + cc) : 0u;
      const uint32_t hi = (p != nullptr && cc + 1 < c_in) ? __ldg(p + cc + 1) : 0u;
      u[i] = lo | (hi << 16);  // the lower address in the low half, as a 32-bit load would give it
    }
    r[0] = make_uint4(u[0], u[1], u[2], u[3]);
    r[1] = make_uint4(u[4], u[5], u[6], u[7]);
  }
}

// MI x NJ m16n8 accumulator tiles per warp, warps arranged WM x WN: the block covers 64 x (WN * NJ * 8).
template <int MI, int NJ, int WM, int WN, bool kVec>
__global__ void __launch_bounds__(kMmaThreads)
    mmaConvKernel(const __half* __restrict__ x, const int32_t* __restrict__ neighbors, const __half* __restrict__ w,
                  const __half* __restrict__ bias, __half* __restrict__ out, int64_t n_in, int64_t m_total,
                  int64_t kvol, int32_t c_in, int32_t c_out, Activation act, float alpha) {
  constexpr int kBM = WM * MI * 16, kBN = WN * NJ * 8;
  static_assert(kBM == kMmaRows && WM * WN * 32 == kMmaThreads, "4 warps over 64 rows");
  static_assert(NJ % 2 == 0, "B fragments are loaded two n8 tiles per ldmatrix.x4");
  // Stage tasks: 16 channels of one row each. A: 64 rows x 2 = 128 tasks, one per thread; B: kBN x 2.
  constexpr int kBTasks = (kBN * 2 + kMmaThreads - 1) / kMmaThreads;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) __half a_smem[2][kBM * kPitch];
  __shared__ __align__(16) __half b_smem[2][kBN * kPitch];
  __shared__ uint8_t flags[kOffsetWindow];
  __shared__ int32_t active[kOffsetWindow];
  __shared__ int32_t num_active;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm0 = (warp / WN) * (MI * 16), wn0 = (warp % WN) * (NJ * 8);
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int32_t n0 = static_cast<int32_t>(blockIdx.y) * kBN;
  const int32_t chunks = (c_in + kMmaK - 1) / kMmaK;
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
  // Stage s of the current window: offset active[s / chunks], channels [c0, c0 + 32) (global -> registers).
  auto load = [&](int64_t s) {
    const int64_t a = s / chunks;
    const auto c0 = static_cast<int32_t>((s - a * chunks) * kMmaK);
    const int64_t k = active[a];
    const int32_t row = a_m < m_total ? neighbors[k * m_total + a_m] : -1;
    const bool valid = row >= 0 && row < n_in;  // else not a row of the features (kernels.h): never read
    loadSixteen<kVec>(valid ? x + static_cast<int64_t>(row) * c_in : nullptr, c0 + 16 * a_half, c_in, a_reg);
#pragma unroll
    for (int t = 0; t < kBTasks; ++t) {
      const int e = tid + t * kMmaThreads;
      if (e < kBN * 2) {
        const int32_t co = n0 + (e >> 1);
        loadSixteen<kVec>(co < c_out ? w + (static_cast<int64_t>(co) * kvol + k) * c_in : nullptr, c0 + 16 * (e & 1),
                          c_in, b_reg[t]);
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
  // The warp's MI x NJ tiles over the 32 channels of buffer `buf`. Fragment layouts: PTX ISA, mma.m16n8k16
  // with .f16 A (row) / B (col); ldmatrix.x4 hands out four 8x8 matrices, matrix q addressed by lanes 8q..8q+7.
  auto compute = [&](int buf) {
    const __half* a_s = a_smem[buf];
    const __half* b_s = b_smem[buf];
#pragma unroll
    for (int ks = 0; ks < kMmaK; ks += 16) {
      uint32_t af[MI][4], bf[NJ][2];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        // Matrices: rows 0-7 / 8-15 (lane & 15), channels ks / ks + 8 (lane >> 4): a0..a3 of the fragment.
        const __half* p = a_s + (wm0 + i * 16 + (lane & 15)) * kPitch + ks + (lane >> 4) * 8;
        SPT_PTX("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n",
                (SPT_PTX_OUT("r", af[i][0]), SPT_PTX_OUT("r", af[i][1]), SPT_PTX_OUT("r", af[i][2]),
                 SPT_PTX_OUT("r", af[i][3])),
                (SPT_PTX_IN("r", sharedAddress(p))), ("memory"));
      }
#pragma unroll
      for (int j = 0; j < NJ; j += 2) {
        // Matrices: n tile j / j + 1 (lane >> 4), channels ks / ks + 8 ((lane >> 3) & 1): b0, b1 of two tiles.
        // Rows of b_smem are output channels with input channels contiguous, i.e. B in the "col" layout.
        const __half* p = b_s + (wn0 + (j + (lane >> 4)) * 8 + (lane & 7)) * kPitch + ks + ((lane >> 3) & 1) * 8;
        SPT_PTX("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n",
                (SPT_PTX_OUT("r", bf[j][0]), SPT_PTX_OUT("r", bf[j][1]), SPT_PTX_OUT("r", bf[j + 1][0]),
                 SPT_PTX_OUT("r", bf[j + 1][1])),
                (SPT_PTX_IN("r", sharedAddress(p))), ("memory"));
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
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
  };

  for (int64_t kb = 0; kb < kvol; kb += kOffsetWindow) {
    const int window = static_cast<int>(kvol - kb < kOffsetWindow ? kvol - kb : kOffsetWindow);
    // Which offsets of the window reach any input from this block's rows (a warp per offset, coalesced).
    for (int j = warp; j < window; j += kMmaThreads / 32) {
      const int64_t k = kb + j;
      bool any = false;
      for (int r = lane; r < kBM; r += 32) {
        const int64_t m = m0 + r;
        if (m < m_total) {
          const int32_t row = neighbors[k * m_total + m];
          any = any || (row >= 0 && row < n_in);
        }
      }
      any = __any_sync(0xffffffffu, any);
      if (lane == 0) flags[j] = any ? 1 : 0;
    }
    __syncthreads();
    // Compact them in ascending order (the fixed summation order), 32 at a time by ballot.
    if (warp == 0) {
      int base = 0;
      for (int j0 = 0; j0 < window; j0 += 32) {
        const bool f = j0 + lane < window && flags[j0 + lane] != 0;
        const uint32_t mask = __ballot_sync(0xffffffffu, f);
        if (f) active[base + __popc(mask & ((1u << lane) - 1u))] = static_cast<int32_t>(kb + j0 + lane);
        base += __popc(mask);
      }
      if (lane == 0) num_active = base;
    }
    __syncthreads();
    const int64_t stages = int64_t{num_active} * chunks;  // the same in every thread: a block-uniform loop
    if (stages > 0) {
      load(0);
      store(0);
      __syncthreads();
      for (int64_t s = 0; s < stages; ++s) {
        // One barrier per stage: buffer s & 1 is read here; buffer (s + 1) & 1 was last read in stage s - 1,
        // which every thread finished before the barrier that closed it.
        if (s + 1 < stages) load(s + 1);  // in flight during the MMAs
        compute(static_cast<int>(s & 1));
        if (s + 1 < stages) store(static_cast<int>((s + 1) & 1));
        __syncthreads();
      }
    }
    // The next window rewrites flags/active/num_active only after the barrier following its flag pass, which
    // every thread reaches after its last read of this window's lists.
  }

  // Epilogue: fragment element e of tile (i, j) is row g (+8 for e >= 2), column 2t + (e & 1).
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < MI; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + wm0 + i * 16 + g + 8 * h;
      if (m >= m_total) continue;
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        const int32_t co = n0 + wn0 + j * 8 + 2 * t;
        if (co >= c_out) continue;
        float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
        if (bias != nullptr) {
          v0 += __half2float(bias[co]);
          if (co + 1 < c_out) v1 += __half2float(bias[co + 1]);
        }
        v0 = activate(v0, act, alpha);
        v1 = activate(v1, act, alpha);
        __half* o = out + m * c_out + co;
        if (co + 1 < c_out && (reinterpret_cast<uintptr_t>(o) & 3u) == 0) {
          *reinterpret_cast<__half2*>(o) = __floats2half2_rn(v0, v1);
        } else {
          o[0] = __float2half_rn(v0);
          if (co + 1 < c_out) o[1] = __float2half_rn(v1);
        }
      }
    }
  }
#else
  // Never launched below sm_80 (sparseConv checks the device); this keeps older targets compiling.
  (void)x, (void)neighbors, (void)w, (void)bias, (void)out, (void)n_in, (void)m_total, (void)kvol, (void)c_in,
      (void)c_out, (void)act, (void)alpha;
#endif
}

template <int MI, int NJ, int WM, int WN>
cudaError_t launchMmaConv(const void* x, int64_t n_in, int64_t c_in, const int32_t* neighbors, int64_t kvol, int64_t m,
                          const void* w, const void* bias, int64_t c_out, Activation act, float alpha, void* out,
                          cudaStream_t stream) {
  constexpr int kBN = WN * NJ * 8;
  const int64_t m_tiles = (m + kMmaRows - 1) / kMmaRows, n_tiles = (c_out + kBN - 1) / kBN;
  if (m_tiles > INT32_MAX || n_tiles > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned int>(m_tiles), static_cast<unsigned int>(n_tiles));
  // 16-byte loads need whole 8-channel groups and aligned rows; otherwise 2-byte loads, same results.
  const bool vec =
      c_in % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
  const auto* xh = static_cast<const __half*>(x);
  const auto* wh = static_cast<const __half*>(w);
  const auto* bh = static_cast<const __half*>(bias);
  auto* oh = static_cast<__half*>(out);
  const auto ci = static_cast<int32_t>(c_in), co = static_cast<int32_t>(c_out);
  if (vec)
    return detail::launch<mmaConvKernel<MI, NJ, WM, WN, true>>(grid, kMmaThreads, 0, stream, xh, neighbors, wh, bh, oh,
                                                               n_in, m, kvol, ci, co, act, alpha);
  return detail::launch<mmaConvKernel<MI, NJ, WM, WN, false>>(grid, kMmaThreads, 0, stream, xh, neighbors, wh, bh, oh,
                                                              n_in, m, kvol, ci, co, act, alpha);
}

cudaError_t launchTensorCoreConv(const void* x, int64_t n_in, int64_t c_in, const int32_t* neighbors, int64_t kvol,
                                 int64_t m, const void* w, const void* bias, int64_t c_out, Activation act, float alpha,
                                 void* out, cudaStream_t stream) {
  // The narrowest block that covers C_out (up to 128): no tensor-core work on channels that do not exist
  // for thin layers, and one gather of the input rows for up to 128 output channels.
  if (c_out <= 16)
    return launchMmaConv<1, 2, 4, 1>(x, n_in, c_in, neighbors, kvol, m, w, bias, c_out, act, alpha, out, stream);
  if (c_out <= 32)
    return launchMmaConv<1, 4, 4, 1>(x, n_in, c_in, neighbors, kvol, m, w, bias, c_out, act, alpha, out, stream);
  if (c_out <= 64)
    return launchMmaConv<2, 4, 2, 2>(x, n_in, c_in, neighbors, kvol, m, w, bias, c_out, act, alpha, out, stream);
  return launchMmaConv<2, 8, 2, 2>(x, n_in, c_in, neighbors, kvol, m, w, bias, c_out, act, alpha, out, stream);
}

// mma.sync m16n8k16 with fp16 inputs needs sm_80. Two attribute queries: no synchronization, capturable.
bool tensorCoresAvailable() {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  return major >= 8;
}

}  // namespace

std::size_t sparseConvWorkspaceSize() { return 0; }

cudaError_t sparseConv(DataType dtype, const void* d_features, int64_t num_in, int64_t c_in, const int32_t* d_neighbors,
                       int64_t kernel_volume, int64_t num_out, const void* d_weight, const void* d_bias, int64_t c_out,
                       Activation activation, float alpha, void* d_out, void*, std::size_t, cudaStream_t stream) {
  if (num_in < 0 || c_in < 0 || kernel_volume < 1 || kernel_volume > INT32_MAX || num_out < 0 || c_out < 0 ||
      c_in > INT32_MAX || c_out > INT32_MAX)
    return cudaErrorInvalidValue;
  if (num_out == 0 || c_out == 0) return cudaSuccess;
  switch (dtype) {
    case DataType::kFloat32:
      return launchCudaCoreConv<float>(d_features, num_in, c_in, d_neighbors, kernel_volume, num_out, d_weight, d_bias,
                                       c_out, activation, alpha, d_out, stream);
    case DataType::kFloat16:
      if (tensorCoresAvailable())
        return launchTensorCoreConv(d_features, num_in, c_in, d_neighbors, kernel_volume, num_out, d_weight, d_bias,
                                    c_out, activation, alpha, d_out, stream);
      return launchCudaCoreConv<__half>(d_features, num_in, c_in, d_neighbors, kernel_volume, num_out, d_weight, d_bias,
                                        c_out, activation, alpha, d_out, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace sparsetrt
