// SegmentReduce's host logic: parsing, validation messages and the round trip, its input checks, output shape and
// workspace. No CUDA, no TensorRT.
#include <cstdint>

#include <algorithm>
#include <limits>

#include "harness.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "schema_checks.h"
#include "sparsetrt/workspace.h"

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

TEST(workspace_layout) {
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{3000000}}) {
    const SegmentReduceWorkspace w = segmentReduceWorkspace(n);
    const std::size_t keys = static_cast<std::size_t>(std::max<int64_t>(n, 1));  // N = 0 still gets one key
    // In order, aligned, and disjoint.
    for (std::size_t off : {w.keys_offset, w.alt_keys_offset, w.sort_temp_offset})
      CHECK(off % kWorkspaceAlignment == 0);
    CHECK(w.alt_keys_offset >= w.keys_offset + keys * sizeof(uint64_t));
    CHECK(w.sort_temp_offset >= w.alt_keys_offset + keys * sizeof(uint64_t));
    CHECK(w.sort_temp_bytes == radixSortTempBound(static_cast<int64_t>(keys), 64));
    CHECK(w.bytes >= w.sort_temp_offset + w.sort_temp_bytes && w.bytes % kWorkspaceAlignment == 0);
  }
}

TEST(workspace_saturates_instead_of_wrapping) {
  // N from TensorRT's int64 dims: a size too large saturates instead of wrapping around to a small one.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  CHECK(segmentReduceWorkspace(kHuge).bytes == SIZE_MAX);
  CHECK(segmentReduceWorkspace(kHuge / 8).bytes == SIZE_MAX);  // N * 8 bytes of keys alone exceeds size_t
}

TEST_MAIN()
