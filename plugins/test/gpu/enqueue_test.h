// The plugins' enqueue tests' harness. Each op's test lives in its folder (ops/<op>/<op>_enqueue_test.cpp) and
// registers itself (ENQUEUE_TEST); test_plugin_enqueue.cpp's main builds one scene and runs them. A plugin,
// created through its creator and driven as TensorRT drives it (configurePlugin, getWorkspaceSize,
// onShapeChange, enqueue), must produce exactly what the kernel library produces from the same inputs
// (test_kernels checks those against CPU models): this checks the glue, argument plumbing, workspace carving,
// optional inputs and how errors are reported.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gpu_check.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_kernels.h"
#include "plugin_test_util.h"

namespace sparsetrt_enqueue_test {

using namespace nvinfer1;
using namespace sparsetrt_test;
namespace K = sparsetrt::kernels;

struct Buffer {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit Buffer(std::size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&p, n ? n : 1)); }
  template <typename T>
  explicit Buffer(const std::vector<T>& h) : Buffer(h.size() * sizeof(T)) {
    if (bytes) CUDA_OK(cudaMemcpy(p, h.data(), bytes, cudaMemcpyHostToDevice));
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cudaFree(p); }
  template <typename T>
  std::vector<T> get(std::size_t count) const {
    std::vector<T> h(count);
    if (count) CUDA_OK(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  int32_t* i32() const { return static_cast<int32_t*>(p); }
};

inline PluginTensorDesc plain(DataType type, std::vector<int64_t> dims) { return desc(type, std::move(dims)).desc; }

// The dynamic descriptions the builder gives configurePlugin for exactly these shapes.
inline std::vector<DynamicPluginTensorDesc> exactly(const std::vector<PluginTensorDesc>& descs) {
  std::vector<DynamicPluginTensorDesc> out;
  for (const auto& d : descs) {
    DynamicPluginTensorDesc x{};
    x.desc = d;
    x.min = x.opt = x.max = d.dims;
    out.push_back(x);
  }
  return out;
}

// Configure as the builder would for exactly these shapes, size the workspace, then enqueue.
inline int32_t run(IPluginV3* plugin, const std::vector<PluginTensorDesc>& ins,
                   const std::vector<PluginTensorDesc>& outs, const std::vector<const void*>& in_ptrs,
                   const std::vector<void*>& out_ptrs) {
  std::vector<DynamicPluginTensorDesc> din = exactly(ins), dout = exactly(outs);
  const int32_t nin = static_cast<int32_t>(ins.size()), nout = static_cast<int32_t>(outs.size());
  if (build(plugin)->configurePlugin(din.data(), nin, dout.data(), nout) != 0) return -1;
  Buffer ws(build(plugin)->getWorkspaceSize(din.data(), nin, dout.data(), nout));
  if (runtime(plugin)->onShapeChange(ins.data(), nin, outs.data(), nout) != 0) return -2;
  const int32_t status =
      runtime(plugin)->enqueue(ins.data(), outs.data(), in_ptrs.data(), out_ptrs.data(), ws.p, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  return status;
}

inline IPluginV3* make(const char* op, Fields& f) {
  IPluginV3* p = creators()[op]->createPlugin(op, f.collection(), TensorRTPhase::kRUNTIME);
  if (!p) {
    std::printf("FAIL: could not create %s\n", op);
    std::exit(1);
  }
  return p;
}

inline std::vector<int32_t> randomSites(std::mt19937& rng, int n, int batch, const std::vector<int32_t>& shape) {
  std::set<std::tuple<int, int, int, int>> seen;
  std::vector<int32_t> rows;
  while (static_cast<int>(seen.size()) < n) {
    const int b = rng() % batch, z = rng() % shape[0], y = rng() % shape[1], x = rng() % shape[2];
    if (seen.insert({b, z, y, x}).second) rows.insert(rows.end(), {b, z, y, x});
  }
  return rows;
}

// One small network's worth of inputs, shared by every op's test: 3000 distinct sites in a [41, 160, 160] grid
// (batch 2) with 13 fp32 features each, a 3x3x3 conv's weight [7, 27, 13] and bias.
struct SceneInputs {
  std::vector<int32_t> shape{41, 160, 160};
  int64_t n = 3000, c_in = 13, c_out = 7;
  std::vector<int32_t> sites;
  std::vector<float> feats, weight, bias;
};

inline SceneInputs sceneInputs() {
  SceneInputs in;
  std::mt19937 rng(2024);
  in.sites = randomSites(rng, static_cast<int>(in.n), 2, in.shape);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  in.feats.resize(in.n * in.c_in);
  in.weight.resize(in.c_out * 27 * in.c_in);
  in.bias.resize(in.c_out);
  for (float& v : in.feats) v = u(rng);
  for (float& v : in.weight) v = u(rng);
  for (float& v : in.bias) v = u(rng);
  return in;
}

// The scene's inputs on the device, and the two maps a network makes of such sites, by the kernels: the
// submanifold map [27, N] (SubmRulebook k3) and the strided rulebook (SparseRulebook k3 s2 p1, its outputs sized
// for the declared bound, as TensorRT allocates them).
struct Scene : SceneInputs {
  Buffer d_sites, d_feats, d_weight, d_bias;
  sparsetrt::SparseRulebookAttrs strided_attrs;
  int64_t bound = 0;                                                     // the strided rulebook's declared bound on M
  Buffer subm_map;                                                       // [27, n]
  Buffer strided_indices, strided_map, strided_count, strided_overflow;  // [bound, 4], [27, bound] as [27, m], 1, 1
  int64_t m = 0;                                                         // the strided rulebook's output count

  static sparsetrt::SparseRulebookAttrs stridedAttrs(const std::vector<int32_t>& shape) {
    sparsetrt::SparseRulebookAttrs ra;
    ra.spatial_shape = shape;
    ra.kernel_size = {3, 3, 3};
    ra.stride = {2, 2, 2};
    ra.padding = ra.dilation = {1, 1, 1};
    ra.output_padding = {0, 0, 0};
    ra.batch_size = 2;
    return ra;
  }

  explicit Scene(SceneInputs in)
      : SceneInputs(std::move(in)),
        d_sites(sites),
        d_feats(feats),
        d_weight(weight),
        d_bias(bias),
        strided_attrs(stridedAttrs(shape)),
        bound(sparsetrt::sparseRulebookOutputBound(strided_attrs, n)),
        subm_map(27 * n * 4),
        strided_indices(bound * 4 * 4),
        strided_map(27 * bound * 4),
        strided_count(4),
        strided_overflow(4) {
    const sparsetrt::SubmRulebookAttrs sa{shape, {3, 3, 3}, {1, 1, 1}};
    Buffer ws_subm(K::submRulebookWorkspaceSize(n));
    CUDA_OK(K::submRulebook(d_sites.i32(), n, sparsetrt::makeGeometry(sa), subm_map.i32(), ws_subm.p, ws_subm.bytes,
                            nullptr));
    const sparsetrt::RulebookGeometry rg = sparsetrt::makeGeometry(strided_attrs);
    Buffer ws_r(K::sparseRulebookWorkspaceSize(n, rg, bound));
    CUDA_OK(K::sparseRulebook(d_sites.i32(), n, rg, bound, strided_indices.i32(), strided_map.i32(),
                              strided_count.i32(), strided_overflow.i32(), ws_r.p, ws_r.bytes, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    m = strided_count.get<int32_t>(1)[0];
  }
};

// A registered test: ENQUEUE_TEST(SparseConv) { ... scene ... } runs with the shared scene (read-only: a test
// writes into buffers of its own).
struct Test {
  std::string name;
  void (*fn)(const Scene&);
};

inline std::vector<Test>& tests() {
  static std::vector<Test> registered;
  return registered;
}

struct RegisterTest {
  RegisterTest(const char* name, void (*fn)(const Scene&)) { tests().push_back(Test{name, fn}); }
};

}  // namespace sparsetrt_enqueue_test

#define ENQUEUE_TEST(name)                                                                                      \
  static void enqueue_test_##name(const ::sparsetrt_enqueue_test::Scene& scene);                                \
  static const ::sparsetrt_enqueue_test::RegisterTest enqueue_test_register_##name(#name, enqueue_test_##name); \
  static void enqueue_test_##name(const ::sparsetrt_enqueue_test::Scene& scene)
