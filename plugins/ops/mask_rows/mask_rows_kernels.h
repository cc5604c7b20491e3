// MaskRows's kernels: the plain C++ API the plugin, the kernels' C ABI and the tests call. The conventions every
// kernel follows (device pointers, no allocation, determinism, maps, workspaces) are in sparsetrt/kernels.h.
#pragma once

#include "sparsetrt/kernels.h"

namespace sparsetrt {
namespace kernels {

// MaskRows: d_rows [M] = the n with d_mask[n] != 0, ascending (d_rows sized for the bound M = N), M written to
// *d_num_out (never read back here). Deterministic (a radix sort of the kept positions).
std::size_t maskRowsWorkspaceSize(int64_t num_in);
cudaError_t maskRows(const int32_t* d_mask, int64_t num_in, int32_t* d_rows, int32_t* d_num_out, void* d_workspace,
                     std::size_t workspace_size, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
