// SegmentReduce's host logic: parsing, validation messages and the round trip, its input checks and output shape.
// No CUDA, no TensorRT.
#include <cstdint>

#include "harness.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "schema_checks.h"

using namespace sparsetrt;

TEST(round_trip) {
  for (int32_t reduction : {0, 1}) {
    SegmentReduceAttrs r{reduction};
    auto rv = toFields(r);
    auto rvv = viewsOf(rv);
    CHECK(parseSegmentReduce("merge", rvv.data(), static_cast<int32_t>(rvv.size())) == r);
  }
  CHECK_THROWS_WITH(AttributeError, validate("merge", SegmentReduceAttrs{2}), "SegmentReduce", "'merge'", "'reduction'",
                    "0 (sum) or 1 (max)");
}

TEST(serialized_fields_follow_the_schema_table) {
  checkFieldsFollowSchema("SegmentReduce", toFields(SegmentReduceAttrs{1}));
}

TEST(output_shape) {
  CHECK(segmentReduceOutput("merge", {9000, 64}, {9000}, {5000, 64}) == (Dims{5000, 64}));
  CHECK(segmentReduceOutput("merge", {-1, 64}, {-1}, {-1, 64}) == (Dims{-1, 64}));
  CHECK_THROWS_WITH(ShapeError, segmentReduceOutput("merge", {9000, 64}, {8000}, {5000, 64}), "SegmentReduce",
                    "'merge'", "'segments'", "dim 0 (N) must equal N = 9000 of input 'features', got 8000");
  CHECK_THROWS_WITH(ShapeError, segmentReduceOutput("merge", {9000, 64}, {9000}, {5000, 32}), "'init'",
                    "dim 1 (C) must equal C = 64 of input 'features', got 32");
}

TEST_MAIN()
