// SubmRulebook's host logic: parsing, validation messages and the round trip, its geometry, output shape and
// workspace (the hash table over the input sites). No CUDA, no TensorRT.
#include <cstdint>
#include <limits>

#include "harness.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "schema_checks.h"
#include "sparsetrt/checked.h"

using namespace sparsetrt;

TEST(round_trip) {
  SubmRulebookAttrs s{{41, 1600, 1408}, {3, 5, 1}, {1, 2, 3}};
  auto sv = toFields(s);
  auto svv = viewsOf(sv);
  CHECK(parseSubmRulebook("subm", svv.data(), static_cast<int32_t>(svv.size())) == s);
}

TEST(serialized_fields_follow_the_schema_table) {
  checkFieldsFollowSchema("SubmRulebook", toFields(SubmRulebookAttrs{{8, 8}, {3, 3}, {1, 1}}));
}

TEST(messages_name_node_and_field) {
  SubmRulebookAttrs five_d{{2, 2, 2, 2, 2}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}};
  CHECK_THROWS_WITH(AttributeError, validate("s5", five_d), "'spatial_shape'", "1 to 4");
}

TEST(geometry) {
  SubmRulebookAttrs s{{10, 20}, {3, 4}, {2, 1}};
  RulebookGeometry g = makeGeometry(s);
  CHECK(g.kind == RulebookKind::kSubmanifold);
  CHECK(g.ndim == 2 && g.kernel_volume == 12);
  CHECK(g.padding[0] == 2 && g.padding[1] == 2);  // (k // 2) * dilation: centred at k // 2
  CHECK(!g.pointwise);
  CHECK(makeGeometry(SubmRulebookAttrs{{10}, {1}, {1}}).pointwise);
}

TEST(overflow_is_refused_not_wrapped) {
  // (k / 2) * dilation overflowed int32 in makeGeometry: the reach rule refuses it first.
  SubmRulebookAttrs s{{8}, {1 << 20}, {1 << 20}};
  CHECK_THROWS_WITH(AttributeError, validate("wide", s), "'kernel_size'", "fits int32", "exceeds 2^31 - 1");
  // Unvalidated attributes never reach undefined behaviour either: checked arithmetic throws.
  CHECK_THROWS_WITH(OverflowError, makeGeometry(SubmRulebookAttrs{{8, 8, 8}, {1 << 21, 1 << 21, 1 << 22}, {1, 1, 1}}),
                    "kernel volume");
  CHECK_THROWS_WITH(OverflowError, makeGeometry(SubmRulebookAttrs{{8}, {1 << 30}, {1 << 30}}), "padding");
}

TEST(output_shape) {
  SubmRulebookAttrs s{{41, 1600, 1408}, {3, 3, 3}, {1, 1, 1}};
  CHECK((submRulebookOutput("s", s, {1000, 4}) == Dims{27, 1000}));
  CHECK((submRulebookOutput("s", s, {-1, 4}) == Dims{27, -1}));
  CHECK_THROWS_WITH(ShapeError, submRulebookOutput("subm1", s, {1000, 3}), "SubmRulebook", "'subm1'", "'indices'",
                    "dim 1 must be 1 + D = 4", "got 3");
}

TEST(workspace_layout) {
  const SubmRulebookWorkspace w = submRulebookWorkspace(100000);
  CHECK(w.table.capacity == 262144);
  CHECK(w.table.keys_offset % kWorkspaceAlignment == 0 && w.table.values_offset % kWorkspaceAlignment == 0);
  CHECK(w.table.values_offset >= w.table.keys_offset + 262144 * sizeof(uint64_t));
  CHECK(w.bytes >= w.table.values_offset + 262144 * sizeof(int32_t));
  CHECK(w.bytes % kWorkspaceAlignment == 0);
}

TEST(workspace_saturates_instead_of_wrapping) {
  // Counts from TensorRT's int64 dims: no size may wrap around to something small.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  CHECK(submRulebookWorkspace(kHuge).bytes == SIZE_MAX);
}

TEST_MAIN()
