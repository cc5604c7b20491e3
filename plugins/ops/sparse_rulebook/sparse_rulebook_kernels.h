// SparseRulebook's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// SparseRulebook: output sites sorted by (batch, *coords) and neighbours [K, M] of a regular or transposed
// conv (g.kind kRegular / kTransposed). M is found on the device and written to *d_num_out. Outputs are sized
// for `out_capacity` sites (the bound declared to TensorRT: d_out_indices [out_capacity, 1 + D], d_neighbors
// K * out_capacity entries, used as [K, M]).
// Overflow: if the layer creates more than out_capacity sites, nothing is written to the outputs,
// *d_num_out = 0 and *d_overflow = the number of distinct output sites found, which is > out_capacity: the
// true count whenever it is below the hash table's capacity (hashCapacity(keys) >= 2 * out_capacity, see
// sparsetrt/workspace.h), else a lower bound (the table filled up; insertion stops there rather than
// needing room for every site), clamped to INT32_MAX. It is an error the caller must report, never a
// truncation. Otherwise *d_overflow = 0. A row with a negative batch index reaches no output site.
// Read-back: with h_counts (host, 2 entries) the call synchronizes `stream` once, after finding the output
// sites, and writes [num_out, overflow] there; it then sorts exactly M keys and fills exactly K x M map
// entries. Without it nothing synchronizes (CUDA-graph capturable; TensorRT's build phase) and the sort and
// the fill cover the bound, min(keys, out_capacity), with M read on the device. The results are the same.
// The workspace size is pure arithmetic (no CUDA device needed: TensorRT-RTX builds engines on CPU-only
// machines): a hash table and two key buffers for keys = max(1, min(num_in * maxOutputsPerInput(g),
// out_capacity)) entries, plus a device-free bound on CUB's radix-sort scratch over the key bits the output
// grid and g.batch_size need. At enqueue, sparseRulebook compares that bound with CUB's own figure for the
// current device and returns cudaErrorInvalidValue, having enqueued nothing, if it is too small (it never
// overruns the workspace). Also refused: keys above INT32_MAX. Pass the same num_in, g and out_capacity to
// both functions.
std::size_t sparseRulebookWorkspaceSize(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity);
cudaError_t sparseRulebook(const int32_t* d_indices, int64_t num_in, const RulebookGeometry& g, int64_t out_capacity,
                           int32_t* d_out_indices, int32_t* d_neighbors, int32_t* d_num_out, int32_t* d_overflow,
                           void* d_workspace, std::size_t workspace_size, cudaStream_t stream,
                           int32_t* h_counts = nullptr);

}  // namespace kernels
}  // namespace sparsetrt
