// SparseMaxPool on the GPU: the max over each output site's active inputs through a neighbour map.
#include "device_common.cuh"
#include "ops/sparse_max_pool/sparse_max_pool_kernels.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::kThreads;

// One thread per (output site, channel), channel fastest: feature reads are coalesced and the neighbour
// index is a broadcast within the warp. Max over *active* inputs only (no implicit zeros), like the CPU
// reference; NaN propagates as in torch's amax.
template <typename T>
__global__ void maxPoolKernel(const T* __restrict__ x, const int32_t* __restrict__ neighbors, int64_t n_in,
                              int64_t kvol, int64_t m_total, int64_t channels, T* __restrict__ out) {
  SPT_GRID_STRIDE(idx, m_total * channels) {
    const int64_t m = idx / channels, c = idx % channels;
    float best = 0.0f;
    bool any = false;
    for (int64_t k = 0; k < kvol; ++k) {
      const int32_t row = neighbors[k * m_total + m];
      if (row < 0 || row >= n_in) continue;  // no input, or not a row of the features (kernels.h): never read
      const float v = detail::toFloat(x[row * channels + c]);
      if (!any || isnan(v) || (!isnan(best) && v > best)) best = v;
      any = true;
    }
    out[idx] = detail::fromFloat<T>(any ? best : 0.0f);
  }
}

template <typename T>
cudaError_t launchMaxPool(const void* x, int64_t n, const int32_t* nb, int64_t kvol, int64_t m, int64_t channels,
                          void* out, cudaStream_t stream) {
  return detail::launch<maxPoolKernel<T>>(detail::blocksFor(m * channels), kThreads, 0, stream,
                                          static_cast<const T*>(x), nb, n, kvol, m, channels, static_cast<T*>(out));
}

}  // namespace

std::size_t sparseMaxPoolWorkspaceSize() { return 0; }

cudaError_t sparseMaxPool(DataType dtype, const void* d_features, int64_t num_in, int64_t channels,
                          const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, void* d_out, void*,
                          std::size_t, cudaStream_t stream) {
  if (num_in < 0 || channels < 0 || kernel_volume < 1 || num_out < 0) return cudaErrorInvalidValue;
  if (num_out * channels == 0) return cudaSuccess;
  switch (dtype) {
    case DataType::kFloat32:
      return launchMaxPool<float>(d_features, num_in, d_neighbors, kernel_volume, num_out, channels, d_out, stream);
    case DataType::kFloat16:
      return launchMaxPool<__half>(d_features, num_in, d_neighbors, kernel_volume, num_out, channels, d_out, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace sparsetrt
