// SubmRulebook on the GPU: a hash table over the N input sites, then one lookup per (offset, site).
// Semantics are those of the CPU reference (exporter/backend/rulebook.py); the API contract is in
// sparsetrt/kernels.h.
#include <climits>

#include "device_common.cuh"
#include "sparsetrt/kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::HashTable;
using detail::kThreads;
using detail::tableAt;

// ---------------------------------------------------------------------------------------- submanifold
__global__ void insertSitesKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g, HashTable table) {
  SPT_GRID_STRIDE(i, n) {
    const int32_t* row = indices + i * (1 + g.ndim);
    bool inserted;
    const int64_t slot = table.insert(detail::encodeKey(row[0], row + 1, g.in_shape, g.ndim), &inserted);
    // Valid indices have no duplicate sites; if some slipped through, the smallest row wins, so the
    // result still does not depend on thread order. (The table holds 2N slots, so it never fills: slot >= 0.)
    if (slot >= 0) atomicMin(&table.values[slot], static_cast<int32_t>(i));
  }
}

// One thread per (offset k, site n): the write to neighbors[k * N + n] is coalesced across n.
__global__ void submLookupKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g, HashTable table,
                                 int32_t* __restrict__ neighbors) {
  SPT_GRID_STRIDE(idx, n * g.kernel_volume) {
    const int64_t k = idx / n, site = idx % n;
    const int32_t* row = indices + site * (1 + g.ndim);
    int32_t taps[kMaxSpatialDims], target[kMaxSpatialDims];
    detail::splitOffset(k, g, taps);
    bool valid = true;
    for (int d = 0; d < g.ndim; ++d) {
      // Output o reads input o + t * dilation - (k // 2) * dilation (the kernel centred at k // 2).
      target[d] = row[1 + d] + taps[d] * g.dilation[d] - g.padding[d];
      valid = valid && target[d] >= 0 && target[d] < g.in_shape[d];
    }
    int32_t found = -1;
    if (valid) {
      const int64_t slot = table.find(detail::encodeKey(row[0], target, g.in_shape, g.ndim));
      if (slot >= 0) found = table.values[slot];
    }
    neighbors[idx] = found;
  }
}

}  // namespace

std::size_t submRulebookWorkspaceSize(int64_t num_in) { return submRulebookWorkspace(num_in).bytes; }

cudaError_t submRulebook(const int32_t* d_indices, int64_t num_in, const RulebookGeometry& g, int32_t* d_neighbors,
                         void* d_workspace, std::size_t workspace_size, cudaStream_t stream) {
  if (g.kind != RulebookKind::kSubmanifold || g.ndim < 1 || g.ndim > kMaxSpatialDims || num_in < 0 ||
      num_in > INT32_MAX)
    return cudaErrorInvalidValue;
  if (num_in == 0) return cudaSuccess;
  if (g.pointwise) {
    return detail::launch<detail::iotaKernel>(detail::blocksFor(num_in), kThreads, 0, stream, d_neighbors, num_in);
  }
  const SubmRulebookWorkspace ws = submRulebookWorkspace(num_in);
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  const HashTable table = tableAt(d_workspace, ws.table);
  cudaError_t err = cudaMemsetAsync(table.keys, 0xFF, ws.table.capacity * sizeof(uint64_t), stream);
  if (err == cudaSuccess)  // 0x7F7F7F7F: above every row index, the start of atomicMin
    err = cudaMemsetAsync(table.values, 0x7F, ws.table.capacity * sizeof(int32_t), stream);
  if (err != cudaSuccess) return err;
  err = detail::launch<insertSitesKernel>(detail::blocksFor(num_in), kThreads, 0, stream, d_indices, num_in, g, table);
  if (err != cudaSuccess) return err;
  return detail::launch<submLookupKernel>(detail::blocksFor(num_in * g.kernel_volume), kThreads, 0, stream, d_indices,
                                          num_in, g, table, d_neighbors);
}

}  // namespace kernels
}  // namespace sparsetrt
