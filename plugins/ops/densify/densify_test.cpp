// Densify's host logic: parsing, validation messages and the round trip, its input checks and output shape. No
// CUDA, no TensorRT.
#include <cstdint>
#include <vector>

#include "harness.h"
#include "ops/densify/densify_host.h"
#include "schema_checks.h"

using namespace sparsetrt;

TEST(round_trip) {
  DensifyAttrs d{{2, 200, 176}, 4};
  auto dv = toFields(d);
  auto dvv = viewsOf(dv);
  CHECK(parseDensify("dense", dvv.data(), static_cast<int32_t>(dvv.size())) == d);
}

TEST(serialized_fields_follow_the_schema_table) { checkFieldsFollowSchema("Densify", toFields(DensifyAttrs{{4}, 1})); }

TEST(messages_name_node_and_field) {
  DensifyAttrs bad_batch{{4, 4}, 0};
  CHECK_THROWS_WITH(AttributeError, validate("to_bev", bad_batch), "Densify", "'to_bev'", "'batch_size'");
}

TEST(output_shape) {
  DensifyAttrs d{{2, 200, 176}, 3};
  CHECK((densifyOutputShape(d, 128) == std::vector<int64_t>{3, 128, 2, 200, 176}));
}

TEST(input_checks) {
  DensifyAttrs d{{2, 200, 176}, 2};
  CHECK((densifyOutput("d", d, {1000, 128}, {1000, 4}) == Dims{2, 128, 2, 200, 176}));
  CHECK_THROWS_WITH(ShapeError, densifyOutput("bev", d, {1000, 128}, {999, 4}), "Densify", "'bev'", "'indices'",
                    "dim 0 (N) must equal N = 1000 of input 'features', got 999");
}

TEST_MAIN()
