// MaskRows' host logic: no attributes, and its input check and output shapes. No CUDA, no TensorRT.
#include <vector>

#include "harness.h"
#include "ops/mask_rows/mask_rows_host.h"

using namespace sparsetrt;

TEST(no_attributes) { parseNoAttributes("MaskRows", "focal_select", nullptr, 0); }

TEST(output_shapes) {
  const std::vector<Dims> r = maskRowsOutputs("select", {700});
  CHECK(r.size() == 2 && r[0] == (Dims{700}) && r[1].empty());
  CHECK_THROWS_WITH(ShapeError, maskRowsOutputs("select", {700, 1}), "MaskRows", "'select'", "'mask'", "rank 1");
}

TEST_MAIN()
