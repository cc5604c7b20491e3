#include "sparsetrt/workspace.h"

#include <algorithm>

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

SparseRulebookWorkspace sparseRulebookWorkspace(int64_t max_out_keys, std::size_t sort_temp_bytes) {
  SparseRulebookWorkspace w;
  const std::size_t keys = static_cast<std::size_t>(std::max<int64_t>(max_out_keys, 1));
  w.table = hashTableLayout(max_out_keys);
  w.unique_keys_offset = alignUp(w.table.bytes);
  w.sorted_keys_offset = alignUp(w.unique_keys_offset + keys * sizeof(uint64_t));
  w.counter_offset = alignUp(w.sorted_keys_offset + keys * sizeof(uint64_t));
  w.sort_temp_offset = alignUp(w.counter_offset + sizeof(int32_t));
  w.sort_temp_bytes = sort_temp_bytes;
  w.bytes = alignUp(w.sort_temp_offset + sort_temp_bytes);
  return w;
}

}  // namespace sparsetrt
