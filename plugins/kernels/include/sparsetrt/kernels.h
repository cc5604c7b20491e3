// The CUDA kernels of sparsetrt behind a plain C++ API: no TensorRT type appears here, so the plugins,
// GPU tests and benchmarks all call the same functions.
//
// Conventions of every function:
//  - pointers named d_* are device pointers; all work is enqueued on `stream` and nothing synchronizes,
//    so every call can be captured in a CUDA graph;
//  - nothing allocates: scratch memory is the caller's `workspace` of at least the size the matching
//    *WorkspaceSize query returns (256-byte aligned, as cudaMalloc returns it); a smaller one is refused
//    with cudaErrorInvalidValue before anything is enqueued;
//  - results are deterministic: no output depends on the order in which threads run;
//  - neighbour maps are output-stationary, int32 [K, M], row k at d_neighbors + k * M, -1 = no input;
//    every consumer of a map treats an entry outside [0, N) (negative, >= N, garbage) as "no input" and never
//    reads through it: memory safety never depends on the map's contents. TensorRT runs plugins on
//    uninitialized inputs while it times tactics, and a map may come from anywhere;
//  - site coordinates are int32 rows (batch, c_0, ..., c_{D-1}) that are valid for the geometry (inside the
//    grid, no duplicates), as SparseTensor guarantees; invalid rows are not detected, and give unspecified
//    (but in-bounds) results: no function reads or writes outside its buffers whatever the coordinates.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "sparsetrt/geometry.h"
#include "sparsetrt/op_fields.h"  // the schema's enums: Activation, Reduction

namespace sparsetrt {
namespace kernels {

// ------------------------------------------------------------------------------------- rulebooks

// SubmRulebook: neighbours [K, N] of N sites for a submanifold kernel (g.kind == kSubmanifold).
std::size_t submRulebookWorkspaceSize(int64_t num_in);
cudaError_t submRulebook(const int32_t* d_indices, int64_t num_in, const RulebookGeometry& g, int32_t* d_neighbors,
                         void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

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

// InverseRulebook: d_inverse [K, N], d_inverse[k, n] = m where d_neighbors[k, m] = n, else -1.
std::size_t inverseRulebookWorkspaceSize();
cudaError_t inverseRulebook(const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, int64_t num_in,
                            int32_t* d_inverse, void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

// ------------------------------------------------------------------------------------------ compute

// ConvPlan: the map of a conv, arranged for the tensor-core conv, int32 [convPlanRows(K), M] (row-major):
//   rows 0 .. K-1   the map's columns permuted: plan[k, i] = neighbors[k, perm[i]];
//   row K           perm, a permutation of [0, M): column i of the plan is output row perm[i];
//   rows K+1 ..     column i's offset mask, ceil(K/32) words: bit k % 32 of word k / 32 is set iff
//                   neighbors[k, perm[i]] >= 0.
// perm reorders the columns within windows of kConvPlanWindow (sparsetrt/workspace.h), grouping those that
// use the same offsets (a Gray-code order of their masks restricted to the window's 32 rarest offsets, the
// rarest most significant; ties keep column order), so 64 consecutive columns need few offsets: the conv
// skips the rest. A pure function of the map: the same map gives the same bits on every device (the CPU
// reference is exporter/backend/plan.py). K <= kConvPlanMaxOffsets, else cudaErrorInvalidValue (a conv reads
// the map itself then). Workspace: convPlanWorkspaceSize(M, K), pure arithmetic.
std::size_t convPlanWorkspaceSize(int64_t num_out, int64_t kernel_volume);
cudaError_t convPlan(const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, int32_t* d_plan,
                     void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

// SparseConv: d_out[m] = act(bias[co] + residual[m] + sum over k with 0 <= neighbors[k, m] < num_in of
// weight[:, k, :] @ features[neighbors[k, m]]) (other entries: no input, see above), features [N, C_in],
// weight [C_out, K, C_in], bias [C_out] or null, residual [M, C_out] or null, output [M, C_out]; all of
// `dtype`, accumulated in fp32 and rounded once. d_map is the map ([K, M], layout kNeighbors) or its ConvPlan
// ([convPlanRows(K), M], layout kPlan): the same result up to fp32 summation order, which the plan's
// column grouping changes; with a plan, out-of-range perm entries are never written through and masks only
// steer which entries are read, so a plan not made by convPlan gives unspecified but in-bounds results.
// Any channel count and kernel volume, no alignment requirement. fp32 runs exact fp32 arithmetic on CUDA cores
// (never TF32); fp16 runs on tensor cores (mma.sync, fp32 accumulation) on sm_80 and newer. The workspace
// (sparseConvWorkspaceSize, pure arithmetic; null / 0 is always accepted) lets the tensor-core conv split the
// offsets of each tile over several blocks when the grid would leave SMs idle (sparseConvSplits): fp32
// partial sums, added in a fixed order, so results stay deterministic on a given device and workspace.
enum class MapLayout : int32_t { kNeighbors = 0, kPlan = 1 };
constexpr int64_t kSparseConvMaxSplits = 4;
constexpr int64_t kSparseConvSplitRows = 40960;  // splits x M partial rows the workspace holds at most
std::size_t sparseConvWorkspaceSize(int64_t num_out, int64_t c_out, int64_t kernel_volume);
// The blocks each tile's offsets are split over: 1 unless the grid has fewer than two blocks per SM.
int64_t sparseConvSplits(int64_t num_out, int64_t c_out, int64_t kernel_volume, int multiprocessors,
                         std::size_t workspace_size);
cudaError_t sparseConv(DataType dtype, const void* d_features, int64_t num_in, int64_t c_in, const int32_t* d_map,
                       MapLayout layout, int64_t kernel_volume, int64_t num_out, const void* d_weight,
                       const void* d_bias, const void* d_residual, int64_t c_out, Activation activation, float alpha,
                       void* d_out, void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

// SparseMaxPool: d_out[m, c] = max over active inputs (0 <= neighbors[k, m] < num_in) of
// features[neighbors[k, m], c], 0 if none.
std::size_t sparseMaxPoolWorkspaceSize();
cudaError_t sparseMaxPool(DataType dtype, const void* d_features, int64_t num_in, int64_t channels,
                          const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, void* d_out,
                          void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

// Densify: d_out [batch_size, C, *spatial_shape] = features at their sites, zeros elsewhere. Rows whose
// site lies outside the grid are skipped rather than written out of bounds.
std::size_t densifyWorkspaceSize();
cudaError_t densify(DataType dtype, const void* d_features, const int32_t* d_indices, int64_t num_in, int64_t channels,
                    int32_t ndim, const int32_t* spatial_shape /* host, ndim entries */, int32_t batch_size,
                    void* d_out, void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

// ------------------------------------------------------------------------------------ merging sites

// UniqueSites: the distinct rows of d_indices [N, K] sorted lexicographically (column 0 first), as
// torch.unique(dim=0, return_inverse=True, return_counts=True): d_unique [M, K] and d_counts [M] (both sized for
// M = N, the bound), d_inverse [N] with row n == unique[inverse[n]], M written to *d_num_out (never read back
// here). Deterministic (radix sorts; integer counts). Any int32 values, any K >= 1.
std::size_t uniqueSitesWorkspaceSize(int64_t num_in);
cudaError_t uniqueSites(const int32_t* d_indices, int64_t num_in, int64_t columns, int32_t* d_unique,
                        int32_t* d_inverse, int32_t* d_counts, int32_t* d_num_out, void* d_workspace,
                        std::size_t workspace_size, cudaStream_t stream);

// SegmentReduce: d_out [M, C] = d_init [M, C] combined with every features[n] whose segments[n] = m, in ascending
// n, accumulated in fp32 (reduction 0 sum, 1 max); segments outside [0, M) are ignored. features, init and out
// of `dtype`; d_out may not alias d_init. Deterministic: rows are grouped by a radix sort, no atomics.
std::size_t segmentReduceWorkspaceSize(int64_t num_in);
cudaError_t segmentReduce(DataType dtype, const void* d_features, const int32_t* d_segments, int64_t num_in,
                          int64_t channels, const void* d_init, int64_t num_out, Reduction reduction, void* d_out,
                          void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

// MaskRows: d_rows [M] = the n with d_mask[n] != 0, ascending (d_rows sized for the bound M = N), M written to
// *d_num_out (never read back here). Deterministic (a radix sort of the kept positions).
std::size_t maskRowsWorkspaceSize(int64_t num_in);
cudaError_t maskRows(const int32_t* d_mask, int64_t num_in, int32_t* d_rows, int32_t* d_num_out, void* d_workspace,
                     std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
