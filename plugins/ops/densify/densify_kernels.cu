// Densify on the GPU: a stream-ordered memset of the dense [B, C, *spatial] output, then a scatter of the
// features to their sites.
#include "device_common.cuh"
#include "ops/densify/densify_kernels.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::kThreads;

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
cudaError_t launchDensify(const void* x, const int32_t* indices, int64_t n, int64_t channels, const DenseGrid& grid,
                          void* out, cudaStream_t stream) {
  const std::size_t bytes = static_cast<std::size_t>(grid.batch) * channels * grid.sites * sizeof(T);
  if (bytes == 0) return cudaSuccess;  // C = 0: an empty output, possibly a null pointer
  const cudaError_t err = cudaMemsetAsync(out, 0, bytes, stream);
  if (err != cudaSuccess || n * channels == 0) return err;
  return detail::launch<densifyKernel<T>>(detail::blocksFor(n * channels), kThreads, 0, stream,
                                          static_cast<const T*>(x), indices, n, channels, grid, static_cast<T*>(out));
}

}  // namespace

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
