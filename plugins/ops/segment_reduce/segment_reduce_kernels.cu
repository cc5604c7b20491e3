// SegmentReduce on the GPU: rows combined by the output row each names (torch's index_add_ / scatter_reduce amax
// with include_self), grouped by a radix sort instead of atomics so results are deterministic (README.md; the
// API contract is in segment_reduce_kernels.h).
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "device_common.cuh"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/segment_reduce/segment_reduce_kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::carve;
using detail::kThreads;
using SortKey = unsigned long long;

constexpr SortKey kNoRow = ~SortKey{0};  // segments outside [0, M): sorted after every group, never read

// segment << 32 | row: sorted, rows are grouped by segment and ascending within a group.
__global__ void segmentKeysKernel(const int32_t* __restrict__ segments, int64_t n, int64_t m,
                                  SortKey* __restrict__ keys) {
  SPT_GRID_STRIDE(i, n) {
    const int32_t s = segments[i];
    keys[i] = s >= 0 && s < m ? (static_cast<SortKey>(s) << 32) | static_cast<SortKey>(i) : kNoRow;
  }
}

// The first sorted position whose key is >= `key`.
__device__ __forceinline__ int64_t lowerBound(const SortKey* keys, int64_t n, SortKey key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// One thread per (output row, channel), channel fastest: init first, then the group's rows in ascending order,
// in fp32 (for an fp32 sum, exactly the additions torch's CPU index_add_ makes). Max propagates NaN (torch's amax).
template <typename T>
__global__ void reduceKernel(const T* __restrict__ features, const SortKey* __restrict__ keys, int64_t n,
                             int64_t channels, const T* __restrict__ init, int64_t m, Reduction reduction,
                             T* __restrict__ out) {
  SPT_GRID_STRIDE(idx, m * channels) {
    const int64_t row = idx / channels, c = idx % channels;
    const int64_t first = lowerBound(keys, n, static_cast<SortKey>(row) << 32);
    const int64_t end = lowerBound(keys, n, static_cast<SortKey>(row + 1) << 32);
    float acc = detail::toFloat(init[idx]);
    for (int64_t i = first; i < end; ++i) {
      const float v = detail::toFloat(features[static_cast<int64_t>(keys[i] & 0xFFFFFFFFull) * channels + c]);
      if (reduction == Reduction::kSum)
        acc += v;
      else if (isnan(v) || (!isnan(acc) && v > acc))
        acc = v;
    }
    out[idx] = detail::fromFloat<T>(acc);
  }
}

template <typename T>
cudaError_t launchReduce(const void* features, const SortKey* keys, int64_t n, int64_t channels, const void* init,
                         int64_t m, Reduction reduction, void* out, cudaStream_t stream) {
  return detail::launch<reduceKernel<T>>(detail::blocksFor(m * channels), kThreads, 0, stream,
                                         static_cast<const T*>(features), keys, n, channels,
                                         static_cast<const T*>(init), m, reduction, static_cast<T*>(out));
}

}  // namespace

std::size_t segmentReduceWorkspaceSize(int64_t num_in) { return segmentReduceWorkspace(num_in).bytes; }

cudaError_t segmentReduce(DataType dtype, const void* d_features, const int32_t* d_segments, int64_t num_in,
                          int64_t channels, const void* d_init, int64_t num_out, Reduction reduction, void* d_out,
                          void* d_workspace, std::size_t workspace_size, cudaStream_t stream) {
  if (num_in < 0 || num_in > INT32_MAX || channels < 0 || num_out < 0 ||
      (reduction != Reduction::kSum && reduction != Reduction::kMax))
    return cudaErrorInvalidValue;
  if (dtype != DataType::kFloat32 && dtype != DataType::kFloat16) return cudaErrorInvalidValue;
  const SegmentReduceWorkspace ws = segmentReduceWorkspace(num_in);
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  if (num_out * channels == 0) return cudaSuccess;
  auto* keys = carve<SortKey>(d_workspace, ws.keys_offset);
  auto* alt_keys = carve<SortKey>(d_workspace, ws.alt_keys_offset);
  void* sort_temp = carve<void>(d_workspace, ws.sort_temp_offset);
  const int n = static_cast<int>(num_in);
  cub::DoubleBuffer<SortKey> buffers(keys, alt_keys);
  std::size_t needed = 0;
  cudaError_t err = cub::DeviceRadixSort::SortKeys(nullptr, needed, buffers, n, 0, 64, stream);
  if (err != cudaSuccess) return err;
  if (needed > ws.sort_temp_bytes) return cudaErrorInvalidValue;
  if (num_in > 0) {
    err = detail::launch<segmentKeysKernel>(detail::blocksFor(num_in), kThreads, 0, stream, d_segments, num_in, num_out,
                                            buffers.Current());
    std::size_t temp_bytes = ws.sort_temp_bytes;
    if (err == cudaSuccess) err = cub::DeviceRadixSort::SortKeys(sort_temp, temp_bytes, buffers, n, 0, 64, stream);
    if (err != cudaSuccess) return err;
  }
  if (dtype == DataType::kFloat32)
    return launchReduce<float>(d_features, buffers.Current(), num_in, channels, d_init, num_out, reduction, d_out,
                               stream);
  return launchReduce<__half>(d_features, buffers.Current(), num_in, channels, d_init, num_out, reduction, d_out,
                              stream);
}

}  // namespace kernels
}  // namespace sparsetrt
