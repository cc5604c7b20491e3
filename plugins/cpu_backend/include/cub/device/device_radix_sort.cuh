// The CPU backend's stand-in for CUB's cub::DeviceRadixSort::SortKeys over a DoubleBuffer: the same contract
// (a temp-storage size query with a null pointer, then a stable LSD radix sort of bits [begin, end) that
// leaves the result in keys.Current()), not CUB's code. CUB's onesweep kernels are for a GPU to run; what
// the backend checks is that our kernels use the contract right: the buffers' sizes, the temp storage they
// carve for it, the selector they read back. Its temp storage (one 256-bin histogram of 64-bit counts per
// 8-bit pass) is within sparsetrt's device-free bound radixSortTempBound, and it is really used, so a
// workspace carved too small is caught by the backend's bounds checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "cuda_runtime_api.h"

namespace sparsetrt {
namespace cpu {
// Enqueues a sort of `n` keys of `key_bytes` (4 or 8) on `stream` by bits [begin_bit, end_bit), 8 per pass,
// ping-ponging from `first` (which the selector names) through `second`; `temp` holds the histograms.
cudaError_t enqueueRadixSort(void* first, void* second, std::size_t key_bytes, int64_t n, int begin_bit, int end_bit,
                             void* temp, std::size_t temp_bytes, cudaStream_t stream);
}  // namespace cpu
}  // namespace sparsetrt

namespace cub {

struct NullType {};

template <typename T>
struct DoubleBuffer {
  T* d_buffers[2];
  int selector;
  DoubleBuffer() : d_buffers{nullptr, nullptr}, selector(0) {}
  DoubleBuffer(T* current, T* alternate) : d_buffers{current, alternate}, selector(0) {}
  T* Current() { return d_buffers[selector]; }
  T* Alternate() { return d_buffers[selector ^ 1]; }
};

struct DeviceRadixSort {
  template <typename KeyT, typename NumItemsT>
  static cudaError_t SortKeys(void* d_temp_storage, std::size_t& temp_storage_bytes, DoubleBuffer<KeyT>& d_keys,
                              NumItemsT num_items, int begin_bit = 0, int end_bit = sizeof(KeyT) * 8,
                              cudaStream_t stream = nullptr) {
    static_assert(sizeof(KeyT) == 4 || sizeof(KeyT) == 8, "the CPU stand-in sorts 32- and 64-bit unsigned keys");
    if (begin_bit < 0 || end_bit > static_cast<int>(sizeof(KeyT) * 8) || begin_bit > end_bit || num_items < 0)
      return cudaErrorInvalidValue;
    const int passes = (end_bit - begin_bit + 7) / 8;
    const std::size_t need = static_cast<std::size_t>(passes > 0 ? passes : 1) * 256 * sizeof(uint64_t);
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = need;
      return cudaSuccess;
    }
    if (temp_storage_bytes < need) return cudaErrorInvalidValue;
    if (num_items == 0 || passes == 0) return cudaSuccess;
    const cudaError_t err =
        sparsetrt::cpu::enqueueRadixSort(d_keys.Current(), d_keys.Alternate(), sizeof(KeyT), num_items, begin_bit,
                                         end_bit, d_temp_storage, temp_storage_bytes, stream);
    if (err == cudaSuccess && passes % 2 == 1) d_keys.selector ^= 1;  // known on the host, as with CUB
    return err;
  }
};

}  // namespace cub
