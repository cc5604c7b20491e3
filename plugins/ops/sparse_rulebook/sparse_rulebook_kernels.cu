// SparseRulebook on the GPU (regular and transposed): every (input, offset) pair inserts the output
// site it reaches into a hash table; the distinct sites are radix-sorted so rows come out ordered by
// (batch, *coords) whatever the thread order; a last pass writes the neighbour map. Semantics are those of
// the CPU reference (exporter/backend/rulebook.py); the API contract is in sparse_rulebook_kernels.h.
//
// Everything is sized for keys = min(N * maxOutputsPerInput, out_capacity) (sparsetrt/workspace.h), not for
// the number of (input, offset) pairs: the table may fill up when a layer overflows its declared bound, which
// insertion detects (HashTable::insert gives up after visiting every slot) and reports as an overflow.
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "device_common.cuh"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::carve;
using detail::HashTable;
using detail::kThreads;
using detail::tableAt;

using SortKey = unsigned long long;

// The device-free sort-scratch bound (radixSortTempBound, workspace.cpp) rests on properties of CUB's tuning
// policies; check them here, where CUB is included, for the policies that serve sm_86/87/89 (Policy800),
// sm_90 (Policy900) and sm_100/120 (Policy1000). These are CUB internals of the version the bound was derived
// from (CCCL 3.0, CUDA 13.0); with another CUB the checks are skipped, and sparseRulebook's comparison with
// CUB's own size query (before anything is enqueued) still refuses a bound that is too small.
#if defined(CCCL_MAJOR_VERSION) && CCCL_MAJOR_VERSION == 3 && CCCL_MINOR_VERSION == 0
template <typename Policy>
constexpr bool sortBoundHolds() {
  using Onesweep = typename Policy::OnesweepPolicy;
  constexpr int64_t tile = int64_t{Onesweep::BLOCK_THREADS} * Onesweep::ITEMS_PER_THREAD;
  return bool(Policy::ONESWEEP) && int(Policy::ONESWEEP_RADIX_BITS) == kSortRadixBits && tile >= kSortMinTileItems &&
         ((int64_t{1} << 28) - tile) >= kSortMinPortionItems;
}
// SortKeys with an int item count sorts with 32-bit offsets (detail::choose_offset_t) and no value type.
using SortPolicies = cub::detail::radix::policy_hub<SortKey, cub::NullType, cub::detail::choose_offset_t<int>>;
static_assert(sizeof(cub::detail::choose_offset_t<int>) <= kSortCounterBytes, "radix sort offsets wider than assumed");
static_assert(sortBoundHolds<SortPolicies::Policy800>(), "CUB's sm_80 radix-sort policy breaks radixSortTempBound");
static_assert(sortBoundHolds<SortPolicies::Policy900>(), "CUB's sm_90 radix-sort policy breaks radixSortTempBound");
static_assert(sortBoundHolds<SortPolicies::Policy1000>(), "CUB's sm_100 radix-sort policy breaks radixSortTempBound");
#endif

// ------------------------------------------------------------------------------- regular, transposed
// The output site that input `row` reaches through flat offset k, if any.
__device__ __forceinline__ bool outputSite(const int32_t* row, int64_t k, const RulebookGeometry& g, int32_t* target) {
  // A negative batch index reaches nothing (kernels.h): its key would wrap past the sort's bit range.
  if (row[0] < 0) return false;
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
// sort that follows makes the result deterministic). counters[0] counts distinct keys; counters[1] is set
// when the table is full, which only happens when the distinct keys exceed the declared bound (the table
// holds at least twice that many).
__global__ void insertOutputsKernel(const int32_t* __restrict__ indices, int64_t n, RulebookGeometry g, HashTable table,
                                    SortKey* __restrict__ unique, unsigned long long* __restrict__ counters,
                                    int64_t max_keys) {
  SPT_GRID_STRIDE(idx, n * g.kernel_volume) {
    const int64_t k = idx / n, site = idx % n;
    const int32_t* row = indices + site * (1 + g.ndim);
    int32_t target[kMaxSpatialDims];
    if (!outputSite(row, k, g, target)) continue;
    bool inserted;
    const uint64_t key = detail::encodeKey(row[0], target, g.out_shape, g.ndim);
    if (table.insert(key, &inserted) < 0) {
      atomicExch(&counters[1], 1ULL);
      continue;
    }
    if (inserted) {
      const unsigned long long pos = atomicAdd(&counters[0], 1ULL);
      // Past max_keys only when overflowing (max_keys >= min(true count, out_capacity)): nothing to keep.
      if (pos < static_cast<unsigned long long>(max_keys)) unique[pos] = key;
    }
  }
}

// The overflow contract (sparse_rulebook_kernels.h): num_out = M, or 0 with overflow = the count found (exact unless
// the table filled up, then a lower bound that is still > out_capacity).
__global__ void finalizeCountKernel(const unsigned long long* __restrict__ counters, int64_t out_capacity,
                                    int32_t* __restrict__ num_out, int32_t* __restrict__ overflow) {
  const unsigned long long found = counters[0], cap = static_cast<unsigned long long>(out_capacity);
  const bool over = counters[1] != 0 || found > cap;
  const unsigned long long reported = found > cap ? found : cap + 1;
  *num_out = over ? 0 : static_cast<int32_t>(found);
  *overflow = over ? static_cast<int32_t>(reported < INT32_MAX ? reported : INT32_MAX) : 0;
}

// Fixed counts without any insertion: pointwise layers (n = N) and empty inputs (n = 0).
__global__ void directCountKernel(int64_t n, int64_t out_capacity, int32_t* __restrict__ num_out,
                                  int32_t* __restrict__ overflow) {
  const bool over = n > out_capacity;
  *num_out = over ? 0 : static_cast<int32_t>(n);
  *overflow = over ? static_cast<int32_t>(n) : 0;
}

// Sorted position j < M becomes output row j: record it in the table and decode the site. Positions past M
// hold the all-ones sentinels of unused entries (or nothing at all after an overflow, where M = 0).
__global__ void assignRowsKernel(const SortKey* __restrict__ sorted, const int32_t* __restrict__ num_out,
                                 RulebookGeometry g, HashTable table, int32_t* __restrict__ out_indices) {
  const int64_t m = *num_out;
  SPT_GRID_STRIDE(j, m) {
    const uint64_t key = sorted[j];
    const int64_t slot = table.find(key);
    if (slot >= 0) table.values[slot] = static_cast<int32_t>(j);  // always found: every sorted key was inserted
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
    if (slot >= 0) neighbors[k * m + table.values[slot]] = static_cast<int32_t>(site);
  }
}

}  // namespace

std::size_t sparseRulebookWorkspaceSize(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity) {
  return sparseRulebookWorkspace(num_in, g, out_capacity).bytes;
}

cudaError_t sparseRulebook(const int32_t* d_indices, int64_t num_in, const RulebookGeometry& g, int64_t out_capacity,
                           int32_t* d_out_indices, int32_t* d_neighbors, int32_t* d_num_out, int32_t* d_overflow,
                           void* d_workspace, std::size_t workspace_size, cudaStream_t stream, int32_t* h_counts) {
  // Rows and output counts are int32 (the schema's neighbour maps).
  if (g.kind == RulebookKind::kSubmanifold || g.ndim < 1 || g.ndim > kMaxSpatialDims || num_in < 0 ||
      num_in > INT32_MAX || out_capacity < 0 || g.kernel_volume < 1)
    return cudaErrorInvalidValue;
  // Reads [num_out, overflow] back to the host (one synchronization), in relaxed capture mode for this thread: the
  // copies and the sync are legal on this stream and must not invalidate a global-mode capture that another
  // thread of the process has open.
  const auto readBack = [&]() -> cudaError_t {
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    cudaError_t err = cudaThreadExchangeStreamCaptureMode(&mode);
    if (err != cudaSuccess) return err;
    err = cudaMemcpyAsync(&h_counts[0], d_num_out, sizeof(int32_t), cudaMemcpyDeviceToHost, stream);
    if (err == cudaSuccess)
      err = cudaMemcpyAsync(&h_counts[1], d_overflow, sizeof(int32_t), cudaMemcpyDeviceToHost, stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    cudaThreadExchangeStreamCaptureMode(&mode);  // the caller's mode again
    return err;
  };
  if (g.pointwise || num_in == 0) {
    // Pointwise: every site maps to itself, in input row order (as the CPU reference keeps it).
    cudaError_t err = detail::launch<directCountKernel>(1, 1, 0, stream, num_in, out_capacity, d_num_out, d_overflow);
    if (err == cudaSuccess && num_in > 0 && num_in <= out_capacity) {
      err = cudaMemcpyAsync(d_out_indices, d_indices, num_in * (1 + g.ndim) * sizeof(int32_t), cudaMemcpyDeviceToDevice,
                            stream);
      if (err == cudaSuccess)
        err = detail::launch<detail::iotaKernel>(detail::blocksFor(num_in), kThreads, 0, stream, d_neighbors, num_in);
    }
    return err == cudaSuccess && h_counts != nullptr ? readBack() : err;
  }
  const SparseRulebookWorkspace ws = sparseRulebookWorkspace(num_in, g, out_capacity);
  if (ws.keys > INT32_MAX) return cudaErrorInvalidValue;  // CUB's item count (int) and int32 row numbers
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  const HashTable table = tableAt(d_workspace, ws.table);
  auto* unique = carve<SortKey>(d_workspace, ws.unique_keys_offset);
  auto* sorted = carve<SortKey>(d_workspace, ws.sorted_keys_offset);
  auto* counters = carve<unsigned long long>(d_workspace, ws.counter_offset);
  void* sort_temp = carve<void>(d_workspace, ws.sort_temp_offset);

  // The two key buffers are the halves of CUB's double buffer: it needs no copy of its own and leaves the
  // result in whichever half Current() names afterwards (known on the host, without a sync).
  cub::DoubleBuffer<SortKey> buffers(unique, sorted);
  // Before enqueuing anything: CUB's own figure for this device must fit the device-free bound (the bound is
  // for `keys` items; a sort of M <= keys items needs no more).
  std::size_t needed = 0;
  cudaError_t err =
      cub::DeviceRadixSort::SortKeys(nullptr, needed, buffers, static_cast<int>(ws.keys), 0, ws.sort_bits, stream);
  if (err != cudaSuccess) return err;
  if (needed > ws.sort_temp_bytes) return cudaErrorInvalidValue;

  err = cudaMemsetAsync(table.keys, 0xFF, ws.table.capacity * sizeof(uint64_t), stream);
  // Without the count on the host, all `keys` entries are sorted: unused tail entries stay all ones, so they
  // sort after every real key.
  if (err == cudaSuccess && h_counts == nullptr) err = cudaMemsetAsync(unique, 0xFF, ws.keys * sizeof(SortKey), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(counters, 0, 2 * sizeof(unsigned long long), stream);
  if (err != cudaSuccess) return err;
  const unsigned int pair_blocks = detail::blocksFor(num_in * g.kernel_volume);
  err = detail::launch<insertOutputsKernel>(pair_blocks, kThreads, 0, stream, d_indices, num_in, g, table, unique,
                                            counters, ws.keys);
  if (err == cudaSuccess)
    err = detail::launch<finalizeCountKernel>(1, 1, 0, stream, counters, out_capacity, d_num_out, d_overflow);
  if (err != cudaSuccess) return err;
  // M <= min(keys, out_capacity): with the count on the host, exactly M keys are sorted and K x M entries filled;
  // without it, everything is sized for that bound and the kernels read M on the device.
  int64_t rows = std::min<int64_t>(ws.keys, out_capacity);
  int sort_items = static_cast<int>(ws.keys);
  if (h_counts != nullptr) {
    err = readBack();
    if (err != cudaSuccess) return err;
    if (h_counts[0] == 0) return cudaSuccess;  // no output site, or an overflow: nothing more is written
    rows = h_counts[0];
    sort_items = h_counts[0];
  }
  std::size_t temp_bytes = ws.sort_temp_bytes;
  err = cub::DeviceRadixSort::SortKeys(sort_temp, temp_bytes, buffers, sort_items, 0, ws.sort_bits, stream);
  if (err != cudaSuccess) return err;
  sorted = buffers.Current();
  err = detail::launch<assignRowsKernel>(detail::blocksFor(rows), kThreads, 0, stream, sorted, d_num_out, g, table,
                                         d_out_indices);
  if (err != cudaSuccess) return err;
  if (h_counts != nullptr)
    err = cudaMemsetAsync(d_neighbors, 0xFF, static_cast<std::size_t>(g.kernel_volume * rows) * sizeof(int32_t),
                          stream);  // -1 everywhere
  else
    err = detail::launch<fillMinusOneKernel>(detail::blocksFor(g.kernel_volume * rows), kThreads, 0, stream,
                                             d_neighbors, d_num_out, g.kernel_volume);
  if (err != cudaSuccess) return err;
  return detail::launch<scatterNeighborsKernel>(pair_blocks, kThreads, 0, stream, d_indices, num_in, g, table,
                                                d_num_out, d_neighbors);
}

}  // namespace kernels
}  // namespace sparsetrt
