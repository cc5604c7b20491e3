// ConvPlan's plugin, driven as TensorRT drives it, against its kernel on the scene's submanifold map
// (enqueue_test.h).
#include "enqueue_test.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(ConvPlan) {
  const int64_t n = scene.n;
  Fields no_attrs{};
  IPluginV3* planner = make("ConvPlan", no_attrs);
  const int64_t rows = sparsetrt::convPlanRows(27);
  Buffer plan_p(rows * n * 4), plan_k(rows * n * 4), ws_plan(K::convPlanWorkspaceSize(n, 27));
  EXPECT(run(planner, {plain(DataType::kINT32, {27, n})}, {plain(DataType::kINT32, {rows, n})}, {scene.subm_map.p},
             {plan_p.p}) == 0,
         "ConvPlan enqueue");
  CUDA_OK(K::convPlan(scene.subm_map.i32(), 27, n, plan_k.i32(), ws_plan.p, ws_plan.bytes, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT(plan_p.get<int32_t>(rows * n) == plan_k.get<int32_t>(rows * n), "ConvPlan plugin == kernel");
  delete planner;
}
