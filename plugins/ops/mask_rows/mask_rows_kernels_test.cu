// MaskRows' kernel against the kept rows in order: N = 0, none kept, all kept, half, unaligned mask; the refusal of
// a short workspace (test "merge", with UniqueSites, SegmentReduce and their CUDA-graph capture).
#include <cstdint>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/mask_rows/mask_rows_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

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

void testMaskRows(std::mt19937& rng) {
  maskCase(rng, "mask N=0", 0, 0.5);
  maskCase(rng, "mask none kept", 300, 0.0);
  maskCase(rng, "mask all kept", 300, 1.0);
  maskCase(rng, "mask half", 5000, 0.5);
  Dev<char> small(K::maskRowsWorkspaceSize(10));
  EXPECT(K::maskRows(nullptr, 5000, nullptr, nullptr, small.p, small.n, stream) == cudaErrorInvalidValue,
         "mask: a workspace sized for fewer rows must be refused");
}

}  // namespace

KERNEL_TEST_PART("merge", testMaskRows);
