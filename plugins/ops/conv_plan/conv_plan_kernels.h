// ConvPlan's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

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

}  // namespace kernels
}  // namespace sparsetrt
