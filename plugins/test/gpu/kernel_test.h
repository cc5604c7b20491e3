// The kernel tests' harness: each op's tests live in its folder (ops/<op>/<op>_kernels_test.cu), cross-op ones
// here (graph_capture_test.cu), and register their groups statically; test_kernels.cu's main runs them. Every
// test checks the kernel library against a brute-force CPU model of the schema's semantics (written in the
// tests, independently of the kernels: std::map lookups, plain loops in double precision), on fresh random
// inputs and edge cases. This header holds what the ops' tests share: the check macros (gpu_check.h), the
// stream every call goes to, device buffers, random sites and neighbour maps.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gpu_check.h"

namespace sparsetrt_kernel_test {

// A group (the name test_kernels is given on its command line) gathers parts, each a function that gets its
// own random generator, seeded from the group's and the part's names: a part sees the same inputs whether it
// runs alone or among all, and a new op's tests leave every other part's inputs as they were.
struct Part {
  std::string group;
  std::string name;
  void (*fn)(std::mt19937&);
  bool by_default;  // false: run only when named (conv_quick repeats a subset of conv, for racecheck)
};

inline std::vector<Part>& parts() {
  static std::vector<Part> registered;
  return registered;
}

struct RegisterPart {
  RegisterPart(const char* group, const char* name, void (*fn)(std::mt19937&), bool by_default = true) {
    parts().push_back(Part{group, name, fn, by_default});
  }
};

}  // namespace sparsetrt_kernel_test

#define SPT_KERNEL_TEST_CONCAT2(a, b) a##b
#define SPT_KERNEL_TEST_CONCAT(a, b) SPT_KERNEL_TEST_CONCAT2(a, b)
// KERNEL_TEST_PART("subm", testSubm): testSubm(std::mt19937&) runs as part of group "subm" (in every run);
// KERNEL_TEST_PART_NAMED_ONLY runs it only when its group is named on the command line.
#define KERNEL_TEST_PART(group, fn) \
  static const ::sparsetrt_kernel_test::RegisterPart SPT_KERNEL_TEST_CONCAT(register_, __LINE__)(group, #fn, fn)
#define KERNEL_TEST_PART_NAMED_ONLY(group, fn) \
  static const ::sparsetrt_kernel_test::RegisterPart SPT_KERNEL_TEST_CONCAT(register_, __LINE__)(group, #fn, fn, false)

// Every call goes to a created stream (test_kernels.cu's main makes it), not the legacy default one: the kernels
// must honour `stream`.
inline cudaStream_t stream = nullptr;
inline void syncStream() { CUDA_OK(cudaStreamSynchronize(stream)); }

// A device buffer of exactly `count` elements after `offset` leading ones (offset 1 misaligns the view, to
// exercise the kernels' unaligned paths); memcheck then flags any access past either end of the allocation.
template <typename T>
struct Dev {
  T* base = nullptr;
  T* p = nullptr;
  std::size_t n = 0;
  explicit Dev(std::size_t count, std::size_t offset = 0) : n(count) {
    CUDA_OK(cudaMalloc(&base, std::max<std::size_t>(count + offset, 1) * sizeof(T)));
    p = base + offset;
  }
  explicit Dev(const std::vector<T>& h, std::size_t offset = 0) : Dev(h.size(), offset) { put(h); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { cudaFree(base); }
  void put(const std::vector<T>& h) {
    if (!h.empty()) CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  void fill(unsigned char byte) {
    if (n) CUDA_OK(cudaMemset(p, byte, n * sizeof(T)));
  }
  std::vector<T> get(std::size_t count) const {
    syncStream();
    std::vector<T> h(count);
    if (count) CUDA_OK(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  std::vector<T> get() const { return get(n); }
};

template <typename T>
bool sameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// fp32 and fp16 values through float, for templated cases.
inline float toF(float v) { return v; }
inline float toF(__half v) { return __half2float(v); }
template <typename T>
T fromF(float v);
template <>
inline float fromF<float>(float v) {
  return v;
}
template <>
inline __half fromF<__half>(float v) {
  return __float2half_rn(v);
}

// ------------------------------------------------------------------------------------------- sites
using Site = std::vector<int32_t>;  // (batch, coords...)

inline int64_t product(const std::vector<int32_t>& v) {
  int64_t p = 1;
  for (int32_t e : v) p *= e;
  return p;
}

// n distinct sites in the given batch samples (others stay empty), rows in random order; a fraction
// `border` is pushed onto a face of the grid.
inline std::vector<int32_t> makeSites(std::mt19937& rng, const std::vector<int>& batches,
                                      const std::vector<int32_t>& shape, int64_t n, double border = 0.0) {
  n = std::min<int64_t>(n, static_cast<int64_t>(batches.size()) * product(shape));
  std::set<Site> sites;
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  while (static_cast<int64_t>(sites.size()) < n) {
    Site s{batches[std::uniform_int_distribution<std::size_t>(0, batches.size() - 1)(rng)]};
    for (int32_t e : shape) s.push_back(std::uniform_int_distribution<int32_t>(0, e - 1)(rng));
    if (u01(rng) < border) {
      const std::size_t d = std::uniform_int_distribution<std::size_t>(0, shape.size() - 1)(rng);
      s[1 + d] = u01(rng) < 0.5 ? 0 : shape[d] - 1;
    }
    sites.insert(s);
  }
  std::vector<Site> v(sites.begin(), sites.end());
  std::shuffle(v.begin(), v.end(), rng);  // rows in random order: submanifold must keep it
  std::vector<int32_t> flat;
  for (const Site& s : v) flat.insert(flat.end(), s.begin(), s.end());
  return flat;
}

// Every site of the grid's corners (2^D per sample): the extreme case of border handling.
inline std::vector<int32_t> cornerSites(const std::vector<int>& batches, const std::vector<int32_t>& shape) {
  std::set<Site> sites;
  const std::size_t d = shape.size();
  for (int b : batches)
    for (uint32_t mask = 0; mask < (1u << d); ++mask) {
      Site s{b};
      for (std::size_t i = 0; i < d; ++i) s.push_back((mask >> i) & 1u ? shape[i] - 1 : 0);
      sites.insert(s);
    }
  std::vector<int32_t> flat;
  for (const Site& s : sites) flat.insert(flat.end(), s.begin(), s.end());
  return flat;
}

// The kernel position (one tap per spatial dimension) of flat offset k, the last dimension fastest.
inline std::vector<int32_t> tapsOf(int64_t k, const std::vector<int32_t>& kernel) {
  std::vector<int32_t> t(kernel.size());
  for (int d = static_cast<int>(kernel.size()) - 1; d >= 0; --d) {
    t[d] = static_cast<int32_t>(k % kernel[d]);
    k /= kernel[d];
  }
  return t;
}

// ------------------------------------------------------------------------------------- neighbour maps
enum class MapMode { kRandom, kBlocky, kEmpty };

// A [K, M] map: kRandom: each entry an input with probability `density`; kBlocky: every 64-row tile uses a
// few offsets only (the rest of the (offset, tile) pairs are empty, as near a sparse map's sites);
// kEmpty: all -1.
inline std::vector<int32_t> makeMap(std::mt19937& rng, int64_t n, int64_t m, int64_t kvol, MapMode mode,
                                    double density) {
  std::vector<int32_t> nb(kvol * m, -1);
  if (n == 0 || mode == MapMode::kEmpty) return nb;
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::uniform_int_distribution<int32_t> row(0, static_cast<int32_t>(n - 1));
  for (int64_t t0 = 0; t0 < m; t0 += 64) {
    std::set<int64_t> offsets;
    if (mode == MapMode::kBlocky)
      for (int i = 0; i < 3; ++i) offsets.insert(std::uniform_int_distribution<int64_t>(0, kvol - 1)(rng));
    for (int64_t k = 0; k < kvol; ++k) {
      if (mode == MapMode::kBlocky && !offsets.count(k)) continue;
      for (int64_t j = t0; j < std::min(m, t0 + 64); ++j)
        if (u01(rng) < density) nb[k * m + j] = row(rng);
    }
  }
  return nb;
}

// TensorRT runs plugins on uninitialized inputs while it times tactics: a map entry outside [0, N) must act
// exactly as -1 (kernels.h), never be read through. poison() sets some entries of a valid map to N, N + 7,
// INT32_MAX or random garbage >= N and returns the map with those entries set to -1 instead: a kernel given the
// poisoned map must give the same bits as given the clean one (the "untrusted" group, one part per op that reads
// a map; memcheck, run_gpu_checks.sh, sees any stray read).
inline std::vector<int32_t> poison(std::mt19937& rng, std::vector<int32_t>* nb, int64_t n) {
  std::vector<int32_t> clean = *nb;
  std::uniform_int_distribution<int> pick(0, 5);
  const int32_t garbage[] = {static_cast<int32_t>(n), static_cast<int32_t>(n + 7), INT32_MAX};
  for (std::size_t i = 0; i < nb->size(); ++i) {
    const int p = pick(rng);
    if (p >= 4) continue;
    (*nb)[i] = p < 3 ? garbage[p] : std::uniform_int_distribution<int32_t>(static_cast<int32_t>(n), INT32_MAX)(rng);
    clean[i] = -1;
  }
  return clean;
}
