// ConvPlan on the GPU: group the columns of a neighbour map by the offsets they use, so that the tensor-core
// conv's 64-column tiles need few offsets (sparse_conv_kernels.cu). The layout and contract are in
// conv_plan_kernels.h; the CPU reference (exporter/backend/plan.py) computes the same bits.
//
// One block per window of kConvPlanWindow (4096) consecutive columns, which it reorders among themselves:
//  1. each column's offset mask (ceil(K/32) words, to the workspace) and each offset's entry count in the
//     window (integer sums: independent of thread order);
//  2. the sort key's bit of each offset: the min(K, 32) offsets with the fewest entries in the window (ties:
//     lower k first), the rarest the most significant. Rare offsets split the columns into few large groups,
//     so they lead; common ones (the centre of a submanifold kernel) vary within them;
//  3. each column's key: the Gray-code rank of its key bits (neighbouring ranks differ in one offset, so
//     neighbouring groups share most offsets), above its index in the window (ties keep column order);
//  4. a bitonic sort of the window's keys in shared memory;
//  5. the window's part of the plan: the permutation, the permuted masks and the permuted map. Reading map
//     row k at the permuted columns touches exactly the window's segment of that row, so the reads stay
//     within a few cache lines per warp and every sector is used.
// Windows keep the reordering local (no global sort, no scatter across the map): on lidar maps, 4096-column
// windows get most of a global sort's grouping (docs/performance.md).
#include <climits>

#include "device_common.cuh"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::carve;

constexpr int kPlanThreads = 512;
constexpr int kWindow = static_cast<int>(kConvPlanWindow);
constexpr int kPerThread = kWindow / kPlanThreads;
constexpr int kWindowBits = 12;  // column index within the window
static_assert((1 << kWindowBits) == kWindow && kWindow % kPlanThreads == 0, "window of 4096 columns");
constexpr uint64_t kPastEnd = ~uint64_t{0};  // the key of a window slot past M: sorts last, never written

__global__ void __launch_bounds__(kPlanThreads)
    convPlanKernel(const int32_t* __restrict__ neighbors, int64_t kvol, int64_t m_total, uint32_t* __restrict__ masks,
                   int32_t* __restrict__ plan) {
  __shared__ unsigned long long keys[kWindow];
  __shared__ unsigned int counts[kConvPlanMaxOffsets];
  __shared__ int8_t bit_of[kConvPlanMaxOffsets];

  const int tid = threadIdx.x, lane = tid & 31;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kWindow;
  const int key_bits = kvol < 32 ? static_cast<int>(kvol) : 32;
  for (int64_t k = tid; k < kvol; k += kPlanThreads) counts[k] = 0;
  __syncthreads();

  // 1. Masks and counts. Thread tid owns columns tid, tid + 512, ... of the window (coalesced reads).
  for (int64_t k0 = 0; k0 < kvol; k0 += 32) {
    uint32_t bits[kPerThread];
#pragma unroll
    for (int c = 0; c < kPerThread; ++c) bits[c] = 0;
    for (int64_t k = k0; k < kvol && k < k0 + 32; ++k) {
      int used = 0;
#pragma unroll
      for (int c = 0; c < kPerThread; ++c) {
        const int64_t m = m0 + tid + c * kPlanThreads;
        const bool u = m < m_total && neighbors[k * m_total + m] >= 0;
        bits[c] |= static_cast<uint32_t>(u) << (k - k0);
        used += u;
      }
      // A warp's total, then one shared atomic per warp (integer sums: the order does not matter).
#pragma unroll
      for (int d = 16; d >= 1; d >>= 1) used += __shfl_xor_sync(0xffffffffu, used, d);
      if (lane == 0 && used != 0) atomicAdd(&counts[k], static_cast<unsigned int>(used));
    }
#pragma unroll
    for (int c = 0; c < kPerThread; ++c) {
      const int64_t m = m0 + tid + c * kPlanThreads;
      if (m < m_total) masks[(k0 >> 5) * m_total + m] = bits[c];
    }
  }
  __syncthreads();

  // 2. Key bits: rank the offsets, rarest first.
  for (int64_t k = tid; k < kvol; k += kPlanThreads) {
    int64_t rank = 0;  // offsets before k: fewer entries, or as many and a lower index
    for (int64_t j = 0; j < kvol; ++j) rank += counts[j] < counts[k] || (counts[j] == counts[k] && j < k);
    bit_of[k] = static_cast<int8_t>(rank < key_bits ? key_bits - 1 - rank : -1);
  }
  __syncthreads();

  // 3. Keys. The column's own mask words were written by this thread in step 1.
#pragma unroll
  for (int c = 0; c < kPerThread; ++c) {
    const int local = tid + c * kPlanThreads;
    const int64_t m = m0 + local;
    uint64_t key = kPastEnd;
    if (m < m_total) {
      uint32_t code = 0;
      for (int64_t k = 0; k < kvol; ++k) {
        const int bit = bit_of[k];
        if (bit >= 0 && ((masks[(k >> 5) * m_total + m] >> (k & 31)) & 1u) != 0) code |= 1u << bit;
      }
      code ^= code >> 1;  // the Gray-code rank (stays below key_bits)
      code ^= code >> 2;
      code ^= code >> 4;
      code ^= code >> 8;
      code ^= code >> 16;
      key = (static_cast<uint64_t>(code) << kWindowBits) | static_cast<uint64_t>(local);
    }
    keys[local] = key;
  }
  __syncthreads();

  // 4. Bitonic sort, ascending (keys are distinct, so the result is the same whatever the schedule).
  for (int size = 2; size <= kWindow; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = tid; t < kWindow / 2; t += kPlanThreads) {
        const int lo = 2 * stride * (t / stride) + t % stride, hi = lo + stride;
        const bool ascending = (lo & size) == 0;
        const unsigned long long a = keys[lo], b = keys[hi];
        if ((a > b) == ascending) {
          keys[lo] = b;
          keys[hi] = a;
        }
      }
      __syncthreads();
    }
  }

  // 5. The plan's columns of this window.
  const int64_t words = (kvol + 31) / 32;  // convPlanRows(K) = K + 1 + words
  for (int i = tid; i < kWindow; i += kPlanThreads) {
    const int64_t out = m0 + i;
    if (out >= m_total) continue;  // past-end keys sort last: slots < M - m0 hold real columns
    const int64_t column = m0 + static_cast<int64_t>(keys[i] & (kWindow - 1));
    plan[kvol * m_total + out] = static_cast<int32_t>(column);
    for (int64_t w = 0; w < words; ++w)
      plan[(kvol + 1 + w) * m_total + out] = static_cast<int32_t>(masks[w * m_total + column]);
    for (int64_t k = 0; k < kvol; ++k) plan[k * m_total + out] = neighbors[k * m_total + column];
  }
}

}  // namespace

std::size_t convPlanWorkspaceSize(int64_t num_out, int64_t kernel_volume) {
  return convPlanWorkspace(num_out, kernel_volume).bytes;
}

cudaError_t convPlan(const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, int32_t* d_plan,
                     void* d_workspace, std::size_t workspace_size, cudaStream_t stream) {
  if (kernel_volume < 1 || kernel_volume > kConvPlanMaxOffsets || num_out < 0 || num_out > INT32_MAX)
    return cudaErrorInvalidValue;
  if (num_out == 0) return cudaSuccess;
  const ConvPlanWorkspace ws = convPlanWorkspace(num_out, kernel_volume);
  if (d_workspace == nullptr || workspace_size < ws.bytes) return cudaErrorInvalidValue;
  const auto windows = static_cast<unsigned int>((num_out + kWindow - 1) / kWindow);
  return detail::launch<convPlanKernel>(windows, kPlanThreads, 0, stream, d_neighbors, kernel_volume, num_out,
                                        carve<uint32_t>(d_workspace, ws.masks_offset), d_plan);
}

}  // namespace kernels
}  // namespace sparsetrt
