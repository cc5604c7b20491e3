// Densify's plugin, driven as TensorRT drives it, against its kernel (enqueue_test.h).
#include "enqueue_test.h"
#include "ops/densify/densify_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(Densify) {
  const int64_t n = scene.n, c_in = scene.c_in;
  // The example's grid is [2, 160, 160], so the scene's sites with z < 2.
  Fields df = exampleFields("Densify");
  IPluginV3* dense = make("Densify", df);
  std::vector<int32_t> flat;
  for (int64_t i = 0; i < n; ++i)
    if (scene.sites[4 * i + 1] < 2)
      flat.insert(flat.end(), scene.sites.begin() + 4 * i, scene.sites.begin() + 4 * i + 4);
  const int64_t nf = static_cast<int64_t>(flat.size() / 4), dense_elems = 2 * c_in * 2 * 160 * 160;
  Buffer d_flat(flat), dense_p(dense_elems * 4), dense_k(dense_elems * 4);
  EXPECT(run(dense, {plain(DataType::kFLOAT, {nf, c_in}), plain(DataType::kINT32, {nf, 4})},
             {plain(DataType::kFLOAT, {2, c_in, 2, 160, 160})}, {scene.d_feats.p, d_flat.p}, {dense_p.p}) == 0,
         "Densify enqueue");
  const int32_t grid[3] = {2, 160, 160};
  CUDA_OK(K::densify(sparsetrt::DataType::kFloat32, scene.d_feats.p, d_flat.i32(), nf, c_in, 3, grid, 2, dense_k.p,
                     nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(dense_p.get<float>(dense_elems) == dense_k.get<float>(dense_elems), "Densify plugin == kernel");
  delete dense;
}
