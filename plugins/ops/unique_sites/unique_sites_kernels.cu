// UniqueSites on the GPU: the distinct rows of an int32 [N, K] tensor, sorted lexicographically, with inverse and
// counts, as torch.unique(dim=0, return_inverse=True, return_counts=True). Everything is a radix sort or has one
// writer per entry, so results do not depend on thread order (README.md; the API contract is in
// unique_sites_kernels.h).
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "device_common.cuh"
#include "ops/unique_sites/unique_sites_host.h"
#include "ops/unique_sites/unique_sites_kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::carve;
using detail::kThreads;
using SortKey = unsigned long long;

constexpr SortKey kLow32 = 0xFFFFFFFFull;

// Key of sorted position i for column `col`: the value with its sign bit flipped (so unsigned order is signed
// order) above the position, which makes every key distinct and the sort stable with respect to the order the
// previous columns produced.
__global__ void columnKeysKernel(const int32_t* __restrict__ indices, int64_t n, int64_t columns, int64_t col,
                                 const int32_t* __restrict__ perm, SortKey* __restrict__ keys) {
  SPT_GRID_STRIDE(i, n) {
    const uint32_t v = static_cast<uint32_t>(indices[perm[i] * columns + col]) ^ 0x80000000u;
    keys[i] = (static_cast<SortKey>(v) << 32) | static_cast<SortKey>(i);
  }
}

__global__ void permuteKernel(const SortKey* __restrict__ keys, int64_t n, const int32_t* __restrict__ perm,
                              int32_t* __restrict__ next) {
  SPT_GRID_STRIDE(i, n) { next[i] = perm[static_cast<int64_t>(keys[i] & kLow32)]; }
}

__device__ __forceinline__ bool sameRow(const int32_t* indices, int64_t columns, int64_t a, int64_t b) {
  for (int64_t c = 0; c < columns; ++c)
    if (indices[a * columns + c] != indices[b * columns + c]) return false;
  return true;
}

// A sorted position whose row differs from its predecessor's starts a group: its key is the position, every
// other key all ones (sorting after the starts). The starts are counted into *num_out (an integer count: exact
// whatever the order of the atomics).
__global__ void groupStartsKernel(const int32_t* __restrict__ indices, int64_t n, int64_t columns,
                                  const int32_t* __restrict__ perm, SortKey* __restrict__ keys,
                                  int32_t* __restrict__ num_out) {
  SPT_GRID_STRIDE(i, n) {
    const bool start = i == 0 || !sameRow(indices, columns, perm[i], perm[i - 1]);
    keys[i] = start ? static_cast<SortKey>(i) : kLow32;
    if (start) atomicAdd(num_out, 1);
  }
}

// The group of sorted position i: the last start <= i (binary search over the M sorted starts).
__device__ __forceinline__ int64_t groupOf(const SortKey* starts, int64_t m, int64_t i) {
  int64_t lo = 0, hi = m;  // first start > i
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (static_cast<int64_t>(starts[mid]) <= i)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1;
}

__global__ void inverseKernel(int64_t n, const int32_t* __restrict__ perm, const SortKey* __restrict__ starts,
                              const int32_t* __restrict__ num_out, int32_t* __restrict__ inverse) {
  const int64_t m = *num_out;
  SPT_GRID_STRIDE(i, n) { inverse[perm[i]] = static_cast<int32_t>(groupOf(starts, m, i)); }
}

__global__ void uniqueRowsKernel(const int32_t* __restrict__ indices, int64_t n, int64_t columns,
                                 const int32_t* __restrict__ perm, const SortKey* __restrict__ starts,
                                 const int32_t* __restrict__ num_out, int32_t* __restrict__ unique,
                                 int32_t* __restrict__ counts) {
  const int64_t m = *num_out;
  SPT_GRID_STRIDE(g, m) {
    const int64_t first = static_cast<int64_t>(starts[g]);
    const int64_t end = g + 1 < m ? static_cast<int64_t>(starts[g + 1]) : n;
    const int64_t row = perm[first];
    for (int64_t c = 0; c < columns; ++c) unique[g * columns + c] = indices[row * columns + c];
    counts[g] = static_cast<int32_t>(end - first);
  }
}

}  // namespace

std::size_t uniqueSitesWorkspaceSize(int64_t num_in) { return uniqueSitesWorkspace(num_in).bytes; }

cudaError_t uniqueSites(const int32_t* d_indices, int64_t num_in, int64_t columns, int32_t* d_unique,
                        int32_t* d_inverse, int32_t* d_counts, int32_t* d_num_out, void* d_workspace,
                        std::size_t workspace_size, cudaStream_t stream) {
  // Positions live in the keys' low 32 bits and CUB counts items in an int.
  if (num_in < 0 || num_in > INT32_MAX || columns < 1) return cudaErrorInvalidValue;
  const UniqueSitesWorkspace ws = uniqueSitesWorkspace(num_in);
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  cudaError_t err = cudaMemsetAsync(d_num_out, 0, sizeof(int32_t), stream);
  if (err != cudaSuccess || num_in == 0) return err;
  auto* keys = carve<SortKey>(d_workspace, ws.keys_offset);
  auto* alt_keys = carve<SortKey>(d_workspace, ws.alt_keys_offset);
  int32_t* perm = carve<int32_t>(d_workspace, ws.perm_offset);
  int32_t* alt_perm = carve<int32_t>(d_workspace, ws.alt_perm_offset);
  void* sort_temp = carve<void>(d_workspace, ws.sort_temp_offset);
  const int n = static_cast<int>(num_in);
  // Before enqueuing anything: CUB's own figure for this device must fit the device-free bound.
  cub::DoubleBuffer<SortKey> buffers(keys, alt_keys);
  std::size_t needed = 0;
  err = cub::DeviceRadixSort::SortKeys(nullptr, needed, buffers, n, 0, 64, stream);
  if (err != cudaSuccess) return err;
  if (needed > ws.sort_temp_bytes) return cudaErrorInvalidValue;

  const unsigned int blocks = detail::blocksFor(num_in);
  err = detail::launch<detail::iotaKernel>(blocks, kThreads, 0, stream, perm, num_in);
  // Least significant column first; each pass is stable with respect to the order so far.
  for (int64_t col = columns - 1; col >= 0 && err == cudaSuccess; --col) {
    err = detail::launch<columnKeysKernel>(blocks, kThreads, 0, stream, d_indices, num_in, columns, col, perm,
                                           buffers.Current());
    std::size_t temp_bytes = ws.sort_temp_bytes;
    if (err == cudaSuccess) err = cub::DeviceRadixSort::SortKeys(sort_temp, temp_bytes, buffers, n, 0, 64, stream);
    if (err == cudaSuccess)
      err = detail::launch<permuteKernel>(blocks, kThreads, 0, stream, buffers.Current(), num_in, perm, alt_perm);
    std::swap(perm, alt_perm);
  }
  if (err == cudaSuccess)
    err = detail::launch<groupStartsKernel>(blocks, kThreads, 0, stream, d_indices, num_in, columns, perm,
                                            buffers.Current(), d_num_out);
  std::size_t temp_bytes = ws.sort_temp_bytes;
  if (err == cudaSuccess) err = cub::DeviceRadixSort::SortKeys(sort_temp, temp_bytes, buffers, n, 0, 32, stream);
  if (err != cudaSuccess) return err;
  const SortKey* starts = buffers.Current();
  err = detail::launch<inverseKernel>(blocks, kThreads, 0, stream, num_in, perm, starts, d_num_out, d_inverse);
  if (err != cudaSuccess) return err;
  return detail::launch<uniqueRowsKernel>(blocks, kThreads, 0, stream, d_indices, num_in, columns, perm, starts,
                                          d_num_out, d_unique, d_counts);
}

}  // namespace kernels
}  // namespace sparsetrt
