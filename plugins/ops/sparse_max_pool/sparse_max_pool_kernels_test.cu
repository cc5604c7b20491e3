// SparseMaxPool's kernel against a max over the active inputs (0 for a site with none, NaN propagating), fp32 and
// fp16, N = 0, M = 0, one voxel (test "pool"); map entries outside [0, N) act as -1 ("untrusted").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

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

// ------------------------------------------------------------------------------- untrusted maps
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

void testUntrustedPool(std::mt19937& rng) {
  untrustedPoolCase<float>(rng, "untrusted map pool, K=27", DataType::kFloat32, 300, 200, 13, 27);
  untrustedPoolCase<__half>(rng, "untrusted map pool fp16, K=8", DataType::kFloat16, 100, 90, 5, 8);
  untrustedPoolCase<float>(rng, "untrusted map pool, N=0", DataType::kFloat32, 0, 40, 3, 27);
}

}  // namespace

KERNEL_TEST_PART("pool", testPool);
KERNEL_TEST_PART("untrusted", testUntrustedPool);
