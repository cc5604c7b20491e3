// Densify's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// Densify: d_out [batch_size, C, *spatial_shape] = features at their sites, zeros elsewhere. Rows whose
// site lies outside the grid are skipped rather than written out of bounds.
std::size_t densifyWorkspaceSize();
cudaError_t densify(DataType dtype, const void* d_features, const int32_t* d_indices, int64_t num_in, int64_t channels,
                    int32_t ndim, const int32_t* spatial_shape /* host, ndim entries */, int32_t batch_size,
                    void* d_out, void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
