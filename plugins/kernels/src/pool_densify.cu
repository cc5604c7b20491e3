// SparseMaxPool over a neighbour map and Densify (scatter to a dense [B, C, *spatial] tensor).
#include "device_common.cuh"
#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::kThreads;

// One thread per (output site, channel), channel fastest: feature reads are coalesced and the neighbour
// index is a broadcast within the warp. Max over *active* inputs only (no implicit zeros), like the CPU
// reference; NaN propagates as in torch's amax.
template <typename T>
__global__ void maxPoolKernel(const T* __restrict__ x, const int32_t* __restrict__ neighbors, int64_t kvol,
                              int64_t m_total, int64_t channels, T* __restrict__ out) {
  SPT_GRID_STRIDE(idx, m_total * channels) {
    const int64_t m = idx / channels, c = idx % channels;
    float best = 0.0f;
    bool any = false;
    for (int64_t k = 0; k < kvol; ++k) {
      const int32_t row = neighbors[k * m_total + m];
      if (row < 0) continue;
      const float v = detail::toFloat(x[row * channels + c]);
      if (!any || isnan(v) || (!isnan(best) && v > best)) best = v;
      any = true;
    }
    out[idx] = detail::fromFloat<T>(any ? best : 0.0f);
  }
}

struct DenseGrid {
  int32_t ndim;
  int32_t shape[kMaxSpatialDims];
  int64_t sites;  // prod(shape)
  int32_t batch;
};

template <typename T>
__global__ void densifyKernel(const T* __restrict__ x, const int32_t* __restrict__ indices, int64_t n, int64_t channels,
                              DenseGrid grid, T* __restrict__ out) {
  SPT_GRID_STRIDE(idx, n * channels) {
    const int64_t site = idx / channels, c = idx % channels;
    const int32_t* row = indices + site * (1 + grid.ndim);
    bool inside = row[0] >= 0 && row[0] < grid.batch;
    int64_t linear = 0;
    for (int d = 0; d < grid.ndim; ++d) {
      inside = inside && row[1 + d] >= 0 && row[1 + d] < grid.shape[d];
      linear = linear * grid.shape[d] + row[1 + d];
    }
    if (inside) out[(row[0] * channels + c) * grid.sites + linear] = x[idx];
  }
}

template <typename T>
cudaError_t launchMaxPool(const void* x, const int32_t* nb, int64_t kvol, int64_t m, int64_t channels, void* out,
                          cudaStream_t stream) {
  maxPoolKernel<T><<<detail::blocksFor(m * channels), kThreads, 0, stream>>>(static_cast<const T*>(x), nb, kvol, m,
                                                                             channels, static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T>
cudaError_t launchDensify(const void* x, const int32_t* indices, int64_t n, int64_t channels, const DenseGrid& grid,
                          void* out, cudaStream_t stream) {
  const std::size_t bytes = static_cast<std::size_t>(grid.batch) * channels * grid.sites * sizeof(T);
  const cudaError_t err = cudaMemsetAsync(out, 0, bytes, stream);
  if (err != cudaSuccess || n * channels == 0) return err;
  densifyKernel<T><<<detail::blocksFor(n * channels), kThreads, 0, stream>>>(static_cast<const T*>(x), indices, n,
                                                                             channels, grid, static_cast<T*>(out));
  return cudaGetLastError();
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
      return launchMaxPool<float>(d_features, d_neighbors, kernel_volume, num_out, channels, d_out, stream);
    case DataType::kFloat16:
      return launchMaxPool<__half>(d_features, d_neighbors, kernel_volume, num_out, channels, d_out, stream);
  }
  return cudaErrorInvalidValue;
}

std::size_t densifyWorkspaceSize() { return 0; }

cudaError_t densify(DataType dtype, const void* d_features, const int32_t* d_indices, int64_t num_in, int64_t channels,
                    int32_t ndim, const int32_t* spatial_shape, int32_t batch_size, void* d_out, void*, std::size_t,
                    cudaStream_t stream) {
  if (num_in < 0 || channels < 0 || ndim < 1 || ndim > kMaxSpatialDims || spatial_shape == nullptr || batch_size < 1)
    return cudaErrorInvalidValue;
  DenseGrid grid{};
  grid.ndim = ndim;
  grid.batch = batch_size;
  grid.sites = 1;
  for (int d = 0; d < ndim; ++d) {
    if (spatial_shape[d] < 1) return cudaErrorInvalidValue;
    grid.shape[d] = spatial_shape[d];
    grid.sites *= spatial_shape[d];
  }
  switch (dtype) {
    case DataType::kFloat32:
      return launchDensify<float>(d_features, d_indices, num_in, channels, grid, d_out, stream);
    case DataType::kFloat16:
      return launchDensify<__half>(d_features, d_indices, num_in, channels, grid, d_out, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace sparsetrt
