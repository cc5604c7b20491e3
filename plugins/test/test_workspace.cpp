// Workspace layouts: aligned, non-overlapping, large enough, monotone in the problem size.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "harness.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/densify/densify_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

using namespace sparsetrt;

TEST(hash_capacity) {
  CHECK(hashCapacity(0) == 16);
  CHECK(hashCapacity(8) == 16);
  CHECK(hashCapacity(9) == 32);
  CHECK(hashCapacity(1000) == 2048);
  for (int64_t n : {1, 7, 100, 4096, 100000, 3000000}) {
    const int64_t c = hashCapacity(n);
    CHECK((c & (c - 1)) == 0);  // a power of two: the probe start is hash & (capacity - 1)
    CHECK(c >= 2 * n);          // load factor <= 0.5
    CHECK(c < 4 * n || c == 16);
  }
}

TEST(subm_layout) {
  const SubmRulebookWorkspace w = submRulebookWorkspace(100000);
  CHECK(w.table.capacity == 262144);
  CHECK(w.table.keys_offset % kWorkspaceAlignment == 0 && w.table.values_offset % kWorkspaceAlignment == 0);
  CHECK(w.table.values_offset >= w.table.keys_offset + 262144 * sizeof(uint64_t));
  CHECK(w.bytes >= w.table.values_offset + 262144 * sizeof(int32_t));
  CHECK(w.bytes % kWorkspaceAlignment == 0);
}

SparseRulebookAttrs stridedAttrs(std::vector<int32_t> shape, int32_t k, int32_t s, bool transposed = false) {
  SparseRulebookAttrs a;
  const std::size_t d = shape.size();
  a.spatial_shape = std::move(shape);
  a.kernel_size.assign(d, k);
  a.stride.assign(d, s);
  a.padding.assign(d, k / 2);
  a.dilation.assign(d, 1);
  a.output_padding.assign(d, 0);
  a.transposed = transposed;
  return a;
}

TEST(sparse_layout) {
  const SparseRulebookAttrs attrs[] = {stridedAttrs({41, 1600, 1408}, 3, 2), stridedAttrs({11, 17, 15}, 3, 1),
                                       stridedAttrs({20, 30}, 2, 2, true), stridedAttrs({5, 5, 5, 5}, 3, 2)};
  for (const SparseRulebookAttrs& a : attrs) {
    const RulebookGeometry g = makeGeometry(a);
    for (int64_t n : {0, 1, 1000, 200000}) {
      for (int64_t cap : {int64_t{0}, int64_t{1}, int64_t{5000}, int64_t{1} << 40}) {
        const SparseRulebookWorkspace w = sparseRulebookWorkspace(n, g, cap);
        // keys = max(1, min(N * reach, out_capacity)): the declared bound, not N * reach, sizes everything.
        const int64_t expect_keys = std::max<int64_t>(std::min(n * maxOutputsPerInput(g), cap), 1);
        CHECK(w.keys == expect_keys);
        CHECK(w.sort_bits == sparseRulebookSortBits(g));
        const std::size_t keys = static_cast<std::size_t>(w.keys);
        // In order, aligned, and disjoint.
        const std::size_t offsets[] = {w.table.keys_offset,  w.table.values_offset, w.unique_keys_offset,
                                       w.sorted_keys_offset, w.counter_offset,      w.sort_temp_offset};
        for (std::size_t off : offsets) CHECK(off % kWorkspaceAlignment == 0);
        CHECK(w.table.values_offset >= w.table.keys_offset + w.table.capacity * sizeof(uint64_t));
        CHECK(w.unique_keys_offset >= w.table.values_offset + w.table.capacity * sizeof(int32_t));
        CHECK(w.sorted_keys_offset >= w.unique_keys_offset + keys * sizeof(uint64_t));
        CHECK(w.counter_offset >= w.sorted_keys_offset + keys * sizeof(uint64_t));
        CHECK(w.sort_temp_offset >= w.counter_offset + 2 * sizeof(uint64_t));
        CHECK(w.sort_temp_bytes == radixSortTempBound(w.keys, w.sort_bits));
        CHECK(w.bytes >= w.sort_temp_offset + w.sort_temp_bytes);
        CHECK(w.bytes % kWorkspaceAlignment == 0);
        CHECK(w.table.capacity >= 2 * w.keys);
      }
    }
    // Monotone in the declared bound, and capped by N * reach.
    CHECK(sparseRulebookWorkspace(1000, g, 2000).bytes > sparseRulebookWorkspace(1000, g, 1000).bytes);
    CHECK(sparseRulebookWorkspace(1000, g, int64_t{1} << 40).bytes ==
          sparseRulebookWorkspace(1000, g, 1000 * maxOutputsPerInput(g)).bytes);
  }
  // A pointwise rulebook is the identity map: no scratch.
  const RulebookGeometry pw = makeGeometry(stridedAttrs({7, 9}, 1, 1));
  CHECK(pw.pointwise);
  CHECK(sparseRulebookWorkspace(1000, pw, 1000).bytes == 0);
}

TEST(sort_bits) {
  // Unknown batch size: 31 batch bits + ceil(log2(prod(out_shape))).
  RulebookGeometry g{};
  g.ndim = 3;
  g.out_shape[0] = 21, g.out_shape[1] = 800, g.out_shape[2] = 704;  // 11,827,200 sites: 24 bits
  CHECK(sparseRulebookSortBits(g) == 55);
  g.out_shape[0] = g.out_shape[1] = g.out_shape[2] = 1;
  CHECK(sparseRulebookSortBits(g) == 31);
  g.out_shape[0] = 4, g.out_shape[1] = 4, g.out_shape[2] = 4;  // 64 sites: exactly 6 bits
  CHECK(sparseRulebookSortBits(g) == 37);
  g.out_shape[0] = g.out_shape[1] = g.out_shape[2] = 1 << 20;  // 60 bits: capped at 64
  CHECK(sparseRulebookSortBits(g) == 64);
  // A known batch size B: ceil(log2(B)) batch bits.
  g.out_shape[0] = 21, g.out_shape[1] = 800, g.out_shape[2] = 704;
  g.batch_size = 1;
  CHECK(sparseRulebookSortBits(g) == 24);
  g.batch_size = 2;
  CHECK(sparseRulebookSortBits(g) == 25);
  g.batch_size = 5;
  CHECK(sparseRulebookSortBits(g) == 27);
  g.batch_size = 8;
  CHECK(sparseRulebookSortBits(g) == 27);
  // From the attributes: the batch size reaches the geometry.
  SparseRulebookAttrs a = stridedAttrs({41, 1440, 1440}, 3, 2);
  a.batch_size = 4;
  CHECK(makeGeometry(a).batch_size == 4);
}

// CUB 3.0's onesweep temp-storage formula (dispatch_radix_sort.cuh, InvokeOnesweep) with the real tile sizes
// of its uint64 keys-only policies and 32-bit offsets: the bound must cover it for every architecture. (CUB
// asks 1 byte for up to one single-sort tile, 2304 keys; the onesweep figure is larger, so checking it there
// too is stricter.)
std::size_t cubOnesweepBytes(int64_t n, int bits, int64_t tile) {
  if (n == 0) return 1;
  const int64_t passes = (bits + 7) / 8, digits = 256;
  const int64_t portion = ((int64_t{1} << 28) - 1) / tile * tile;
  const int64_t portions = (n + portion - 1) / portion;
  const int64_t blocks = (std::min(n, portion) + tile - 1) / tile;
  const std::size_t sizes[] = {static_cast<std::size_t>(portions * passes * digits * 4),
                               static_cast<std::size_t>(blocks * digits * 4), 0, 0,
                               static_cast<std::size_t>(portions * passes * 4)};
  std::size_t total = 0;
  for (std::size_t s : sizes) total += alignUp(s);
  return total + 255;
}

TEST(radix_sort_bound) {
  for (int bits : {31, 40, 55, 64}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{2304}, int64_t{2305}, int64_t{100000}, int64_t{3000000},
                      int64_t{(1 << 28) - 1}, int64_t{1} << 28, int64_t{0x7fffffff}}) {
      const std::size_t bound = radixSortTempBound(n, bits);
      for (int64_t tile : {3840, 5760}) CHECK(bound >= cubOnesweepBytes(n, bits, tile));
      // Generous, not absurd: a few bytes per key at most (the key buffers take 16).
      CHECK(bound <= 64 * 1024 + 4 * static_cast<std::size_t>(n));
    }
  }
  CHECK(radixSortTempBound(2000000, 55) > radixSortTempBound(1000000, 55));
}

TEST(sizes_saturate_instead_of_wrapping) {
  // Counts from TensorRT's int64 dims: no size may wrap around to something small.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  CHECK(hashCapacity(kHuge) == int64_t{1} << 62);
  CHECK(hashTableLayout(kHuge).bytes == SIZE_MAX);
  CHECK(submRulebookWorkspace(kHuge).bytes == SIZE_MAX);
  CHECK(radixSortTempBound(kHuge, 64) > (std::size_t{1} << 40));
  RulebookGeometry g{};
  g.kind = RulebookKind::kTransposed;
  g.ndim = 3;
  for (int d = 0; d < 3; ++d) {
    g.in_shape[d] = g.out_shape[d] = 2147483647;
    g.kernel[d] = 100;
    g.stride[d] = g.dilation[d] = 1;
  }
  g.kernel_volume = 1000000;
  CHECK(sparseRulebookSortBits(g) == 64);
  const SparseRulebookWorkspace w = sparseRulebookWorkspace(kHuge, g, kHuge);
  CHECK(w.bytes == SIZE_MAX && w.keys == kHuge);
}

TEST_MAIN()
