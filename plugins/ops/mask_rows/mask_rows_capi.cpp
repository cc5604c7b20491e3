// MaskRows's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/mask_rows/mask_rows_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// MaskRows: rows [n] sized for the bound; M written to *num_out_host.
extern "C" SPT_API int spt_mask_rows(const int32_t* mask, int64_t n, int32_t* rows, int64_t* num_out_host) {
  return guarded("MaskRows", [&] {
    const std::size_t bytes = kernels::maskRowsWorkspaceSize(n);
    Scratch ws(bytes), count(sizeof(int32_t));
    opStart();
    cudaError_t err = finish(kernels::maskRows(mask, n, rows, static_cast<int32_t*>(count.p), ws.p, bytes, nullptr));
    int32_t m = 0;
    if (err == cudaSuccess) err = cudaMemcpy(&m, count.p, sizeof m, cudaMemcpyDeviceToHost);
    if (err == cudaSuccess) *num_out_host = m;
    return err;
  });
}
