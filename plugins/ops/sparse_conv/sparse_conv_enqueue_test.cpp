// SparseConv's plugin, driven as TensorRT drives it, against its kernel (enqueue_test.h): over the scene's
// submanifold map with and without bias (the plugin learns which from its input count); fp16 over that map's
// ConvPlan with a residual (the tensor-core path, with its split workspace); and a deserialized plugin knows about
// its bias before any shape change (the engine carries it).
#include <cuda_fp16.h>

#include <random>
#include <vector>

#include "enqueue_test.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_conv/sparse_conv_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(SparseConv) {
  const int64_t n = scene.n, c_in = scene.c_in, c_out = scene.c_out;
  Fields cf = exampleFields("SparseConv");  // leaky relu, alpha 0.1
  for (bool with_bias : {true, false}) {
    IPluginV3* conv = make("SparseConv", cf);
    Buffer out_p(n * c_out * 4), out_k(n * c_out * 4);
    std::vector<PluginTensorDesc> ins{plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {27, n}),
                                      plain(DataType::kFLOAT, {c_out, 27, c_in})};
    std::vector<const void*> ptrs{scene.d_feats.p, scene.subm_map.p, scene.d_weight.p};
    if (with_bias) {
      ins.push_back(plain(DataType::kFLOAT, {c_out}));
      ptrs.push_back(scene.d_bias.p);
    }
    EXPECT(run(conv, ins, {plain(DataType::kFLOAT, {n, c_out})}, ptrs, {out_p.p}) == 0, "SparseConv enqueue");
    CUDA_OK(K::sparseConv(sparsetrt::DataType::kFloat32, scene.d_feats.p, n, c_in, scene.subm_map.i32(),
                          K::MapLayout::kNeighbors, 27, n, scene.d_weight.p, with_bias ? scene.d_bias.p : nullptr,
                          nullptr, c_out, sparsetrt::Activation::kLeakyRelu, 0.1f, out_k.p, nullptr, 0, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(out_p.get<float>(n * c_out) == out_k.get<float>(n * c_out),
           with_bias ? "SparseConv (bias) plugin == kernel" : "SparseConv (no bias) plugin == kernel");
    delete conv;
  }
}

ENQUEUE_TEST(SparseConvPlanResidual) {
  const int64_t n = scene.n, c_in = scene.c_in, c_out = scene.c_out;
  const int64_t rows = sparsetrt::convPlanRows(27);
  Buffer plan(rows * n * 4), ws_plan(K::convPlanWorkspaceSize(n, 27));
  CUDA_OK(K::convPlan(scene.subm_map.i32(), 27, n, plan.i32(), ws_plan.p, ws_plan.bytes, nullptr));
  std::mt19937 rng(2025);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<__half> fh(n * c_in), wh(c_out * 27 * c_in), bh(c_out), rh(n * c_out);
  for (std::size_t i = 0; i < fh.size(); ++i) fh[i] = __float2half(scene.feats[i]);
  for (std::size_t i = 0; i < wh.size(); ++i) wh[i] = __float2half(scene.weight[i]);
  for (std::size_t i = 0; i < bh.size(); ++i) bh[i] = __float2half(scene.bias[i]);
  for (__half& v : rh) v = __float2half(u(rng));
  Buffer d_fh(fh), d_wh(wh), d_bh(bh), d_rh(rh), out_p(n * c_out * 2), out_k(n * c_out * 2);
  Buffer ws_conv(K::sparseConvWorkspaceSize(n, c_out, 27));
  Fields cf = exampleFields("SparseConv");  // leaky relu, alpha 0.1
  IPluginV3* conv = make("SparseConv", cf);
  EXPECT(run(conv,
             {plain(DataType::kHALF, {n, c_in}), plain(DataType::kINT32, {rows, n}),
              plain(DataType::kHALF, {c_out, 27, c_in}), plain(DataType::kHALF, {c_out}),
              plain(DataType::kHALF, {n, c_out})},
             {plain(DataType::kHALF, {n, c_out})}, {d_fh.p, plan.p, d_wh.p, d_bh.p, d_rh.p}, {out_p.p}) == 0,
         "SparseConv (plan, residual) enqueue");
  CUDA_OK(K::sparseConv(sparsetrt::DataType::kFloat16, d_fh.p, n, c_in, plan.i32(), K::MapLayout::kPlan, 27, n, d_wh.p,
                        d_bh.p, d_rh.p, c_out, sparsetrt::Activation::kLeakyRelu, 0.1f, out_k.p, ws_conv.p,
                        ws_conv.bytes, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(out_p.get<uint16_t>(n * c_out) == out_k.get<uint16_t>(n * c_out),
         "SparseConv (plan, residual) plugin == kernel");
  delete conv;
}

ENQUEUE_TEST(SparseConvDeserialized) {
  const int64_t n = scene.n, c_in = scene.c_in, c_out = scene.c_out;
  Fields cf = exampleFields("SparseConv");
  IPluginV3* configured = make("SparseConv", cf);
  const std::vector<PluginTensorDesc> ins{plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {27, n}),
                                          plain(DataType::kFLOAT, {c_out, 27, c_in}), plain(DataType::kFLOAT, {c_out})};
  std::vector<DynamicPluginTensorDesc> din = exactly(ins), dout(1);
  dout[0].desc = plain(DataType::kFLOAT, {n, c_out});
  EXPECT(build(configured)->configurePlugin(din.data(), 4, dout.data(), 1) == 0, "configure with bias");
  IPluginV3* restored = creators()["SparseConv"]->createPlugin("conv", runtime(configured)->getFieldsToSerialize(),
                                                               TensorRTPhase::kRUNTIME);
  EXPECT(restored != nullptr, "deserialized SparseConv");
  if (restored) {
    Buffer out_r(n * c_out * 4), out_k(n * c_out * 4);
    const void* in_ptrs[4] = {scene.d_feats.p, scene.subm_map.p, scene.d_weight.p, scene.d_bias.p};
    void* out_ptrs[1] = {out_r.p};
    const PluginTensorDesc out_desc = plain(DataType::kFLOAT, {n, c_out});
    EXPECT(runtime(restored)->enqueue(ins.data(), &out_desc, in_ptrs, out_ptrs, nullptr, nullptr) == 0,
           "deserialized SparseConv enqueue");
    CUDA_OK(K::sparseConv(sparsetrt::DataType::kFloat32, scene.d_feats.p, n, c_in, scene.subm_map.i32(),
                          K::MapLayout::kNeighbors, 27, n, scene.d_weight.p, scene.d_bias.p, nullptr, c_out,
                          sparsetrt::Activation::kLeakyRelu, 0.1f, out_k.p, nullptr, 0, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(out_r.get<float>(n * c_out) == out_k.get<float>(n * c_out), "deserialized SparseConv adds its bias");
    delete restored;
  }
  delete configured;
}
