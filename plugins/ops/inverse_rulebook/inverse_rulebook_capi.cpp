// InverseRulebook's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// InverseRulebook: inverse [K, num_in] of neighbors [K, num_out] (which output each input reaches through offset k,
// -1 where none).
extern "C" SPT_API int spt_inverse_rulebook(const int32_t* neighbors, int64_t kernel_volume, int64_t num_out,
                                            int64_t num_in, int32_t* inverse) {
  return guarded("InverseRulebook", [&] {
    opStart();
    return finish(kernels::inverseRulebook(neighbors, kernel_volume, num_out, num_in, inverse, nullptr, 0, nullptr));
  });
}
