// The kernel tests' main. Each op's tests are in its folder (ops/<op>/<op>_kernels_test.cu: its kernels against a
// brute-force CPU model on fresh random inputs and edge cases, determinism, overflow contracts, refusals), the
// cross-op ones here (graph_capture_test.cu); each registers its parts of a group (kernel_test.h), CMake globs them
// in, and this runs the groups asked for:
//
//   test_kernels [group ...]   every registered group (the default: all but conv_quick), e.g. subm sparse bound
//                              conv pool plan densify untrusted graph merge, and conv_quick (a small subset of
//                              conv, for racecheck and the sm_75 run)
//
// Exits 77 (CTest: skipped) where no CUDA device is present, 2 on an unknown group, 1 on any failure.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernel_test.h"

namespace {

// FNV-1a: a part's seed from its group and name, the same on every compiler and platform (std::hash is not).
uint32_t seedOf(const std::string& group, const std::string& name) {
  uint32_t h = 2166136261u;
  for (const char c : group + "/" + name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return 20261124u ^ h;
}

}  // namespace

int main(int argc, char** argv) {
  using sparsetrt_kernel_test::Part;
  // Groups in name order and each group's parts in name order: the order of the files at link time decides nothing.
  std::vector<Part> parts = sparsetrt_kernel_test::parts();
  std::sort(parts.begin(), parts.end(),
            [](const Part& a, const Part& b) { return std::tie(a.group, a.name) < std::tie(b.group, b.name); });
  std::map<std::string, bool> groups;  // name -> run by default
  for (const Part& p : parts) groups[p.group] = groups[p.group] || p.by_default;
  for (int i = 1; i < argc; ++i)
    if (!groups.count(argv[i])) {
      std::printf("unknown group '%s' (groups:", argv[i]);
      for (const auto& g : groups) std::printf(" %s", g.first.c_str());
      std::printf(")\n");
      return 2;
    }

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: GPU kernel tests skipped\n");
    return 77;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  CUDA_OK(cudaStreamCreate(&stream));
  for (const auto& [group, by_default] : groups) {
    bool wanted = argc < 2 && by_default;
    for (int i = 1; i < argc; ++i) wanted = wanted || group == argv[i];
    if (!wanted) continue;
    const int before = failures;
    for (const Part& p : parts) {
      if (p.group != group) continue;
      std::mt19937 rng(seedOf(p.group, p.name));
      p.fn(rng);
      syncStream();
      CUDA_OK(cudaGetLastError());
    }
    std::printf("%s %s\n", failures == before ? "[ ok ]" : "[FAIL]", group.c_str());
  }
  CUDA_OK(cudaStreamDestroy(stream));
  std::printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
