// What every op's C entry points share (ops/<op>/<op>_capi.cpp; the ABI itself: sparsetrt/kernels_capi.h):
// errors as a code and a thread-local message, a device scratch for one call, the timing of the op's kernels and
// array arguments as vectors. Internal to the libsparsetrt_kernels_{cuda,cpu}.so libraries (hidden symbols).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "sparsetrt/kernels_capi.h"

namespace sparsetrt::capi {

// The last error's message on this thread: what spt_last_error() returns.
std::string& lastError();

// Runs `body` (which returns a cudaError_t); exceptions and CUDA errors become a code and a message.
template <typename F>
int guarded(const char* op, F&& body) {
  std::string& error = lastError();
  error.clear();
  try {
    const cudaError_t err = body();
    if (err != cudaSuccess && error.empty())
      error = std::string(op) + ": CUDA error " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    return static_cast<int>(err);
  } catch (const std::exception& e) {
    error = std::string(op) + ": " + e.what();
    return static_cast<int>(cudaErrorInvalidValue);
  }
}

inline std::vector<int32_t> vec(const int32_t* p, int32_t n) { return std::vector<int32_t>(p, p + (n > 0 ? n : 0)); }

// Device scratch for one call, freed (after the work finished) when it goes out of scope.
struct Scratch {
  void* p = nullptr;
  explicit Scratch(std::size_t bytes) {
    if (bytes && cudaMalloc(&p, bytes) != cudaSuccess) p = nullptr;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (p) cudaFree(p);
  }
};

// Marks the start of an op's kernels (after its workspace was allocated); finish() marks the end, synchronizes and
// keeps the device time between for spt_last_op_ms (CUDA events on the default stream).
void opStart();
cudaError_t finish(cudaError_t err);

}  // namespace sparsetrt::capi
