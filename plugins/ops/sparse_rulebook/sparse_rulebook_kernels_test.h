// SparseRulebook's CPU model (brute force: sorted output sites and [K, M] neighbours) and a validated attribute
// constructor, for its kernel tests and the cross-op ones (graph_capture_test.cu).
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "kernel_test.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "sparsetrt/shapes.h"

// Brute force SparseRulebook: sorted output sites and [K, M] neighbours.
inline void referenceSparse(const std::vector<int32_t>& idx, int64_t n, const sparsetrt::SparseRulebookAttrs& a,
                            std::vector<Site>* outs, std::vector<int32_t>* nb) {
  const int D = static_cast<int>(a.spatial_shape.size());
  const auto out_shape = sparsetrt::outputSpatialShape(a);
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

inline sparsetrt::SparseRulebookAttrs sparseAttrs(std::vector<int32_t> shape, std::vector<int32_t> kernel,
                                                  std::vector<int32_t> stride, std::vector<int32_t> padding,
                                                  std::vector<int32_t> dilation, bool transposed, int32_t batch_size,
                                                  std::vector<int32_t> output_padding = {}) {
  sparsetrt::SparseRulebookAttrs a;
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
