// InverseRulebook's plugin, driven as TensorRT drives it, against its kernel on the scene's strided rulebook
// (enqueue_test.h).
#include "enqueue_test.h"
#include "ops/inverse_rulebook/inverse_rulebook_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(InverseRulebook) {
  const int64_t n = scene.n, m = scene.m;
  Fields no_fields{};
  IPluginV3* inv = make("InverseRulebook", no_fields);
  Buffer inv_p(27 * n * 4), inv_k(27 * n * 4);
  EXPECT(run(inv, {plain(DataType::kINT32, {27, m}), plain(DataType::kINT32, {n, 4})},
             {plain(DataType::kINT32, {27, n})}, {scene.strided_map.p, scene.d_sites.p}, {inv_p.p}) == 0,
         "InverseRulebook enqueue");
  CUDA_OK(K::inverseRulebook(scene.strided_map.i32(), 27, m, n, inv_k.i32(), nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(inv_p.get<int32_t>(27 * n) == inv_k.get<int32_t>(27 * n), "InverseRulebook plugin == kernel");
  delete inv;
}
