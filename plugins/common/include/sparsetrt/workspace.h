// Workspace layouts of the kernels, as pure arithmetic: the kernel library carves its one caller-provided
// workspace with these (no allocation at enqueue), and the host unit tests check them without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparsetrt/geometry.h"

namespace sparsetrt {

// Every sub-buffer starts on a 256-byte boundary (cudaMalloc's alignment, which CUB also expects).
constexpr std::size_t kWorkspaceAlignment = 256;

constexpr std::size_t alignUp(std::size_t bytes, std::size_t alignment = kWorkspaceAlignment) {
  return (bytes + alignment - 1) / alignment * alignment;
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

// SubmRulebook: the hash table over the N input sites.
struct SubmRulebookWorkspace {
  HashTableLayout table;
  std::size_t bytes = 0;
};
SubmRulebookWorkspace submRulebookWorkspace(int64_t num_in);

// SparseRulebook (regular or transposed): a hash table of the output keys, the compacted unique keys and the
// other half of the radix sort's double buffer, two 64-bit counters and CUB's radix-sort scratch. Everything
// is sized from
//   keys = max(1, min(num_in * maxOutputsPerInput(g), out_capacity)),
// out_capacity being the bound on M declared to TensorRT (often far below N * maxOutputsPerInput once the
// grid caps it). When the layer creates more than out_capacity sites the kernels detect it (see
// sparsetrt/kernels.h) instead of needing room for them. Pure arithmetic: TensorRT-RTX builds engines (and
// asks for workspace sizes) on machines without a GPU.
struct SparseRulebookWorkspace {
  int64_t keys = 0;                    // entries of each key buffer and of the sort
  int sort_bits = 0;                   // radix-sort key bits [0, sort_bits)
  HashTableLayout table;               // sized for `keys`
  std::size_t unique_keys_offset = 0;  // uint64 [keys]: the sort's input half of the double buffer
  std::size_t sorted_keys_offset = 0;  // uint64 [keys]: the other half
  std::size_t counter_offset = 0;      // uint64 [2]: distinct output keys found, table-full flag
  std::size_t sort_temp_offset = 0;    // CUB temp storage
  std::size_t sort_temp_bytes = 0;     // radixSortTempBound(keys, sort_bits)
  std::size_t bytes = 0;               // 0 for a pointwise geometry (no scratch at all)
};
SparseRulebookWorkspace sparseRulebookWorkspace(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity);

// Key bits the output keys of `g` occupy: a key is batch * prod(out_shape) + linear site with batch < 2^31.
int sparseRulebookSortBits(const RulebookGeometry& g);

// ConvPlan (kernels.h): its output has convPlanRows(K) = K + 1 + ceil(K / 32) rows of M int32 (the permuted
// map, the permutation, the column masks). Columns are reordered within windows of kConvPlanWindow, for
// kernel volumes up to kConvPlanMaxOffsets. Its workspace: the column masks in map order (ceil(K/32) x M words).
constexpr int64_t kConvPlanWindow = 4096;
constexpr int64_t kConvPlanMaxOffsets = 1024;
int64_t convPlanRows(int64_t kernel_volume);
struct ConvPlanWorkspace {
  std::size_t masks_offset = 0;  // uint32 [ceil(K/32), M]
  std::size_t bytes = 0;
};
ConvPlanWorkspace convPlanWorkspace(int64_t num_out, int64_t kernel_volume);

// UniqueSites: two 64-bit key buffers (the radix sort's double buffer), two int32 permutations and CUB's sort
// scratch for `num_in` keys of all 64 bits. Pure arithmetic (engines build without a GPU).
struct UniqueSitesWorkspace {
  std::size_t keys_offset = 0;       // uint64 [N]
  std::size_t alt_keys_offset = 0;   // uint64 [N]
  std::size_t perm_offset = 0;       // int32 [N]
  std::size_t alt_perm_offset = 0;   // int32 [N]
  std::size_t sort_temp_offset = 0;  // CUB temp storage
  std::size_t sort_temp_bytes = 0;   // radixSortTempBound(N, 64)
  std::size_t bytes = 0;
};
UniqueSitesWorkspace uniqueSitesWorkspace(int64_t num_in);

// SegmentReduce: two 64-bit key buffers and CUB's sort scratch for `num_in` keys of all 64 bits.
struct SegmentReduceWorkspace {
  std::size_t keys_offset = 0;      // uint64 [N]
  std::size_t alt_keys_offset = 0;  // uint64 [N]
  std::size_t sort_temp_offset = 0;
  std::size_t sort_temp_bytes = 0;
  std::size_t bytes = 0;
};
SegmentReduceWorkspace segmentReduceWorkspace(int64_t num_in);

// MaskRows: two 64-bit key buffers and CUB's sort scratch for `num_in` keys of 32 bits.
struct MaskRowsWorkspace {
  std::size_t keys_offset = 0;      // uint64 [N]
  std::size_t alt_keys_offset = 0;  // uint64 [N]
  std::size_t sort_temp_offset = 0;
  std::size_t sort_temp_bytes = 0;
  std::size_t bytes = 0;
};
MaskRowsWorkspace maskRowsWorkspace(int64_t num_in);

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
