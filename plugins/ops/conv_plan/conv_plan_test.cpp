// ConvPlan's host logic: its input check (K within the plan's limit) and output shape. No CUDA, no TensorRT.
#include "harness.h"
#include "ops/conv_plan/conv_plan_host.h"

using namespace sparsetrt;

TEST(output_shape) {
  CHECK((convPlanOutput("p", {27, 900}) == Dims{29, 900}));
  CHECK((convPlanOutput("p", {33, -1}) == Dims{36, -1}));  // 33 + 1 + 2
  CHECK_THROWS_WITH(ShapeError, convPlanOutput("p", {1025, 10}), "ConvPlan", "'p'", "1024");
}

TEST_MAIN()
