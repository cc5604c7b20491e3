// SparseMaxPool's plugin, driven as TensorRT drives it, against its kernel over the scene's strided rulebook
// (enqueue_test.h).
#include "enqueue_test.h"
#include "ops/sparse_max_pool/sparse_max_pool_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(SparseMaxPool) {
  const int64_t n = scene.n, c_in = scene.c_in, m = scene.m;
  Fields no_fields{};
  IPluginV3* pool = make("SparseMaxPool", no_fields);
  Buffer pool_p(m * c_in * 4), pool_k(m * c_in * 4);
  EXPECT(run(pool, {plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {27, m})},
             {plain(DataType::kFLOAT, {m, c_in})}, {scene.d_feats.p, scene.strided_map.p}, {pool_p.p}) == 0,
         "SparseMaxPool enqueue");
  CUDA_OK(K::sparseMaxPool(sparsetrt::DataType::kFloat32, scene.d_feats.p, n, c_in, scene.strided_map.i32(), 27, m,
                           pool_k.p, nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(pool_p.get<float>(m * c_in) == pool_k.get<float>(m * c_in), "SparseMaxPool plugin == kernel");
  delete pool;
}
