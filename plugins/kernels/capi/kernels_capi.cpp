// The C ABI of the kernel library (sparsetrt/kernels_capi.h): validation with the plugins' own attribute
// rules, workspace allocation, one call into kernels.h, and a synchronization that reports the op's errors.
#include "sparsetrt/kernels_capi.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "sparsetrt/attributes.h"
#include "sparsetrt/kernels.h"

namespace {

using namespace sparsetrt;

thread_local std::string tl_error;

// Runs `body` (which returns a cudaError_t); exceptions and CUDA errors become a code and a message.
template <typename F>
int guarded(const char* op, F&& body) {
  tl_error.clear();
  try {
    const cudaError_t err = body();
    if (err != cudaSuccess && tl_error.empty())
      tl_error = std::string(op) + ": CUDA error " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    return static_cast<int>(err);
  } catch (const std::exception& e) {
    tl_error = std::string(op) + ": " + e.what();
    return static_cast<int>(cudaErrorInvalidValue);
  }
}

std::vector<int32_t> vec(const int32_t* p, int32_t n) { return std::vector<int32_t>(p, p + (n > 0 ? n : 0)); }

// Device scratch for one call, freed (after the work finished) when it goes out of scope.
struct Scratch {
  void* p = nullptr;
  explicit Scratch(std::size_t bytes) {
    if (bytes && cudaMalloc(&p, bytes) != cudaSuccess) p = nullptr;
  }
  ~Scratch() {
    if (p) cudaFree(p);
  }
};

cudaError_t finish(cudaError_t err) { return err != cudaSuccess ? err : cudaDeviceSynchronize(); }

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

cudaEvent_t g_start = nullptr, g_stop = nullptr;

}  // namespace

extern "C" {

int spt_abi_version() { return 1; }

const char* spt_backend() {
#if defined(SPARSETRT_CPU_BACKEND)
  return "cpu";
#else
  return "cuda";
#endif
}

const char* spt_last_error() { return tl_error.c_str(); }

int spt_device_name(char* buffer, int size) {
  return guarded("device", [&] {
    cudaDeviceProp prop{};
    const cudaError_t err = cudaGetDeviceProperties(&prop, 0);
    if (err == cudaSuccess && size > 0) {
      std::strncpy(buffer, prop.name, static_cast<std::size_t>(size) - 1);
      buffer[size - 1] = '\0';
    }
    return err;
  });
}

int spt_malloc(void** ptr, std::size_t bytes) {
  return guarded("malloc", [&] { return cudaMalloc(ptr, bytes); });
}
int spt_free(void* ptr) {
  return guarded("free", [&] { return cudaFree(ptr); });
}
int spt_upload(void* dst, const void* src, std::size_t bytes) {
  return guarded("upload", [&] { return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice); });
}
int spt_download(void* dst, const void* src, std::size_t bytes) {
  return guarded("download", [&] { return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost); });
}
int spt_synchronize() {
  return guarded("synchronize", [] { return cudaDeviceSynchronize(); });
}

int spt_timer_reset() {
  return guarded("timer", [] {
    cudaError_t err = cudaSuccess;
    if (g_start == nullptr) err = cudaEventCreate(&g_start);
    if (err == cudaSuccess && g_stop == nullptr) err = cudaEventCreate(&g_stop);
    return err == cudaSuccess ? cudaEventRecord(g_start, nullptr) : err;
  });
}

int spt_timer_elapsed(float* ms) {
  return guarded("timer", [&] {
    if (g_start == nullptr) return cudaErrorInvalidValue;
    cudaError_t err = cudaEventRecord(g_stop, nullptr);
    if (err == cudaSuccess) err = cudaEventSynchronize(g_stop);
    return err == cudaSuccess ? cudaEventElapsedTime(ms, g_start, g_stop) : err;
  });
}

int spt_subm_rulebook(const int32_t* indices, int64_t n, int32_t ndim, const int32_t* spatial_shape,
                      const int32_t* kernel_size, const int32_t* dilation, int32_t* neighbors) {
  return guarded("SubmRulebook", [&] {
    SubmRulebookAttrs a{vec(spatial_shape, ndim), vec(kernel_size, ndim), vec(dilation, ndim)};
    validate("SubmRulebook", a);
    const RulebookGeometry g = makeGeometry(a);
    const std::size_t bytes = kernels::submRulebookWorkspaceSize(n);
    Scratch ws(bytes);
    return finish(kernels::submRulebook(indices, n, g, neighbors, ws.p, bytes, nullptr));
  });
}

int spt_sparse_rulebook_bound(int64_t n, int32_t ndim, const int32_t* spatial_shape, const int32_t* kernel_size,
                              const int32_t* stride, const int32_t* padding, const int32_t* dilation,
                              const int32_t* output_padding, int32_t transposed, int32_t max_out, int32_t batch_size,
                              int64_t* bound_host, int64_t* out_shape_host) {
  return guarded("SparseRulebook", [&] {
    const SparseRulebookAttrs a = sparseAttrs(ndim, spatial_shape, kernel_size, stride, padding, dilation,
                                              output_padding, transposed, max_out, batch_size);
    *bound_host = sparseRulebookOutputBound(a, n);
    const std::vector<int64_t> shape = outputSpatialShape(a);
    for (int32_t d = 0; d < ndim; ++d) out_shape_host[d] = shape[static_cast<std::size_t>(d)];
    return cudaSuccess;
  });
}

int spt_sparse_rulebook(const int32_t* indices, int64_t n, int32_t ndim, const int32_t* spatial_shape,
                        const int32_t* kernel_size, const int32_t* stride, const int32_t* padding,
                        const int32_t* dilation, const int32_t* output_padding, int32_t transposed, int32_t max_out,
                        int32_t batch_size, int32_t* out_indices, int32_t* neighbors, int64_t* num_out_host) {
  return guarded("SparseRulebook", [&] {
    const SparseRulebookAttrs a = sparseAttrs(ndim, spatial_shape, kernel_size, stride, padding, dilation,
                                              output_padding, transposed, max_out, batch_size);
    const RulebookGeometry g = makeGeometry(a);
    const int64_t bound = sparseRulebookOutputBound(a, n);
    const std::size_t bytes = kernels::sparseRulebookWorkspaceSize(n, g, bound);
    Scratch ws(bytes), counts(2 * sizeof(int32_t));
    auto* d_counts = static_cast<int32_t*>(counts.p);
    cudaError_t err = kernels::sparseRulebook(indices, n, g, bound, out_indices, neighbors, d_counts, d_counts + 1,
                                              ws.p, bytes, nullptr);
    int32_t host[2] = {0, 0};
    if (err == cudaSuccess) err = cudaMemcpy(host, d_counts, sizeof host, cudaMemcpyDeviceToHost);
    if (err != cudaSuccess) return err;
    if (host[1] != 0) {
      tl_error = "SparseRulebook: the layer created " + std::to_string(host[1]) + " output sites from " +
                 std::to_string(n) + " inputs, more than the bound " + std::to_string(bound) +
                 (max_out > 0 ? " (max_out): raise max_sites at export or feed fewer voxels"
                              : ": check that batch indices are < batch_size and coordinates lie inside the grid");
      return cudaErrorInvalidValue;
    }
    *num_out_host = host[0];
    return cudaSuccess;
  });
}

int spt_inverse_rulebook(const int32_t* neighbors, int64_t kernel_volume, int64_t num_out, int64_t num_in,
                         int32_t* inverse) {
  return guarded("InverseRulebook", [&] {
    return finish(kernels::inverseRulebook(neighbors, kernel_volume, num_out, num_in, inverse, nullptr, 0, nullptr));
  });
}

int spt_sparse_conv(int32_t dtype, const void* features, int64_t n, int64_t c_in, const int32_t* neighbors,
                    int64_t kernel_volume, int64_t m, const void* weight, const void* bias, int64_t c_out,
                    int32_t activation, float alpha, void* out) {
  return guarded("SparseConv", [&] {
    SparseConvAttrs a;
    a.activation = activation;
    a.alpha = alpha;
    validate("SparseConv", a);
    return finish(kernels::sparseConv(static_cast<DataType>(dtype), features, n, c_in, neighbors, kernel_volume, m,
                                      weight, bias, c_out, static_cast<Activation>(activation), alpha, out, nullptr, 0,
                                      nullptr));
  });
}

int spt_sparse_max_pool(int32_t dtype, const void* features, int64_t n, int64_t channels, const int32_t* neighbors,
                        int64_t kernel_volume, int64_t m, void* out) {
  return guarded("SparseMaxPool", [&] {
    return finish(kernels::sparseMaxPool(static_cast<DataType>(dtype), features, n, channels, neighbors, kernel_volume,
                                         m, out, nullptr, 0, nullptr));
  });
}

int spt_densify(int32_t dtype, const void* features, const int32_t* indices, int64_t n, int64_t channels, int32_t ndim,
                const int32_t* spatial_shape, int32_t batch_size, void* out) {
  return guarded("Densify", [&] {
    DensifyAttrs a{vec(spatial_shape, ndim), batch_size};
    validate("Densify", a);
    return finish(kernels::densify(static_cast<DataType>(dtype), features, indices, n, channels, ndim, spatial_shape,
                                   batch_size, out, nullptr, 0, nullptr));
  });
}

int spt_unique_sites(const int32_t* indices, int64_t n, int64_t k, int32_t* unique, int32_t* inverse, int32_t* counts,
                     int64_t* num_out_host) {
  return guarded("UniqueSites", [&] {
    const std::size_t bytes = kernels::uniqueSitesWorkspaceSize(n);
    Scratch ws(bytes), count(sizeof(int32_t));
    cudaError_t err = kernels::uniqueSites(indices, n, k, unique, inverse, counts, static_cast<int32_t*>(count.p), ws.p,
                                           bytes, nullptr);
    int32_t m = 0;
    if (err == cudaSuccess) err = cudaMemcpy(&m, count.p, sizeof m, cudaMemcpyDeviceToHost);
    if (err == cudaSuccess) *num_out_host = m;
    return err;
  });
}

int spt_segment_reduce(int32_t dtype, const void* features, const int32_t* segments, int64_t n, int64_t channels,
                       const void* init, int64_t m, int32_t reduction, void* out) {
  return guarded("SegmentReduce", [&] {
    SegmentReduceAttrs a{reduction};
    validate("SegmentReduce", a);
    const std::size_t bytes = kernels::segmentReduceWorkspaceSize(n);
    Scratch ws(bytes);
    return finish(kernels::segmentReduce(static_cast<DataType>(dtype), features, segments, n, channels, init, m,
                                         reduction, out, ws.p, bytes, nullptr));
  });
}

int spt_mask_rows(const int32_t* mask, int64_t n, int32_t* rows, int64_t* num_out_host) {
  return guarded("MaskRows", [&] {
    const std::size_t bytes = kernels::maskRowsWorkspaceSize(n);
    Scratch ws(bytes), count(sizeof(int32_t));
    cudaError_t err = kernels::maskRows(mask, n, rows, static_cast<int32_t*>(count.p), ws.p, bytes, nullptr);
    int32_t m = 0;
    if (err == cudaSuccess) err = cudaMemcpy(&m, count.p, sizeof m, cudaMemcpyDeviceToHost);
    if (err == cudaSuccess) *num_out_host = m;
    return err;
  });
}

}  // extern "C"
