// SparseMaxPool's host logic: no attributes (a stray field is refused), and its output shape. No CUDA, no TensorRT.
#include "harness.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"

using namespace sparsetrt;

TEST(no_attributes) {
  parseNoAttributes("SparseMaxPool", "pool", nullptr, 0);
  FieldValue stray{"alpha", FieldType::kFloat32, {}, 0.0f};
  const FieldView stray_view = stray.view();
  CHECK_THROWS_WITH(AttributeError, parseNoAttributes("SparseMaxPool", "mp", &stray_view, 1), "'mp'", "'alpha'",
                    "unknown");
}

TEST(output_shape) { CHECK((sparseMaxPoolOutput("p", {1000, 16}, {8, 300}) == Dims{300, 16})); }

TEST_MAIN()
