// The plugins' enqueue paths on a GPU. Each plugin, created through its creator and driven as TensorRT
// drives it (configurePlugin, getWorkspaceSize, onShapeChange, enqueue), must produce exactly what the
// kernel library produces from the same inputs (test_kernels checks those against CPU models). This
// checks the glue: argument plumbing, the optional bias (also when only the engine says so), workspace carving,
// the overflow report (an error at run time; nothing in the build phase; a device print, no trap, under
// capture) and that the read-back leaves another thread's global-mode capture alone.
// Exits 77 (CTest: skipped) where no CUDA device is present.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "gpu_check.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/densify/densify_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "plugin_test_util.h"
#include "sparsetrt/kernels.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

using namespace nvinfer1;
using namespace sparsetrt_test;
namespace K = sparsetrt::kernels;

namespace {

struct Buffer {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit Buffer(std::size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&p, n ? n : 1)); }
  template <typename T>
  explicit Buffer(const std::vector<T>& h) : Buffer(h.size() * sizeof(T)) {
    if (bytes) CUDA_OK(cudaMemcpy(p, h.data(), bytes, cudaMemcpyHostToDevice));
  }
  ~Buffer() { cudaFree(p); }
  template <typename T>
  std::vector<T> get(std::size_t count) const {
    std::vector<T> h(count);
    if (count) CUDA_OK(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

PluginTensorDesc plain(DataType type, std::vector<int64_t> dims) { return desc(type, std::move(dims)).desc; }

// Configure as the builder would for exactly these shapes, size the workspace, then enqueue.
int32_t run(IPluginV3* plugin, const std::vector<PluginTensorDesc>& ins, const std::vector<PluginTensorDesc>& outs,
            const std::vector<const void*>& in_ptrs, const std::vector<void*>& out_ptrs) {
  std::vector<DynamicPluginTensorDesc> din, dout;
  for (const auto& d : ins) {
    DynamicPluginTensorDesc x{};
    x.desc = d;
    x.min = x.opt = x.max = d.dims;
    din.push_back(x);
  }
  for (const auto& d : outs) {
    DynamicPluginTensorDesc x{};
    x.desc = d;
    x.min = x.opt = x.max = d.dims;
    dout.push_back(x);
  }
  const int32_t nin = static_cast<int32_t>(ins.size()), nout = static_cast<int32_t>(outs.size());
  if (build(plugin)->configurePlugin(din.data(), nin, dout.data(), nout) != 0) return -1;
  Buffer ws(build(plugin)->getWorkspaceSize(din.data(), nin, dout.data(), nout));
  if (runtime(plugin)->onShapeChange(ins.data(), nin, outs.data(), nout) != 0) return -2;
  const int32_t status =
      runtime(plugin)->enqueue(ins.data(), outs.data(), in_ptrs.data(), out_ptrs.data(), ws.p, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  return status;
}

IPluginV3* make(const char* op, Fields& f) {
  IPluginV3* p = creators()[op]->createPlugin(op, f.collection(), TensorRTPhase::kRUNTIME);
  if (!p) {
    std::printf("FAIL: could not create %s\n", op);
    std::exit(1);
  }
  return p;
}

std::vector<int32_t> randomSites(std::mt19937& rng, int n, int batch, const std::vector<int32_t>& shape) {
  std::set<std::tuple<int, int, int, int>> seen;
  std::vector<int32_t> rows;
  while (static_cast<int>(seen.size()) < n) {
    const int b = rng() % batch, z = rng() % shape[0], y = rng() % shape[1], x = rng() % shape[2];
    if (seen.insert({b, z, y, x}).second) rows.insert(rows.end(), {b, z, y, x});
  }
  return rows;
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: plugin enqueue tests skipped\n");
    return 77;
  }
  std::mt19937 rng(2024);
  const std::vector<int32_t> shape{41, 160, 160};
  const int64_t n = 3000, c_in = 13, c_out = 7;
  const std::vector<int32_t> sites = randomSites(rng, static_cast<int>(n), 2, shape);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> feats(n * c_in), weight(c_out * 27 * c_in), bias(c_out);
  for (float& v : feats) v = u(rng);
  for (float& v : weight) v = u(rng);
  for (float& v : bias) v = u(rng);
  Buffer d_sites(sites), d_feats(feats), d_weight(weight), d_bias(bias);

  // SubmRulebook
  Fields sf = exampleFields("SubmRulebook");
  IPluginV3* subm = make("SubmRulebook", sf);
  Buffer map_p(27 * n * 4), map_k(27 * n * 4);
  EXPECT(run(subm, {plain(DataType::kINT32, {n, 4})}, {plain(DataType::kINT32, {27, n})}, {d_sites.p}, {map_p.p}) == 0,
         "SubmRulebook enqueue");
  sparsetrt::SubmRulebookAttrs sa{shape, {3, 3, 3}, {1, 1, 1}};
  Buffer ws_k(K::submRulebookWorkspaceSize(n));
  CUDA_OK(K::submRulebook(static_cast<int32_t*>(d_sites.p), n, sparsetrt::makeGeometry(sa),
                          static_cast<int32_t*>(map_k.p), ws_k.p, ws_k.bytes, nullptr));
  EXPECT(map_p.get<int32_t>(27 * n) == map_k.get<int32_t>(27 * n), "SubmRulebook plugin == kernel");

  // SparseConv over it, with and without bias (the plugin learns which from its input count).
  Fields cf = exampleFields("SparseConv");  // leaky relu, alpha 0.1
  for (bool with_bias : {true, false}) {
    IPluginV3* conv = make("SparseConv", cf);
    Buffer out_p(n * c_out * 4), out_k(n * c_out * 4);
    std::vector<PluginTensorDesc> ins{plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {27, n}),
                                      plain(DataType::kFLOAT, {c_out, 27, c_in})};
    std::vector<const void*> ptrs{d_feats.p, map_k.p, d_weight.p};
    if (with_bias) {
      ins.push_back(plain(DataType::kFLOAT, {c_out}));
      ptrs.push_back(d_bias.p);
    }
    EXPECT(run(conv, ins, {plain(DataType::kFLOAT, {n, c_out})}, ptrs, {out_p.p}) == 0, "SparseConv enqueue");
    CUDA_OK(K::sparseConv(sparsetrt::DataType::kFloat32, d_feats.p, n, c_in, static_cast<int32_t*>(map_k.p),
                          K::MapLayout::kNeighbors, 27, n, d_weight.p, with_bias ? d_bias.p : nullptr, nullptr, c_out,
                          sparsetrt::Activation::kLeakyRelu, 0.1f, out_k.p, nullptr, 0, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(out_p.get<float>(n * c_out) == out_k.get<float>(n * c_out),
           with_bias ? "SparseConv (bias) plugin == kernel" : "SparseConv (no bias) plugin == kernel");
    delete conv;
  }

  // ConvPlan of that map == kernel; then SparseConv (fp16: the tensor-core path, with its split workspace) over the
  // plan with a residual == kernel.
  {
    Fields no_attrs{};
    IPluginV3* planner = make("ConvPlan", no_attrs);
    const int64_t rows = sparsetrt::convPlanRows(27);
    Buffer plan_p(rows * n * 4), plan_k(rows * n * 4), ws_plan(K::convPlanWorkspaceSize(n, 27));
    EXPECT(run(planner, {plain(DataType::kINT32, {27, n})}, {plain(DataType::kINT32, {rows, n})}, {map_k.p},
               {plan_p.p}) == 0,
           "ConvPlan enqueue");
    CUDA_OK(K::convPlan(static_cast<int32_t*>(map_k.p), 27, n, static_cast<int32_t*>(plan_k.p), ws_plan.p,
                        ws_plan.bytes, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(plan_p.get<int32_t>(rows * n) == plan_k.get<int32_t>(rows * n), "ConvPlan plugin == kernel");
    std::vector<__half> fh(n * c_in), wh(c_out * 27 * c_in), bh(c_out), rh(n * c_out);
    for (std::size_t i = 0; i < fh.size(); ++i) fh[i] = __float2half(feats[i]);
    for (std::size_t i = 0; i < wh.size(); ++i) wh[i] = __float2half(weight[i]);
    for (std::size_t i = 0; i < bh.size(); ++i) bh[i] = __float2half(bias[i]);
    for (__half& v : rh) v = __float2half(u(rng));
    Buffer d_fh(fh), d_wh(wh), d_bh(bh), d_rh(rh), out_p(n * c_out * 2), out_k(n * c_out * 2);
    Buffer ws_conv(K::sparseConvWorkspaceSize(n, c_out, 27));
    IPluginV3* conv = make("SparseConv", cf);
    EXPECT(run(conv,
               {plain(DataType::kHALF, {n, c_in}), plain(DataType::kINT32, {rows, n}),
                plain(DataType::kHALF, {c_out, 27, c_in}), plain(DataType::kHALF, {c_out}),
                plain(DataType::kHALF, {n, c_out})},
               {plain(DataType::kHALF, {n, c_out})}, {d_fh.p, plan_k.p, d_wh.p, d_bh.p, d_rh.p}, {out_p.p}) == 0,
           "SparseConv (plan, residual) enqueue");
    CUDA_OK(K::sparseConv(sparsetrt::DataType::kFloat16, d_fh.p, n, c_in, static_cast<int32_t*>(plan_k.p),
                          K::MapLayout::kPlan, 27, n, d_wh.p, d_bh.p, d_rh.p, c_out, sparsetrt::Activation::kLeakyRelu,
                          0.1f, out_k.p, ws_conv.p, ws_conv.bytes, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(out_p.get<uint16_t>(n * c_out) == out_k.get<uint16_t>(n * c_out),
           "SparseConv (plan, residual) plugin == kernel");
    delete conv;
    delete planner;
  }

  // SparseRulebook (k3 s2 p1, batch 2): outputs sized for the declared bound, as TensorRT allocates them.
  Fields rf = exampleFields("SparseRulebook");
  IPluginV3* down = make("SparseRulebook", rf);
  sparsetrt::SparseRulebookAttrs ra;
  ra.spatial_shape = shape;
  ra.kernel_size = {3, 3, 3};
  ra.stride = {2, 2, 2};
  ra.padding = ra.dilation = {1, 1, 1};
  ra.output_padding = {0, 0, 0};
  ra.batch_size = 2;
  const int64_t bound = sparsetrt::sparseRulebookOutputBound(ra, n);
  Buffer idx_p(bound * 4 * 4), nb_p(27 * bound * 4), m_p(4), idx_k(bound * 4 * 4), nb_k(27 * bound * 4), m_k(4),
      over_k(4);
  EXPECT(run(down, {plain(DataType::kINT32, {n, 4})},
             {plain(DataType::kINT32, {bound, 4}), plain(DataType::kINT32, {27, bound}), plain(DataType::kINT32, {})},
             {d_sites.p}, {idx_p.p, nb_p.p, m_p.p}) == 0,
         "SparseRulebook enqueue");
  const sparsetrt::RulebookGeometry rg = sparsetrt::makeGeometry(ra);
  Buffer ws_r(K::sparseRulebookWorkspaceSize(n, rg, bound));
  CUDA_OK(K::sparseRulebook(static_cast<int32_t*>(d_sites.p), n, rg, bound, static_cast<int32_t*>(idx_k.p),
                            static_cast<int32_t*>(nb_k.p), static_cast<int32_t*>(m_k.p),
                            static_cast<int32_t*>(over_k.p), ws_r.p, ws_r.bytes, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const int32_t m = m_k.get<int32_t>(1)[0];
  EXPECT(m > 0 && m_p.get<int32_t>(1)[0] == m, "SparseRulebook num_out");
  EXPECT(idx_p.get<int32_t>(4 * m) == idx_k.get<int32_t>(4 * m), "SparseRulebook out_indices plugin == kernel");
  std::vector<int32_t> nbp = nb_p.get<int32_t>(27 * bound), nbk = nb_k.get<int32_t>(27 * bound);
  for (int k = 0; k < 27; ++k)  // rows are [k * M, k * M + M)
    EXPECT(std::equal(nbp.begin() + k * m, nbp.begin() + k * m + m, nbk.begin() + k * m), "SparseRulebook neighbors");

  // InverseRulebook of that map == kernel.
  Fields no_fields{};
  IPluginV3* inv = make("InverseRulebook", no_fields);
  Buffer inv_p(27 * n * 4), inv_k(27 * n * 4);
  EXPECT(run(inv, {plain(DataType::kINT32, {27, m}), plain(DataType::kINT32, {n, 4})},
             {plain(DataType::kINT32, {27, n})}, {nb_k.p, d_sites.p}, {inv_p.p}) == 0,
         "InverseRulebook enqueue");
  CUDA_OK(
      K::inverseRulebook(static_cast<int32_t*>(nb_k.p), 27, m, n, static_cast<int32_t*>(inv_k.p), nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(inv_p.get<int32_t>(27 * n) == inv_k.get<int32_t>(27 * n), "InverseRulebook plugin == kernel");

  // SparseMaxPool over the strided map == kernel.
  IPluginV3* pool = make("SparseMaxPool", no_fields);
  Buffer pool_p(m * c_in * 4), pool_k(m * c_in * 4);
  EXPECT(run(pool, {plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {27, m})},
             {plain(DataType::kFLOAT, {m, c_in})}, {d_feats.p, nb_k.p}, {pool_p.p}) == 0,
         "SparseMaxPool enqueue");
  CUDA_OK(K::sparseMaxPool(sparsetrt::DataType::kFloat32, d_feats.p, n, c_in, static_cast<int32_t*>(nb_k.p), 27, m,
                           pool_k.p, nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(pool_p.get<float>(m * c_in) == pool_k.get<float>(m * c_in), "SparseMaxPool plugin == kernel");

  // Densify (the example's grid is [2, 160, 160], so use sites with z < 2).
  Fields df = exampleFields("Densify");
  IPluginV3* dense = make("Densify", df);
  std::vector<int32_t> flat;
  for (int64_t i = 0; i < n; ++i)
    if (sites[4 * i + 1] < 2) flat.insert(flat.end(), sites.begin() + 4 * i, sites.begin() + 4 * i + 4);
  const int64_t nf = static_cast<int64_t>(flat.size() / 4), dense_elems = 2 * c_in * 2 * 160 * 160;
  Buffer d_flat(flat), dense_p(dense_elems * 4), dense_k(dense_elems * 4);
  EXPECT(run(dense, {plain(DataType::kFLOAT, {nf, c_in}), plain(DataType::kINT32, {nf, 4})},
             {plain(DataType::kFLOAT, {2, c_in, 2, 160, 160})}, {d_feats.p, d_flat.p}, {dense_p.p}) == 0,
         "Densify enqueue");
  const int32_t grid[3] = {2, 160, 160};
  CUDA_OK(K::densify(sparsetrt::DataType::kFloat32, d_feats.p, static_cast<int32_t*>(d_flat.p), nf, c_in, 3, grid, 2,
                     dense_k.p, nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(dense_p.get<float>(dense_elems) == dense_k.get<float>(dense_elems), "Densify plugin == kernel");

  // UniqueSites over the sites with z dropped (many duplicates: a sparse BEV), then SegmentReduce of the features
  // over its inverse, into zeros: both == the kernels.
  std::vector<int32_t> bev;
  for (int64_t i = 0; i < n; ++i) bev.insert(bev.end(), {sites[4 * i], sites[4 * i + 2] % 20, sites[4 * i + 3] % 20});
  Buffer d_bev(bev), uniq_p(n * 3 * 4), inv_p2(n * 4), cnt_p(n * 4), num_p(4);
  Buffer uniq_k(n * 3 * 4), inv_k2(n * 4), cnt_k(n * 4), num_k(4);
  Fields nf_fields;
  IPluginV3* uniq = make("UniqueSites", nf_fields);
  EXPECT(run(uniq, {plain(DataType::kINT32, {n, 3})},
             {plain(DataType::kINT32, {n, 3}), plain(DataType::kINT32, {n}), plain(DataType::kINT32, {n}),
              plain(DataType::kINT32, {})},
             {d_bev.p}, {uniq_p.p, inv_p2.p, cnt_p.p, num_p.p}) == 0,
         "UniqueSites enqueue");
  Buffer ws_u(K::uniqueSitesWorkspaceSize(n));
  CUDA_OK(K::uniqueSites(static_cast<int32_t*>(d_bev.p), n, 3, static_cast<int32_t*>(uniq_k.p),
                         static_cast<int32_t*>(inv_k2.p), static_cast<int32_t*>(cnt_k.p),
                         static_cast<int32_t*>(num_k.p), ws_u.p, ws_u.bytes, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t mu = num_k.get<int32_t>(1)[0];
  EXPECT(mu > 0 && mu < n && num_p.get<int32_t>(1)[0] == mu, "UniqueSites plugin M == kernel M (%lld)", (long long)mu);
  EXPECT(uniq_p.get<int32_t>(mu * 3) == uniq_k.get<int32_t>(mu * 3) &&
             cnt_p.get<int32_t>(mu) == cnt_k.get<int32_t>(mu) && inv_p2.get<int32_t>(n) == inv_k2.get<int32_t>(n),
         "UniqueSites plugin == kernel");
  for (int32_t reduction : {0, 1}) {
    Fields rf2 = exampleFields("SegmentReduce");
    rf2.ints[0] = {reduction};
    IPluginV3* seg = make("SegmentReduce", rf2);
    std::vector<float> zeros(mu * c_in, 0.0f);
    Buffer d_init(zeros), seg_p(mu * c_in * 4), seg_k(mu * c_in * 4);
    EXPECT(run(seg,
               {plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {n}), plain(DataType::kFLOAT, {mu, c_in})},
               {plain(DataType::kFLOAT, {mu, c_in})}, {d_feats.p, inv_k2.p, d_init.p}, {seg_p.p}) == 0,
           "SegmentReduce enqueue");
    Buffer ws_s(K::segmentReduceWorkspaceSize(n));
    CUDA_OK(K::segmentReduce(sparsetrt::DataType::kFloat32, d_feats.p, static_cast<int32_t*>(inv_k2.p), n, c_in,
                             d_init.p, mu, static_cast<sparsetrt::Reduction>(reduction), seg_k.p, ws_s.p, ws_s.bytes,
                             nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(seg_p.get<float>(mu * c_in) == seg_k.get<float>(mu * c_in), "SegmentReduce plugin == kernel");
    delete seg;
  }
  delete uniq;

  // MaskRows over a mask of every third row == the kernel.
  std::vector<int32_t> keep(n);
  for (int64_t i = 0; i < n; ++i) keep[i] = i % 3 == 0 ? 7 : 0;
  Buffer d_keep(keep), rows_p(n * 4), rows_k(n * 4), mnum_p(4), mnum_k(4);
  Fields no_fields2;
  IPluginV3* mask = make("MaskRows", no_fields2);
  EXPECT(run(mask, {plain(DataType::kINT32, {n})}, {plain(DataType::kINT32, {n}), plain(DataType::kINT32, {})},
             {d_keep.p}, {rows_p.p, mnum_p.p}) == 0,
         "MaskRows enqueue");
  Buffer ws_m(K::maskRowsWorkspaceSize(n));
  CUDA_OK(K::maskRows(static_cast<int32_t*>(d_keep.p), n, static_cast<int32_t*>(rows_k.p),
                      static_cast<int32_t*>(mnum_k.p), ws_m.p, ws_m.bytes, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t mk = mnum_k.get<int32_t>(1)[0];
  EXPECT(mk == (n + 2) / 3 && mnum_p.get<int32_t>(1)[0] == mk && rows_p.get<int32_t>(mk) == rows_k.get<int32_t>(mk),
         "MaskRows plugin == kernel");
  delete mask;

  // Overflow: a user bound below the true count is a failed enqueue (logged), never a truncation.
  Fields small = exampleFields("SparseRulebook");
  small.ints[7] = {10};  // max_out
  IPluginV3* capped = make("SparseRulebook", small);
  Buffer i10(10 * 4 * 4), n10(27 * 10 * 4), m10(4);
  EXPECT(run(capped, {plain(DataType::kINT32, {n, 4})},
             {plain(DataType::kINT32, {10, 4}), plain(DataType::kINT32, {27, 10}), plain(DataType::kINT32, {})},
             {d_sites.p}, {i10.p, n10.p, m10.p}) > 0,
         "SparseRulebook over max_out must fail");

  // N = 0 runs and yields M = 0.
  IPluginV3* empty = make("SparseRulebook", rf);
  EXPECT(run(empty, {plain(DataType::kINT32, {0, 4})},
             {plain(DataType::kINT32, {0, 4}), plain(DataType::kINT32, {27, 0}), plain(DataType::kINT32, {})},
             {d_sites.p}, {idx_p.p, nb_p.p, m_p.p}) == 0 &&
             m_p.get<int32_t>(1)[0] == 0,
         "SparseRulebook with N = 0");

  // Build phase: the builder runs plugins on whatever its inputs hold while it times tactics. An "overflow"
  // then is no error and nothing is read back: enqueue succeeds and consumers see M = 0.
  {
    IPluginV3* tuning = creators()["SparseRulebook"]->createPlugin("tuning", small.collection(), TensorRTPhase::kBUILD);
    EXPECT(tuning != nullptr, "build-phase SparseRulebook created");
    if (tuning) {
      CUDA_OK(cudaMemset(m10.p, 0x5A, 4));
      EXPECT(run(tuning, {plain(DataType::kINT32, {n, 4})},
                 {plain(DataType::kINT32, {10, 4}), plain(DataType::kINT32, {27, 10}), plain(DataType::kINT32, {})},
                 {d_sites.p}, {i10.p, n10.p, m10.p}) == 0 &&
                 m10.get<int32_t>(1)[0] == 0,
             "build-phase SparseRulebook over max_out: no error, M = 0");
      delete tuning;
    }
  }

  // Overflow inside a CUDA-graph capture: enqueue succeeds (it cannot synchronize), the graph runs without a
  // trap (the context stays usable), consumers see M = 0, and the device prints the overflow.
  {
    IPluginV3* graphed = make("SparseRulebook", small);
    std::vector<DynamicPluginTensorDesc> din(1), dout(3);
    const std::vector<PluginTensorDesc> ins{plain(DataType::kINT32, {n, 4})};
    const std::vector<PluginTensorDesc> outs{plain(DataType::kINT32, {10, 4}), plain(DataType::kINT32, {27, 10}),
                                             plain(DataType::kINT32, {})};
    din[0].desc = ins[0];
    din[0].min = din[0].opt = din[0].max = ins[0].dims;
    for (int i = 0; i < 3; ++i) {
      dout[i].desc = outs[i];
      dout[i].min = dout[i].opt = dout[i].max = outs[i].dims;
    }
    EXPECT(build(graphed)->configurePlugin(din.data(), 1, dout.data(), 3) == 0, "configure");
    Buffer ws(build(graphed)->getWorkspaceSize(din.data(), 1, dout.data(), 3));
    EXPECT(runtime(graphed)->onShapeChange(ins.data(), 1, outs.data(), 3) == 0, "onShapeChange");
    cudaStream_t s = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_OK(cudaMemset(m10.p, 0x5A, 4));
    const void* in_ptrs[1] = {d_sites.p};
    void* out_ptrs[3] = {i10.p, n10.p, m10.p};
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const int32_t status = runtime(graphed)->enqueue(ins.data(), outs.data(), in_ptrs, out_ptrs, ws.p, s);
    CUDA_OK(cudaStreamEndCapture(s, &graph));
    EXPECT(status == 0, "SparseRulebook enqueue under capture must not fail");
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphLaunch(exec, s));
    EXPECT(cudaStreamSynchronize(s) == cudaSuccess, "the captured overflow must not trap");
    EXPECT(m10.get<int32_t>(1)[0] == 0, "consumers see M = 0 after a captured overflow");
    void* probe = nullptr;
    EXPECT(cudaMalloc(&probe, 16) == cudaSuccess, "the CUDA context is still usable after a captured overflow");
    cudaFree(probe);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(s);
    delete graphed;
  }

  // The runtime read-back (outside capture) must not break a global-mode capture another thread has open:
  // everything else (configure, workspace, shapes) happens before that capture begins, only enqueue during it.
  {
    IPluginV3* eager = make("SparseRulebook", rf);
    std::vector<DynamicPluginTensorDesc> din(1), dout(3);
    const std::vector<PluginTensorDesc> ins{plain(DataType::kINT32, {n, 4})};
    const std::vector<PluginTensorDesc> outs{plain(DataType::kINT32, {bound, 4}), plain(DataType::kINT32, {27, bound}),
                                             plain(DataType::kINT32, {})};
    din[0].desc = ins[0];
    din[0].min = din[0].opt = din[0].max = ins[0].dims;
    for (int i = 0; i < 3; ++i) {
      dout[i].desc = outs[i];
      dout[i].min = dout[i].opt = dout[i].max = outs[i].dims;
    }
    EXPECT(build(eager)->configurePlugin(din.data(), 1, dout.data(), 3) == 0, "configure");
    Buffer ws(build(eager)->getWorkspaceSize(din.data(), 1, dout.data(), 3));
    EXPECT(runtime(eager)->onShapeChange(ins.data(), 1, outs.data(), 3) == 0, "onShapeChange");
    cudaStream_t mine = nullptr, other = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&mine, cudaStreamNonBlocking));
    CUDA_OK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
    Buffer scratch(64);
    cudaError_t begin = cudaErrorUnknown, end = cudaErrorUnknown;
    cudaGraph_t graph = nullptr;
    std::atomic<int> stage{0};
    std::thread capturer([&] {
      begin = cudaStreamBeginCapture(other, cudaStreamCaptureModeGlobal);
      cudaMemsetAsync(scratch.p, 0, 64, other);
      stage = 1;
      while (stage.load() != 2) std::this_thread::yield();
      end = cudaStreamEndCapture(other, &graph);
    });
    while (stage.load() != 1) std::this_thread::yield();
    const void* in_ptrs[1] = {d_sites.p};
    void* out_ptrs[3] = {idx_p.p, nb_p.p, m_p.p};
    const int32_t status = runtime(eager)->enqueue(ins.data(), outs.data(), in_ptrs, out_ptrs, ws.p, mine);
    stage = 2;
    capturer.join();
    CUDA_OK(cudaStreamSynchronize(mine));
    EXPECT(status == 0, "SparseRulebook enqueue while another thread captures");
    EXPECT(begin == cudaSuccess && end == cudaSuccess, "the other thread's capture survived (begin %s, end %s)",
           cudaGetErrorString(begin), cudaGetErrorString(end));
    EXPECT(m_p.get<int32_t>(1)[0] == m, "SparseRulebook num_out while another thread captures");
    if (graph) cudaGraphDestroy(graph);
    cudaStreamDestroy(mine);
    cudaStreamDestroy(other);
    delete eager;
  }

  // A deserialized SparseConv knows about its bias before any shape change (the engine carries it).
  {
    IPluginV3* configured = make("SparseConv", cf);
    std::vector<DynamicPluginTensorDesc> din(4), dout(1);
    const std::vector<PluginTensorDesc> ins{plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {27, n}),
                                            plain(DataType::kFLOAT, {c_out, 27, c_in}),
                                            plain(DataType::kFLOAT, {c_out})};
    for (int i = 0; i < 4; ++i) {
      din[i].desc = ins[i];
      din[i].min = din[i].opt = din[i].max = ins[i].dims;
    }
    dout[0].desc = plain(DataType::kFLOAT, {n, c_out});
    EXPECT(build(configured)->configurePlugin(din.data(), 4, dout.data(), 1) == 0, "configure with bias");
    IPluginV3* restored = creators()["SparseConv"]->createPlugin("conv", runtime(configured)->getFieldsToSerialize(),
                                                                 TensorRTPhase::kRUNTIME);
    EXPECT(restored != nullptr, "deserialized SparseConv");
    if (restored) {
      Buffer out_r(n * c_out * 4), out_k(n * c_out * 4);
      const void* in_ptrs[4] = {d_feats.p, map_k.p, d_weight.p, d_bias.p};
      void* out_ptrs[1] = {out_r.p};
      const PluginTensorDesc out_desc = plain(DataType::kFLOAT, {n, c_out});
      EXPECT(runtime(restored)->enqueue(ins.data(), &out_desc, in_ptrs, out_ptrs, nullptr, nullptr) == 0,
             "deserialized SparseConv enqueue");
      CUDA_OK(K::sparseConv(sparsetrt::DataType::kFloat32, d_feats.p, n, c_in, static_cast<int32_t*>(map_k.p),
                            K::MapLayout::kNeighbors, 27, n, d_weight.p, d_bias.p, nullptr, c_out,
                            sparsetrt::Activation::kLeakyRelu, 0.1f, out_k.p, nullptr, 0, nullptr));
      CUDA_OK(cudaDeviceSynchronize());
      EXPECT(out_r.get<float>(n * c_out) == out_k.get<float>(n * c_out), "deserialized SparseConv adds its bias");
      delete restored;
    }
    delete configured;
  }

  for (IPluginV3* p : {subm, down, inv, pool, dense, capped, empty}) delete p;
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
