// SparseConv's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_conv/sparse_conv_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// dtype: 0 float32, 1 float16 (sparsetrt::DataType). map: neighbors [K, M] (layout 0) or its ConvPlan
// (layout 1). bias and residual may be null. The split workspace is allocated at sparseConvWorkspaceSize.
extern "C" SPT_API int spt_sparse_conv(int32_t dtype, const void* features, int64_t n, int64_t c_in, const int32_t* map,
                                       int32_t layout, int64_t kernel_volume, int64_t m, const void* weight,
                                       const void* bias, const void* residual, int64_t c_out, int32_t activation,
                                       float alpha, void* out) {
  return guarded("SparseConv", [&] {
    SparseConvAttrs a;
    a.activation = activation;
    a.alpha = alpha;
    validate("SparseConv", a);
    if (layout != 0 && layout != 1) {
      lastError() = "SparseConv: layout must be 0 (neighbour map) or 1 (ConvPlan)";
      return cudaErrorInvalidValue;
    }
    const std::size_t bytes = kernels::sparseConvWorkspaceSize(m, c_out, kernel_volume);
    Scratch ws(bytes);
    opStart();
    return finish(kernels::sparseConv(static_cast<DataType>(dtype), features, n, c_in, map,
                                      static_cast<kernels::MapLayout>(layout), kernel_volume, m, weight, bias, residual,
                                      c_out, static_cast<Activation>(activation), alpha, out, ws.p, bytes, nullptr));
  });
}
