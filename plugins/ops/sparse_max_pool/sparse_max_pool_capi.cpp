// SparseMaxPool's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// SparseMaxPool: out [m, channels] = the max over each output's active inputs (0 where none; dtype 0 float32,
// 1 float16).
extern "C" SPT_API int spt_sparse_max_pool(int32_t dtype, const void* features, int64_t n, int64_t channels,
                                           const int32_t* neighbors, int64_t kernel_volume, int64_t m, void* out) {
  return guarded("SparseMaxPool", [&] {
    opStart();
    return finish(kernels::sparseMaxPool(static_cast<DataType>(dtype), features, n, channels, neighbors, kernel_volume,
                                         m, out, nullptr, 0, nullptr));
  });
}
