// Densify's kernel against a dense scatter on the CPU: borders, empty samples, N = 0, one voxel, fp16, a full
// grid; rows outside the grid or the batch are skipped, and the output is cleared first (test "densify").
#include <cstdint>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/densify/densify_host.h"
#include "ops/densify/densify_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

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

void testDensify(std::mt19937& rng) {
  densifyCase<float>(rng, "densify", DataType::kFloat32, {4, 6, 5}, 2, {0, 1}, 50, 5, 0.0);
  densifyCase<float>(rng, "densify borders, empty sample", DataType::kFloat32, {4, 6, 5}, 3, {0, 2}, 60, 13, 0.8);
  densifyCase<float>(rng, "densify N=0", DataType::kFloat32, {4, 6, 5}, 2, {0}, 0, 3, 0.0);
  densifyCase<float>(rng, "densify one voxel, 1 channel", DataType::kFloat32, {3, 3}, 1, {0}, 1, 1, 0.0);
  densifyCase<__half>(rng, "densify fp16 2D", DataType::kFloat16, {30, 20}, 2, {1}, 100, 67, 0.3);
  densifyCase<__half>(rng, "densify fp16 full grid", DataType::kFloat16, {2, 3, 4}, 1, {0}, 24, 3, 0.0);
}

}  // namespace

KERNEL_TEST_PART("densify", testDensify);
