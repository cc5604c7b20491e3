// Workspace layouts: aligned, non-overlapping, large enough, monotone in the problem size.
#include <cstdint>

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

TEST(subm_layout) {
  const SubmRulebookWorkspace w = submRulebookWorkspace(100000);
  CHECK(w.table.capacity == 262144);
  CHECK(w.table.keys_offset % kWorkspaceAlignment == 0 && w.table.values_offset % kWorkspaceAlignment == 0);
  CHECK(w.table.values_offset >= w.table.keys_offset + 262144 * sizeof(uint64_t));
  CHECK(w.bytes >= w.table.values_offset + 262144 * sizeof(int32_t));
  CHECK(w.bytes % kWorkspaceAlignment == 0);
}

TEST(sparse_layout) {
  for (int64_t keys : {0, 1, 1000, 1600000}) {
    for (std::size_t temp : {std::size_t{0}, std::size_t{1}, std::size_t{777777}}) {
      const SparseRulebookWorkspace w = sparseRulebookWorkspace(keys, temp);
      const std::size_t n = static_cast<std::size_t>(keys > 0 ? keys : 1);
      // In order, aligned, and disjoint.
      const std::size_t offsets[] = {w.table.keys_offset,  w.table.values_offset, w.unique_keys_offset,
                                     w.sorted_keys_offset, w.counter_offset,      w.sort_temp_offset};
      for (std::size_t off : offsets) CHECK(off % kWorkspaceAlignment == 0);
      CHECK(w.table.values_offset >= w.table.keys_offset + w.table.capacity * sizeof(uint64_t));
      CHECK(w.unique_keys_offset >= w.table.values_offset + w.table.capacity * sizeof(int32_t));
      CHECK(w.sorted_keys_offset >= w.unique_keys_offset + n * sizeof(uint64_t));
      CHECK(w.counter_offset >= w.sorted_keys_offset + n * sizeof(uint64_t));
      CHECK(w.sort_temp_offset >= w.counter_offset + sizeof(int32_t));
      CHECK(w.bytes >= w.sort_temp_offset + temp);
      CHECK(w.table.capacity >= 2 * keys);
      CHECK(w.sort_temp_bytes == temp);
    }
  }
  CHECK(sparseRulebookWorkspace(2000, 0).bytes > sparseRulebookWorkspace(1000, 0).bytes);
}

TEST_MAIN()
