// SegmentReduce's entry point in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/capi/capi_common.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/segment_reduce/segment_reduce_kernels.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

// SegmentReduce: out [m, channels] = init combined with features grouped by segments (reduction 0 sum, 1 max).
extern "C" SPT_API int spt_segment_reduce(int32_t dtype, const void* features, const int32_t* segments, int64_t n,
                                          int64_t channels, const void* init, int64_t m, int32_t reduction, void* out) {
  return guarded("SegmentReduce", [&] {
    SegmentReduceAttrs a{reduction};
    validate("SegmentReduce", a);
    const std::size_t bytes = kernels::segmentReduceWorkspaceSize(n);
    Scratch ws(bytes);
    opStart();
    return finish(kernels::segmentReduce(static_cast<DataType>(dtype), features, segments, n, channels, init, m,
                                         static_cast<Reduction>(reduction), out, ws.p, bytes, nullptr));
  });
}
