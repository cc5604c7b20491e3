// The check macros of the GPU tests: EXPECT counts a failed check and goes on (printf-style message);
// CUDA_OK stops the test at the first CUDA error, which leaves nothing after it meaningful. The counts are one
// pair per executable (inline variables), whichever of its files (ops/<op>/*_test.*) the checks are in.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>

inline int failures = 0;
inline int checks = 0;
#define EXPECT(cond, ...)                                         \
  do {                                                            \
    ++checks;                                                     \
    if (!(cond)) {                                                \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
      ++failures;                                                 \
    }                                                             \
  } while (0)
#define CUDA_OK(expr)                                                                           \
  do {                                                                                          \
    cudaError_t e_ = (expr);                                                                    \
    if (e_ != cudaSuccess) {                                                                    \
      std::printf("FAIL %s:%d: %s -> %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)
