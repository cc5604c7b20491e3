// SubmRulebook's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_kernels.h"
#include "sparsetrt/geometry.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// SubmRulebook: neighbors [K, N].
extern "C" SPT_API int spt_subm_rulebook(const int32_t* indices, int64_t n, int32_t ndim, const int32_t* spatial_shape,
                                         const int32_t* kernel_size, const int32_t* dilation, int32_t* neighbors) {
  return guarded("SubmRulebook", [&] {
    SubmRulebookAttrs a{vec(spatial_shape, ndim), vec(kernel_size, ndim), vec(dilation, ndim)};
    validate("SubmRulebook", a);
    const RulebookGeometry g = makeGeometry(a);
    const std::size_t bytes = kernels::submRulebookWorkspaceSize(n);
    Scratch ws(bytes);
    opStart();
    return finish(kernels::submRulebook(indices, n, g, neighbors, ws.p, bytes, nullptr));
  });
}
