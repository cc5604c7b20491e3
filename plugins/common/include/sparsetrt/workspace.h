// Workspace layouts of the kernels, as pure arithmetic: the kernel library carves its one caller-provided
// workspace with these (no allocation at enqueue), and the host unit tests check them without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

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

// SparseRulebook (regular or transposed) for N inputs reaching at most `max_out_keys` distinct outputs
// (N * maxOutputsPerInput): a table of the output keys, the compacted unique keys, their sorted copy,
// the unique-count counter and CUB's radix-sort scratch (its size queried by the caller on a device).
struct SparseRulebookWorkspace {
  HashTableLayout table;
  std::size_t unique_keys_offset = 0;  // uint64 [max_out_keys]
  std::size_t sorted_keys_offset = 0;  // uint64 [max_out_keys]
  std::size_t counter_offset = 0;      // int32 [1]: distinct output keys found
  std::size_t sort_temp_offset = 0;    // CUB temp storage
  std::size_t sort_temp_bytes = 0;
  std::size_t bytes = 0;
};
SparseRulebookWorkspace sparseRulebookWorkspace(int64_t max_out_keys, std::size_t sort_temp_bytes);

}  // namespace sparsetrt
