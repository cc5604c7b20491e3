#include "sparsetrt/workspace.h"

#include <algorithm>
#include <cstdint>

#include "sparsetrt/checked.h"

namespace sparsetrt {

int64_t hashCapacity(int64_t max_keys) {
  int64_t capacity = 16;  // a floor, so tiny and empty inputs still get a valid (non-zero) table
  // Doubling stops at 2^62: no real key count comes near it, and the sizes below then saturate instead of
  // wrapping (a wrapped size would hand the kernels a table smaller than they index).
  const int64_t wanted = saturatingMul(std::max<int64_t>(max_keys, 0), 2);
  while (capacity < wanted && capacity < (int64_t{1} << 62)) capacity *= 2;
  return capacity;
}

HashTableLayout hashTableLayout(int64_t max_keys, std::size_t base_offset) {
  HashTableLayout t;
  t.capacity = hashCapacity(max_keys);
  const std::size_t capacity = sizeOf(t.capacity);
  t.keys_offset = alignUpSat(base_offset);
  t.values_offset = alignedEnd(t.keys_offset, saturatingMul(capacity, sizeof(uint64_t)));
  const std::size_t end = alignedEnd(t.values_offset, saturatingMul(capacity, sizeof(int32_t)));
  t.bytes = end == SIZE_MAX ? SIZE_MAX : end - base_offset;
  return t;
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
  const int64_t portions = n / kSortMinPortionItems + (n % kSortMinPortionItems != 0);  // no n + P - 1 overflow
  constexpr int64_t kMaxPortionItems = int64_t{1} << 28;
  const int64_t blocks = (std::min(n, kMaxPortionItems) + kSortMinTileItems - 1) / kSortMinTileItems;
  // portions <= 2^36 and passes <= 8 for any int64 n: these products cannot overflow; the sum saturates.
  const auto bytes = [](int64_t entries) { return alignUpSat(saturatingMul(sizeOf(entries), kSortCounterBytes)); };
  return saturatingAdd(saturatingAdd(bytes(portions * passes * digits), bytes(blocks * digits)),
                       saturatingAdd(bytes(portions * passes), kWorkspaceAlignment - 1));
}

}  // namespace sparsetrt
