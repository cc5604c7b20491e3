// What the ops' workspace layouts share (sparsetrt/workspace.h): the hash table's capacity and layout, and the
// bound on CUB's radix-sort scratch, against CUB's own formula. Each op's layout is tested with the op
// (ops/<op>/<op>_test.cpp).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "harness.h"
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

namespace {

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

}  // namespace

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
  CHECK(radixSortTempBound(kHuge, 64) > (std::size_t{1} << 40));
}

TEST_MAIN()
