// SegmentReduce's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// SegmentReduce: d_out [M, C] = d_init [M, C] combined with every features[n] whose segments[n] = m, in ascending
// n, accumulated in fp32 (reduction 0 sum, 1 max); segments outside [0, M) are ignored. features, init and out
// of `dtype`; d_out may not alias d_init. Deterministic: rows are grouped by a radix sort, no atomics.
std::size_t segmentReduceWorkspaceSize(int64_t num_in);
cudaError_t segmentReduce(DataType dtype, const void* d_features, const int32_t* d_segments, int64_t num_in,
                          int64_t channels, const void* d_init, int64_t num_out, Reduction reduction, void* d_out,
                          void* d_workspace, std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
