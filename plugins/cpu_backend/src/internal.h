// What the CPU backend's source files share: settings, diagnostics, device memory and kernel execution.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cuda_runtime.h"

namespace sparsetrt {
namespace cpu {

// Settings, read once from the environment (README.md lists them).
struct Config {
  int workers = 1;       // SPARSETRT_CPU_THREADS: OS threads running blocks (default: all cores)
  bool shuffle = false;  // SPARSETRT_CPU_SHUFFLE=<seed>: random block and thread orders
  uint64_t seed = 0;
  int sm_major = 8;  // SPARSETRT_CPU_SM=<major><minor>: the compute capability reported
  int sm_minor = 0;
  std::size_t stack_bytes = 0;  // SPARSETRT_CPU_STACK_KB: each CUDA thread's fiber stack
};
const Config& config();

// One line on stderr, prefixed with "sparsetrt CPU backend: ".
void report(const char* format, ...) __attribute__((format(printf, 1, 2)));
void reportv(const char* format, va_list args);

// A fault inside a kernel poisons the context: every later call returns it (as a GPU's sticky errors do).
void setStickyError(cudaError_t error);
cudaError_t stickyError();

// ---------------------------------------------------------------------------------------------- memory
// Device allocations are host memory laid out to catch overruns: a PROT_NONE page right after the last
// 256-byte granule, fill bytes (checked) between the requested size and that granule and before the start,
// and freed allocations kept PROT_NONE for a while to catch use after free.
void* deviceAlloc(std::size_t bytes);
bool deviceFree(void* ptr);  // false: not the start of a live allocation
// The live allocation holding [p, p + bytes) entirely (bytes may be 0: p may then be one past the end), or
// an error naming the range and the nearest allocation. `what` names the argument in the message.
cudaError_t checkDeviceRange(const char* api, const char* what, const void* p, std::size_t bytes);
bool overlapsDeviceMemory(const void* p, std::size_t bytes);
// Fill bytes of every live allocation intact? Reports the first damage (after `what` ran) otherwise.
bool checkGuards(const char* what);
// What an address is, for a fault report ("12 bytes past the end of the 4096-byte allocation at ...").
std::string describeAddress(const void* p);

// ----------------------------------------------------------------------------------------- kernels
// Runs every block of the launch now (stream ordering is the caller's); false if a thread faulted.
bool runKernel(const KernelLaunch& launch);
// The kernel, block and thread running on this OS thread, for fault reports ("" when none).
std::string currentThreadDescription();
void installFaultHandler();

}  // namespace cpu
}  // namespace sparsetrt
