// ConvPlan's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// ConvPlan: plan [K + 1 + ceil(K/32), M] of neighbors [K, M] (conv_plan_kernels.h).
extern "C" SPT_API int spt_conv_plan(const int32_t* neighbors, int64_t kernel_volume, int64_t m, int32_t* plan) {
  return guarded("ConvPlan", [&] {
    const std::size_t bytes = kernels::convPlanWorkspaceSize(m, kernel_volume);
    Scratch ws(bytes);
    opStart();
    return finish(kernels::convPlan(neighbors, kernel_volume, m, plan, ws.p, bytes, nullptr));
  });
}
