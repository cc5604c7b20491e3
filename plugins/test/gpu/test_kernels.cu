// GPU tests of the kernel library against a brute-force CPU model of the schema's semantics (written here
// independently of the kernels: std::map lookups, triple loops). Random sites, every rulebook kind,
// fp32/fp16 conv with odd channel counts, max pool, densify, the max_out overflow contract and
// run-to-run determinism. Exits 77 (CTest: skipped) where no CUDA device is present.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "sparsetrt/attributes.h"
#include "sparsetrt/kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

static int failures = 0;
#define EXPECT(cond, ...)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
      ++failures;                                                 \
    }                                                             \
  } while (0)
#define CUDA_OK(expr)                                                                           \
  do {                                                                                          \
    cudaError_t e_ = (expr);                                                                    \
    if (e_ != cudaSuccess) {                                                                    \
      std::printf("FAIL %s:%d: %s -> %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

template <typename T>
struct Dev {
  T* p = nullptr;
  std::size_t n = 0;
  explicit Dev(std::size_t count) : n(count) { CUDA_OK(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T))); }
  Dev(const std::vector<T>& h) : Dev(h.size()) {
    if (n) CUDA_OK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get(std::size_t count) const {
    std::vector<T> h(count);
    if (count) CUDA_OK(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

using Site = std::vector<int32_t>;  // (batch, coords...)

std::vector<int32_t> randomSites(std::mt19937& rng, int batch, const std::vector<int32_t>& shape, int n) {
  std::set<Site> sites;
  while (static_cast<int>(sites.size()) < n) {
    Site s{std::uniform_int_distribution<int>(0, batch - 1)(rng)};
    for (int32_t e : shape) s.push_back(std::uniform_int_distribution<int>(0, e - 1)(rng));
    sites.insert(s);
  }
  std::vector<Site> v(sites.begin(), sites.end());
  std::shuffle(v.begin(), v.end(), rng);  // rows in random order: submanifold must keep it
  std::vector<int32_t> flat;
  for (const Site& s : v) flat.insert(flat.end(), s.begin(), s.end());
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

// Brute force SparseRulebook: sorted output sites and [K, M] neighbours.
void referenceSparse(const std::vector<int32_t>& idx, int n, const SparseRulebookAttrs& a, std::vector<Site>* outs,
                     std::vector<int32_t>* nb) {
  const int D = static_cast<int>(a.spatial_shape.size());
  const auto out_shape = outputSpatialShape(a);
  int64_t kvol = 1;
  for (int32_t k : a.kernel_size) kvol *= k;
  std::map<Site, std::vector<std::pair<int64_t, int32_t>>> hits;  // out site -> (k, input row)
  for (int i = 0; i < n; ++i) {
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
      if (ok) hits[o].push_back({k, i});
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

void testSubm(std::mt19937& rng) {
  SubmRulebookAttrs a{{9, 13, 11}, {3, 3, 3}, {1, 2, 1}};
  const int n = 300, D = 3;
  const auto idx = randomSites(rng, 2, a.spatial_shape, n);
  const RulebookGeometry g = makeGeometry(a);
  std::map<Site, int32_t> rows;
  for (int i = 0; i < n; ++i) rows[Site(idx.begin() + i * (1 + D), idx.begin() + (i + 1) * (1 + D))] = i;
  std::vector<int32_t> expect(g.kernel_volume * n, -1);
  for (int64_t k = 0; k < g.kernel_volume; ++k)
    for (int i = 0; i < n; ++i) {
      const auto t = tapsOf(k, a.kernel_size);
      Site s{idx[i * (1 + D)]};
      for (int d = 0; d < D; ++d) s.push_back(idx[i * (1 + D) + 1 + d] + (t[d] - a.kernel_size[d] / 2) * a.dilation[d]);
      auto it = rows.find(s);
      if (it != rows.end()) expect[k * n + i] = it->second;
    }
  Dev<int32_t> d_idx(idx), d_nb(g.kernel_volume * n);
  Dev<char> ws(K::submRulebookWorkspaceSize(n));
  CUDA_OK(K::submRulebook(d_idx.p, n, g, d_nb.p, ws.p, ws.n, nullptr));
  EXPECT(d_nb.get(expect.size()) == expect, "submanifold neighbours differ from brute force");
}

void testSparse(std::mt19937& rng, bool transposed) {
  SparseRulebookAttrs a;
  a.spatial_shape = {11, 17, 15};
  a.kernel_size = {3, 2, 3};
  a.stride = {2, 2, 1};
  a.padding = {1, 0, 1};
  a.dilation = {1, 1, 2};
  a.output_padding = transposed ? std::vector<int32_t>{1, 0, 0} : std::vector<int32_t>{0, 0, 0};
  a.transposed = transposed;
  const int n = 250, D = 3;
  const auto idx = randomSites(rng, 3, a.spatial_shape, n);
  std::vector<Site> outs;
  std::vector<int32_t> expect;
  referenceSparse(idx, n, a, &outs, &expect);
  const int64_t m = static_cast<int64_t>(outs.size());
  const RulebookGeometry g = makeGeometry(a);
  const int64_t cap = sparseRulebookOutputBound(a, n);
  EXPECT(m <= cap, "bound %lld below the true count %lld", (long long)cap, (long long)m);
  std::size_t bytes = 0;
  CUDA_OK(K::sparseRulebookWorkspaceSize(n, g, &bytes));
  Dev<char> ws(bytes);
  Dev<int32_t> d_idx(idx), d_out(cap * (1 + D)), d_nb(g.kernel_volume * cap), d_count(2);
  CUDA_OK(K::sparseRulebook(d_idx.p, n, g, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n, nullptr));
  const auto count = d_count.get(2);
  EXPECT(count[0] == m && count[1] == 0, "num_out %d overflow %d, expected %lld", count[0], count[1], (long long)m);
  std::vector<int32_t> flat;
  for (const Site& s : outs) flat.insert(flat.end(), s.begin(), s.end());
  EXPECT(d_out.get(flat.size()) == flat, "%s output sites differ", transposed ? "transposed" : "regular");
  EXPECT(d_nb.get(expect.size()) == expect, "%s neighbours differ", transposed ? "transposed" : "regular");

  if (!transposed) {  // the inverse of the regular map
    std::vector<int32_t> inv(g.kernel_volume * n, -1);
    for (int64_t k = 0; k < g.kernel_volume; ++k)
      for (int64_t j = 0; j < m; ++j)
        if (expect[k * m + j] >= 0) inv[k * n + expect[k * m + j]] = static_cast<int32_t>(j);
    Dev<int32_t> d_inv(inv.size());
    CUDA_OK(K::inverseRulebook(d_nb.p, g.kernel_volume, m, n, d_inv.p, nullptr, 0, nullptr));
    EXPECT(d_inv.get(inv.size()) == inv, "inverse map differs");
  }

  // max_out below the true count: an error reported through the overflow count, outputs untouched.
  a.max_out = static_cast<int32_t>(m - 1);
  const int64_t small = sparseRulebookOutputBound(a, n);
  CUDA_OK(cudaMemset(d_out.p, 0x5A, d_out.n * sizeof(int32_t)));
  CUDA_OK(K::sparseRulebook(d_idx.p, n, g, small, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n, nullptr));
  const auto over = d_count.get(2);
  EXPECT(over[0] == 0 && over[1] == m, "overflow not reported: num_out %d overflow %d", over[0], over[1]);
  const auto untouched = d_out.get(d_out.n);
  EXPECT(std::all_of(untouched.begin(), untouched.end(), [](int32_t v) { return v == 0x5A5A5A5A; }),
         "outputs written despite overflow");
}

template <typename T>
std::vector<T> cast(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = T(v[i]);
  return out;
}
float toF(float v) { return v; }
float toF(__half v) { return __half2float(v); }

template <typename T>
void testConv(std::mt19937& rng, DataType dtype, float tol) {
  const int n = 200, c_in = 19, c_out = 70, kvol = 27, m = 150;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(n * c_in), w(c_out * kvol * c_in), b(c_out);
  for (float& v : x) v = u(rng);
  for (float& v : w) v = u(rng);
  for (float& v : b) v = u(rng);
  // Round inputs to T first so the reference sees exactly what the GPU sees.
  for (float& v : x) v = toF(T(v));
  for (float& v : w) v = toF(T(v));
  for (float& v : b) v = toF(T(v));
  std::vector<int32_t> nb(kvol * m);
  for (int32_t& v : nb)
    v = std::uniform_int_distribution<int>(0, 3)(rng) ? -1 : std::uniform_int_distribution<int>(0, n - 1)(rng);
  for (int act = 0; act < 4; ++act) {
    const float alpha = 0.1f;
    std::vector<float> expect(m * c_out);
    for (int j = 0; j < m; ++j)
      for (int co = 0; co < c_out; ++co) {
        double s = b[co];
        for (int k = 0; k < kvol; ++k) {
          const int r = nb[k * m + j];
          if (r < 0) continue;
          for (int ci = 0; ci < c_in; ++ci) s += double(w[(co * kvol + k) * c_in + ci]) * x[r * c_in + ci];
        }
        if (act == 1) s = std::max(s, 0.0);
        if (act == 2) s = s > 0 ? s : s * alpha;
        if (act == 3) s = 1.0 / (1.0 + std::exp(-s));
        expect[j * c_out + co] = static_cast<float>(s);
      }
    Dev<T> d_x(cast<T>(x)), d_w(cast<T>(w)), d_b(cast<T>(b)), d_out(m * c_out), d_out2(m * c_out);
    Dev<int32_t> d_nb(nb);
    CUDA_OK(K::sparseConv(dtype, d_x.p, n, c_in, d_nb.p, kvol, m, d_w.p, d_b.p, c_out, static_cast<Activation>(act),
                          alpha, d_out.p, nullptr, 0, nullptr));
    CUDA_OK(K::sparseConv(dtype, d_x.p, n, c_in, d_nb.p, kvol, m, d_w.p, d_b.p, c_out, static_cast<Activation>(act),
                          alpha, d_out2.p, nullptr, 0, nullptr));
    const auto got = d_out.get(m * c_out), again = d_out2.get(m * c_out);
    EXPECT(std::memcmp(got.data(), again.data(), got.size() * sizeof(T)) == 0, "conv not deterministic");
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::abs(double(toF(got[i])) - expect[i]) / (1.0 + std::abs(expect[i])));
    EXPECT(worst <= tol, "conv dtype %d activation %d: max relative error %g > %g", int(dtype), act, worst, tol);
  }
}

void testPoolAndDensify(std::mt19937& rng) {
  const int n = 120, c = 5, kvol = 8, m = 90;
  std::vector<float> x(n * c);
  for (float& v : x) v = std::uniform_real_distribution<float>(-5.0f, 5.0f)(rng);
  std::vector<int32_t> nb(kvol * m, -1);
  for (int j = 0; j < m; ++j)
    for (int k = 0; k < kvol; ++k)
      if (k == j % kvol || std::uniform_int_distribution<int>(0, 2)(rng) == 0)
        nb[k * m + j] = std::uniform_int_distribution<int>(0, n - 1)(rng);
  std::vector<float> expect(m * c);
  for (int j = 0; j < m; ++j)
    for (int ch = 0; ch < c; ++ch) {
      float best = -INFINITY;
      for (int k = 0; k < kvol; ++k)
        if (nb[k * m + j] >= 0) best = std::max(best, x[nb[k * m + j] * c + ch]);
      expect[j * c + ch] = best;
    }
  Dev<float> d_x(x), d_out(m * c);
  Dev<int32_t> d_nb(nb);
  CUDA_OK(K::sparseMaxPool(DataType::kFloat32, d_x.p, n, c, d_nb.p, kvol, m, d_out.p, nullptr, 0, nullptr));
  EXPECT(d_out.get(m * c) == expect, "max pool differs");

  const std::vector<int32_t> shape{4, 6, 5};
  const int batch = 2, sites = 4 * 6 * 5;
  const auto idx = randomSites(rng, batch, shape, 50);
  std::vector<float> feats(50 * c), dense(batch * c * sites, 0.0f);
  for (float& v : feats) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  for (int i = 0; i < 50; ++i) {
    const int32_t* r = &idx[i * 4];
    for (int ch = 0; ch < c; ++ch) dense[((r[0] * c + ch) * 4 + r[1]) * 30 + r[2] * 5 + r[3]] = feats[i * c + ch];
  }
  Dev<float> d_f(feats), d_dense(dense.size());
  Dev<int32_t> d_idx(idx);
  CUDA_OK(
      K::densify(DataType::kFloat32, d_f.p, d_idx.p, 50, c, 3, shape.data(), batch, d_dense.p, nullptr, 0, nullptr));
  EXPECT(d_dense.get(dense.size()) == dense, "densify differs");
}

// Pointwise layers keep the input order; an empty input gives M = 0 and touches nothing.
void testPointwiseAndEmpty(std::mt19937& rng) {
  SparseRulebookAttrs a;
  a.spatial_shape = {7, 9};
  a.kernel_size = {1, 1};
  a.stride = {1, 1};
  a.padding = {0, 0};
  a.dilation = {1, 1};
  a.output_padding = {0, 0};
  const int n = 40;
  const auto idx = randomSites(rng, 2, a.spatial_shape, n);
  const RulebookGeometry g = makeGeometry(a);
  EXPECT(g.pointwise, "1x1 stride-1 geometry not pointwise");
  std::size_t bytes = 0;
  CUDA_OK(K::sparseRulebookWorkspaceSize(n, g, &bytes));
  Dev<char> ws(bytes);
  Dev<int32_t> d_idx(idx), d_out(n * 3), d_nb(n), d_count(2);
  CUDA_OK(K::sparseRulebook(d_idx.p, n, g, n, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws.p, ws.n, nullptr));
  std::vector<int32_t> iota(n);
  for (int i = 0; i < n; ++i) iota[i] = i;
  EXPECT(d_out.get(n * 3) == idx, "pointwise output sites not the input rows in order");
  EXPECT(d_nb.get(n) == iota, "pointwise map not the identity");
  EXPECT((d_count.get(2) == std::vector<int32_t>{n, 0}), "pointwise count");

  a.kernel_size = {3, 3};
  a.stride = {2, 2};
  const RulebookGeometry g2 = makeGeometry(a);
  CUDA_OK(K::sparseRulebookWorkspaceSize(0, g2, &bytes));
  Dev<char> ws2(bytes);
  CUDA_OK(cudaMemset(d_count.p, 0x5A, 2 * sizeof(int32_t)));
  CUDA_OK(K::sparseRulebook(d_idx.p, 0, g2, 0, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws2.p, ws2.n, nullptr));
  EXPECT((d_count.get(2) == std::vector<int32_t>{0, 0}), "empty input must give M = 0, no overflow");
  const SubmRulebookAttrs even{{7, 9}, {2, 4}, {1, 1}};  // even kernels: centred at k // 2
  const RulebookGeometry ge = makeGeometry(even);
  Dev<char> ws3(K::submRulebookWorkspaceSize(n));
  Dev<int32_t> d_nbe(ge.kernel_volume * n);
  CUDA_OK(K::submRulebook(d_idx.p, n, ge, d_nbe.p, ws3.p, ws3.n, nullptr));
  const auto nbe = d_nbe.get(ge.kernel_volume * n);
  // Offset (1, 2) is the centre: the identity.
  EXPECT(std::equal(iota.begin(), iota.end(), nbe.begin() + (1 * 4 + 2) * n), "even-kernel centre not the identity");
}

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: GPU kernel tests skipped\n");
    return 77;
  }
  std::mt19937 rng(20261124);
  testSubm(rng);
  testSparse(rng, false);
  testSparse(rng, true);
  testConv<float>(rng, DataType::kFloat32, 1e-4f);
  testConv<__half>(rng, DataType::kFloat16, 2e-2f);
  testPoolAndDensify(rng);
  testPointwiseAndEmpty(rng);
  CUDA_OK(cudaDeviceSynchronize());
  std::printf("%d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
