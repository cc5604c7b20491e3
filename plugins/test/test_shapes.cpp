// Shape inference and input checks of every op, with -1 for dims not known yet.
#include <limits>

#include "harness.h"
#include "ops/conv_plan/conv_plan_host.h"
#include "ops/densify/densify_host.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "sparsetrt/shapes.h"

using namespace sparsetrt;

TEST(rulebook_shapes) {
  SubmRulebookAttrs s{{41, 1600, 1408}, {3, 3, 3}, {1, 1, 1}};
  CHECK((submRulebookOutput("s", s, {1000, 4}) == Dims{27, 1000}));
  CHECK((submRulebookOutput("s", s, {-1, 4}) == Dims{27, -1}));
  CHECK_THROWS_WITH(ShapeError, submRulebookOutput("subm1", s, {1000, 3}), "SubmRulebook", "'subm1'", "'indices'",
                    "dim 1 must be 1 + D = 4", "got 3");

  SparseRulebookAttrs r;
  r.spatial_shape = {41, 1600, 1408};
  r.kernel_size = {3, 3, 3};
  r.stride = {2, 2, 2};
  r.padding = {1, 1, 1};
  r.dilation = {1, 1, 1};
  r.output_padding = {0, 0, 0};
  auto outs = sparseRulebookOutputs("down", r, {1000, 4});
  CHECK(outs.size() == 3);
  CHECK((outs[0] == Dims{8000, 4}));
  CHECK((outs[1] == Dims{27, 8000}));
  CHECK(outs[2].empty());  // num_out: a 0-D size tensor
  CHECK((sparseRulebookOutputs("down", r, {-1, 4})[1] == Dims{27, -1}));
  CHECK_THROWS_WITH(ShapeError, sparseRulebookOutputs("down", r, {1000}), "'down'", "'indices'", "rank 2");

  CHECK((inverseRulebookOutput("inv", {27, 800}, {1000, 4}) == Dims{27, 1000}));
}

TEST(merging_sites_shapes) {
  const std::vector<Dims> u = uniqueSitesOutputs("bev_unique", {9000, 3});
  CHECK(u.size() == 4 && u[0] == (Dims{9000, 3}) && u[1] == (Dims{9000}) && u[2] == (Dims{9000}) && u[3].empty());
  CHECK_THROWS_WITH(ShapeError, uniqueSitesOutputs("bev_unique", {9000}), "UniqueSites", "'bev_unique'", "rank 2");
  CHECK(segmentReduceOutput("merge", {9000, 64}, {9000}, {5000, 64}) == (Dims{5000, 64}));
  CHECK(segmentReduceOutput("merge", {-1, 64}, {-1}, {-1, 64}) == (Dims{-1, 64}));
  CHECK_THROWS_WITH(ShapeError, segmentReduceOutput("merge", {9000, 64}, {8000}, {5000, 64}), "SegmentReduce",
                    "'merge'", "'segments'", "dim 0 (N) must equal N = 9000 of input 'features', got 8000");
  CHECK_THROWS_WITH(ShapeError, segmentReduceOutput("merge", {9000, 64}, {9000}, {5000, 32}), "'init'",
                    "dim 1 (C) must equal C = 64 of input 'features', got 32");
  const std::vector<Dims> r = maskRowsOutputs("select", {700});
  CHECK(r.size() == 2 && r[0] == (Dims{700}) && r[1].empty());
  CHECK_THROWS_WITH(ShapeError, maskRowsOutputs("select", {700, 1}), "MaskRows", "'select'", "'mask'", "rank 1");
}

TEST(compute_shapes) {
  const Dims bias{64};
  CHECK((sparseConvOutput("c", {1000, 16}, {27, 900}, {64, 27, 16}, &bias) == Dims{900, 64}));
  CHECK((sparseConvOutput("c", {-1, 16}, {27, -1}, {64, 27, 16}, nullptr) == Dims{-1, 64}));
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 16}, {27, 900}, {64, 9, 16}, nullptr), "SparseConv",
                    "'conv3'", "'neighbors'",
                    "dim 0 must be K = 9 or K+1+ceil(K/32) = 11 (K = 9 of input 'weight'), got 27");
  // The map as its ConvPlan: K + 1 + ceil(K/32) rows; a residual [M, C_out] after a bias.
  const Dims residual{900, 64}, narrow{900, 32}, short_rows{800, 64};
  CHECK((sparseConvOutput("c", {1000, 16}, {29, 900}, {64, 27, 16}, &bias, &residual) == Dims{900, 64}));
  CHECK((sparseConvOutput("c", {1000, 16}, {130, 900}, {64, 125, 16}, &bias) == Dims{900, 64}));  // 125 + 1 + 4
  // K + 1 + ceil(K/32) of the largest K exceeds int64 (found by the fuzzer): a ShapeError showing the value, as
  // rules.py's Python ints do, never an overflow escaping the checks.
  const int64_t huge = std::numeric_limits<int64_t>::max();
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("c", {1000, 16}, {5, 900}, {64, huge, 16}, nullptr), "'neighbors'",
                    "K+1+ceil(K/32) = 9511602413006487552");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("c", {1000, 16}, {28, 900}, {64, 27, 16}, &bias), "'neighbors'",
                    "K+1+ceil(K/32) = 29");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("c", {1000, 16}, {27, 900}, {64, 27, 16}, &bias, &narrow),
                    "'residual'", "C_out");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("c", {1000, 16}, {27, 900}, {64, 27, 16}, &bias, &short_rows),
                    "'residual'", "dim 0 (M) must equal M = 900");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("c", {1000, 16}, {27, 900}, {64, 27, 16}, nullptr, &residual),
                    "'residual'", "bias");
  CHECK((convPlanOutput("p", {27, 900}) == Dims{29, 900}));
  CHECK((convPlanOutput("p", {33, -1}) == Dims{36, -1}));  // 33 + 1 + 2
  CHECK_THROWS_WITH(ShapeError, convPlanOutput("p", {1025, 10}), "ConvPlan", "'p'", "1024");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 32}, {27, 900}, {64, 27, 16}, nullptr), "'weight'",
                    "C_in");
  const Dims bad_bias{32};
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 16}, {27, 900}, {64, 27, 16}, &bad_bias), "'bias'",
                    "C_out");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 16}, {27, 900}, {64, 3, 3, 3, 16}, nullptr),
                    "'weight'", "rank 3");
  CHECK((sparseMaxPoolOutput("p", {1000, 16}, {8, 300}) == Dims{300, 16}));
  DensifyAttrs d{{2, 200, 176}, 2};
  CHECK((densifyOutput("d", d, {1000, 128}, {1000, 4}) == Dims{2, 128, 2, 200, 176}));
  CHECK_THROWS_WITH(ShapeError, densifyOutput("bev", d, {1000, 128}, {999, 4}), "Densify", "'bev'", "'indices'",
                    "dim 0 (N) must equal N = 1000 of input 'features', got 999");
}

TEST_MAIN()
