// UniqueSites' kernel against std::map (lexicographic order of std::vector<int32_t>): N = 0, one row, all equal,
// duplicates, negative and extreme values, 1 and 7 columns, unaligned input; determinism and the refusal of a
// short workspace (test "merge", with SegmentReduce, MaskRows and their CUDA-graph capture).
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "ops/unique_sites/unique_sites_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

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

void testUniqueSites(std::mt19937& rng) {
  uniqueCase(rng, "unique N=0", 0, 4, 0, 3);
  uniqueCase(rng, "unique one row", 1, 3, -5, 5);
  uniqueCase(rng, "unique all equal", 500, 3, 7, 7);
  uniqueCase(rng, "unique sites with duplicates", 3000, 4, 0, 6);
  uniqueCase(rng, "unique negative and extreme values", 2000, 3, INT32_MIN, INT32_MAX);
  uniqueCase(rng, "unique 1 column", 1000, 1, -50, 50);
  uniqueCase(rng, "unique 7 columns", 700, 7, 0, 1);
}

}  // namespace

KERNEL_TEST_PART("merge", testUniqueSites);
