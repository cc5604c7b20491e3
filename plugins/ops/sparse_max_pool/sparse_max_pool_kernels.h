// SparseMaxPool's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// SparseMaxPool: d_out[m, c] = max over active inputs (0 <= neighbors[k, m] < num_in) of
// features[neighbors[k, m], c], 0 if none.
std::size_t sparseMaxPoolWorkspaceSize();
cudaError_t sparseMaxPool(DataType dtype, const void* d_features, int64_t num_in, int64_t channels,
                          const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, void* d_out,
                          void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
