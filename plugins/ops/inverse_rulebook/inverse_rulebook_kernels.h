// InverseRulebook's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// InverseRulebook: d_inverse [K, N], d_inverse[k, n] = m where d_neighbors[k, m] = n, else -1.
std::size_t inverseRulebookWorkspaceSize();
cudaError_t inverseRulebook(const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, int64_t num_in,
                            int32_t* d_inverse, void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
