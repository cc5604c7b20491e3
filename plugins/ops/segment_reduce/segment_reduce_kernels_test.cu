// SegmentReduce's kernel against plain loops in the same order (so fp32 sums must agree bitwise), with segments
// outside [0, M) mixed in: sum and max, NaN, fp16, N = 0, M = 0, one long group; determinism and the refusal of a
// short workspace or an unknown reduction (test "merge", with UniqueSites, MaskRows and their CUDA-graph capture).
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/segment_reduce/segment_reduce_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

template <typename T>
void segmentCase(std::mt19937& rng, const char* name, DataType dtype, int64_t n, int64_t m, int64_t c,
                 int32_t reduction, bool nan) {
  std::uniform_int_distribution<int32_t> seg(-2, static_cast<int32_t>(m) + 1);  // some outside [0, M)
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<int32_t> segments(n);
  for (auto& s : segments) s = m > 0 && n % 7 == 3 ? 0 : seg(rng);  // n % 7 == 3: everything in one segment
  std::vector<T> x(n * c), init(m * c);
  std::vector<float> xf(n * c), initf(m * c);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = fromF<T>(xf[i] = toF(fromF<T>(u(rng))));
  for (std::size_t i = 0; i < init.size(); ++i) init[i] = fromF<T>(initf[i] = toF(fromF<T>(u(rng))));
  if (nan && n > 0) x[0] = fromF<T>(xf[0] = std::nanf(""));
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
    const float w = toF(fromF<T>(want[i])), g = toF(got[i]);
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

void testSegmentReduce(std::mt19937& rng) {
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

}  // namespace

KERNEL_TEST_PART("merge", testSegmentReduce);
