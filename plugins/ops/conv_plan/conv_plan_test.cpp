// ConvPlan's host logic: its input check (K within the plan's limit), output shape and workspace. No CUDA, no
// TensorRT.
#include <cstdint>
#include <limits>

#include "harness.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "sparsetrt/workspace.h"

using namespace sparsetrt;

TEST(output_shape) {
  CHECK((convPlanOutput("p", {27, 900}) == Dims{29, 900}));
  CHECK((convPlanOutput("p", {33, -1}) == Dims{36, -1}));  // 33 + 1 + 2
  CHECK_THROWS_WITH(ShapeError, convPlanOutput("p", {1025, 10}), "ConvPlan", "'p'", "1024");
}

TEST(workspace_layout) {
  // The column masks: ceil(K / 32) words per output row.
  CHECK(convPlanWorkspace(1000, 27).bytes == alignUp(1000 * sizeof(uint32_t)));
  CHECK(convPlanWorkspace(1000, 33).bytes == alignUp(2 * 1000 * sizeof(uint32_t)));
  CHECK(convPlanWorkspace(0, 27).bytes == kWorkspaceAlignment);  // M = 0 still gets one row
}

TEST(workspace_saturates_instead_of_wrapping) {
  // M and K from TensorRT's int64 dims: a size too large saturates instead of wrapping around to a small one.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  CHECK(convPlanWorkspace(kHuge, 27).bytes == SIZE_MAX);
  CHECK(convPlanWorkspace(int64_t{1} << 62, 1024).bytes == SIZE_MAX);  // 32 words x 4 bytes x 2^62 rows
  CHECK(convPlanWorkspace(1000, kHuge).bytes == SIZE_MAX);
}

TEST_MAIN()
