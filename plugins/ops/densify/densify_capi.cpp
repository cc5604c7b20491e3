// Densify's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/densify/densify_host.h"
#include "ops/densify/densify_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// Densify: out [batch_size, channels, *spatial_shape] (dtype 0 float32, 1 float16), zero where no row lands; rows
// outside the grid or the batch are skipped.
extern "C" SPT_API int spt_densify(int32_t dtype, const void* features, const int32_t* indices, int64_t n,
                                   int64_t channels, int32_t ndim, const int32_t* spatial_shape, int32_t batch_size,
                                   void* out) {
  return guarded("Densify", [&] {
    DensifyAttrs a{vec(spatial_shape, ndim), batch_size};
    validate("Densify", a);
    opStart();
    return finish(kernels::densify(static_cast<DataType>(dtype), features, indices, n, channels, ndim, spatial_shape,
                                   batch_size, out, nullptr, 0, nullptr));
  });
}
