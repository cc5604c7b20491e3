#include "sparsetrt/workspace.h"

#include <algorithm>

#include "sparsetrt/attributes.h"

namespace sparsetrt {

int64_t hashCapacity(int64_t max_keys) {
  int64_t capacity = 16;  // a floor, so tiny and empty inputs still get a valid (non-zero) table
  while (capacity < 2 * std::max<int64_t>(max_keys, 0)) capacity *= 2;
  return capacity;
}

HashTableLayout hashTableLayout(int64_t max_keys, std::size_t base_offset) {
  HashTableLayout t;
  t.capacity = hashCapacity(max_keys);
  t.keys_offset = alignUp(base_offset);
  t.values_offset = alignUp(t.keys_offset + static_cast<std::size_t>(t.capacity) * sizeof(uint64_t));
  t.bytes = alignUp(t.values_offset + static_cast<std::size_t>(t.capacity) * sizeof(int32_t)) - base_offset;
  return t;
}

SubmRulebookWorkspace submRulebookWorkspace(int64_t num_in) {
  SubmRulebookWorkspace w;
  w.table = hashTableLayout(num_in);
  w.bytes = w.table.bytes;
  return w;
}

int sparseRulebookSortBits(const RulebookGeometry& g) {
  // key < 2^31 * prod(out_shape) (batch indices are int32 and non-negative), so 31 + ceil(log2(sites)) bits
  // hold every key; fewer bits than 64 means fewer radix passes.
  uint64_t sites = 1;
  for (int d = 0; d < g.ndim; ++d) sites *= static_cast<uint64_t>(std::max<int32_t>(g.out_shape[d], 1));
  int bits = 0;
  while (bits < 63 && (uint64_t{1} << bits) < sites) ++bits;
  return std::min(31 + bits, 64);
}

// How this bounds CUB's need. CUB 3.0 (CUDA 13.0), cub/device/dispatch/dispatch_radix_sort.cuh,
// DispatchRadixSort::Invoke with is_overwrite_okay = true (the DoubleBuffer overload of SortKeys):
//  - num_items == 0, or a single tile (num_items <= SingleTilePolicy's tile): 1 byte;
//  - otherwise every policy serving our architectures sorts 8-byte keys with onesweep (Policy800 for
//    sm_86/87/89, Policy900 for sm_90, Policy1000 for sm_100/120: ONESWEEP = true), and InvokeOnesweep
//    aliases, each rounded up to 256 bytes and then 255 bytes more for the base alignment
//    (detail::AliasTemporaries):
//      bins      num_portions * num_passes * RADIX_DIGITS * sizeof(OffsetT)
//      lookback  max_num_blocks * RADIX_DIGITS * sizeof(int)
//      keys/values copies: none (is_overwrite_okay)
//      counters  num_portions * num_passes * sizeof(int)
//    with num_passes = ceil(bits / RADIX_BITS), PORTION_SIZE = floor((2^28 - 1) / TILE) * TILE (so between
//    2^28 - TILE and 2^28), num_portions = ceil(num_items / PORTION_SIZE) and
//    max_num_blocks = ceil(min(num_items, PORTION_SIZE) / TILE), TILE = the onesweep block's threads x items.
// The bound takes RADIX_BITS = kSortRadixBits (8 in all three policies), TILE >= kSortMinTileItems (the
// policies' tiles for uint64 keys are 384 x 10 = 3840 on sm_8x and 384 x 15 = 5760 on sm_90+, after CUB's
// register-bound scaling of 8-byte keys), PORTION_SIZE >= kSortMinPortionItems (2^27 <= 2^28 - TILE) and
// 8 bytes per entry (CUB uses 4: an int item count gives 32-bit offsets). So it is at least CUB's figure on
// every architecture we build for, and about 1 byte per key, small next to the 16 bytes per key of the two
// key buffers.
std::size_t radixSortTempBound(int64_t num_items, int key_bits) {
  const int64_t n = std::max<int64_t>(num_items, 1);
  const int64_t digits = int64_t{1} << kSortRadixBits;
  const int64_t passes = std::max<int64_t>((key_bits + kSortRadixBits - 1) / kSortRadixBits, 1);
  const int64_t portions = (n + kSortMinPortionItems - 1) / kSortMinPortionItems;
  constexpr int64_t kMaxPortionItems = int64_t{1} << 28;
  const int64_t blocks = (std::min(n, kMaxPortionItems) + kSortMinTileItems - 1) / kSortMinTileItems;
  const auto bytes = [](int64_t entries) { return alignUp(static_cast<std::size_t>(entries) * kSortCounterBytes); };
  return bytes(portions * passes * digits) + bytes(blocks * digits) + bytes(portions * passes) +
         (kWorkspaceAlignment - 1);
}

SparseRulebookWorkspace sparseRulebookWorkspace(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity) {
  SparseRulebookWorkspace w;
  if (g.pointwise) return w;  // the identity map: no table, no sort
  const int64_t reach = std::max<int64_t>(num_in, 0) * maxOutputsPerInput(g);
  w.keys = std::max<int64_t>(std::min(reach, std::max<int64_t>(out_capacity, 0)), 1);
  w.sort_bits = sparseRulebookSortBits(g);
  const std::size_t keys = static_cast<std::size_t>(w.keys);
  w.table = hashTableLayout(w.keys);
  w.unique_keys_offset = alignUp(w.table.bytes);
  w.sorted_keys_offset = alignUp(w.unique_keys_offset + keys * sizeof(uint64_t));
  w.counter_offset = alignUp(w.sorted_keys_offset + keys * sizeof(uint64_t));
  w.sort_temp_offset = alignUp(w.counter_offset + 2 * sizeof(uint64_t));
  w.sort_temp_bytes = radixSortTempBound(w.keys, w.sort_bits);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
  return w;
}

UniqueSitesWorkspace uniqueSitesWorkspace(int64_t num_in) {
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(num_in, 1));
  UniqueSitesWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignUp(w.keys_offset + n * sizeof(uint64_t));
  w.perm_offset = alignUp(w.alt_keys_offset + n * sizeof(uint64_t));
  w.alt_perm_offset = alignUp(w.perm_offset + n * sizeof(int32_t));
  w.sort_temp_offset = alignUp(w.alt_perm_offset + n * sizeof(int32_t));
  w.sort_temp_bytes = radixSortTempBound(static_cast<int64_t>(n), 64);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
  return w;
}

SegmentReduceWorkspace segmentReduceWorkspace(int64_t num_in) {
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(num_in, 1));
  SegmentReduceWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignUp(w.keys_offset + n * sizeof(uint64_t));
  w.sort_temp_offset = alignUp(w.alt_keys_offset + n * sizeof(uint64_t));
  w.sort_temp_bytes = radixSortTempBound(static_cast<int64_t>(n), 64);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
  return w;
}

MaskRowsWorkspace maskRowsWorkspace(int64_t num_in) {
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(num_in, 1));
  MaskRowsWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignUp(w.keys_offset + n * sizeof(uint64_t));
  w.sort_temp_offset = alignUp(w.alt_keys_offset + n * sizeof(uint64_t));
  w.sort_temp_bytes = radixSortTempBound(static_cast<int64_t>(n), 32);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
  return w;
}

}  // namespace sparsetrt
