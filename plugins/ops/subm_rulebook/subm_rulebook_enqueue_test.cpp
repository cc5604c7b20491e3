// SubmRulebook's plugin, driven as TensorRT drives it, against its kernel on the scene's sites (enqueue_test.h).
#include "enqueue_test.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(SubmRulebook) {
  const int64_t n = scene.n;
  Fields sf = exampleFields("SubmRulebook");  // the scene's grid, k3
  IPluginV3* subm = make("SubmRulebook", sf);
  Buffer map_p(27 * n * 4);
  EXPECT(run(subm, {plain(DataType::kINT32, {n, 4})}, {plain(DataType::kINT32, {27, n})}, {scene.d_sites.p},
             {map_p.p}) == 0,
         "SubmRulebook enqueue");
  EXPECT(map_p.get<int32_t>(27 * n) == scene.subm_map.get<int32_t>(27 * n), "SubmRulebook plugin == kernel");
  delete subm;
}
