// SubmRulebook on the GPU: a hash table over the N input sites, then lookups per (offset, site). Semantics are
// those of the CPU reference (exporter/backend/rulebook.py); the API contract is in subm_rulebook_kernels.h.
//
// A kernel of odd size in every dim is symmetric about its centre c = (K - 1) / 2: if site n reads site f
// through offset k, f reads n through offset K - 1 - k. So only the offsets below the centre are looked up,
// each hit also writing its mirror entry, and the centre is each site's own row: 13 lookups per site instead
// of 27 for a 3x3x3 kernel (as the CPU reference does it too).
#include <climits>

#include "device_common.cuh"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_kernels.h"
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

// The site n + offset k (dilated, kernel centred) of row `row`, if inside the grid.
__device__ __forceinline__ bool neighbourSite(const int32_t* row, int64_t k, const RulebookGeometry& g,
                                              int32_t* target) {
  int32_t taps[kMaxSpatialDims];
  detail::splitOffset(k, g, taps);
  bool valid = true;
  for (int d = 0; d < g.ndim; ++d) {
    // Output o reads input o + t * dilation - (k // 2) * dilation (the kernel centred at k // 2).
    target[d] = row[1 + d] + taps[d] * g.dilation[d] - g.padding[d];
    valid = valid && target[d] >= 0 && target[d] < g.in_shape[d];
  }
  return valid;
}

__device__ __forceinline__ int32_t lookupSite(const int32_t* row, const int32_t* target, const RulebookGeometry& g,
                                              const HashTable& table) {
  const int64_t slot = table.find(detail::encodeKey(row[0], target, g.in_shape, g.ndim));
  return slot >= 0 ? table.values[slot] : -1;
}

// One thread per (offset k, site n): the write to neighbors[k * N + n] is coalesced across n.
__global__ void submLookupKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g, HashTable table,
                                 int32_t* __restrict__ neighbors) {
  SPT_GRID_STRIDE(idx, n * g.kernel_volume) {
    const int64_t k = idx / n, site = idx % n;
    const int32_t* row = indices + site * (1 + g.ndim);
    int32_t target[kMaxSpatialDims];
    neighbors[idx] = neighbourSite(row, k, g, target) ? lookupSite(row, target, g, table) : -1;
  }
}

// Symmetric kernels, first the centre: each site's own row, as the table has it (the site itself for valid
// indices; for a duplicate site, the smallest row holding it, as every lookup of that site finds).
__global__ void submCentreKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g, HashTable table,
                                 int32_t* __restrict__ centre_row) {
  SPT_GRID_STRIDE(site, n) {
    const int32_t* row = indices + site * (1 + g.ndim);
    centre_row[site] = lookupSite(row, row + 1, g, table);
  }
}

// Then one thread per (offset k below the centre, site n): neighbors[k, n] = f, and the mirror entry
// neighbors[K - 1 - k, f] = n. Only the row the table holds for n's site writes mirror entries, so each is
// written once even if duplicate sites slipped through (kernels.h: they give unspecified results, but never
// thread-order dependent ones); the rest of the mirrored rows stays -1.
__global__ void submHalfLookupKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g,
                                     HashTable table, int32_t* __restrict__ neighbors) {
  const int64_t half = g.kernel_volume / 2;
  const int32_t* centre_row = neighbors + half * n;
  SPT_GRID_STRIDE(idx, n * half) {
    const int64_t k = idx / n, site = idx % n;
    const int32_t* row = indices + site * (1 + g.ndim);
    int32_t target[kMaxSpatialDims];
    const int32_t found = neighbourSite(row, k, g, target) ? lookupSite(row, target, g, table) : -1;
    neighbors[idx] = found;
    if (found >= 0 && centre_row[site] == site)
      neighbors[(g.kernel_volume - 1 - k) * n + found] = static_cast<int32_t>(site);
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
  bool symmetric = true;
  for (int d = 0; d < g.ndim; ++d) symmetric = symmetric && g.kernel[d] % 2 == 1;
  if (!symmetric)
    return detail::launch<submLookupKernel>(detail::blocksFor(num_in * g.kernel_volume), kThreads, 0, stream, d_indices,
                                            num_in, g, table, d_neighbors);
  const int64_t half = g.kernel_volume / 2;  // offsets below the centre; the centre is offset `half`
  err = cudaMemsetAsync(d_neighbors + (half + 1) * num_in, 0xFF, static_cast<std::size_t>(half * num_in) * 4, stream);
  if (err == cudaSuccess)
    err = detail::launch<submCentreKernel>(detail::blocksFor(num_in), kThreads, 0, stream, d_indices, num_in, g, table,
                                           d_neighbors + half * num_in);
  if (err != cudaSuccess) return err;
  return detail::launch<submHalfLookupKernel>(detail::blocksFor(num_in * half), kThreads, 0, stream, d_indices, num_in,
                                              g, table, d_neighbors);
}

}  // namespace kernels
}  // namespace sparsetrt
