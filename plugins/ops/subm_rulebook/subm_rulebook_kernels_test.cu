// SubmRulebook's kernel against its CPU model: random sites, borders, corners, empty batch samples, N = 0, one
// voxel, dense grids, K = 125, even kernels, 4D, pointwise, a lidar-scale grid; run-to-run determinism and the
// refusal of a short workspace (test "subm").
#include <algorithm>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/subm_rulebook/subm_rulebook_kernels.h"
#include "ops/subm_rulebook/subm_rulebook_kernels_test.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

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

}  // namespace

KERNEL_TEST_PART("subm", testSubm);
