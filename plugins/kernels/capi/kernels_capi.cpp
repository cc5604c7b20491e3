// The C ABI of the kernel library (sparsetrt/kernels_capi.h): validation with the plugins' own attribute
// rules, workspace allocation, one call into kernels.h, and a synchronization that reports the op's errors.
#include "sparsetrt/kernels_capi.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "ops/conv_plan/conv_plan_host.h"
#include "ops/densify/densify_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "sparsetrt/kernels.h"
#include "sparsetrt/shapes.h"
#if defined(SPARSETRT_CPU_BACKEND)
#include "sparsetrt_cpu/ptx.h"
#endif

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

// Device time of the last op's kernels (CUDA events on the default stream around them, after its workspace was
// allocated): what spt_last_op_ms reports.
float g_last_op_ms = 0.0f;
cudaEvent_t g_op_start = nullptr, g_op_stop = nullptr;

// Marks the start of an op's kernels; finish() marks the end, synchronizes and keeps the time between.
void opStart() {
  if (g_op_start == nullptr && cudaEventCreate(&g_op_start) != cudaSuccess) g_op_start = nullptr;
  if (g_op_stop == nullptr && cudaEventCreate(&g_op_stop) != cudaSuccess) g_op_stop = nullptr;
  g_last_op_ms = -1.0f;
  if (g_op_start != nullptr) cudaEventRecord(g_op_start, nullptr);
}

cudaError_t finish(cudaError_t err) {
  if (err != cudaSuccess) return err;
  if (g_op_stop != nullptr) cudaEventRecord(g_op_stop, nullptr);
  err = cudaDeviceSynchronize();
  float ms = -1.0f;
  if (err == cudaSuccess && g_op_start != nullptr && g_op_stop != nullptr &&
      cudaEventElapsedTime(&ms, g_op_start, g_op_stop) == cudaSuccess)
    g_last_op_ms = ms;
  return err;
}

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

int spt_abi_version() { return 3; }

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

int spt_device_info(int32_t* major, int32_t* minor, int32_t* multiprocessors) {
  return guarded("device", [&] {
    int device = 0, values[3] = {0, 0, 0};
    cudaError_t err = cudaGetDevice(&device);
    const cudaDeviceAttr attrs[3] = {cudaDevAttrComputeCapabilityMajor, cudaDevAttrComputeCapabilityMinor,
                                     cudaDevAttrMultiProcessorCount};
    for (int i = 0; i < 3 && err == cudaSuccess; ++i) err = cudaDeviceGetAttribute(&values[i], attrs[i], device);
    *major = values[0];
    *minor = values[1];
    *multiprocessors = values[2];
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

int spt_last_op_ms(float* ms) {
  *ms = g_last_op_ms;
  return 0;
}

int spt_instruction_counts(uint64_t* counts_host) {
  return guarded("instruction counts", [&] {
#if defined(SPARSETRT_CPU_BACKEND)
    const cpu::ptx::InstructionCounts c = cpu::ptx::counts();
    counts_host[0] = c.mma;
    counts_host[1] = c.ldmatrix;
    return cudaSuccess;
#else
    (void)counts_host;
    tl_error = "instruction counts: only the CPU backend counts executed instructions (profile a GPU with Nsight)";
    return cudaErrorNotSupported;
#endif
  });
}

int spt_instruction_counts_reset() {
  return guarded("instruction counts", [] {
#if defined(SPARSETRT_CPU_BACKEND)
    cpu::ptx::resetCounts();
    return cudaSuccess;
#else
    tl_error = "instruction counts: only the CPU backend counts executed instructions (profile a GPU with Nsight)";
    return cudaErrorNotSupported;
#endif
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
    opStart();
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
    int32_t host[2] = {0, 0};  // [num_out, overflow], read back once by the kernels (exact-size sort)
    opStart();
    cudaError_t err = finish(kernels::sparseRulebook(indices, n, g, bound, out_indices, neighbors, d_counts,
                                                     d_counts + 1, ws.p, bytes, nullptr, host));
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
    opStart();
    return finish(kernels::inverseRulebook(neighbors, kernel_volume, num_out, num_in, inverse, nullptr, 0, nullptr));
  });
}

int spt_conv_plan(const int32_t* neighbors, int64_t kernel_volume, int64_t m, int32_t* plan) {
  return guarded("ConvPlan", [&] {
    const std::size_t bytes = kernels::convPlanWorkspaceSize(m, kernel_volume);
    Scratch ws(bytes);
    opStart();
    return finish(kernels::convPlan(neighbors, kernel_volume, m, plan, ws.p, bytes, nullptr));
  });
}

int spt_sparse_conv(int32_t dtype, const void* features, int64_t n, int64_t c_in, const int32_t* map, int32_t layout,
                    int64_t kernel_volume, int64_t m, const void* weight, const void* bias, const void* residual,
                    int64_t c_out, int32_t activation, float alpha, void* out) {
  return guarded("SparseConv", [&] {
    SparseConvAttrs a;
    a.activation = activation;
    a.alpha = alpha;
    validate("SparseConv", a);
    if (layout != 0 && layout != 1) {
      tl_error = "SparseConv: layout must be 0 (neighbour map) or 1 (ConvPlan)";
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

int spt_sparse_max_pool(int32_t dtype, const void* features, int64_t n, int64_t channels, const int32_t* neighbors,
                        int64_t kernel_volume, int64_t m, void* out) {
  return guarded("SparseMaxPool", [&] {
    opStart();
    return finish(kernels::sparseMaxPool(static_cast<DataType>(dtype), features, n, channels, neighbors, kernel_volume,
                                         m, out, nullptr, 0, nullptr));
  });
}

int spt_densify(int32_t dtype, const void* features, const int32_t* indices, int64_t n, int64_t channels, int32_t ndim,
                const int32_t* spatial_shape, int32_t batch_size, void* out) {
  return guarded("Densify", [&] {
    DensifyAttrs a{vec(spatial_shape, ndim), batch_size};
    validate("Densify", a);
    opStart();
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
                                         static_cast<Reduction>(reduction), out, ws.p, bytes, nullptr));
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
