// UniqueSites's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "ops/unique_sites/unique_sites_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// UniqueSites: unique [n, k] and counts [n] sized for the bound M <= n; M written to *num_out_host.
extern "C" SPT_API int spt_unique_sites(const int32_t* indices, int64_t n, int64_t k, int32_t* unique, int32_t* inverse,
                                        int32_t* counts, int64_t* num_out_host) {
  return guarded("UniqueSites", [&] {
    const std::size_t bytes = kernels::uniqueSitesWorkspaceSize(n);
    Scratch ws(bytes), count(sizeof(int32_t));
    opStart();
    cudaError_t err = finish(kernels::uniqueSites(indices, n, k, unique, inverse, counts,
                                                  static_cast<int32_t*>(count.p), ws.p, bytes, nullptr));
    int32_t m = 0;
    if (err == cudaSuccess) err = cudaMemcpy(&m, count.p, sizeof m, cudaMemcpyDeviceToHost);
    if (err == cudaSuccess) *num_out_host = m;
    return err;
  });
}
