// SparseRulebook on the GPU (regular and transposed): every (input, offset) pair inserts the output
// site it reaches into a hash table; the distinct sites are radix-sorted so rows come out ordered by
// (batch, *coords) whatever the thread order; a last pass writes the neighbour map. Semantics are those of
// the CPU reference (exporter/backend/rulebook.py); the API contract is in sparsetrt/kernels.h.
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "device_common.cuh"
#include "sparsetrt/attributes.h"
#include "sparsetrt/kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::carve;
using detail::HashTable;
using detail::kThreads;
using detail::tableAt;

// Radix-sort bits of output keys: key < batch_bound * S with batch < 2^31, so 31 + ceil(log2 S) bits
// hold every key. Fewer bits than 64 means fewer sort passes.
int sortEndBit(const RulebookGeometry& g) {
  uint64_t sites = 1;
  for (int d = 0; d < g.ndim; ++d) sites *= static_cast<uint64_t>(g.out_shape[d]);
  int bits = 0;
  while ((uint64_t{1} << bits) < sites) ++bits;
  return std::min(31 + bits, 64);
}

// ------------------------------------------------------------------------------- regular, transposed
// The output site that input `row` reaches through flat offset k, if any.
__device__ __forceinline__ bool outputSite(const int32_t* row, int64_t k, const RulebookGeometry& g, int32_t* target) {
  int32_t taps[kMaxSpatialDims];
  detail::splitOffset(k, g, taps);
  for (int d = 0; d < g.ndim; ++d) {
    const int64_t c = row[1 + d];
    int64_t o;
    if (g.kind == RulebookKind::kRegular) {
      // Output o reads input o * stride - padding + t * dilation: invert it, on the stride grid only.
      const int64_t scaled = c + g.padding[d] - int64_t{taps[d]} * g.dilation[d];
      if (scaled < 0 || scaled % g.stride[d] != 0) return false;
      o = scaled / g.stride[d];
    } else {
      // Transposed: the adjoint, input i feeds output i * stride - padding + t * dilation.
      o = c * g.stride[d] - g.padding[d] + int64_t{taps[d]} * g.dilation[d];
      if (o < 0) return false;
    }
    if (o >= g.out_shape[d]) return false;
    target[d] = static_cast<int32_t>(o);
  }
  return true;
}

// Inserts every reachable output key once and appends each new key to `unique` (in arbitrary order; the
// sort that follows makes the result deterministic).
__global__ void insertOutputsKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g, HashTable table,
                                    unsigned long long* __restrict__ unique, int32_t* __restrict__ counter,
                                    int64_t max_keys) {
  SPT_GRID_STRIDE(idx, n * g.kernel_volume) {
    const int64_t k = idx / n, site = idx % n;
    const int32_t* row = indices + site * (1 + g.ndim);
    int32_t target[kMaxSpatialDims];
    if (!outputSite(row, k, g, target)) continue;
    bool inserted;
    const uint64_t key = detail::encodeKey(row[0], target, g.out_shape, g.ndim);
    table.insert(key, &inserted);
    if (inserted) {
      const int32_t pos = atomicAdd(counter, 1);
      if (pos < max_keys) unique[pos] = key;  // always true: max_keys is a sound bound (maxOutputsPerInput)
    }
  }
}

__global__ void finalizeCountKernel(const int32_t* __restrict__ counter, int64_t capacity,
                                    int32_t* __restrict__ num_out, int32_t* __restrict__ overflow) {
  const int32_t m = *counter;
  const bool over = m > capacity;
  *num_out = over ? 0 : m;
  *overflow = over ? m : 0;
}

// Sorted position j becomes output row j: record it in the table and decode the site.
__global__ void assignRowsKernel(const unsigned long long* __restrict__ sorted, const int32_t* __restrict__ num_out,
                                 int64_t max_keys, RulebookGeometry g, HashTable table,
                                 int32_t* __restrict__ out_indices) {
  const int64_t m = *num_out;
  SPT_GRID_STRIDE(j, max_keys) {
    if (j >= m) return;
    const uint64_t key = sorted[j];
    table.values[table.find(key)] = static_cast<int32_t>(j);
    detail::decodeKey(key, g.out_shape, g.ndim, out_indices + j * (1 + g.ndim));
  }
}

__global__ void fillMinusOneKernel(int32_t* __restrict__ out, const int32_t* __restrict__ num_out, int64_t per_row) {
  const int64_t total = per_row * *num_out;
  SPT_GRID_STRIDE(i, total) { out[i] = -1; }
}

// For a regular or transposed conv, (offset, output) determines the input, so each neighbors[k, m] is
// written by exactly one thread: no atomics, no order dependence.
__global__ void scatterNeighborsKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g,
                                       HashTable table, const int32_t* __restrict__ num_out,
                                       int32_t* __restrict__ neighbors) {
  const int64_t m = *num_out;
  if (m == 0) return;  // empty, or overflowed: nothing may be written
  SPT_GRID_STRIDE(idx, n * g.kernel_volume) {
    const int64_t k = idx / n, site = idx % n;
    const int32_t* row = indices + site * (1 + g.ndim);
    int32_t target[kMaxSpatialDims];
    if (!outputSite(row, k, g, target)) continue;
    const int64_t slot = table.find(detail::encodeKey(row[0], target, g.out_shape, g.ndim));
    neighbors[k * m + table.values[slot]] = static_cast<int32_t>(site);
  }
}

__global__ void pointwiseCountKernel(int64_t n, int64_t capacity, int32_t* __restrict__ num_out,
                                     int32_t* __restrict__ overflow) {
  const bool over = n > capacity;
  *num_out = over ? 0 : static_cast<int32_t>(n);
  *overflow = over ? static_cast<int32_t>(n) : 0;
}

int64_t maxKeys(int64_t num_in, const RulebookGeometry& g) { return num_in * maxOutputsPerInput(g); }

}  // namespace

cudaError_t sparseRulebookWorkspaceSize(int64_t num_in, const RulebookGeometry& g, std::size_t* bytes) {
  if (bytes == nullptr || num_in < 0) return cudaErrorInvalidValue;
  if (g.pointwise) {
    *bytes = 0;
    return cudaSuccess;
  }
  const int64_t keys = std::max<int64_t>(maxKeys(num_in, g), 1);
  if (keys > INT32_MAX) return cudaErrorInvalidValue;
  std::size_t temp = 0;
  const cudaError_t err =
      cub::DeviceRadixSort::SortKeys(nullptr, temp, static_cast<const unsigned long long*>(nullptr),
                                     static_cast<unsigned long long*>(nullptr), keys, 0, sortEndBit(g));
  if (err != cudaSuccess) return err;
  *bytes = sparseRulebookWorkspace(keys, temp).bytes;
  return cudaSuccess;
}

cudaError_t sparseRulebook(const int32_t* d_indices, int64_t num_in, const RulebookGeometry& g, int64_t out_capacity,
                           int32_t* d_out_indices, int32_t* d_neighbors, int32_t* d_num_out, int32_t* d_overflow,
                           void* d_workspace, std::size_t workspace_size, cudaStream_t stream) {
  if (g.kind == RulebookKind::kSubmanifold || g.ndim < 1 || g.ndim > kMaxSpatialDims || num_in < 0 || out_capacity < 0)
    return cudaErrorInvalidValue;
  if (g.pointwise) {
    // Every site maps to itself, in input row order (as the CPU reference keeps it).
    pointwiseCountKernel<<<1, 1, 0, stream>>>(num_in, out_capacity, d_num_out, d_overflow);
    if (num_in > 0 && num_in <= out_capacity) {
      const cudaError_t err = cudaMemcpyAsync(d_out_indices, d_indices, num_in * (1 + g.ndim) * sizeof(int32_t),
                                              cudaMemcpyDeviceToDevice, stream);
      if (err != cudaSuccess) return err;
      detail::iotaKernel<<<detail::blocksFor(num_in), kThreads, 0, stream>>>(d_neighbors, num_in);
    }
    return cudaGetLastError();
  }
  const int64_t keys = std::max<int64_t>(maxKeys(num_in, g), 1);
  // Rows and output counts are int32 (the schema's neighbour maps), and so is the device counter.
  if (keys > INT32_MAX) return cudaErrorInvalidValue;
  std::size_t temp = 0;
  cudaError_t err = cub::DeviceRadixSort::SortKeys(nullptr, temp, static_cast<const unsigned long long*>(nullptr),
                                                   static_cast<unsigned long long*>(nullptr), keys, 0, sortEndBit(g));
  if (err != cudaSuccess) return err;
  const SparseRulebookWorkspace ws = sparseRulebookWorkspace(keys, temp);
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  const HashTable table = tableAt(d_workspace, ws.table);
  auto* unique = carve<unsigned long long>(d_workspace, ws.unique_keys_offset);
  auto* sorted = carve<unsigned long long>(d_workspace, ws.sorted_keys_offset);
  auto* counter = carve<int32_t>(d_workspace, ws.counter_offset);
  // Unused tail entries of `unique` stay all ones, so they sort after every real key.
  err = cudaMemsetAsync(table.keys, 0xFF, ws.table.capacity * sizeof(uint64_t), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(unique, 0xFF, keys * sizeof(uint64_t), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(counter, 0, sizeof(int32_t), stream);
  if (err != cudaSuccess) return err;
  const unsigned int pair_blocks = detail::blocksFor(num_in * g.kernel_volume);
  if (num_in > 0)
    insertOutputsKernel<<<pair_blocks, kThreads, 0, stream>>>(d_indices, num_in, g, table, unique, counter, keys);
  finalizeCountKernel<<<1, 1, 0, stream>>>(counter, out_capacity, d_num_out, d_overflow);
  err = cub::DeviceRadixSort::SortKeys(carve<void>(d_workspace, ws.sort_temp_offset), temp, unique, sorted, keys, 0,
                                       sortEndBit(g), stream);
  if (err != cudaSuccess) return err;
  assignRowsKernel<<<detail::blocksFor(keys), kThreads, 0, stream>>>(sorted, d_num_out, keys, g, table, d_out_indices);
  fillMinusOneKernel<<<detail::blocksFor(g.kernel_volume * std::min(keys, out_capacity)), kThreads, 0, stream>>>(
      d_neighbors, d_num_out, g.kernel_volume);
  if (num_in > 0)
    scatterNeighborsKernel<<<pair_blocks, kThreads, 0, stream>>>(d_indices, num_in, g, table, d_num_out, d_neighbors);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace sparsetrt
