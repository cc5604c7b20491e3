// SparseConv's host logic: parsing, validation messages and the round trip, and its input checks and output shape
// (a map or its ConvPlan, optional bias and residual). No CUDA, no TensorRT.
#include <cstdint>
#include <limits>

#include "harness.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "schema_checks.h"

using namespace sparsetrt;

TEST(round_trip) {
  SparseConvAttrs c{2, 0.125f};
  auto cv = toFields(c);
  auto cvv = viewsOf(cv);
  CHECK(parseSparseConv("conv", cvv.data(), static_cast<int32_t>(cvv.size())) == c);
}

TEST(serialized_fields_follow_the_schema_table) { checkFieldsFollowSchema("SparseConv", toFields(SparseConvAttrs{})); }

TEST(messages_name_node_and_field) {
  SparseConvAttrs bad_act{7, 0.0f};
  CHECK_THROWS_WITH(AttributeError, validate("c7", bad_act), "SparseConv", "'c7'", "'activation'");
}

TEST(output_shape) {
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
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 32}, {27, 900}, {64, 27, 16}, nullptr), "'weight'",
                    "C_in");
  const Dims bad_bias{32};
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 16}, {27, 900}, {64, 27, 16}, &bad_bias), "'bias'",
                    "C_out");
  CHECK_THROWS_WITH(ShapeError, sparseConvOutput("conv3", {1000, 16}, {27, 900}, {64, 3, 3, 3, 16}, nullptr),
                    "'weight'", "rank 3");
}

TEST_MAIN()
