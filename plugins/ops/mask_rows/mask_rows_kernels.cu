// MaskRows on the GPU: the positions of a mask's nonzero entries, in ascending order (what x[mask] keeps). The
// kept positions are counted (integer atomics: exact) and put in order by a radix sort, so the result never
// depends on thread order (README.md; the API contract is in mask_rows_kernels.h).
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "device_common.cuh"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/mask_rows/mask_rows_kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::carve;
using detail::kThreads;
using SortKey = unsigned long long;

constexpr SortKey kDropped = 0xFFFFFFFFull;  // above every position (< 2^31): sorts after the kept ones

__global__ void keepKernel(const int32_t* __restrict__ mask, int64_t n, SortKey* __restrict__ keys,
                           int32_t* __restrict__ num_out) {
  SPT_GRID_STRIDE(i, n) {
    const bool keep = mask[i] != 0;
    keys[i] = keep ? static_cast<SortKey>(i) : kDropped;
    if (keep) atomicAdd(num_out, 1);
  }
}

__global__ void rowsKernel(const SortKey* __restrict__ sorted, const int32_t* __restrict__ num_out,
                           int32_t* __restrict__ rows) {
  const int64_t m = *num_out;
  SPT_GRID_STRIDE(j, m) { rows[j] = static_cast<int32_t>(sorted[j]); }
}

}  // namespace

std::size_t maskRowsWorkspaceSize(int64_t num_in) { return maskRowsWorkspace(num_in).bytes; }

cudaError_t maskRows(const int32_t* d_mask, int64_t num_in, int32_t* d_rows, int32_t* d_num_out, void* d_workspace,
                     std::size_t workspace_size, cudaStream_t stream) {
  if (num_in < 0 || num_in > INT32_MAX) return cudaErrorInvalidValue;
  const MaskRowsWorkspace ws = maskRowsWorkspace(num_in);
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  cudaError_t err = cudaMemsetAsync(d_num_out, 0, sizeof(int32_t), stream);
  if (err != cudaSuccess || num_in == 0) return err;
  cub::DoubleBuffer<SortKey> buffers(carve<SortKey>(d_workspace, ws.keys_offset),
                                     carve<SortKey>(d_workspace, ws.alt_keys_offset));
  const int n = static_cast<int>(num_in);
  std::size_t needed = 0;
  err = cub::DeviceRadixSort::SortKeys(nullptr, needed, buffers, n, 0, 32, stream);
  if (err != cudaSuccess) return err;
  if (needed > ws.sort_temp_bytes) return cudaErrorInvalidValue;  // nothing enqueued but the memset
  const unsigned int blocks = detail::blocksFor(num_in);
  err = detail::launch<keepKernel>(blocks, kThreads, 0, stream, d_mask, num_in, buffers.Current(), d_num_out);
  std::size_t temp_bytes = ws.sort_temp_bytes;
  if (err == cudaSuccess)
    err = cub::DeviceRadixSort::SortKeys(carve<void>(d_workspace, ws.sort_temp_offset), temp_bytes, buffers, n, 0, 32,
                                         stream);
  if (err != cudaSuccess) return err;
  return detail::launch<rowsKernel>(blocks, kThreads, 0, stream, buffers.Current(), d_num_out, d_rows);
}

}  // namespace kernels
}  // namespace sparsetrt
