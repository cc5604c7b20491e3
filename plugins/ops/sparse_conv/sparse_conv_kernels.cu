// SparseConv: gather -> GEMM over an output-stationary neighbour map, fp32 accumulation, bias and
// activation fused in the epilogue. Output-stationary means each block owns its output tile for the whole
// reduction over (k, c_in): no atomics, and a fixed summation order (k ascending, then c_in ascending), so
// results are bitwise deterministic.
//
// This is the first, simple and general version: CUDA-core FMAs on 64 x 64 output tiles, any channel count
// (edges are zero-padded in shared memory), any kernel volume, fp32 or fp16 storage. A tensor-core (mma)
// path for fp16 is the planned next step; its results must match this one to fp32-accumulation tolerance.
#include "device_common.cuh"
#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {
namespace {

constexpr int kTileM = 64;         // output sites per block
constexpr int kTileN = 64;         // output channels per block
constexpr int kTileK = 16;         // input channels per shared-memory stage
constexpr int kConvThreads = 256;  // 16 x 16 threads, each a 4 x 4 micro-tile

__device__ __forceinline__ float activate(float v, Activation act, float alpha) {
  switch (act) {
    case Activation::kRelu:
      return v > 0.0f ? v : 0.0f;
    case Activation::kLeakyRelu:
      return v > 0.0f ? v : v * alpha;
    case Activation::kSigmoid:
      return 1.0f / (1.0f + __expf(-v));
    default:
      return v;
  }
}

template <typename T>
__global__ void __launch_bounds__(kConvThreads)
    gatherGemmKernel(const T* __restrict__ x, const int32_t* __restrict__ neighbors, const T* __restrict__ w,
                     const T* __restrict__ bias, T* __restrict__ out, int64_t m_total, int64_t kvol, int32_t c_in,
                     int32_t c_out, Activation act, float alpha) {
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
      rows[tid] = r;
    }
    // Skip offsets with no input for the whole tile (common: most offsets of a sparse map are empty near
    // a tile's sites). Also the barrier that publishes rows[].
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
cudaError_t launchConv(const void* x, int64_t c_in, const int32_t* neighbors, int64_t kvol, int64_t m, const void* w,
                       const void* bias, int64_t c_out, Activation act, float alpha, void* out, cudaStream_t stream) {
  const int64_t m_tiles = (m + kTileM - 1) / kTileM, n_tiles = (c_out + kTileN - 1) / kTileN;
  if (m_tiles > 0x7fffffff || n_tiles > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned int>(m_tiles), static_cast<unsigned int>(n_tiles));
  gatherGemmKernel<T><<<grid, kConvThreads, 0, stream>>>(
      static_cast<const T*>(x), neighbors, static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(out),
      m, kvol, static_cast<int32_t>(c_in), static_cast<int32_t>(c_out), act, alpha);
  return cudaGetLastError();
}

}  // namespace

std::size_t sparseConvWorkspaceSize() { return 0; }

cudaError_t sparseConv(DataType dtype, const void* d_features, int64_t num_in, int64_t c_in, const int32_t* d_neighbors,
                       int64_t kernel_volume, int64_t num_out, const void* d_weight, const void* d_bias, int64_t c_out,
                       Activation activation, float alpha, void* d_out, void*, std::size_t, cudaStream_t stream) {
  if (num_in < 0 || c_in < 0 || kernel_volume < 1 || num_out < 0 || c_out < 0 || c_in > 0x7fffffff ||
      c_out > 0x7fffffff)
    return cudaErrorInvalidValue;
  if (num_out == 0 || c_out == 0) return cudaSuccess;
  switch (dtype) {
    case DataType::kFloat32:
      return launchConv<float>(d_features, c_in, d_neighbors, kernel_volume, num_out, d_weight, d_bias, c_out,
                               activation, alpha, d_out, stream);
    case DataType::kFloat16:
      return launchConv<__half>(d_features, c_in, d_neighbors, kernel_volume, num_out, d_weight, d_bias, c_out,
                                activation, alpha, d_out, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace sparsetrt
