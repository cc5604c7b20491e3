// What the kernels' workspace layouts share, as pure arithmetic: alignment, the hash table over site keys and
// the bound on CUB's radix-sort scratch. Each op's own layout is in ops/<op>/<op>_host.h; the kernel library
// carves its one caller-provided workspace with them (no allocation at enqueue), and the host unit tests check
// them without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparsetrt/checked.h"
#include "sparsetrt/geometry.h"

namespace sparsetrt {

// Every sub-buffer starts on a 256-byte boundary (cudaMalloc's alignment, which CUB also expects).
constexpr std::size_t kWorkspaceAlignment = 256;

constexpr std::size_t alignUp(std::size_t bytes, std::size_t alignment = kWorkspaceAlignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}
// alignUp that saturates: sizes computed from dims TensorRT hands us must never wrap around.
constexpr std::size_t alignUpSat(std::size_t bytes) {
  return bytes > SIZE_MAX - kWorkspaceAlignment ? SIZE_MAX : alignUp(bytes);
}
// Where the next sub-buffer starts after one of `bytes` at `offset`. Saturating, like every size computed from the
// int64 dims TensorRT hands us: a size too large saturates (TensorRT then fails to allocate it) instead of wrapping
// around to a small one.
inline std::size_t alignedEnd(std::size_t offset, std::size_t bytes) {
  return alignUpSat(saturatingAdd(offset, bytes));
}

// Open-addressing hash table over int64 site keys: a power of two of at least twice the keys it must
// hold, so linear probing stays short (load factor <= 0.5) and the slot is `hash & (capacity - 1)`.
int64_t hashCapacity(int64_t max_keys);

struct HashTableLayout {
  int64_t capacity = 0;
  std::size_t keys_offset = 0;    // uint64 [capacity], empty slot = all ones
  std::size_t values_offset = 0;  // int32 [capacity]
  std::size_t bytes = 0;
};

HashTableLayout hashTableLayout(int64_t max_keys, std::size_t base_offset = 0);

// An upper bound on the temp storage of CUB's cub::DeviceRadixSort::SortKeys over a DoubleBuffer of
// `num_items` uint64 keys (int item count) and bits [0, key_bits), derived from CUB's onesweep dispatch
// (workspace.cpp says how). The assumptions it rests on are these constants; the kernel library
// static_asserts them against CUB's tuning policies of every architecture it is built for, sparseRulebook
// compares the bound with CUB's own query before it enqueues anything, and the GPU test compares them over
// many sizes.
constexpr int kSortRadixBits = 8;                           // onesweep digit bits: 256 bins per pass
constexpr int64_t kSortMinTileItems = 2048;                 // onesweep tile, threads x items, at least
constexpr int64_t kSortMinPortionItems = int64_t{1} << 27;  // onesweep portion, at least
constexpr std::size_t kSortCounterBytes = 8;                // per bin / lookback / counter entry, at most
std::size_t radixSortTempBound(int64_t num_items, int key_bits);

}  // namespace sparsetrt
