// UniqueSites' host logic: no attributes, and its input check and output shapes. No CUDA, no TensorRT.
#include <vector>

#include "harness.h"
#include "ops/unique_sites/unique_sites_host.h"

using namespace sparsetrt;

TEST(no_attributes) { parseNoAttributes("UniqueSites", "bev_unique", nullptr, 0); }

TEST(output_shapes) {
  const std::vector<Dims> u = uniqueSitesOutputs("bev_unique", {9000, 3});
  CHECK(u.size() == 4 && u[0] == (Dims{9000, 3}) && u[1] == (Dims{9000}) && u[2] == (Dims{9000}) && u[3].empty());
  CHECK_THROWS_WITH(ShapeError, uniqueSitesOutputs("bev_unique", {9000}), "UniqueSites", "'bev_unique'", "rank 2");
}

TEST_MAIN()
