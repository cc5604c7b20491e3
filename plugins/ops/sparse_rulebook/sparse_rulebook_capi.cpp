// SparseRulebook's entry points in the kernels' C ABI, for sparsetrt.runtime.KernelSession (ctypes).
// The ABI's rules are sparsetrt/kernels_capi.h's (0 or a cudaError_t, spt_last_error, device pointers unless
// *_host); what the entry points share is kernels/capi/capi_common.h. CMake globs ops/*/*_capi.cpp into
// libsparsetrt_kernels_{cuda,cpu}.so.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/capi/capi_common.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "sparsetrt/geometry.h"
#include "sparsetrt/shapes.h"

using namespace sparsetrt;
using namespace sparsetrt::capi;

namespace {

SparseRulebookAttrs sparseAttrs(int32_t ndim, const int32_t* spatial_shape, const int32_t* kernel_size,
                                const int32_t* stride, const int32_t* padding, const int32_t* dilation,
                                const int32_t* output_padding, int32_t transposed, int32_t max_out,
                                int32_t batch_size) {
  SparseRulebookAttrs a;
  a.spatial_shape = vec(spatial_shape, ndim);
  a.kernel_size = vec(kernel_size, ndim);
  a.stride = vec(stride, ndim);
  a.padding = vec(padding, ndim);
  a.dilation = vec(dilation, ndim);
  a.output_padding = vec(output_padding, ndim);
  a.transposed = transposed;
  a.max_out = max_out;
  a.batch_size = batch_size;
  validate("SparseRulebook", a);
  return a;
}

}  // namespace

// SparseRulebook: the declared bound on M for n inputs (what TensorRT allocates outputs for).
extern "C" SPT_API int spt_sparse_rulebook_bound(int64_t n, int32_t ndim, const int32_t* spatial_shape,
                                                 const int32_t* kernel_size, const int32_t* stride,
                                                 const int32_t* padding, const int32_t* dilation,
                                                 const int32_t* output_padding, int32_t transposed, int32_t max_out,
                                                 int32_t batch_size, int64_t* bound_host, int64_t* out_shape_host) {
  return guarded("SparseRulebook", [&] {
    const SparseRulebookAttrs a = sparseAttrs(ndim, spatial_shape, kernel_size, stride, padding, dilation,
                                              output_padding, transposed, max_out, batch_size);
    *bound_host = sparseRulebookOutputBound(a, n);
    const std::vector<int64_t> shape = outputSpatialShape(a);
    for (int32_t d = 0; d < ndim; ++d) out_shape_host[d] = shape[static_cast<std::size_t>(d)];
    return cudaSuccess;
  });
}

// out_indices [bound, 1 + D], neighbors [K * bound] used as [K, M]; M written to *num_out_host. More sites
// than the bound fails (with the count found), never truncates.
extern "C" SPT_API int spt_sparse_rulebook(const int32_t* indices, int64_t n, int32_t ndim,
                                           const int32_t* spatial_shape, const int32_t* kernel_size,
                                           const int32_t* stride, const int32_t* padding, const int32_t* dilation,
                                           const int32_t* output_padding, int32_t transposed, int32_t max_out,
                                           int32_t batch_size, int32_t* out_indices, int32_t* neighbors,
                                           int64_t* num_out_host) {
  return guarded("SparseRulebook", [&] {
    const SparseRulebookAttrs a = sparseAttrs(ndim, spatial_shape, kernel_size, stride, padding, dilation,
                                              output_padding, transposed, max_out, batch_size);
    const RulebookGeometry g = makeGeometry(a);
    const int64_t bound = sparseRulebookOutputBound(a, n);
    const std::size_t bytes = kernels::sparseRulebookWorkspaceSize(n, g, bound);
    Scratch ws(bytes), counts(2 * sizeof(int32_t));
    auto* d_counts = static_cast<int32_t*>(counts.p);
    int32_t host[2] = {0, 0};  // [num_out, overflow], read back once by the kernels (exact-size sort)
    opStart();
    cudaError_t err = finish(kernels::sparseRulebook(indices, n, g, bound, out_indices, neighbors, d_counts,
                                                     d_counts + 1, ws.p, bytes, nullptr, host));
    if (err != cudaSuccess) return err;
    if (host[1] != 0) {
      lastError() = "SparseRulebook: the layer created " + std::to_string(host[1]) + " output sites from " +
                    std::to_string(n) + " inputs, more than the bound " + std::to_string(bound) +
                    (max_out > 0 ? " (max_out): raise max_sites at export or feed fewer voxels"
                                 : ": check that batch indices are < batch_size and coordinates lie inside the grid");
      return cudaErrorInvalidValue;
    }
    *num_out_host = host[0];
    return cudaSuccess;
  });
}
