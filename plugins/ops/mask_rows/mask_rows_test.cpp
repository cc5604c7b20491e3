// MaskRows' host logic: no attributes, and its input check, output shapes and workspace. No CUDA, no TensorRT.
#include <vector>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "harness.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "sparsetrt/workspace.h"

using namespace sparsetrt;

TEST(no_attributes) { parseNoAttributes("MaskRows", "focal_select", nullptr, 0); }

TEST(output_shapes) {
  const std::vector<Dims> r = maskRowsOutputs("select", {700});
  CHECK(r.size() == 2 && r[0] == (Dims{700}) && r[1].empty());
  CHECK_THROWS_WITH(ShapeError, maskRowsOutputs("select", {700, 1}), "MaskRows", "'select'", "'mask'", "rank 1");
}

TEST(workspace_layout) {
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{3000000}}) {
    const MaskRowsWorkspace w = maskRowsWorkspace(n);
    const std::size_t keys = static_cast<std::size_t>(std::max<int64_t>(n, 1));  // N = 0 still gets one key
    // In order, aligned, and disjoint.
    for (std::size_t off : {w.keys_offset, w.alt_keys_offset, w.sort_temp_offset})
      CHECK(off % kWorkspaceAlignment == 0);
    CHECK(w.alt_keys_offset >= w.keys_offset + keys * sizeof(uint64_t));
    CHECK(w.sort_temp_offset >= w.alt_keys_offset + keys * sizeof(uint64_t));
    CHECK(w.sort_temp_bytes == radixSortTempBound(static_cast<int64_t>(keys), 32));
    CHECK(w.bytes >= w.sort_temp_offset + w.sort_temp_bytes && w.bytes % kWorkspaceAlignment == 0);
  }
}

TEST(workspace_saturates_instead_of_wrapping) {
  // N from TensorRT's int64 dims: a size too large saturates instead of wrapping around to a small one.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  CHECK(maskRowsWorkspace(kHuge).bytes == SIZE_MAX);
  CHECK(maskRowsWorkspace(kHuge / 8).bytes == SIZE_MAX);  // N * 8 bytes of keys alone exceeds size_t
}

TEST_MAIN()
