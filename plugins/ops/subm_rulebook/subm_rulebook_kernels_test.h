// SubmRulebook's CPU model and a validated attribute constructor, for its kernel tests and the cross-op ones
// (graph_capture_test.cu).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "kernel_test.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"

inline std::vector<int32_t> referenceSubm(const std::vector<int32_t>& idx, int64_t n,
                                          const sparsetrt::SubmRulebookAttrs& a) {
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

inline sparsetrt::SubmRulebookAttrs submAttrs(std::vector<int32_t> shape, std::vector<int32_t> kernel,
                                              std::vector<int32_t> dilation) {
  sparsetrt::SubmRulebookAttrs a{std::move(shape), std::move(kernel), std::move(dilation)};
  validate("test", a);
  return a;
}
