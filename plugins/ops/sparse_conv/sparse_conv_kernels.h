// SparseConv's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// SparseConv: d_out[m] = act(bias[co] + residual[m] + sum over k with 0 <= neighbors[k, m] < num_in of
// weight[:, k, :] @ features[neighbors[k, m]]) (other entries: no input, see sparsetrt/kernels.h), features [N, C_in],
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

}  // namespace kernels
}  // namespace sparsetrt
