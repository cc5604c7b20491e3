// The shared part of the kernels' C ABI (sparsetrt/kernels_capi.h): version, backend, errors, device, memory,
// timers, and what every op's entry points use (capi_common.h). Each op's entry points are in its folder
// (ops/<op>/<op>_capi.cpp: validation with the plugins' own attribute rules, workspace allocation, one call into
// <op>_kernels.h, a synchronization that reports the op's errors), globbed into the same libraries: this file names no
// op.
#include "sparsetrt/kernels_capi.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <string>

#include "kernels/capi/capi_common.h"
#if defined(SPARSETRT_CPU_BACKEND)
#include "sparsetrt_cpu/ptx.h"
#endif

namespace sparsetrt::capi {

std::string& lastError() {
  thread_local std::string message;
  return message;
}

namespace {

// Device time of the last op's kernels (CUDA events on the default stream around them, after its workspace was
// allocated): what spt_last_op_ms reports.
float g_last_op_ms = 0.0f;
cudaEvent_t g_op_start = nullptr, g_op_stop = nullptr;

}  // namespace

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

namespace {

// spt_timer_reset / spt_timer_elapsed's events.
cudaEvent_t g_start = nullptr, g_stop = nullptr;

}  // namespace

}  // namespace sparsetrt::capi

using namespace sparsetrt::capi;

extern "C" {

int spt_abi_version() { return 3; }

const char* spt_backend() {
#if defined(SPARSETRT_CPU_BACKEND)
  return "cpu";
#else
  return "cuda";
#endif
}

const char* spt_last_error() { return lastError().c_str(); }

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
    const sparsetrt::cpu::ptx::InstructionCounts c = sparsetrt::cpu::ptx::counts();
    counts_host[0] = c.mma;
    counts_host[1] = c.ldmatrix;
    return cudaSuccess;
#else
    (void)counts_host;
    lastError() = "instruction counts: only the CPU backend counts executed instructions (profile a GPU with Nsight)";
    return cudaErrorNotSupported;
#endif
  });
}

int spt_instruction_counts_reset() {
  return guarded("instruction counts", [] {
#if defined(SPARSETRT_CPU_BACKEND)
    sparsetrt::cpu::ptx::resetCounts();
    return cudaSuccess;
#else
    lastError() = "instruction counts: only the CPU backend counts executed instructions (profile a GPU with Nsight)";
    return cudaErrorNotSupported;
#endif
  });
}

}  // extern "C"
