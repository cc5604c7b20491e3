// SparseRulebook's plugin, driven as TensorRT drives it, against its kernel (enqueue_test.h): the scene's strided
// rulebook (outputs sized for the declared bound, as TensorRT allocates them) and N = 0; the overflow report (an
// error at run time; nothing in the build phase; a device print, no trap, under capture); and the read-back leaves
// another thread's global-mode capture alone.
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "enqueue_test.h"

using namespace sparsetrt_enqueue_test;

namespace {

// The plugin with max_out = 10, far below the scene's count.
Fields cappedFields() {
  Fields small = exampleFields("SparseRulebook");
  small.ints[7] = {10};  // max_out
  return small;
}

}  // namespace

ENQUEUE_TEST(SparseRulebook) {
  const int64_t n = scene.n, bound = scene.bound, m = scene.m;
  Fields rf = exampleFields("SparseRulebook");  // the scene's grid, k3 s2 p1, batch 2
  IPluginV3* down = make("SparseRulebook", rf);
  Buffer idx_p(bound * 4 * 4), nb_p(27 * bound * 4), m_p(4);
  EXPECT(run(down, {plain(DataType::kINT32, {n, 4})},
             {plain(DataType::kINT32, {bound, 4}), plain(DataType::kINT32, {27, bound}), plain(DataType::kINT32, {})},
             {scene.d_sites.p}, {idx_p.p, nb_p.p, m_p.p}) == 0,
         "SparseRulebook enqueue");
  EXPECT(m > 0 && m_p.get<int32_t>(1)[0] == m, "SparseRulebook num_out");
  EXPECT(idx_p.get<int32_t>(4 * m) == scene.strided_indices.get<int32_t>(4 * m),
         "SparseRulebook out_indices plugin == kernel");
  std::vector<int32_t> nbp = nb_p.get<int32_t>(27 * bound), nbk = scene.strided_map.get<int32_t>(27 * bound);
  for (int k = 0; k < 27; ++k)  // rows are [k * M, k * M + M)
    EXPECT(std::equal(nbp.begin() + k * m, nbp.begin() + k * m + m, nbk.begin() + k * m), "SparseRulebook neighbors");

  // N = 0 runs and yields M = 0.
  IPluginV3* empty = make("SparseRulebook", rf);
  EXPECT(run(empty, {plain(DataType::kINT32, {0, 4})},
             {plain(DataType::kINT32, {0, 4}), plain(DataType::kINT32, {27, 0}), plain(DataType::kINT32, {})},
             {scene.d_sites.p}, {idx_p.p, nb_p.p, m_p.p}) == 0 &&
             m_p.get<int32_t>(1)[0] == 0,
         "SparseRulebook with N = 0");
  delete empty;
  delete down;
}

ENQUEUE_TEST(SparseRulebookOverflow) {
  const int64_t n = scene.n;
  Fields small = cappedFields();
  Buffer i10(10 * 4 * 4), n10(27 * 10 * 4), m10(4);
  const std::vector<PluginTensorDesc> ins{plain(DataType::kINT32, {n, 4})};
  const std::vector<PluginTensorDesc> outs{plain(DataType::kINT32, {10, 4}), plain(DataType::kINT32, {27, 10}),
                                           plain(DataType::kINT32, {})};

  // A user bound below the true count is a failed enqueue (logged), never a truncation.
  IPluginV3* capped = make("SparseRulebook", small);
  EXPECT(run(capped, ins, outs, {scene.d_sites.p}, {i10.p, n10.p, m10.p}) > 0, "SparseRulebook over max_out must fail");
  delete capped;

  // Build phase: the builder runs plugins on whatever its inputs hold while it times tactics. An "overflow"
  // then is no error and nothing is read back: enqueue succeeds and consumers see M = 0.
  {
    IPluginV3* tuning = creators()["SparseRulebook"]->createPlugin("tuning", small.collection(), TensorRTPhase::kBUILD);
    EXPECT(tuning != nullptr, "build-phase SparseRulebook created");
    if (tuning) {
      CUDA_OK(cudaMemset(m10.p, 0x5A, 4));
      EXPECT(run(tuning, ins, outs, {scene.d_sites.p}, {i10.p, n10.p, m10.p}) == 0 && m10.get<int32_t>(1)[0] == 0,
             "build-phase SparseRulebook over max_out: no error, M = 0");
      delete tuning;
    }
  }

  // Overflow inside a CUDA-graph capture: enqueue succeeds (it cannot synchronize), the graph runs without a
  // trap (the context stays usable), consumers see M = 0, and the device prints the overflow.
  {
    IPluginV3* graphed = make("SparseRulebook", small);
    std::vector<DynamicPluginTensorDesc> din = exactly(ins), dout = exactly(outs);
    EXPECT(build(graphed)->configurePlugin(din.data(), 1, dout.data(), 3) == 0, "configure");
    Buffer ws(build(graphed)->getWorkspaceSize(din.data(), 1, dout.data(), 3));
    EXPECT(runtime(graphed)->onShapeChange(ins.data(), 1, outs.data(), 3) == 0, "onShapeChange");
    cudaStream_t s = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_OK(cudaMemset(m10.p, 0x5A, 4));
    const void* in_ptrs[1] = {scene.d_sites.p};
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
}

// The runtime read-back (outside capture) must not break a global-mode capture another thread has open:
// everything else (configure, workspace, shapes) happens before that capture begins, only enqueue during it.
ENQUEUE_TEST(SparseRulebookBesideCapture) {
  const int64_t n = scene.n, bound = scene.bound;
  Fields rf = exampleFields("SparseRulebook");
  IPluginV3* eager = make("SparseRulebook", rf);
  const std::vector<PluginTensorDesc> ins{plain(DataType::kINT32, {n, 4})};
  const std::vector<PluginTensorDesc> outs{plain(DataType::kINT32, {bound, 4}), plain(DataType::kINT32, {27, bound}),
                                           plain(DataType::kINT32, {})};
  std::vector<DynamicPluginTensorDesc> din = exactly(ins), dout = exactly(outs);
  EXPECT(build(eager)->configurePlugin(din.data(), 1, dout.data(), 3) == 0, "configure");
  Buffer ws(build(eager)->getWorkspaceSize(din.data(), 1, dout.data(), 3));
  EXPECT(runtime(eager)->onShapeChange(ins.data(), 1, outs.data(), 3) == 0, "onShapeChange");
  Buffer idx_p(bound * 4 * 4), nb_p(27 * bound * 4), m_p(4);
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
  const void* in_ptrs[1] = {scene.d_sites.p};
  void* out_ptrs[3] = {idx_p.p, nb_p.p, m_p.p};
  const int32_t status = runtime(eager)->enqueue(ins.data(), outs.data(), in_ptrs, out_ptrs, ws.p, mine);
  stage = 2;
  capturer.join();
  CUDA_OK(cudaStreamSynchronize(mine));
  EXPECT(status == 0, "SparseRulebook enqueue while another thread captures");
  EXPECT(begin == cudaSuccess && end == cudaSuccess, "the other thread's capture survived (begin %s, end %s)",
         cudaGetErrorString(begin), cudaGetErrorString(end));
  EXPECT(m_p.get<int32_t>(1)[0] == scene.m, "SparseRulebook num_out while another thread captures");
  if (graph) cudaGraphDestroy(graph);
  cudaStreamDestroy(mine);
  cudaStreamDestroy(other);
  delete eager;
}
