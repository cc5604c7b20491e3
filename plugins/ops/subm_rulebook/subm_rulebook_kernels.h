// SubmRulebook's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// SubmRulebook: neighbours [K, N] of N sites for a submanifold kernel (g.kind == kSubmanifold).
std::size_t submRulebookWorkspaceSize(int64_t num_in);
cudaError_t submRulebook(const int32_t* d_indices, int64_t num_in, const RulebookGeometry& g, int32_t* d_neighbors,
                         void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
