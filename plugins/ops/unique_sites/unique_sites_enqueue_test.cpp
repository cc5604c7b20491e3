// UniqueSites' plugin, driven as TensorRT drives it, against its kernel (enqueue_test.h): the scene's sites with z
// dropped and y, x folded (many duplicates: a sparse BEV).
#include <vector>

#include "enqueue_test.h"
#include "ops/unique_sites/unique_sites_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(UniqueSites) {
  const int64_t n = scene.n;
  std::vector<int32_t> bev;
  for (int64_t i = 0; i < n; ++i)
    bev.insert(bev.end(), {scene.sites[4 * i], scene.sites[4 * i + 2] % 20, scene.sites[4 * i + 3] % 20});
  Buffer d_bev(bev), uniq_p(n * 3 * 4), inv_p(n * 4), cnt_p(n * 4), num_p(4);
  Buffer uniq_k(n * 3 * 4), inv_k(n * 4), cnt_k(n * 4), num_k(4);
  Fields no_fields;
  IPluginV3* uniq = make("UniqueSites", no_fields);
  EXPECT(run(uniq, {plain(DataType::kINT32, {n, 3})},
             {plain(DataType::kINT32, {n, 3}), plain(DataType::kINT32, {n}), plain(DataType::kINT32, {n}),
              plain(DataType::kINT32, {})},
             {d_bev.p}, {uniq_p.p, inv_p.p, cnt_p.p, num_p.p}) == 0,
         "UniqueSites enqueue");
  Buffer ws_u(K::uniqueSitesWorkspaceSize(n));
  CUDA_OK(K::uniqueSites(d_bev.i32(), n, 3, uniq_k.i32(), inv_k.i32(), cnt_k.i32(), num_k.i32(), ws_u.p, ws_u.bytes,
                         nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t mu = num_k.get<int32_t>(1)[0];
  EXPECT(mu > 0 && mu < n && num_p.get<int32_t>(1)[0] == mu, "UniqueSites plugin M == kernel M (%lld)", (long long)mu);
  EXPECT(uniq_p.get<int32_t>(mu * 3) == uniq_k.get<int32_t>(mu * 3) &&
             cnt_p.get<int32_t>(mu) == cnt_k.get<int32_t>(mu) && inv_p.get<int32_t>(n) == inv_k.get<int32_t>(n),
         "UniqueSites plugin == kernel");
  delete uniq;
}
