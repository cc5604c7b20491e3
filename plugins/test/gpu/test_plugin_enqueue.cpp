// The plugins' enqueue tests' main. Each op's test is in its folder (ops/<op>/<op>_enqueue_test.cpp: its plugin,
// created through its creator and driven as TensorRT drives it, against the kernel library on the same inputs)
// and registers itself (enqueue_test.h); CMake globs them in, and this runs them all, in name order, over one
// shared scene.
// Exits 77 (CTest: skipped) where no CUDA device is present, 1 on any failure.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "enqueue_test.h"

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: plugin enqueue tests skipped\n");
    return 77;
  }
  using sparsetrt_enqueue_test::Test;
  std::vector<Test> tests = sparsetrt_enqueue_test::tests();
  std::sort(tests.begin(), tests.end(), [](const Test& a, const Test& b) { return a.name < b.name; });
  const sparsetrt_enqueue_test::Scene scene(sparsetrt_enqueue_test::sceneInputs());
  for (const Test& test : tests) {
    const int before = failures;
    test.fn(scene);
    std::printf("%s %s\n", failures == before ? "[ ok ]" : "[FAIL]", test.name.c_str());
  }
  std::printf("%zu tests, %d checks\n", tests.size(), checks);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
