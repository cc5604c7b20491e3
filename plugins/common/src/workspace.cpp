#include "sparsetrt/workspace.h"

#include <algorithm>
#include <cstdint>

#include "sparsetrt/checked.h"
#include "sparsetrt/shapes.h"

namespace sparsetrt {

int64_t hashCapacity(int64_t max_keys) {
  int64_t capacity = 16;  // a floor, so tiny and empty inputs still get a valid (non-zero) table
  // Doubling stops at 2^62: no real key count comes near it, and the sizes below then saturate instead of
  // wrapping (a wrapped size would hand the kernels a table smaller than they index).
  const int64_t wanted = saturatingMul(std::max<int64_t>(max_keys, 0), 2);
  while (capacity < wanted && capacity < (int64_t{1} << 62)) capacity *= 2;
  return capacity;
}

namespace {
// alignUp that saturates: sizes computed from dims TensorRT hands us must never wrap around.
std::size_t alignUpSat(std::size_t bytes) { return bytes > SIZE_MAX - kWorkspaceAlignment ? SIZE_MAX : alignUp(bytes); }
}  // namespace

HashTableLayout hashTableLayout(int64_t max_keys, std::size_t base_offset) {
  HashTableLayout t;
  t.capacity = hashCapacity(max_keys);
  const std::size_t capacity = sizeOf(t.capacity);
  t.keys_offset = alignUpSat(base_offset);
  t.values_offset = alignUpSat(saturatingAdd(t.keys_offset, saturatingMul(capacity, sizeof(uint64_t))));
  const std::size_t end = alignUpSat(saturatingAdd(t.values_offset, saturatingMul(capacity, sizeof(int32_t))));
  t.bytes = end == SIZE_MAX ? SIZE_MAX : end - base_offset;
  return t;
}

SubmRulebookWorkspace submRulebookWorkspace(int64_t num_in) {
  SubmRulebookWorkspace w;
  w.table = hashTableLayout(num_in);
  w.bytes = w.table.bytes;
  return w;
}

int sparseRulebookSortBits(const RulebookGeometry& g) {
  // key = batch * prod(out_shape) + site < B * prod(out_shape) for batch indices in [0, B), so
  // ceil(log2(B * sites)) bits hold every key; 31 batch bits (any non-negative int32) when B is unknown.
  // Fewer bits than 64 means fewer radix passes: a single sample of a 21 x 720 x 720 grid needs 24 bits
  // (3 passes), not 55 (7 passes).
  uint64_t sites = 1;
  for (int d = 0; d < g.ndim; ++d) {
    const uint64_t s = static_cast<uint64_t>(std::max<int32_t>(g.out_shape[d], 1));
    sites = sites > UINT64_MAX / s ? UINT64_MAX : sites * s;  // saturate: 64 bits are the cap anyway
  }
  int bits = 0;
  while (bits < 63 && (uint64_t{1} << bits) < sites) ++bits;
  int batch_bits = 31;
  if (g.batch_size > 0) {
    batch_bits = 0;
    while ((int64_t{1} << batch_bits) < g.batch_size) ++batch_bits;
  }
  // The product: B * sites <= 2^batch_bits * 2^bits, so the sum of the two widths suffices.
  return std::min(batch_bits + bits, 64);
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

SparseRulebookWorkspace sparseRulebookWorkspace(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity) {
  SparseRulebookWorkspace w;
  if (g.pointwise) return w;  // the identity map: no table, no sort
  const int64_t reach = saturatingMul(std::max<int64_t>(num_in, 0), maxOutputsPerInput(g));
  w.keys = std::max<int64_t>(std::min(reach, std::max<int64_t>(out_capacity, 0)), 1);
  w.sort_bits = sparseRulebookSortBits(g);
  const std::size_t key_bytes = saturatingMul(sizeOf(w.keys), sizeof(uint64_t));
  w.table = hashTableLayout(w.keys);
  w.unique_keys_offset = alignUpSat(w.table.bytes);
  w.sorted_keys_offset = alignUpSat(saturatingAdd(w.unique_keys_offset, key_bytes));
  w.counter_offset = alignUpSat(saturatingAdd(w.sorted_keys_offset, key_bytes));
  w.sort_temp_offset = alignUpSat(saturatingAdd(w.counter_offset, 2 * sizeof(uint64_t)));
  w.sort_temp_bytes = radixSortTempBound(w.keys, w.sort_bits);
  w.bytes = alignUpSat(saturatingAdd(w.sort_temp_offset, w.sort_temp_bytes));
  return w;
}

int64_t convPlanRows(int64_t kernel_volume) {
  const int64_t k = std::max<int64_t>(kernel_volume, 1);
  return k + 1 + (k + 31) / 32;
}

ConvPlanWorkspace convPlanWorkspace(int64_t num_out, int64_t kernel_volume) {
  ConvPlanWorkspace w;
  const auto m = static_cast<std::size_t>(std::max<int64_t>(num_out, 1));
  const auto words = static_cast<std::size_t>((std::max<int64_t>(kernel_volume, 1) + 31) / 32);
  w.bytes = alignUp(w.masks_offset + words * m * sizeof(uint32_t));
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
