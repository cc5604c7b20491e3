// GPU tests of the kernel library against a brute-force CPU model of the schema's semantics (written here
// independently of the kernels: std::map lookups, plain loops in double precision), on fresh random inputs
// and edge cases: N = 0, one voxel, sites on grid borders, empty batch samples, odd channel counts
// (1, 3, 13, 67, ...), kernel volumes 1/8/27/125 and one past the conv's offset window, unaligned pointers.
// Also: the fp16 tensor-core conv against an fp32-exact model with a stated tolerance, bitwise run-to-run
// determinism, the max_out / out_capacity overflow contract, refusal of a too-small workspace, the
// device-free radix-sort scratch bound against CUB's own query, and a CUDA-graph capture of every entry point.
//
//   test_kernels [group ...]   groups: subm sparse bound conv pool densify untrusted graph merge (the default:
//                              all of them) and conv_quick (a small subset of conv, for racecheck)
//
// Exits 77 (CTest: skipped) where no CUDA device is present, 1 on any failure.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>  // CUB's own scratch query, to check the device-free bound

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gpu_check.h"
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
#include "sparsetrt/workspace.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

// Every call goes to a created stream, not the legacy default one: the kernels must honour `stream`.
static cudaStream_t stream = nullptr;
static void syncStream() { CUDA_OK(cudaStreamSynchronize(stream)); }

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

// ------------------------------------------------------------------------------------------- sites
using Site = std::vector<int32_t>;  // (batch, coords...)

int64_t product(const std::vector<int32_t>& v) {
  int64_t p = 1;
  for (int32_t e : v) p *= e;
  return p;
}

// n distinct sites in the given batch samples (others stay empty), rows in random order; a fraction
// `border` is pushed onto a face of the grid.
std::vector<int32_t> makeSites(std::mt19937& rng, const std::vector<int>& batches, const std::vector<int32_t>& shape,
                               int64_t n, double border = 0.0) {
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
std::vector<int32_t> cornerSites(const std::vector<int>& batches, const std::vector<int32_t>& shape) {
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

std::vector<int32_t> tapsOf(int64_t k, const std::vector<int32_t>& kernel) {
  std::vector<int32_t> t(kernel.size());
  for (int d = static_cast<int>(kernel.size()) - 1; d >= 0; --d) {
    t[d] = static_cast<int32_t>(k % kernel[d]);
    k /= kernel[d];
  }
  return t;
}

// -------------------------------------------------------------------------------------- rulebooks
std::vector<int32_t> referenceSubm(const std::vector<int32_t>& idx, int64_t n, const SubmRulebookAttrs& a) {
  const int D = static_cast<int>(a.spatial_shape.size());
  const int64_t kvol = product(a.kernel_size);
  std::map<Site, int32_t> rows;
  for (int64_t i = 0; i < n; ++i)
    rows[Site(idx.begin() + i * (1 + D), idx.begin() + (i + 1) * (1 + D))] = static_cast<int32_t>(i);
  std::vector<int32_t> expect(kvol * n, -1);
  for (int64_t k = 0; k < kvol; ++k) {
    const auto t = tapsOf(k, a.kernel_size);
    for (int64_t i = 0; i < n; ++i) {
      Site s{idx[i * (1 + D)]};
      for (int d = 0; d < D; ++d) s.push_back(idx[i * (1 + D) + 1 + d] + (t[d] - a.kernel_size[d] / 2) * a.dilation[d]);
      auto it = rows.find(s);
      if (it != rows.end()) expect[k * n + i] = it->second;
    }
  }
  return expect;
}

// Brute force SparseRulebook: sorted output sites and [K, M] neighbours.
void referenceSparse(const std::vector<int32_t>& idx, int64_t n, const SparseRulebookAttrs& a, std::vector<Site>* outs,
                     std::vector<int32_t>* nb) {
  const int D = static_cast<int>(a.spatial_shape.size());
  const auto out_shape = outputSpatialShape(a);
  const int64_t kvol = product(a.kernel_size);
  std::map<Site, std::vector<std::pair<int64_t, int32_t>>> hits;  // out site -> (k, input row)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < kvol; ++k) {
      const auto t = tapsOf(k, a.kernel_size);
      Site o{idx[i * (1 + D)]};
      bool ok = true;
      for (int d = 0; d < D; ++d) {
        const int64_t c = idx[i * (1 + D) + 1 + d];
        int64_t v;
        if (a.transposed) {
          v = c * a.stride[d] - a.padding[d] + int64_t{t[d]} * a.dilation[d];
        } else {
          const int64_t s = c + a.padding[d] - int64_t{t[d]} * a.dilation[d];
          ok = ok && s >= 0 && s % a.stride[d] == 0;
          v = s / a.stride[d];
        }
        ok = ok && v >= 0 && v < out_shape[d];
        o.push_back(static_cast<int32_t>(v));
      }
      if (ok) hits[o].push_back({k, static_cast<int32_t>(i)});
    }
  }
  outs->clear();
  for (auto& kv : hits) outs->push_back(kv.first);
  const int64_t m = static_cast<int64_t>(outs->size());
  nb->assign(kvol * m, -1);
  int64_t row = 0;
  for (auto& kv : hits) {
    for (auto [k, i] : kv.second) (*nb)[k * m + row] = i;
    ++row;
  }
}

SubmRulebookAttrs submAttrs(std::vector<int32_t> shape, std::vector<int32_t> kernel, std::vector<int32_t> dilation) {
  SubmRulebookAttrs a{std::move(shape), std::move(kernel), std::move(dilation)};
  validate("test", a);
  return a;
}

SparseRulebookAttrs sparseAttrs(std::vector<int32_t> shape, std::vector<int32_t> kernel, std::vector<int32_t> stride,
                                std::vector<int32_t> padding, std::vector<int32_t> dilation, bool transposed,
                                int32_t batch_size, std::vector<int32_t> output_padding = {}) {
  SparseRulebookAttrs a;
  a.spatial_shape = std::move(shape);
  a.kernel_size = std::move(kernel);
  a.stride = std::move(stride);
  a.padding = std::move(padding);
  a.dilation = std::move(dilation);
  a.output_padding = output_padding.empty() ? std::vector<int32_t>(a.spatial_shape.size(), 0) : output_padding;
  a.transposed = transposed ? 1 : 0;
  a.batch_size = batch_size;
  validate("test", a);
  return a;
}

void submCase(const char* name, const SubmRulebookAttrs& a, const std::vector<int32_t>& idx) {
  const int D = static_cast<int>(a.spatial_shape.size());
  const int64_t n = static_cast<int64_t>(idx.size()) / (1 + D);
  const RulebookGeometry g = makeGeometry(a);
  const auto expect = referenceSubm(idx, n, a);
  Dev<int32_t> d_idx(idx), d_nb(g.kernel_volume * n), d_nb2(g.kernel_volume * n);
  Dev<char> ws(K::submRulebookWorkspaceSize(n));
  CUDA_OK(K::submRulebook(d_idx.p, n, g, d_nb.p, ws.p, ws.n, stream));
  CUDA_OK(K::submRulebook(d_idx.p, n, g, d_nb2.p, ws.p, ws.n, stream));
  const auto got = d_nb.get();
  EXPECT(got == expect, "%s: submanifold neighbours differ from brute force (N=%lld)", name, (long long)n);
  EXPECT(sameBits(got, d_nb2.get()), "%s: submanifold map differs between runs", name);
  if (n > 0 && !g.pointwise) {  // a workspace one byte short is refused before anything is enqueued
    d_nb.fill(0x5A);
    EXPECT(K::submRulebook(d_idx.p, n, g, d_nb.p, ws.p, ws.n - 1, stream) == cudaErrorInvalidValue,
           "%s: short workspace accepted", name);
    const auto untouched = d_nb.get();
    EXPECT(std::all_of(untouched.begin(), untouched.end(), [](int32_t v) { return v == 0x5A5A5A5A; }),
           "%s: refused call wrote its output", name);
  }
}

void testSubm(std::mt19937& rng) {
  const auto a3 = submAttrs({9, 13, 11}, {3, 3, 3}, {1, 2, 1});
  submCase("subm random 3D, dilation", a3, makeSites(rng, {0, 1}, a3.spatial_shape, 300));
  submCase("subm borders", a3, makeSites(rng, {0, 1, 2}, a3.spatial_shape, 200, 0.8));
  submCase("subm corners", a3, cornerSites({0, 3}, a3.spatial_shape));
  submCase("subm empty batch samples", a3, makeSites(rng, {0, 2, 5}, a3.spatial_shape, 250));
  submCase("subm N=0", a3, {});
  submCase("subm one voxel", a3, makeSites(rng, {1}, a3.spatial_shape, 1));
  submCase("subm dense grid", submAttrs({3, 4, 5}, {3, 3, 3}, {1, 1, 1}), makeSites(rng, {0}, {3, 4, 5}, 60));
  const auto a5 = submAttrs({12, 12, 12}, {5, 5, 5}, {1, 1, 1});  // K = 125
  submCase("subm K=125", a5, makeSites(rng, {0, 1}, a5.spatial_shape, 700, 0.2));
  const auto a2 = submAttrs({7, 9}, {2, 4}, {1, 1});  // even kernels: centred at k // 2
  submCase("subm 2D even kernel", a2, makeSites(rng, {0, 1}, a2.spatial_shape, 40));
  const auto a4 = submAttrs({4, 5, 6, 3}, {3, 1, 3, 3}, {1, 1, 2, 1});
  submCase("subm 4D", a4, makeSites(rng, {0, 1}, a4.spatial_shape, 150, 0.3));
  const auto a1 = submAttrs({50, 60, 40}, {1, 1, 1}, {1, 1, 1});  // pointwise: the identity
  submCase("subm pointwise", a1, makeSites(rng, {0, 1}, a1.spatial_shape, 100));
  const auto big = submAttrs({41, 400, 352}, {3, 3, 3}, {1, 1, 1});
  submCase("subm 20k lidar-scale grid", big, makeSites(rng, {0, 1}, big.spatial_shape, 20000, 0.05));
}

void sparseCase(std::mt19937& rng, const char* name, SparseRulebookAttrs a, const std::vector<int32_t>& idx) {
  const int D = static_cast<int>(a.spatial_shape.size());
  const int64_t n = static_cast<int64_t>(idx.size()) / (1 + D);
  std::vector<Site> outs;
  std::vector<int32_t> expect;
  const RulebookGeometry g = makeGeometry(a);
  referenceSparse(idx, n, a, &outs, &expect);
  if (g.pointwise) {  // the same sites, but in input row order (as the CPU reference keeps them): the identity
    outs.clear();
    for (int64_t i = 0; i < n; ++i) outs.emplace_back(idx.begin() + i * (1 + D), idx.begin() + (i + 1) * (1 + D));
    for (int64_t i = 0; i < n; ++i) expect[i] = static_cast<int32_t>(i);
  }
  const int64_t m = static_cast<int64_t>(outs.size());
  const int64_t kvol = g.kernel_volume;
  const int64_t cap = sparseRulebookOutputBound(a, n);
  EXPECT(m <= cap, "%s: bound %lld below the true count %lld", name, (long long)cap, (long long)m);
  const std::size_t bytes = K::sparseRulebookWorkspaceSize(n, g, cap);
  EXPECT(bytes == sparseRulebookWorkspace(n, g, cap).bytes, "%s: workspace size != layout", name);
  const int64_t rows = std::max<int64_t>(cap, 1);
  Dev<char> ws(bytes);
  Dev<int32_t> d_idx(idx), d_out(rows * (1 + D)), d_nb(kvol * rows), d_count(2);
  CUDA_OK(K::sparseRulebook(d_idx.p, n, g, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n, stream));
  const auto count = d_count.get();
  EXPECT(count[0] == m && count[1] == 0, "%s: num_out %d overflow %d, expected %lld", name, count[0], count[1],
         (long long)m);
  std::vector<int32_t> flat;
  for (const Site& s : outs) flat.insert(flat.end(), s.begin(), s.end());
  const auto got_out = d_out.get(flat.size()), got_nb = d_nb.get(expect.size());
  EXPECT(got_out == flat, "%s: output sites differ (M=%lld)", name, (long long)m);
  EXPECT(got_nb == expect, "%s: neighbours differ (M=%lld)", name, (long long)m);
  // Determinism: a second run (a dirty workspace included) gives the same bits.
  CUDA_OK(K::sparseRulebook(d_idx.p, n, g, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n, stream));
  EXPECT(sameBits(got_out, d_out.get(flat.size())) && sameBits(got_nb, d_nb.get(expect.size())),
         "%s: second run differs", name);
  {  // With the counts read back (one synchronization), exactly M keys are sorted: the same results.
    Dev<int32_t> d_out2(rows * (1 + D)), d_nb2(kvol * rows), d_count2(2);
    int32_t host[2] = {-1, -1};
    CUDA_OK(
        K::sparseRulebook(d_idx.p, n, g, cap, d_out2.p, d_nb2.p, d_count2.p, d_count2.p + 1, ws.p, ws.n, stream, host));
    const auto c2 = d_count2.get();
    EXPECT(host[0] == m && host[1] == 0 && c2[0] == m && c2[1] == 0,
           "%s, read back: num_out %d / %d, overflow %d / %d, expected %lld", name, host[0], c2[0], host[1], c2[1],
           (long long)m);
    EXPECT(sameBits(got_out, d_out2.get(flat.size())) && sameBits(got_nb, d_nb2.get(expect.size())),
           "%s: read-back run differs from the device-only one", name);
  }

  if (!a.transposed && !g.pointwise) {  // the inverse of the regular map
    std::vector<int32_t> inv(kvol * n, -1);
    for (int64_t k = 0; k < kvol; ++k)
      for (int64_t j = 0; j < m; ++j)
        if (expect[k * m + j] >= 0) inv[k * n + expect[k * m + j]] = static_cast<int32_t>(j);
    Dev<int32_t> d_inv(inv.size());
    CUDA_OK(K::inverseRulebook(d_nb.p, kvol, m, n, d_inv.p, nullptr, 0, stream));
    EXPECT(d_inv.get() == inv, "%s: inverse map differs", name);
  }

  // The overflow contract: outputs untouched, num_out = 0, overflow = the count found (> out_capacity).
  const auto overflowCase = [&](const char* what, int64_t small, int64_t expect_reported) {
    Dev<char> ws2(K::sparseRulebookWorkspaceSize(n, g, small));
    d_out.fill(0x5A);
    d_nb.fill(0x5A);
    CUDA_OK(K::sparseRulebook(d_idx.p, n, g, small, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws2.p, ws2.n, stream));
    const auto over = d_count.get();
    EXPECT(over[0] == 0 && over[1] == expect_reported,
           "%s, %s (capacity %lld, M %lld): num_out %d overflow %d, "
           "expected 0 and %lld",
           name, what, (long long)small, (long long)m, over[0], over[1], (long long)expect_reported);
    const auto o = d_out.get(), nb = d_nb.get();
    EXPECT(std::all_of(o.begin(), o.end(), [](int32_t v) { return v == 0x5A5A5A5A; }) &&
               std::all_of(nb.begin(), nb.end(), [](int32_t v) { return v == 0x5A5A5A5A; }),
           "%s, %s: outputs written despite overflow", name, what);
    int32_t host[2] = {-1, -1};  // the same through the read-back
    CUDA_OK(
        K::sparseRulebook(d_idx.p, n, g, small, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws2.p, ws2.n, stream, host));
    EXPECT(host[0] == 0 && host[1] == expect_reported, "%s, %s, read back: num_out %d overflow %d, expected 0 and %lld",
           name, what, host[0], host[1], (long long)expect_reported);
    const auto o2 = d_out.get(), nb2 = d_nb.get();
    EXPECT(std::all_of(o2.begin(), o2.end(), [](int32_t v) { return v == 0x5A5A5A5A; }) &&
               std::all_of(nb2.begin(), nb2.end(), [](int32_t v) { return v == 0x5A5A5A5A; }),
           "%s, %s, read back: outputs written despite overflow", name, what);
  };
  if (m >= 2 && !g.pointwise) {
    // max_out just below M: the table still holds every site (2 * (M - 1) >= M slots), so the true count.
    a.max_out = static_cast<int32_t>(m - 1);
    overflowCase("max_out = M - 1", sparseRulebookOutputBound(a, n), m);
    // A tiny bound: the table (16 slots) fills up and insertion stops; what was found is reported.
    const int64_t slots = sparseRulebookWorkspace(n, g, 1).table.capacity;
    overflowCase("capacity 1", 1, std::min(m, slots));
    overflowCase("capacity 0", 0, std::min(m, slots));
  }
  if (g.pointwise && n >= 2) overflowCase("pointwise, capacity N - 1", n - 1, n);
  if (n > 0 && !g.pointwise) {  // a workspace one byte short is refused before anything is enqueued
    d_count.fill(0x5A);
    EXPECT(K::sparseRulebook(d_idx.p, n, g, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n - 1, stream) ==
               cudaErrorInvalidValue,
           "%s: short workspace accepted", name);
    const auto c = d_count.get();
    EXPECT(c[0] == 0x5A5A5A5A && c[1] == 0x5A5A5A5A, "%s: refused call wrote num_out/overflow", name);
  }
  (void)rng;
}

void testSparse(std::mt19937& rng) {
  for (bool tr : {false, true}) {
    const char* kind = tr ? "transposed" : "regular";
    std::string label;
    auto named = [&](const char* what) { return (label = std::string(kind) + " " + what).c_str(); };
    const auto a = sparseAttrs({11, 17, 15}, {3, 2, 3}, {2, 2, 1}, {1, 0, 1}, {1, 1, 2}, tr, 3,
                               tr ? std::vector<int32_t>{1, 0, 0} : std::vector<int32_t>{});
    sparseCase(rng, named("random, mixed geometry"), a, makeSites(rng, {0, 1, 2}, a.spatial_shape, 250));
    sparseCase(rng, named("borders"), a, makeSites(rng, {0, 1, 2}, a.spatial_shape, 200, 0.8));
    sparseCase(rng, named("corners"), a, cornerSites({0, 2}, a.spatial_shape));
    sparseCase(rng, named("empty batch samples"), a, makeSites(rng, {0, 2}, a.spatial_shape, 150));
    sparseCase(rng, named("N=0"), a, {});
    sparseCase(rng, named("one voxel"), a, makeSites(rng, {2}, a.spatial_shape, 1));
    const auto k1 = sparseAttrs({20, 21}, {1, 1}, {2, 2}, {0, 0}, {1, 1}, tr, 2);  // K = 1, strided
    sparseCase(rng, named("K=1 stride 2"), k1, makeSites(rng, {0, 1}, k1.spatial_shape, 120));
    const auto k8 = sparseAttrs({16, 16, 16}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, tr, 2);  // K = 8
    sparseCase(rng, named("K=8"), k8, makeSites(rng, {0, 1}, k8.spatial_shape, 400, 0.1));
    const auto k125 = sparseAttrs({14, 15, 13}, {5, 5, 5}, {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, tr, 2);  // K = 125
    sparseCase(rng, named("K=125"), k125, makeSites(rng, {0, 1}, k125.spatial_shape, 300, 0.2));
    const auto d4 = sparseAttrs({5, 6, 4, 5}, {3, 3, 1, 3}, {2, 1, 1, 2}, {1, 1, 0, 1}, {1, 1, 1, 1}, tr, 2);
    sparseCase(rng, named("4D"), d4, makeSites(rng, {0, 1}, d4.spatial_shape, 200, 0.2));
    // A bound capped by the grid (batch_size * prod(out grid)) far below N * maxOutputsPerInput.
    const auto dense = sparseAttrs({6, 6, 6}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, tr, 1);
    sparseCase(rng, named("grid-capped bound"), dense, makeSites(rng, {0}, dense.spatial_shape, 216));
  }
  const auto pw = sparseAttrs({7, 9}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, false, 2);  // pointwise: input order kept
  sparseCase(rng, "pointwise", pw, makeSites(rng, {0, 1}, pw.spatial_shape, 40));
  sparseCase(rng, "pointwise N=0", pw, {});
  const auto big = sparseAttrs({41, 400, 352}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, false, 2);
  sparseCase(rng, "regular 20k lidar-scale grid", big, makeSites(rng, {0, 1}, big.spatial_shape, 20000, 0.05));
}

// ------------------------------------------------------------------------ radix-sort scratch bound
// radixSortTempBound (pure arithmetic, used on CPU-only build machines) against CUB's own figure for this
// GPU, over sizes around CUB's tile and portion boundaries and every key width the geometries produce.
void testSortBound(std::mt19937& rng) {
#if defined(SPARSETRT_CPU_BACKEND)
  // The CPU backend sorts with a stand-in for CUB (cpu_backend/README.md): CUB's own figure needs a GPU.
  std::printf("  skipped on the CPU backend: CUB's own scratch figure is checked on a GPU\n");
  (void)rng;
  return;
#endif
  std::vector<int64_t> sizes{1,
                             2,
                             100,
                             2303,
                             2304,
                             2305,
                             3839,
                             3840,
                             3841,
                             5759,
                             5760,
                             5761,
                             10000,
                             65535,
                             65536,
                             100003,
                             1 << 20,
                             3000001,
                             1 << 23,
                             25000000,
                             (1 << 28) - 5000,
                             (1 << 28) + 7};
  for (int i = 0; i < 40; ++i) sizes.push_back(std::uniform_int_distribution<int64_t>(1, 40000000)(rng));
  double worst_ratio = 1e30;
  for (int bits : {31, 32, 37, 40, 48, 55, 56, 63, 64}) {
    for (int64_t n : sizes) {
      cub::DoubleBuffer<unsigned long long> buffers(nullptr, nullptr);
      std::size_t need = 0;
      CUDA_OK(cub::DeviceRadixSort::SortKeys(nullptr, need, buffers, static_cast<int>(n), 0, bits));
      const std::size_t bound = radixSortTempBound(n, bits);
      EXPECT(need <= bound, "sort bound %zu below CUB's %zu for %lld keys, %d bits", bound, need, (long long)n, bits);
      if (need > 1) worst_ratio = std::min(worst_ratio, static_cast<double>(bound) / static_cast<double>(need));
    }
  }
  // Through the layouts the plugins use, for real geometries and bounds.
  const SparseRulebookAttrs geos[] = {
      sparseAttrs({41, 1600, 1408}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, false, 4),
      sparseAttrs({41, 1600, 1408}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, true, 4),
      sparseAttrs({21, 800, 704}, {3, 1, 1}, {2, 1, 1}, {0, 0, 0}, {1, 1, 1}, false, 8),
      sparseAttrs({1024, 1024}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, 16)};
  for (const auto& a : geos) {
    const RulebookGeometry g = makeGeometry(a);
    for (int64_t n : {1, 1000, 20000, 150000, 600000}) {
      const SparseRulebookWorkspace w = sparseRulebookWorkspace(n, g, sparseRulebookOutputBound(a, n));
      cub::DoubleBuffer<unsigned long long> buffers(nullptr, nullptr);
      std::size_t need = 0;
      CUDA_OK(cub::DeviceRadixSort::SortKeys(nullptr, need, buffers, static_cast<int>(w.keys), 0, w.sort_bits));
      EXPECT(need <= w.sort_temp_bytes, "layout sort scratch %zu below CUB's %zu (%lld keys, %d bits)",
             w.sort_temp_bytes, need, (long long)w.keys, w.sort_bits);
    }
  }
  std::printf("  radix-sort scratch: bound / CUB's need >= %.2f on this GPU\n", worst_ratio);
}

// ------------------------------------------------------------------------------------------- conv
float toF(float v) { return v; }
float toF(__half v) { return __half2float(v); }
template <typename T>
T fromF(float v);
template <>
float fromF<float>(float v) {
  return v;
}
template <>
__half fromF<__half>(float v) {
  return __float2half_rn(v);
}

double activateRef(double s, int act, double alpha) {
  if (act == 1) return std::max(s, 0.0);
  if (act == 2) return s > 0 ? s : s * alpha;
  if (act == 3) return 1.0 / (1.0 + std::exp(-s));
  return s;
}

enum class MapMode { kRandom, kBlocky, kEmpty };

// A [K, M] map: kRandom: each entry an input with probability `density`; kBlocky: every 64-row tile uses a
// few offsets only (the rest of the (offset, tile) pairs are empty, as near a sparse map's sites);
// kEmpty: all -1.
std::vector<int32_t> makeMap(std::mt19937& rng, int64_t n, int64_t m, int64_t kvol, MapMode mode, double density) {
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

struct ConvCase {
  const char* name;
  int64_t n, m, c_in, c_out, kvol;
  MapMode mode;
  double density;
};

// ConvPlan's CPU model (written from its contract in kernels.h, independently of the kernel): per window of
// kConvPlanWindow columns, rank the offsets by their entry count in the window (fewest first, ties by k), key
// each column by the Gray-code rank of its mask restricted to the min(K, 32) rarest offsets (the rarest the
// most significant bit), and sort the window's columns stably by key.
std::vector<int32_t> referencePlan(const std::vector<int32_t>& nb, int64_t kvol, int64_t m) {
  const int64_t words = (kvol + 31) / 32, rows = convPlanRows(kvol);
  std::vector<int32_t> plan(rows * m);
  for (int64_t w0 = 0; w0 < m; w0 += kConvPlanWindow) {
    const int64_t w1 = std::min(m, w0 + kConvPlanWindow);
    std::vector<std::pair<int64_t, int64_t>> by_count;  // (entries in the window, k)
    for (int64_t k = 0; k < kvol; ++k) {
      int64_t c = 0;
      for (int64_t j = w0; j < w1; ++j) c += nb[k * m + j] >= 0;
      by_count.push_back({c, k});
    }
    std::sort(by_count.begin(), by_count.end());
    const int64_t key_bits = std::min<int64_t>(kvol, 32);
    std::vector<std::pair<uint32_t, int64_t>> keyed;  // (Gray rank, column)
    for (int64_t j = w0; j < w1; ++j) {
      uint32_t code = 0;
      for (int64_t r = 0; r < key_bits; ++r)
        if (nb[by_count[r].second * m + j] >= 0) code |= 1u << (key_bits - 1 - r);
      uint64_t rank = 0;  // position of `code` in the reflected Gray sequence: prefix XOR from the top bit
      for (int b = 31; b >= 0; --b) rank |= (((rank >> (b + 1)) ^ (code >> b)) & 1u) << b;
      keyed.push_back({static_cast<uint32_t>(rank), j});
    }
    std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (int64_t i = w0; i < w1; ++i) {
      const int64_t col = keyed[i - w0].second;
      for (int64_t k = 0; k < kvol; ++k) plan[k * m + i] = nb[k * m + col];
      plan[kvol * m + i] = static_cast<int32_t>(col);
      for (int64_t w = 0; w < words; ++w) {
        uint32_t bits = 0;
        for (int64_t k = 32 * w; k < std::min(kvol, 32 * w + 32); ++k)
          if (nb[k * m + col] >= 0) bits |= 1u << (k - 32 * w);
        plan[(kvol + 1 + w) * m + i] = static_cast<int32_t>(bits);
      }
    }
  }
  return plan;
}

// The plan of `nb` made on the device, checked against the model; returns it on the device.
bool makePlan(const char* name, const std::vector<int32_t>& nb, int64_t kvol, int64_t m, Dev<int32_t>* d_plan) {
  Dev<int32_t> d_nb(nb);
  Dev<char> ws(K::convPlanWorkspaceSize(m, kvol));
  CUDA_OK(K::convPlan(d_nb.p, kvol, m, d_plan->p, ws.p, ws.n, stream));
  const auto got = d_plan->get();
  const bool same = got == referencePlan(nb, kvol, m);
  EXPECT(same, "%s: ConvPlan (K=%lld, M=%lld) differs from its CPU model", name, (long long)kvol, (long long)m);
  return same;
}

struct ConvOptions {
  bool misalign = false;
  bool bias = true;
  bool residual = false;
  bool plan = false;      // the map as its ConvPlan (checked against the model too)
  bool workspace = true;  // the split workspace: offsets split over blocks when the grid is small
};

// fp32: |got - ref| <= 1e-5 * (1 + S), S = |bias| + |residual| + sum |w * x| over the terms (the scale of a
// floating-point sum's rounding error; ref is the double-precision sum of the same, already-rounded inputs).
// fp16: output rounding (2^-11 relative, doubled) plus the same accumulation allowance: tensor cores
// accumulate in fp32. Every activation is 1-Lipschitz, so pre-activation allowances carry over.
template <typename T>
void convCase(std::mt19937& rng, const ConvCase& cc, DataType dtype, ConvOptions o) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(cc.n * cc.c_in), w(cc.c_out * cc.kvol * cc.c_in), b(cc.c_out), res(cc.m * cc.c_out);
  for (float& v : x) v = toF(fromF<T>(u(rng)));  // rounded to T: the reference sees what the GPU sees
  for (float& v : w) v = toF(fromF<T>(u(rng)));
  for (float& v : b) v = toF(fromF<T>(u(rng)));
  for (float& v : res) v = toF(fromF<T>(u(rng)));
  const auto nb = makeMap(rng, cc.n, cc.m, cc.kvol, cc.mode, cc.density);
  std::vector<double> pre(cc.m * cc.c_out), scale(cc.m * cc.c_out);
  for (int64_t j = 0; j < cc.m; ++j)
    for (int64_t co = 0; co < cc.c_out; ++co) {
      double s = (o.bias ? b[co] : 0.0) + (o.residual ? res[j * cc.c_out + co] : 0.0);
      double mag = std::abs(s);
      for (int64_t k = 0; k < cc.kvol; ++k) {
        const int32_t r = nb[k * cc.m + j];
        if (r < 0) continue;
        const float* wr = &w[(co * cc.kvol + k) * cc.c_in];
        const float* xr = &x[r * cc.c_in];
        for (int64_t ci = 0; ci < cc.c_in; ++ci) {
          const double t = double(wr[ci]) * xr[ci];
          s += t;
          mag += std::abs(t);
        }
      }
      pre[j * cc.c_out + co] = s;
      scale[j * cc.c_out + co] = mag;
    }
  std::vector<T> xt(x.size()), wt(w.size()), bt(b.size()), rt(res.size());
  for (std::size_t i = 0; i < x.size(); ++i) xt[i] = fromF<T>(x[i]);
  for (std::size_t i = 0; i < w.size(); ++i) wt[i] = fromF<T>(w[i]);
  for (std::size_t i = 0; i < b.size(); ++i) bt[i] = fromF<T>(b[i]);
  for (std::size_t i = 0; i < res.size(); ++i) rt[i] = fromF<T>(res[i]);
  const std::size_t off = o.misalign ? 1 : 0;
  Dev<T> d_x(xt, off), d_w(wt, off), d_b(bt), d_res(rt), d_out(cc.m * cc.c_out, off), d_out2(cc.m * cc.c_out, off);
  const bool plan = o.plan && cc.kvol <= kConvPlanMaxOffsets && cc.m > 0;
  Dev<int32_t> d_nb(nb), d_plan(plan ? convPlanRows(cc.kvol) * cc.m : 0);
  if (plan && !makePlan(cc.name, nb, cc.kvol, cc.m, &d_plan)) return;
  const std::size_t ws_bytes = o.workspace ? K::sparseConvWorkspaceSize(cc.m, cc.c_out, cc.kvol) : 0;
  Dev<char> d_ws(ws_bytes);
  const float alpha = 0.1f;
  for (int act = 0; act < 4; ++act) {
    if (!o.bias && act != 0) continue;
    const auto run = [&](T* out) {
      return K::sparseConv(dtype, d_x.p, cc.n, cc.c_in, plan ? d_plan.p : d_nb.p,
                           plan ? K::MapLayout::kPlan : K::MapLayout::kNeighbors, cc.kvol, cc.m, d_w.p,
                           o.bias ? d_b.p : nullptr, o.residual ? d_res.p : nullptr, cc.c_out,
                           static_cast<Activation>(act), alpha, out, o.workspace ? d_ws.p : nullptr, ws_bytes, stream);
    };
    CUDA_OK(run(d_out.p));
    CUDA_OK(run(d_out2.p));
    const auto got = d_out.get(), again = d_out2.get();
    EXPECT(sameBits(got, again), "%s: conv not deterministic (dtype %d, activation %d)", cc.name, int(dtype), act);
    double worst = 0.0;
    int64_t worst_at = -1;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double ref = activateRef(pre[i], act, alpha);
      double tol = 1e-5 * (1.0 + scale[i]);
      if (dtype == DataType::kFloat16) tol += std::ldexp(std::abs(ref), -10) + 1e-6;
      const double err = std::abs(double(toF(got[i])) - ref);
      if (!(err <= tol) && (worst_at < 0 || err / tol > worst)) {
        worst = err / tol;
        worst_at = static_cast<int64_t>(i);
      }
    }
    EXPECT(worst_at < 0,
           "%s (dtype %d, activation %d%s%s%s%s%s): at (m %lld, c %lld) got %g, expected %g (error %.2fx the "
           "tolerance)",
           cc.name, int(dtype), act, o.misalign ? ", unaligned" : "", o.bias ? "" : ", no bias",
           o.residual ? ", residual" : "", plan ? ", plan" : "", o.workspace ? "" : ", no workspace",
           worst_at < 0 ? 0LL : (long long)(worst_at / cc.c_out), worst_at < 0 ? 0LL : (long long)(worst_at % cc.c_out),
           worst_at < 0 ? 0.0 : double(toF(got[worst_at])), worst_at < 0 ? 0.0 : activateRef(pre[worst_at], act, alpha),
           worst);
  }
}

void testConv(std::mt19937& rng) {
  const ConvCase cases[] = {
      {"one voxel", 1, 1, 1, 1, 1, MapMode::kRandom, 1.0},
      {"odd channels 3->13, K=8", 50, 40, 3, 13, 8, MapMode::kRandom, 0.4},
      {"odd channels 19->70, K=27", 200, 150, 19, 70, 27, MapMode::kRandom, 0.25},
      {"odd channels 13->67, K=27", 300, 257, 13, 67, 27, MapMode::kRandom, 0.3},
      {"odd channels 67->3, K=125", 500, 300, 67, 3, 125, MapMode::kRandom, 0.1},
      {"channels 1->1, K=27", 100, 90, 1, 1, 27, MapMode::kRandom, 0.5},
      {"5->16, K=27 (thin input: offsets packed)", 200, 300, 5, 16, 27, MapMode::kRandom, 0.2},
      {"16->16, K=27 (vector loads)", 400, 200, 16, 16, 27, MapMode::kRandom, 0.3},
      {"24->16, K=27 (8-channel groups across offsets)", 200, 150, 24, 16, 27, MapMode::kRandom, 0.3},
      {"32->33, K=1", 100, 70, 32, 33, 1, MapMode::kRandom, 0.9},
      {"64->128, K=27 (vector loads)", 400, 200, 64, 128, 27, MapMode::kRandom, 0.2},
      {"128->200, K=8 (two channel tiles)", 300, 130, 128, 200, 8, MapMode::kRandom, 0.5},
      {"blocky map 32->64, K=27", 2000, 1000, 32, 64, 27, MapMode::kBlocky, 0.7},
      {"K=300 (past one offset window)", 100, 130, 8, 16, 300, MapMode::kRandom, 0.02},
      {"blocky K=300", 100, 200, 24, 40, 300, MapMode::kBlocky, 0.5},
      {"N=0 (no inputs: act(bias))", 0, 50, 16, 32, 27, MapMode::kEmpty, 0.0},
      {"empty map 13->67", 40, 70, 13, 67, 27, MapMode::kEmpty, 0.0},
      {"C_in=0 (act(bias))", 10, 20, 0, 5, 8, MapMode::kRandom, 0.5},
      {"M=0", 50, 0, 16, 16, 27, MapMode::kRandom, 0.5},
      {"C_out=0", 50, 30, 16, 0, 27, MapMode::kRandom, 0.5},
      {"many tiles 32->64, K=27", 3000, 5000, 32, 64, 27, MapMode::kRandom, 0.15},
  };
  for (const ConvCase& cc : cases) {
    for (bool plan : {false, true}) {
      ConvOptions o;
      o.plan = plan;
      o.residual = plan;  // the residual rides along with the plan: both change only the epilogue's rows
      convCase<float>(rng, cc, DataType::kFloat32, o);
      convCase<__half>(rng, cc, DataType::kFloat16, o);
    }
  }
  // Unaligned pointers (16-byte loads impossible even with C_in % 8 == 0), a null bias, and a small grid
  // without the split workspace (one block per tile) next to the same with it.
  const ConvCase unaligned{"unaligned 16->32, K=27", 300, 200, 16, 32, 27, MapMode::kRandom, 0.3};
  ConvOptions o;
  o.misalign = true;
  convCase<__half>(rng, unaligned, DataType::kFloat16, o);
  convCase<float>(rng, unaligned, DataType::kFloat32, o);
  const ConvCase nobias{"no bias 13->67, K=27", 300, 257, 13, 67, 27, MapMode::kRandom, 0.3};
  o = ConvOptions{};
  o.bias = false;
  convCase<__half>(rng, nobias, DataType::kFloat16, o);
  convCase<float>(rng, nobias, DataType::kFloat32, o);
  o.residual = true;
  o.plan = true;
  convCase<__half>(rng, nobias, DataType::kFloat16, o);
  const ConvCase small{"one tile 64->64, K=27", 200, 60, 64, 64, 27, MapMode::kRandom, 0.3};
  o = ConvOptions{};
  o.workspace = false;
  convCase<__half>(rng, small, DataType::kFloat16, o);
}

// One small case per kernel variant (each block width, vector and 2-byte loads, more offsets than one
// window, a plan, a residual, split offsets, fp32): enough for compute-sanitizer's slow racecheck to see every
// shared-memory access pattern.
void testConvQuick(std::mt19937& rng) {
  const ConvCase cases[] = {
      {"quick 3->13, K=8", 60, 70, 3, 13, 8, MapMode::kRandom, 0.4},
      {"quick 16->32, K=27", 120, 130, 16, 32, 27, MapMode::kRandom, 0.3},
      {"quick 64->64, K=27", 120, 70, 64, 64, 27, MapMode::kBlocky, 0.6},
      {"quick 13->67, K=27", 120, 130, 13, 67, 27, MapMode::kRandom, 0.3},
      {"quick K=300", 50, 70, 8, 16, 300, MapMode::kRandom, 0.02},
  };
  for (const ConvCase& cc : cases) {
    convCase<float>(rng, cc, DataType::kFloat32, ConvOptions{});
    convCase<__half>(rng, cc, DataType::kFloat16, ConvOptions{});
  }
  ConvOptions o;
  o.misalign = true;
  convCase<__half>(rng, cases[1], DataType::kFloat16, o);
  o = ConvOptions{};
  o.plan = true;
  o.residual = true;
  convCase<__half>(rng, cases[3], DataType::kFloat16, o);
  convCase<float>(rng, cases[1], DataType::kFloat32, o);
}

// ConvPlan against its CPU model: several windows, every key width (K = 1 .. above 32 offsets), empty
// columns, and a kernel volume past the limit refused before anything is enqueued. The conv group checks that
// convs over a plan compute the map's result.
void testPlan(std::mt19937& rng) {
  struct PlanCase {
    const char* name;
    int64_t n, m, kvol;
    MapMode mode;
    double density;
  } cases[] = {
      {"plan K=27, 3 windows", 500, 2 * kConvPlanWindow + 777, 27, MapMode::kRandom, 0.25},
      {"plan K=27 blocky", 500, 3000, 27, MapMode::kBlocky, 0.6},
      {"plan K=1", 50, 100, 1, MapMode::kRandom, 0.5},
      {"plan K=8, one column", 5, 1, 8, MapMode::kRandom, 0.5},
      {"plan K=125 (4 mask words)", 300, 700, 125, MapMode::kRandom, 0.1},
      {"plan K=300", 100, 300, 300, MapMode::kRandom, 0.05},
      {"plan empty map", 10, 200, 27, MapMode::kEmpty, 0.0},
  };
  for (const PlanCase& pc : cases) {
    const auto nb = makeMap(rng, pc.n, pc.m, pc.kvol, pc.mode, pc.density);
    Dev<int32_t> d_plan(convPlanRows(pc.kvol) * pc.m), d_plan2(convPlanRows(pc.kvol) * pc.m);
    if (!makePlan(pc.name, nb, pc.kvol, pc.m, &d_plan)) continue;
    makePlan(pc.name, nb, pc.kvol, pc.m, &d_plan2);
    EXPECT(sameBits(d_plan.get(), d_plan2.get()), "%s: ConvPlan differs between runs", pc.name);
  }
  // M = 0 enqueues nothing; K above kConvPlanMaxOffsets and a short workspace are refused, nothing written.
  CUDA_OK(K::convPlan(nullptr, 27, 0, nullptr, nullptr, 0, stream));
  Dev<int32_t> d_nb(std::vector<int32_t>(27 * 10, 1)), d_out(convPlanRows(27) * 10);
  Dev<char> ws(K::convPlanWorkspaceSize(10, 27));
  d_out.fill(0x5A);
  EXPECT(K::convPlan(d_nb.p, kConvPlanMaxOffsets + 1, 10, d_out.p, ws.p, ws.n, stream) == cudaErrorInvalidValue,
         "ConvPlan accepted K = %lld", (long long)kConvPlanMaxOffsets + 1);
  EXPECT(K::convPlan(d_nb.p, 27, 10, d_out.p, ws.p, ws.n - 1, stream) == cudaErrorInvalidValue,
         "ConvPlan accepted a short workspace");
  const auto untouched = d_out.get();
  EXPECT(std::all_of(untouched.begin(), untouched.end(), [](int32_t v) { return v == 0x5A5A5A5A; }),
         "refused ConvPlan calls wrote their output");
}

// ----------------------------------------------------------------------------------- pool, densify
template <typename T>
void poolCase(std::mt19937& rng, const char* name, DataType dtype, int64_t n, int64_t m, int64_t c, int64_t kvol,
              bool with_nan) {
  std::vector<float> x(n * c);
  for (float& v : x) v = toF(fromF<T>(std::uniform_real_distribution<float>(-5.0f, 5.0f)(rng)));
  if (with_nan && !x.empty()) x[x.size() / 2] = NAN;
  std::vector<int32_t> nb(kvol * m, -1);
  for (int64_t j = 0; j < m; ++j)
    for (int64_t k = 0; k < kvol; ++k)
      if (n > 0 && j % 7 != 3 && (k == j % kvol || std::uniform_int_distribution<int>(0, 2)(rng) == 0))
        nb[k * m + j] = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(n - 1))(rng);
  // Max over active inputs only (0 for a site with none, every 7th here), NaN propagating.
  std::vector<float> expect(m * c);
  for (int64_t j = 0; j < m; ++j)
    for (int64_t ch = 0; ch < c; ++ch) {
      bool any = false, nan = false;
      float best = 0.0f;
      for (int64_t k = 0; k < kvol; ++k) {
        const int32_t r = nb[k * m + j];
        if (r < 0) continue;
        const float v = x[r * c + ch];
        nan = nan || std::isnan(v);
        best = any ? std::max(best, v) : v;
        any = true;
      }
      expect[j * c + ch] = nan ? NAN : (any ? best : 0.0f);
    }
  std::vector<T> xt(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) xt[i] = fromF<T>(x[i]);
  Dev<T> d_x(xt), d_out(m * c);
  Dev<int32_t> d_nb(nb);
  CUDA_OK(
      K::sparseMaxPool(dtype, d_x.p, n, c, d_nb.p, kvol, m, d_out.p, nullptr, K::sparseMaxPoolWorkspaceSize(), stream));
  const auto got = d_out.get();
  bool same = true;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const float g = toF(got[i]);
    same = same && (std::isnan(expect[i]) ? std::isnan(g) : g == expect[i]);
  }
  EXPECT(same, "%s (dtype %d): max pool differs", name, int(dtype));
}

template <typename T>
void densifyCase(std::mt19937& rng, const char* name, DataType dtype, const std::vector<int32_t>& shape, int batch,
                 const std::vector<int>& batches, int64_t n, int64_t c, double border) {
  const int D = static_cast<int>(shape.size());
  const int64_t sites = product(shape);
  auto idx = makeSites(rng, batches, shape, n, border);
  n = static_cast<int64_t>(idx.size()) / (1 + D);
  std::vector<float> feats(n * c), dense(batch * c * sites, 0.0f);
  for (float& v : feats) v = toF(fromF<T>(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng)));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* r = &idx[i * (1 + D)];
    int64_t linear = 0;
    for (int d = 0; d < D; ++d) linear = linear * shape[d] + r[1 + d];
    for (int64_t ch = 0; ch < c; ++ch) dense[(r[0] * c + ch) * sites + linear] = feats[i * c + ch];
  }
  // Rows outside the grid or the batch are skipped, not written out of bounds.
  if (n > 0) {
    Site outside(idx.begin(), idx.begin() + 1 + D);
    outside[1] = shape[0];
    Site bad_batch(idx.begin(), idx.begin() + 1 + D);
    bad_batch[0] = batch;
    for (const Site& s : {outside, bad_batch}) {
      idx.insert(idx.end(), s.begin(), s.end());
      for (int64_t ch = 0; ch < c; ++ch) feats.push_back(1.0f);
    }
    n += 2;
  }
  std::vector<T> ft(feats.size());
  for (std::size_t i = 0; i < feats.size(); ++i) ft[i] = fromF<T>(feats[i]);
  Dev<T> d_f(ft), d_dense(dense.size());
  Dev<int32_t> d_idx(idx);
  d_dense.fill(0x7F);  // the memset must clear everything
  CUDA_OK(K::densify(dtype, d_f.p, d_idx.p, n, c, D, shape.data(), batch, d_dense.p, nullptr, K::densifyWorkspaceSize(),
                     stream));
  const auto got = d_dense.get();
  bool same = true;
  for (std::size_t i = 0; i < got.size(); ++i) same = same && toF(got[i]) == dense[i];
  EXPECT(same, "%s (dtype %d): densify differs", name, int(dtype));
}

void testPool(std::mt19937& rng) {
  poolCase<float>(rng, "pool 120x5, K=8", DataType::kFloat32, 120, 90, 5, 8, false);
  poolCase<float>(rng, "pool NaN", DataType::kFloat32, 120, 90, 5, 8, true);
  poolCase<float>(rng, "pool one voxel", DataType::kFloat32, 1, 1, 1, 1, false);
  poolCase<float>(rng, "pool N=0", DataType::kFloat32, 0, 10, 3, 27, false);
  poolCase<float>(rng, "pool M=0", DataType::kFloat32, 10, 0, 3, 27, false);
  poolCase<float>(rng, "pool 67 channels, K=27", DataType::kFloat32, 300, 200, 67, 27, false);
  poolCase<__half>(rng, "pool fp16 13 channels, K=125", DataType::kFloat16, 50, 40, 13, 125, false);
  poolCase<__half>(rng, "pool fp16 NaN", DataType::kFloat16, 60, 50, 3, 8, true);
}

void testDensify(std::mt19937& rng) {
  densifyCase<float>(rng, "densify", DataType::kFloat32, {4, 6, 5}, 2, {0, 1}, 50, 5, 0.0);
  densifyCase<float>(rng, "densify borders, empty sample", DataType::kFloat32, {4, 6, 5}, 3, {0, 2}, 60, 13, 0.8);
  densifyCase<float>(rng, "densify N=0", DataType::kFloat32, {4, 6, 5}, 2, {0}, 0, 3, 0.0);
  densifyCase<float>(rng, "densify one voxel, 1 channel", DataType::kFloat32, {3, 3}, 1, {0}, 1, 1, 0.0);
  densifyCase<__half>(rng, "densify fp16 2D", DataType::kFloat16, {30, 20}, 2, {1}, 100, 67, 0.3);
  densifyCase<__half>(rng, "densify fp16 full grid", DataType::kFloat16, {2, 3, 4}, 1, {0}, 24, 3, 0.0);
}

// ---------------------------------------------------------------------------------- merging sites
// UniqueSites against std::map (lexicographic order of std::vector<int32_t>), then SegmentReduce over its inverse
// against plain loops in the same order (so fp32 sums must agree bitwise), with segments outside [0, M) mixed in.
template <typename T>
T fromHost(float v);
template <>
float fromHost<float>(float v) {
  return v;
}
template <>
__half fromHost<__half>(float v) {
  return __float2half(v);
}
float toHost(float v) { return v; }
float toHost(__half v) { return __half2float(v); }

void uniqueCase(std::mt19937& rng, const char* name, int64_t n, int64_t k, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> value(lo, hi);
  std::vector<int32_t> rows(n * k);
  for (auto& v : rows) v = value(rng);
  std::map<std::vector<int32_t>, int32_t> distinct;
  for (int64_t i = 0; i < n; ++i) ++distinct[std::vector<int32_t>(rows.begin() + i * k, rows.begin() + (i + 1) * k)];
  const int64_t m = static_cast<int64_t>(distinct.size());
  Dev<int32_t> d_rows(rows, 1), d_unique(n * k), d_inverse(n), d_counts(n), d_m(1);
  Dev<char> ws(K::uniqueSitesWorkspaceSize(n));
  for (Dev<int32_t>* d : {&d_unique, &d_inverse, &d_counts, &d_m}) d->fill(0xEE);
  EXPECT(K::uniqueSites(d_rows.p, n, k, d_unique.p, d_inverse.p, d_counts.p, d_m.p, ws.p, ws.n, stream) == cudaSuccess,
         "%s: uniqueSites failed", name);
  EXPECT(d_m.get()[0] == m, "%s: M = %d, expected %lld", name, d_m.get()[0], (long long)m);
  std::vector<int32_t> want_unique, want_counts;
  std::map<std::vector<int32_t>, int32_t> rank;
  for (const auto& [row, count] : distinct) {
    rank[row] = static_cast<int32_t>(want_counts.size());
    want_unique.insert(want_unique.end(), row.begin(), row.end());
    want_counts.push_back(count);
  }
  std::vector<int32_t> want_inverse(n);
  for (int64_t i = 0; i < n; ++i)
    want_inverse[i] = rank[std::vector<int32_t>(rows.begin() + i * k, rows.begin() + (i + 1) * k)];
  EXPECT(d_unique.get(m * k) == want_unique, "%s: unique rows differ", name);
  EXPECT(d_counts.get(m) == want_counts, "%s: counts differ", name);
  EXPECT(d_inverse.get() == want_inverse, "%s: inverse differs", name);
  // Run to run: bitwise the same.
  const auto first = d_inverse.get();
  EXPECT(K::uniqueSites(d_rows.p, n, k, d_unique.p, d_inverse.p, d_counts.p, d_m.p, ws.p, ws.n, stream) == cudaSuccess,
         "%s: second run failed", name);
  EXPECT(d_inverse.get() == first, "%s: not deterministic", name);
  if (n > 0) {
    Dev<char> small(ws.n - 1);
    EXPECT(K::uniqueSites(d_rows.p, n, k, d_unique.p, d_inverse.p, d_counts.p, d_m.p, small.p, small.n, stream) ==
               cudaErrorInvalidValue,
           "%s: a too-small workspace must be refused", name);
  }
}

template <typename T>
void segmentCase(std::mt19937& rng, const char* name, DataType dtype, int64_t n, int64_t m, int64_t c,
                 int32_t reduction, bool nan) {
  std::uniform_int_distribution<int32_t> seg(-2, static_cast<int32_t>(m) + 1);  // some outside [0, M)
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<int32_t> segments(n);
  for (auto& s : segments) s = m > 0 && n % 7 == 3 ? 0 : seg(rng);  // n % 7 == 3: everything in one segment
  std::vector<T> x(n * c), init(m * c);
  std::vector<float> xf(n * c), initf(m * c);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = fromHost<T>(xf[i] = toHost(fromHost<T>(u(rng))));
  for (std::size_t i = 0; i < init.size(); ++i) init[i] = fromHost<T>(initf[i] = toHost(fromHost<T>(u(rng))));
  if (nan && n > 0) x[0] = fromHost<T>(xf[0] = std::nanf(""));
  std::vector<float> want(initf);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t s = segments[i];
    if (s < 0 || s >= m) continue;
    for (int64_t ch = 0; ch < c; ++ch) {
      float& acc = want[s * c + ch];
      const float v = xf[i * c + ch];
      if (reduction == 0)
        acc += v;
      else if (std::isnan(v) || (!std::isnan(acc) && v > acc))
        acc = v;
    }
  }
  Dev<T> d_x(x, 1), d_init(init), d_out(m * c);
  Dev<int32_t> d_seg(segments);
  Dev<char> ws(K::segmentReduceWorkspaceSize(n));
  EXPECT(K::segmentReduce(dtype, d_x.p, d_seg.p, n, c, d_init.p, m, static_cast<Reduction>(reduction), d_out.p, ws.p,
                          ws.n, stream) == cudaSuccess,
         "%s: segmentReduce failed", name);
  const auto got = d_out.get();
  int bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const float w = toHost(fromHost<T>(want[i])), g = toHost(got[i]);
    const bool same = (std::isnan(w) && std::isnan(g)) || w == g;  // rounded once from the same fp32 sum
    bad += !same;
  }
  EXPECT(bad == 0, "%s: %d of %zu values differ", name, bad, want.size());
  const auto again = d_out.get();
  EXPECT(K::segmentReduce(dtype, d_x.p, d_seg.p, n, c, d_init.p, m, static_cast<Reduction>(reduction), d_out.p, ws.p,
                          ws.n, stream) == cudaSuccess &&
             sameBits(d_out.get(), again),
         "%s: not deterministic", name);
}

void maskCase(std::mt19937& rng, const char* name, int64_t n, double keep) {
  std::bernoulli_distribution kept(keep);
  std::uniform_int_distribution<int32_t> value(INT32_MIN, INT32_MAX);
  std::vector<int32_t> mask(n), want;
  for (int64_t i = 0; i < n; ++i) {
    mask[i] = kept(rng) ? (value(rng) | 1) : 0;  // any nonzero value keeps
    if (mask[i] != 0) want.push_back(static_cast<int32_t>(i));
  }
  Dev<int32_t> d_mask(mask, 1), d_rows(n), d_m(1);
  Dev<char> ws(K::maskRowsWorkspaceSize(n));
  d_m.fill(0xEE);
  EXPECT(K::maskRows(d_mask.p, n, d_rows.p, d_m.p, ws.p, ws.n, stream) == cudaSuccess, "%s: maskRows failed", name);
  EXPECT(d_m.get()[0] == static_cast<int32_t>(want.size()), "%s: M = %d, expected %zu", name, d_m.get()[0],
         want.size());
  EXPECT(d_rows.get(want.size()) == want, "%s: rows differ", name);
}

// The three captured into a CUDA graph (global mode) and replayed twice: the same bits as direct calls (nothing
// synchronizes, allocates or reads back inside; M stays on the device).
void mergeGraphCase(std::mt19937& rng) {
  const int64_t n = 2000, k = 3, c = 16;
  std::uniform_int_distribution<int32_t> value(0, 9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<int32_t> rows(n * k), mask(n);
  std::vector<float> x(n * c), zeros(n * c, 0.0f);
  for (auto& v : rows) v = value(rng);
  for (auto& v : mask) v = value(rng) < 4;
  for (auto& v : x) v = u(rng);
  Dev<int32_t> d_rows(rows), d_unique(n * k), d_inverse(n), d_counts(n), d_m(1), d_mask(mask), d_kept(n), d_mk(1);
  Dev<float> d_x(x), d_init(zeros), d_out(n * c);
  Dev<char> ws_u(K::uniqueSitesWorkspaceSize(n)), ws_s(K::segmentReduceWorkspaceSize(n)),
      ws_m(K::maskRowsWorkspaceSize(n));
  const auto enqueue = [&]() {
    CUDA_OK(K::uniqueSites(d_rows.p, n, k, d_unique.p, d_inverse.p, d_counts.p, d_m.p, ws_u.p, ws_u.n, stream));
    // M is on the device only: reduce into all n rows of init (a bound, as TensorRT allocates), segments < M.
    CUDA_OK(K::segmentReduce(DataType::kFloat32, d_x.p, d_inverse.p, n, c, d_init.p, n, Reduction::kSum, d_out.p,
                             ws_s.p, ws_s.n, stream));
    CUDA_OK(K::maskRows(d_mask.p, n, d_kept.p, d_mk.p, ws_m.p, ws_m.n, stream));
  };
  enqueue();
  const int32_t m = d_m.get()[0], mk = d_mk.get()[0];
  const auto ref_unique = d_unique.get(m * k), ref_inverse = d_inverse.get(), ref_kept = d_kept.get(mk);
  const auto ref_out = d_out.get();
  for (Dev<int32_t>* d : {&d_unique, &d_inverse, &d_counts, &d_m, &d_kept, &d_mk}) d->fill(0);
  d_out.fill(0);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  enqueue();
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    CUDA_OK(cudaGraphLaunch(exec, stream));
    syncStream();
    EXPECT(d_m.get()[0] == m && d_mk.get()[0] == mk && d_unique.get(m * k) == ref_unique &&
               d_inverse.get() == ref_inverse && d_kept.get(mk) == ref_kept && sameBits(d_out.get(), ref_out),
           "merge graph replay %d differs from direct calls", replay);
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
}

void testMerge(std::mt19937& rng) {
  mergeGraphCase(rng);
  maskCase(rng, "mask N=0", 0, 0.5);
  maskCase(rng, "mask none kept", 300, 0.0);
  maskCase(rng, "mask all kept", 300, 1.0);
  maskCase(rng, "mask half", 5000, 0.5);
  Dev<char> small(K::maskRowsWorkspaceSize(10));
  EXPECT(K::maskRows(nullptr, 5000, nullptr, nullptr, small.p, small.n, stream) == cudaErrorInvalidValue,
         "mask: a workspace sized for fewer rows must be refused");
  uniqueCase(rng, "unique N=0", 0, 4, 0, 3);
  uniqueCase(rng, "unique one row", 1, 3, -5, 5);
  uniqueCase(rng, "unique all equal", 500, 3, 7, 7);
  uniqueCase(rng, "unique sites with duplicates", 3000, 4, 0, 6);
  uniqueCase(rng, "unique negative and extreme values", 2000, 3, INT32_MIN, INT32_MAX);
  uniqueCase(rng, "unique 1 column", 1000, 1, -50, 50);
  uniqueCase(rng, "unique 7 columns", 700, 7, 0, 1);
  segmentCase<float>(rng, "segment sum", DataType::kFloat32, 3000, 800, 13, 0, false);
  segmentCase<float>(rng, "segment sum N=0", DataType::kFloat32, 0, 40, 5, 0, false);
  segmentCase<float>(rng, "segment sum M=0", DataType::kFloat32, 50, 0, 5, 0, false);
  segmentCase<float>(rng, "segment sum one long group", DataType::kFloat32, 1000, 3, 67, 0, false);
  segmentCase<float>(rng, "segment max NaN", DataType::kFloat32, 900, 200, 3, 1, true);
  segmentCase<__half>(rng, "segment sum fp16", DataType::kFloat16, 2000, 700, 33, 0, false);
  segmentCase<__half>(rng, "segment max fp16", DataType::kFloat16, 2000, 300, 8, 1, false);
  Dev<char> ws(K::segmentReduceWorkspaceSize(10));
  EXPECT(K::segmentReduce(DataType::kFloat32, nullptr, nullptr, 5000, 3, nullptr, 4, Reduction::kSum, nullptr, ws.p,
                          ws.n, stream) == cudaErrorInvalidValue,
         "segment: a workspace sized for fewer rows must be refused");
  EXPECT(K::segmentReduce(DataType::kFloat32, nullptr, nullptr, 10, 3, nullptr, 4, static_cast<Reduction>(2), nullptr,
                          ws.p, ws.n, stream) == cudaErrorInvalidValue,
         "segment: an unknown reduction must be refused");
}

// ------------------------------------------------------------------------------------ CUDA graphs
// Every entry point captured into a graph (global capture mode: the strictest) and replayed twice must give
// the same bits as direct calls: nothing synchronizes, allocates or reads back inside.
void testGraph(std::mt19937& rng) {
  const auto sa = submAttrs({20, 40, 36}, {3, 3, 3}, {1, 1, 1});
  const auto ra = sparseAttrs({20, 40, 36}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, false, 2);
  const auto idx = makeSites(rng, {0, 1}, sa.spatial_shape, 3000, 0.1);
  const int64_t n = 3000, c_in = 16, c_out = 32;
  const RulebookGeometry gs = makeGeometry(sa), gr = makeGeometry(ra);
  const int64_t cap = sparseRulebookOutputBound(ra, n);
  std::vector<Site> outs;
  std::vector<int32_t> expect;
  referenceSparse(idx, n, ra, &outs, &expect);
  const int64_t m = static_cast<int64_t>(outs.size());  // a conv after a strided rulebook knows M from its shape
  std::vector<__half> xh(n * c_in), wh(c_out * 27 * c_in), bh(c_out);
  std::vector<float> xf(n * c_in), wf(c_out * 27 * c_in), bf(c_out);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::size_t i = 0; i < xh.size(); ++i) xh[i] = __float2half(xf[i] = u(rng));
  for (std::size_t i = 0; i < wh.size(); ++i) wh[i] = __float2half(wf[i] = u(rng));
  for (std::size_t i = 0; i < bh.size(); ++i) bh[i] = __float2half(bf[i] = u(rng));
  Dev<int32_t> d_idx(idx), d_subm(27 * n), d_out_idx(cap * 4), d_nb(27 * cap), d_count(2), d_inv(27 * n);
  Dev<__half> d_xh(xh), d_wh(wh), d_bh(bh), d_yh(n * c_out), d_pool(m * c_in), d_dense(2 * c_in * 20 * 40 * 36);
  Dev<float> d_xf(xf), d_wf(wf), d_bf(bf), d_yf(m * c_out);
  Dev<char> ws_subm(K::submRulebookWorkspaceSize(n)), ws_rule(K::sparseRulebookWorkspaceSize(n, gr, cap));
  Dev<int32_t> d_plan(convPlanRows(27) * n);
  std::vector<__half> rh(n * c_out);
  for (auto& v : rh) v = __float2half(u(rng));
  Dev<__half> d_rh(rh);
  Dev<char> ws_plan(K::convPlanWorkspaceSize(n, 27)), ws_conv(K::sparseConvWorkspaceSize(n, c_out, 27));
  const auto enqueue = [&]() {
    CUDA_OK(K::submRulebook(d_idx.p, n, gs, d_subm.p, ws_subm.p, ws_subm.n, stream));
    CUDA_OK(K::convPlan(d_subm.p, 27, n, d_plan.p, ws_plan.p, ws_plan.n, stream));
    CUDA_OK(K::sparseConv(DataType::kFloat16, d_xh.p, n, c_in, d_plan.p, K::MapLayout::kPlan, 27, n, d_wh.p, d_bh.p,
                          d_rh.p, c_out, Activation::kRelu, 0.0f, d_yh.p, ws_conv.p, ws_conv.n, stream));
    CUDA_OK(K::sparseRulebook(d_idx.p, n, gr, cap, d_out_idx.p, d_nb.p, d_count.p, d_count.p + 1, ws_rule.p, ws_rule.n,
                              stream));
    CUDA_OK(K::sparseConv(DataType::kFloat32, d_xf.p, n, c_in, d_nb.p, K::MapLayout::kNeighbors, 27, m, d_wf.p, d_bf.p,
                          nullptr, c_out, Activation::kLeakyRelu, 0.1f, d_yf.p, nullptr, 0, stream));
    CUDA_OK(K::inverseRulebook(d_nb.p, 27, m, n, d_inv.p, nullptr, 0, stream));
    CUDA_OK(K::sparseMaxPool(DataType::kFloat16, d_xh.p, n, c_in, d_nb.p, 27, m, d_pool.p, nullptr, 0, stream));
    CUDA_OK(K::densify(DataType::kFloat16, d_xh.p, d_idx.p, n, c_in, 3, sa.spatial_shape.data(), 2, d_dense.p, nullptr,
                       0, stream));
  };
  enqueue();
  const auto ref_subm = d_subm.get(), ref_out_idx = d_out_idx.get(m * 4), ref_nb = d_nb.get(27 * m),
             ref_inv = d_inv.get();
  const auto ref_yh = d_yh.get(), ref_pool = d_pool.get(), ref_dense = d_dense.get();
  const auto ref_yf = d_yf.get();
  const auto ref_count = d_count.get();
  EXPECT(ref_count[0] == m && ref_count[1] == 0, "graph: direct run count %d/%d, expected %lld", ref_count[0],
         ref_count[1], (long long)m);
  EXPECT(ref_nb == expect, "graph: direct run neighbours differ from brute force");
  for (Dev<int32_t>* d : {&d_subm, &d_out_idx, &d_nb, &d_count, &d_inv}) d->fill(0);
  d_yh.fill(0), d_pool.fill(0), d_dense.fill(0), d_yf.fill(0);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  enqueue();
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    CUDA_OK(cudaGraphLaunch(exec, stream));
    syncStream();
    EXPECT(sameBits(d_subm.get(), ref_subm) && sameBits(d_out_idx.get(m * 4), ref_out_idx) &&
               sameBits(d_nb.get(27 * m), ref_nb) && sameBits(d_inv.get(), ref_inv) &&
               sameBits(d_count.get(), ref_count),
           "graph replay %d: rulebooks differ from direct calls", replay);
    EXPECT(sameBits(d_yh.get(), ref_yh) && sameBits(d_yf.get(), ref_yf) && sameBits(d_pool.get(), ref_pool) &&
               sameBits(d_dense.get(), ref_dense),
           "graph replay %d: features differ from direct calls", replay);
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
}

// ------------------------------------------------------------------------------- untrusted maps
// TensorRT runs plugins on uninitialized inputs while it times tactics: a map entry outside [0, N) must act
// exactly as -1 (kernels.h), never be read through. Each case poisons some entries of a valid map (N, N + 7,
// INT32_MAX, random garbage >= N) and expects the same bits as the map with those entries set to -1 (whose
// results the conv/pool groups check against brute force); memcheck (run_gpu_checks.sh) sees any stray read.
// Also: rows with a negative batch index reach no output site of SparseRulebook.
std::vector<int32_t> poison(std::mt19937& rng, std::vector<int32_t>* nb, int64_t n) {
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

template <typename T>
void untrustedConvCase(std::mt19937& rng, const char* name, DataType dtype, int64_t n, int64_t m, int64_t c_in,
                       int64_t c_out, int64_t kvol) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<T> x(n * c_in), w(c_out * kvol * c_in), b(c_out);
  for (T& v : x) v = fromF<T>(u(rng));
  for (T& v : w) v = fromF<T>(u(rng));
  for (T& v : b) v = fromF<T>(u(rng));
  std::vector<int32_t> nb = makeMap(rng, n, m, kvol, MapMode::kRandom, 0.5);
  const std::vector<int32_t> clean = poison(rng, &nb, n);
  Dev<T> d_x(x), d_w(w), d_b(b), d_out(m * c_out), d_ref(m * c_out);
  Dev<int32_t> d_nb(nb), d_clean(clean);
  const auto conv = [&](const int32_t* map, K::MapLayout layout, T* out) {
    CUDA_OK(K::sparseConv(dtype, d_x.p, n, c_in, map, layout, kvol, m, d_w.p, d_b.p, nullptr, c_out, Activation::kNone,
                          0.0f, out, nullptr, 0, stream));
  };
  conv(d_nb.p, K::MapLayout::kNeighbors, d_out.p);
  conv(d_clean.p, K::MapLayout::kNeighbors, d_ref.p);
  EXPECT(sameBits(d_out.get(), d_ref.get()), "%s (dtype %d): entries outside [0, N) were not treated as -1", name,
         int(dtype));
  if (m == 0) return;
  // The plan of the poisoned map: its masks list the poisoned entries too, which may shift how the reduction
  // packs offsets (so the bits may differ), but nothing is read through them.
  Dev<int32_t> d_plan(convPlanRows(kvol) * m);
  Dev<char> ws(K::convPlanWorkspaceSize(m, kvol));
  CUDA_OK(K::convPlan(d_nb.p, kvol, m, d_plan.p, ws.p, ws.n, stream));
  conv(d_plan.p, K::MapLayout::kPlan, d_out.p);
  const auto got = d_out.get(), ref = d_ref.get();
  double worst = 0.0, top = 1.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(double(toF(got[i])) - double(toF(ref[i]))));
    top = std::max(top, std::abs(double(toF(ref[i]))));
  }
  EXPECT(worst <= (dtype == DataType::kFloat16 ? 2e-3 : 1e-5) * top,
         "%s (dtype %d): the plan of a poisoned map gives %g off the clean map's result", name, int(dtype), worst);
  // A plan of garbage (any permutation entry, mask and map entry): in-bounds, whatever it computes.
  std::vector<int32_t> garbage(convPlanRows(kvol) * m);
  for (int32_t& v : garbage) v = static_cast<int32_t>(rng());
  Dev<int32_t> d_garbage(garbage);
  conv(d_garbage.p, K::MapLayout::kPlan, d_out.p);
  syncStream();
}

template <typename T>
void untrustedPoolCase(std::mt19937& rng, const char* name, DataType dtype, int64_t n, int64_t m, int64_t c,
                       int64_t kvol) {
  std::vector<T> x(n * c);
  for (T& v : x) v = fromF<T>(std::uniform_real_distribution<float>(-5.0f, 5.0f)(rng));
  std::vector<int32_t> nb = makeMap(rng, n, m, kvol, MapMode::kRandom, 0.5);
  const std::vector<int32_t> clean = poison(rng, &nb, n);
  Dev<T> d_x(x), d_out(m * c), d_ref(m * c);
  Dev<int32_t> d_nb(nb), d_clean(clean);
  CUDA_OK(K::sparseMaxPool(dtype, d_x.p, n, c, d_nb.p, kvol, m, d_out.p, nullptr, 0, stream));
  CUDA_OK(K::sparseMaxPool(dtype, d_x.p, n, c, d_clean.p, kvol, m, d_ref.p, nullptr, 0, stream));
  EXPECT(sameBits(d_out.get(), d_ref.get()), "%s (dtype %d): entries outside [0, N) were not treated as -1", name,
         int(dtype));
}

void testUntrusted(std::mt19937& rng) {
  untrustedConvCase<float>(rng, "untrusted map conv 13->7, K=27", DataType::kFloat32, 300, 200, 13, 7, 27);
  untrustedConvCase<__half>(rng, "untrusted map conv fp16 16->32, K=27", DataType::kFloat16, 300, 200, 16, 32, 27);
  untrustedConvCase<__half>(rng, "untrusted map conv fp16 13->67, K=8", DataType::kFloat16, 100, 130, 13, 67, 8);
  untrustedConvCase<float>(rng, "untrusted map conv, N=0", DataType::kFloat32, 0, 50, 8, 8, 27);
  untrustedPoolCase<float>(rng, "untrusted map pool, K=27", DataType::kFloat32, 300, 200, 13, 27);
  untrustedPoolCase<__half>(rng, "untrusted map pool fp16, K=8", DataType::kFloat16, 100, 90, 5, 8);
  untrustedPoolCase<float>(rng, "untrusted map pool, N=0", DataType::kFloat32, 0, 40, 3, 27);

  // SparseRulebook: valid rows, then rows with negative batch indices (they reach nothing).
  const auto a = sparseAttrs({20, 40, 36}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, false, 2);
  const int64_t n_valid = 500;
  std::vector<int32_t> idx = makeSites(rng, {0, 1}, a.spatial_shape, n_valid, 0.1);
  std::vector<Site> outs;
  std::vector<int32_t> expect;
  referenceSparse(idx, n_valid, a, &outs, &expect);
  for (int32_t batch : {-1, INT32_MIN, -7}) idx.insert(idx.end(), {batch, 3, 5, 7});
  const int64_t n = static_cast<int64_t>(idx.size()) / 4, m = static_cast<int64_t>(outs.size());
  const RulebookGeometry g = makeGeometry(a);
  const int64_t cap = sparseRulebookOutputBound(a, n);
  Dev<char> ws(K::sparseRulebookWorkspaceSize(n, g, cap));
  Dev<int32_t> d_idx(idx), d_out(cap * 4), d_nb(27 * cap), d_count(2);
  CUDA_OK(K::sparseRulebook(d_idx.p, n, g, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n, stream));
  const auto count = d_count.get();
  EXPECT(count[0] == m && count[1] == 0, "negative batch rows: num_out %d overflow %d, expected %lld", count[0],
         count[1], (long long)m);
  EXPECT(d_nb.get(27 * m) == expect, "negative batch rows: neighbours differ from those of the valid rows");
}

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: GPU kernel tests skipped\n");
    return 77;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  CUDA_OK(cudaStreamCreate(&stream));
  struct Group {
    const char* name;
    void (*fn)(std::mt19937&);
    bool by_default;  // conv_quick repeats a subset of conv, for racecheck
  };
  const Group groups[] = {{"subm", testSubm, true},
                          {"sparse", testSparse, true},
                          {"bound", testSortBound, true},
                          {"conv", testConv, true},
                          {"conv_quick", testConvQuick, false},
                          {"pool", testPool, true},
                          {"plan", testPlan, true},
                          {"densify", testDensify, true},
                          {"untrusted", testUntrusted, true},
                          {"graph", testGraph, true},
                          {"merge", testMerge, true}};
  for (int i = 1; i < argc; ++i)
    if (std::none_of(std::begin(groups), std::end(groups),
                     [&](const Group& g) { return argv[i] == std::string(g.name); })) {
      std::printf("unknown group '%s'\n", argv[i]);
      return 2;
    }
  std::mt19937 rng(20261124);
  for (const Group& group : groups) {
    const std::string name = group.name;
    bool wanted = argc < 2 && group.by_default;
    for (int i = 1; i < argc; ++i) wanted = wanted || name == argv[i];
    if (!wanted) continue;
    const int before = failures;
    group.fn(rng);
    syncStream();
    CUDA_OK(cudaGetLastError());
    std::printf("%s %s\n", failures == before ? "[ ok ]" : "[FAIL]", name.c_str());
  }
  CUDA_OK(cudaStreamDestroy(stream));
  std::printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
