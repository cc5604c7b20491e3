// SegmentReduce's plugin, driven as TensorRT drives it, against its kernel (enqueue_test.h): the scene's features
// summed and maxed over UniqueSites' inverse of the scene's sites with z dropped and y, x folded (a sparse BEV),
// into zeros.
#include <vector>

#include "enqueue_test.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/segment_reduce/segment_reduce_kernels.h"
#include "ops/unique_sites/unique_sites_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(SegmentReduce) {
  const int64_t n = scene.n, c_in = scene.c_in;
  std::vector<int32_t> bev;
  for (int64_t i = 0; i < n; ++i)
    bev.insert(bev.end(), {scene.sites[4 * i], scene.sites[4 * i + 2] % 20, scene.sites[4 * i + 3] % 20});
  Buffer d_bev(bev), uniq(n * 3 * 4), inverse(n * 4), counts(n * 4), num(4), ws_u(K::uniqueSitesWorkspaceSize(n));
  CUDA_OK(K::uniqueSites(d_bev.i32(), n, 3, uniq.i32(), inverse.i32(), counts.i32(), num.i32(), ws_u.p, ws_u.bytes,
                         nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t mu = num.get<int32_t>(1)[0];
  EXPECT(mu > 0 && mu < n, "SegmentReduce: the BEV sites merge (M = %lld of %lld)", (long long)mu, (long long)n);
  for (int32_t reduction : {0, 1}) {
    Fields rf = exampleFields("SegmentReduce");
    rf.ints[0] = {reduction};
    IPluginV3* seg = make("SegmentReduce", rf);
    std::vector<float> zeros(mu * c_in, 0.0f);
    Buffer d_init(zeros), seg_p(mu * c_in * 4), seg_k(mu * c_in * 4);
    EXPECT(run(seg,
               {plain(DataType::kFLOAT, {n, c_in}), plain(DataType::kINT32, {n}), plain(DataType::kFLOAT, {mu, c_in})},
               {plain(DataType::kFLOAT, {mu, c_in})}, {scene.d_feats.p, inverse.p, d_init.p}, {seg_p.p}) == 0,
           "SegmentReduce enqueue");
    Buffer ws_s(K::segmentReduceWorkspaceSize(n));
    CUDA_OK(K::segmentReduce(sparsetrt::DataType::kFloat32, scene.d_feats.p, inverse.i32(), n, c_in, d_init.p, mu,
                             static_cast<sparsetrt::Reduction>(reduction), seg_k.p, ws_s.p, ws_s.bytes, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT(seg_p.get<float>(mu * c_in) == seg_k.get<float>(mu * c_in), "SegmentReduce plugin == kernel");
    delete seg;
  }
}
