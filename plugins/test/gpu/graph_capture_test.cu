// CUDA-graph capture across the ops' entry points (global capture mode: the strictest): captured and replayed
// twice, they must give the same bits as direct calls, so nothing inside synchronizes, allocates or reads back.
// Test "graph": the rulebooks, ConvPlan, the conv (fp16 over a plan with a residual, fp32 over a strided map),
// InverseRulebook, SparseMaxPool and Densify, one network's worth; test "merge" (with each merging op's own
// tests): UniqueSites, SegmentReduce and MaskRows.
#include <cstdint>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"
#include "ops/densify/densify_host.h"
#include "ops/densify/densify_kernels.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_kernels.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/mask_rows/mask_rows_kernels.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/segment_reduce/segment_reduce_kernels.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_conv/sparse_conv_kernels.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_kernels.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels_test.h"
#include "ops/subm_rulebook/subm_rulebook_kernels.h"
#include "ops/subm_rulebook/subm_rulebook_kernels_test.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "ops/unique_sites/unique_sites_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

// enqueue() captured into a CUDA graph (global mode) and the graph replayed twice, check(replay) after each.
template <typename Enqueue, typename Check>
void replayCaptured(Enqueue&& enqueue, Check&& check) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  enqueue();
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    CUDA_OK(cudaGraphLaunch(exec, stream));
    syncStream();
    check(replay);
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
}

void testGraph(std::mt19937& rng) {
  const auto sa = submAttrs({20, 40, 36}, {3, 3, 3}, {1, 1, 1});
  const auto ra = sparseAttrs({20, 40, 36}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, false, 2);
  const auto idx = makeSites(rng, {0, 1}, sa.spatial_shape, 3000, 0.1);
  const int64_t n = 3000, c_in = 16, c_out = 32;
  const RulebookGeometry gs = makeGeometry(sa), gr = makeGeometry(ra);
  const int64_t cap = sparseRulebookOutputBound(ra, n);
  std::vector<Site> outs;
  std::vector<int32_t> expect;
  referenceSparse(idx, n, ra, &outs, &expect);
  const int64_t m = static_cast<int64_t>(outs.size());  // a conv after a strided rulebook knows M from its shape
  std::vector<__half> xh(n * c_in), wh(c_out * 27 * c_in), bh(c_out);
  std::vector<float> xf(n * c_in), wf(c_out * 27 * c_in), bf(c_out);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::size_t i = 0; i < xh.size(); ++i) xh[i] = __float2half(xf[i] = u(rng));
  for (std::size_t i = 0; i < wh.size(); ++i) wh[i] = __float2half(wf[i] = u(rng));
  for (std::size_t i = 0; i < bh.size(); ++i) bh[i] = __float2half(bf[i] = u(rng));
  Dev<int32_t> d_idx(idx), d_subm(27 * n), d_out_idx(cap * 4), d_nb(27 * cap), d_count(2), d_inv(27 * n);
  Dev<__half> d_xh(xh), d_wh(wh), d_bh(bh), d_yh(n * c_out), d_pool(m * c_in), d_dense(2 * c_in * 20 * 40 * 36);
  Dev<float> d_xf(xf), d_wf(wf), d_bf(bf), d_yf(m * c_out);
  Dev<char> ws_subm(K::submRulebookWorkspaceSize(n)), ws_rule(K::sparseRulebookWorkspaceSize(n, gr, cap));
  Dev<int32_t> d_plan(convPlanRows(27) * n);
  std::vector<__half> rh(n * c_out);
  for (auto& v : rh) v = __float2half(u(rng));
  Dev<__half> d_rh(rh);
  Dev<char> ws_plan(K::convPlanWorkspaceSize(n, 27)), ws_conv(K::sparseConvWorkspaceSize(n, c_out, 27));
  const auto enqueue = [&]() {
    CUDA_OK(K::submRulebook(d_idx.p, n, gs, d_subm.p, ws_subm.p, ws_subm.n, stream));
    CUDA_OK(K::convPlan(d_subm.p, 27, n, d_plan.p, ws_plan.p, ws_plan.n, stream));
    CUDA_OK(K::sparseConv(DataType::kFloat16, d_xh.p, n, c_in, d_plan.p, K::MapLayout::kPlan, 27, n, d_wh.p, d_bh.p,
                          d_rh.p, c_out, Activation::kRelu, 0.0f, d_yh.p, ws_conv.p, ws_conv.n, stream));
    CUDA_OK(K::sparseRulebook(d_idx.p, n, gr, cap, d_out_idx.p, d_nb.p, d_count.p, d_count.p + 1, ws_rule.p, ws_rule.n,
                              stream));
    CUDA_OK(K::sparseConv(DataType::kFloat32, d_xf.p, n, c_in, d_nb.p, K::MapLayout::kNeighbors, 27, m, d_wf.p, d_bf.p,
                          nullptr, c_out, Activation::kLeakyRelu, 0.1f, d_yf.p, nullptr, 0, stream));
    CUDA_OK(K::inverseRulebook(d_nb.p, 27, m, n, d_inv.p, nullptr, 0, stream));
    CUDA_OK(K::sparseMaxPool(DataType::kFloat16, d_xh.p, n, c_in, d_nb.p, 27, m, d_pool.p, nullptr, 0, stream));
    CUDA_OK(K::densify(DataType::kFloat16, d_xh.p, d_idx.p, n, c_in, 3, sa.spatial_shape.data(), 2, d_dense.p, nullptr,
                       0, stream));
  };
  enqueue();
  const auto ref_subm = d_subm.get(), ref_out_idx = d_out_idx.get(m * 4), ref_nb = d_nb.get(27 * m),
             ref_inv = d_inv.get();
  const auto ref_yh = d_yh.get(), ref_pool = d_pool.get(), ref_dense = d_dense.get();
  const auto ref_yf = d_yf.get();
  const auto ref_count = d_count.get();
  EXPECT(ref_count[0] == m && ref_count[1] == 0, "graph: direct run count %d/%d, expected %lld", ref_count[0],
         ref_count[1], (long long)m);
  EXPECT(ref_nb == expect, "graph: direct run neighbours differ from brute force");
  for (Dev<int32_t>* d : {&d_subm, &d_out_idx, &d_nb, &d_count, &d_inv}) d->fill(0);
  d_yh.fill(0), d_pool.fill(0), d_dense.fill(0), d_yf.fill(0);
  replayCaptured(enqueue, [&](int replay) {
    EXPECT(sameBits(d_subm.get(), ref_subm) && sameBits(d_out_idx.get(m * 4), ref_out_idx) &&
               sameBits(d_nb.get(27 * m), ref_nb) && sameBits(d_inv.get(), ref_inv) &&
               sameBits(d_count.get(), ref_count),
           "graph replay %d: rulebooks differ from direct calls", replay);
    EXPECT(sameBits(d_yh.get(), ref_yh) && sameBits(d_yf.get(), ref_yf) && sameBits(d_pool.get(), ref_pool) &&
               sameBits(d_dense.get(), ref_dense),
           "graph replay %d: features differ from direct calls", replay);
  });
}

// The three captured into a CUDA graph (global mode) and replayed twice: the same bits as direct calls (nothing
// synchronizes, allocates or reads back inside; M stays on the device).
void mergeGraphCase(std::mt19937& rng) {
  const int64_t n = 2000, k = 3, c = 16;
  std::uniform_int_distribution<int32_t> value(0, 9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<int32_t> rows(n * k), mask(n);
  std::vector<float> x(n * c), zeros(n * c, 0.0f);
  for (auto& v : rows) v = value(rng);
  for (auto& v : mask) v = value(rng) < 4;
  for (auto& v : x) v = u(rng);
  Dev<int32_t> d_rows(rows), d_unique(n * k), d_inverse(n), d_counts(n), d_m(1), d_mask(mask), d_kept(n), d_mk(1);
  Dev<float> d_x(x), d_init(zeros), d_out(n * c);
  Dev<char> ws_u(K::uniqueSitesWorkspaceSize(n)), ws_s(K::segmentReduceWorkspaceSize(n)),
      ws_m(K::maskRowsWorkspaceSize(n));
  const auto enqueue = [&]() {
    CUDA_OK(K::uniqueSites(d_rows.p, n, k, d_unique.p, d_inverse.p, d_counts.p, d_m.p, ws_u.p, ws_u.n, stream));
    // M is on the device only: reduce into all n rows of init (a bound, as TensorRT allocates), segments < M.
    CUDA_OK(K::segmentReduce(DataType::kFloat32, d_x.p, d_inverse.p, n, c, d_init.p, n, Reduction::kSum, d_out.p,
                             ws_s.p, ws_s.n, stream));
    CUDA_OK(K::maskRows(d_mask.p, n, d_kept.p, d_mk.p, ws_m.p, ws_m.n, stream));
  };
  enqueue();
  const int32_t m = d_m.get()[0], mk = d_mk.get()[0];
  const auto ref_unique = d_unique.get(m * k), ref_inverse = d_inverse.get(), ref_kept = d_kept.get(mk);
  const auto ref_out = d_out.get();
  for (Dev<int32_t>* d : {&d_unique, &d_inverse, &d_counts, &d_m, &d_kept, &d_mk}) d->fill(0);
  d_out.fill(0);
  replayCaptured(enqueue, [&](int replay) {
    EXPECT(d_m.get()[0] == m && d_mk.get()[0] == mk && d_unique.get(m * k) == ref_unique &&
               d_inverse.get() == ref_inverse && d_kept.get(mk) == ref_kept && sameBits(d_out.get(), ref_out),
           "merge graph replay %d differs from direct calls", replay);
  });
}

}  // namespace

KERNEL_TEST_PART("graph", testGraph);
KERNEL_TEST_PART("merge", mergeGraphCase);
