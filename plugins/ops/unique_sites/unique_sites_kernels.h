// UniqueSites's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// UniqueSites: the distinct rows of d_indices [N, K] sorted lexicographically (column 0 first), as
// torch.unique(dim=0, return_inverse=True, return_counts=True): d_unique [M, K] and d_counts [M] (both sized for
// M = N, the bound), d_inverse [N] with row n == unique[inverse[n]], M written to *d_num_out (never read back
// here). Deterministic (radix sorts; integer counts). Any int32 values, any K >= 1.
std::size_t uniqueSitesWorkspaceSize(int64_t num_in);
cudaError_t uniqueSites(const int32_t* d_indices, int64_t num_in, int64_t columns, int32_t* d_unique,
                        int32_t* d_inverse, int32_t* d_counts, int32_t* d_num_out, void* d_workspace,
                        std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
