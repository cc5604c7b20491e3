// SparseRulebook's kernel against its CPU model (regular and transposed, mixed geometry, borders, corners, empty
// samples, N = 0, K = 1/8/125, 4D, grid-capped bounds, pointwise, a lidar-scale grid), the inverse of its map
// (InverseRulebook), determinism, the read-back, the max_out / out_capacity overflow contract and the refusal of
// a short workspace (test "sparse"); the device-free radix-sort scratch bound against CUB's own query ("bound");
// rows with negative batch indices reach no output site ("untrusted").
#include <cub/device/device_radix_sort.cuh>  // CUB's own scratch query, to check the device-free bound

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernel_test.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_kernels.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels_test.h"
#include "sparsetrt/workspace.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

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

// ------------------------------------------------------------------------------- untrusted maps
// Rows with a negative batch index reach no output site of SparseRulebook.
void testUntrustedRows(std::mt19937& rng) {
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

}  // namespace

KERNEL_TEST_PART("sparse", testSparse);
KERNEL_TEST_PART("bound", testSortBound);
KERNEL_TEST_PART("untrusted", testUntrustedRows);
