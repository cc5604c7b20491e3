// ConvPlan's CPU model, and a plan made on the device and checked against it: for ConvPlan's kernel tests and the
// conv's (which runs over plans).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernel_test.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"

// ConvPlan's CPU model (written from its contract in conv_plan_kernels.h, independently of the kernel): per window of
// sparsetrt::kConvPlanWindow columns, rank the offsets by their entry count in the window (fewest first, ties by k),
// key each column by the Gray-code rank of its mask restricted to the min(K, 32) rarest offsets (the rarest the most
// significant bit), and sort the window's columns stably by key.
inline std::vector<int32_t> referencePlan(const std::vector<int32_t>& nb, int64_t kvol, int64_t m) {
  const int64_t words = (kvol + 31) / 32, rows = sparsetrt::convPlanRows(kvol);
  std::vector<int32_t> plan(rows * m);
  for (int64_t w0 = 0; w0 < m; w0 += sparsetrt::kConvPlanWindow) {
    const int64_t w1 = std::min(m, w0 + sparsetrt::kConvPlanWindow);
    std::vector<std::pair<int64_t, int64_t>> by_count;  // (entries in the window, k)
    for (int64_t k = 0; k < kvol; ++k) {
      int64_t c = 0;
      for (int64_t j = w0; j < w1; ++j) c += nb[k * m + j] >= 0;
      by_count.push_back({c, k});
    }
    std::sort(by_count.begin(), by_count.end());
    const int64_t key_bits = std::min<int64_t>(kvol, 32);
    std::vector<std::pair<uint32_t, int64_t>> keyed;  // (Gray rank, column)
    for (int64_t j = w0; j < w1; ++j) {
      uint32_t code = 0;
      for (int64_t r = 0; r < key_bits; ++r)
        if (nb[by_count[r].second * m + j] >= 0) code |= 1u << (key_bits - 1 - r);
      uint64_t rank = 0;  // position of `code` in the reflected Gray sequence: prefix XOR from the top bit
      for (int b = 31; b >= 0; --b) rank |= (((rank >> (b + 1)) ^ (code >> b)) & 1u) << b;
      keyed.push_back({static_cast<uint32_t>(rank), j});
    }
    std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (int64_t i = w0; i < w1; ++i) {
      const int64_t col = keyed[i - w0].second;
      for (int64_t k = 0; k < kvol; ++k) plan[k * m + i] = nb[k * m + col];
      plan[kvol * m + i] = static_cast<int32_t>(col);
      for (int64_t w = 0; w < words; ++w) {
        uint32_t bits = 0;
        for (int64_t k = 32 * w; k < std::min(kvol, 32 * w + 32); ++k)
          if (nb[k * m + col] >= 0) bits |= 1u << (k - 32 * w);
        plan[(kvol + 1 + w) * m + i] = static_cast<int32_t>(bits);
      }
    }
  }
  return plan;
}

// The plan of `nb` made on the device, checked against the model; returns it on the device.
inline bool makePlan(const char* name, const std::vector<int32_t>& nb, int64_t kvol, int64_t m, Dev<int32_t>* d_plan) {
  Dev<int32_t> d_nb(nb);
  Dev<char> ws(sparsetrt::kernels::convPlanWorkspaceSize(m, kvol));
  CUDA_OK(sparsetrt::kernels::convPlan(d_nb.p, kvol, m, d_plan->p, ws.p, ws.n, stream));
  const auto got = d_plan->get();
  const bool same = got == referencePlan(nb, kvol, m);
  EXPECT(same, "%s: ConvPlan (K=%lld, M=%lld) differs from its CPU model", name, (long long)kvol, (long long)m);
  return same;
}
