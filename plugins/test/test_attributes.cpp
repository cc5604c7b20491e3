// Host logic of the plugins: attribute parsing, validation messages, the serialization round trip,
// output-shape arithmetic and the data-dependent output bound. No CUDA, no TensorRT.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>

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
#include "sparsetrt/checked.h"
#include "sparsetrt/shapes.h"

using namespace sparsetrt;

namespace {

SparseRulebookAttrs strided3d() {
  SparseRulebookAttrs a;
  a.spatial_shape = {41, 1440, 1440};
  a.kernel_size = {3, 3, 3};
  a.stride = {2, 2, 2};
  a.padding = {1, 1, 1};
  a.dilation = {1, 1, 1};
  a.output_padding = {0, 0, 0};
  a.transposed = 0;
  a.max_out = 0;
  a.batch_size = 2;
  return a;
}

// Replaces (or, with remove, drops) one field of a serialized attribute set.
std::vector<FieldValue> edit(std::vector<FieldValue> fields, const std::string& name, const FieldValue* repl) {
  auto it = std::find_if(fields.begin(), fields.end(), [&](const FieldValue& f) { return f.name == name; });
  if (repl)
    *it = *repl;
  else
    fields.erase(it);
  return fields;
}

SparseRulebookAttrs parseSR(const std::vector<FieldValue>& fields) {
  auto views = viewsOf(fields);
  return parseSparseRulebook("conv2", views.data(), static_cast<int32_t>(views.size()));
}

}  // namespace

TEST(round_trip_every_op) {
  SubmRulebookAttrs s{{41, 1600, 1408}, {3, 5, 1}, {1, 2, 3}};
  auto sv = toFields(s);
  auto svv = viewsOf(sv);
  CHECK(parseSubmRulebook("subm", svv.data(), static_cast<int32_t>(svv.size())) == s);

  SparseRulebookAttrs r = strided3d();
  r.transposed = 1;
  r.output_padding = {1, 0, 1};
  r.max_out = 123456;
  r.batch_size = 7;
  CHECK(parseSR(toFields(r)) == r);

  SparseConvAttrs c{2, 0.125f};
  auto cv = toFields(c);
  auto cvv = viewsOf(cv);
  CHECK(parseSparseConv("conv", cvv.data(), static_cast<int32_t>(cvv.size())) == c);

  DensifyAttrs d{{2, 200, 176}, 4};
  auto dv = toFields(d);
  auto dvv = viewsOf(dv);
  CHECK(parseDensify("dense", dvv.data(), static_cast<int32_t>(dvv.size())) == d);

  parseNoAttributes("InverseRulebook", "inv", nullptr, 0);
  parseNoAttributes("SparseMaxPool", "pool", nullptr, 0);
  parseNoAttributes("UniqueSites", "bev_unique", nullptr, 0);
  parseNoAttributes("MaskRows", "focal_select", nullptr, 0);

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
  // What a plugin serializes is exactly what its creator declares, in the same order and types.
  auto check = [](const char* op, const std::vector<FieldValue>& fields) {
    const OpSpec* spec = nullptr;
    for (const OpSpec& s : kOps)
      if (std::string(s.name) == op) spec = &s;
    CHECK(spec != nullptr);
    if (!spec) return;
    CHECK(spec->num_fields == fields.size());
    for (std::size_t i = 0; i < std::min(spec->num_fields, fields.size()); ++i) {
      CHECK(fields[i].name == spec->fields[i].name);
      CHECK(fields[i].type == spec->fields[i].type);
    }
  };
  check("SubmRulebook", toFields(SubmRulebookAttrs{{8, 8}, {3, 3}, {1, 1}}));
  check("SparseRulebook", toFields(strided3d()));
  check("SparseConv", toFields(SparseConvAttrs{}));
  check("Densify", toFields(DensifyAttrs{{4}, 1}));
  check("SegmentReduce", toFields(SegmentReduceAttrs{1}));
}

TEST(messages_name_node_and_field) {
  const auto good = toFields(strided3d());
  FieldValue short_stride{"stride", FieldType::kInt32Array, {2, 2}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "stride", &short_stride)), "SparseRulebook", "'conv2'",
                    "'stride'", "3 entries");
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "dilation", nullptr)), "'conv2'", "'dilation'", "missing");
  FieldValue wrong_type{"max_out", FieldType::kFloat32, {}, 1.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "max_out", &wrong_type)), "'max_out'", "type int");
  FieldValue bad_transposed{"transposed", FieldType::kInt32, {2}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "transposed", &bad_transposed)), "'transposed'");
  FieldValue out_pad{"output_padding", FieldType::kInt32Array, {1, 0, 0}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "output_padding", &out_pad)), "'output_padding'", "regular");
  FieldValue neg_max{"max_out", FieldType::kInt32, {-1}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "max_out", &neg_max)), "'max_out'", ">= 0");
  FieldValue no_batch{"batch_size", FieldType::kInt32, {0}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "batch_size", &no_batch)), "'batch_size'", ">= 1");
  FieldValue zero_kernel{"kernel_size", FieldType::kInt32Array, {3, 0, 3}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "kernel_size", &zero_kernel)), "'kernel_size'", ">= 1");
  FieldValue tiny{"spatial_shape", FieldType::kInt32Array, {1, 1440, 1440}, 0.0f};
  FieldValue big_kernel{"kernel_size", FieldType::kInt32Array, {5, 3, 3}, 0.0f};
  FieldValue no_pad{"padding", FieldType::kInt32Array, {0, 0, 0}, 0.0f};
  auto small = edit(edit(edit(good, "spatial_shape", &tiny), "kernel_size", &big_kernel), "padding", &no_pad);
  CHECK_THROWS_WITH(AttributeError, parseSR(small), "'spatial_shape'", "too small");
  FieldValue huge{"spatial_shape", FieldType::kInt32Array, {100000, 100000, 1000}, 0.0f};
  CHECK_THROWS_WITH(AttributeError, parseSR(edit(good, "spatial_shape", &huge)), "'spatial_shape'", "2^32");

  auto extra = good;
  extra.push_back(FieldValue{"groups", FieldType::kInt32, {1}, 0.0f});
  CHECK_THROWS_WITH(AttributeError, parseSR(extra), "'groups'", "unknown");
  auto twice = good;
  twice.push_back(good[0]);
  CHECK_THROWS_WITH(AttributeError, parseSR(twice), "'spatial_shape'", "twice");

  SparseConvAttrs bad_act{7, 0.0f};
  CHECK_THROWS_WITH(AttributeError, validate("c7", bad_act), "SparseConv", "'c7'", "'activation'");
  DensifyAttrs bad_batch{{4, 4}, 0};
  CHECK_THROWS_WITH(AttributeError, validate("to_bev", bad_batch), "Densify", "'to_bev'", "'batch_size'");
  SubmRulebookAttrs five_d{{2, 2, 2, 2, 2}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}};
  CHECK_THROWS_WITH(AttributeError, validate("s5", five_d), "'spatial_shape'", "1 to 4");
  FieldValue stray{"alpha", FieldType::kFloat32, {}, 0.0f};
  const FieldView stray_view = stray.view();
  CHECK_THROWS_WITH(AttributeError, parseNoAttributes("SparseMaxPool", "mp", &stray_view, 1), "'mp'", "'alpha'",
                    "unknown");
}

TEST(output_shapes) {
  // SECOND's first downsampling: [41, 1600, 1408] -> [21, 800, 704].
  SparseRulebookAttrs a = strided3d();
  a.spatial_shape = {41, 1600, 1408};
  CHECK((outputSpatialShape(a) == std::vector<int64_t>{21, 800, 704}));
  // Its z-only [3, 1, 1] stride [2, 1, 1] conv without padding: 41 -> 20.
  a.spatial_shape = {41, 200, 176};
  a.kernel_size = {3, 1, 1};
  a.stride = {2, 1, 1};
  a.padding = {0, 0, 0};
  CHECK((outputSpatialShape(a) == std::vector<int64_t>{20, 200, 176}));
  // Transposed: (s - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
  SparseRulebookAttrs t = strided3d();
  t.spatial_shape = {21, 720, 720};
  t.transposed = 1;
  t.output_padding = {0, 1, 1};
  CHECK((outputSpatialShape(t) == std::vector<int64_t>{41, 1440, 1440}));
  DensifyAttrs d{{2, 200, 176}, 3};
  CHECK((densifyOutputShape(d, 128) == std::vector<int64_t>{3, 128, 2, 200, 176}));
}

TEST(geometry) {
  SubmRulebookAttrs s{{10, 20}, {3, 4}, {2, 1}};
  RulebookGeometry g = makeGeometry(s);
  CHECK(g.kind == RulebookKind::kSubmanifold);
  CHECK(g.ndim == 2 && g.kernel_volume == 12);
  CHECK(g.padding[0] == 2 && g.padding[1] == 2);  // (k // 2) * dilation: centred at k // 2
  CHECK(!g.pointwise);
  CHECK(makeGeometry(SubmRulebookAttrs{{10}, {1}, {1}}).pointwise);
  SparseRulebookAttrs p = strided3d();
  p.kernel_size = {1, 1, 1};
  p.stride = {1, 1, 1};
  p.padding = {0, 0, 0};
  CHECK(makeGeometry(p).pointwise);
  p.padding = {0, 1, 0};
  CHECK(!makeGeometry(p).pointwise);
  RulebookGeometry r = makeGeometry(strided3d());
  CHECK(r.kind == RulebookKind::kRegular && r.out_shape[0] == 21 && r.out_shape[2] == 720 && r.kernel_volume == 27);
}

// Brute force: the most outputs any input site reaches, by enumerating sites and taps per dim.
static int64_t bruteReach(const RulebookGeometry& g) {
  int64_t reach = 1;
  for (int dim = 0; dim < g.ndim; ++dim) {
    int64_t best = 0;
    for (int64_t c = 0; c < g.in_shape[dim]; ++c) {
      int64_t n = 0;
      for (int64_t t = 0; t < g.kernel[dim]; ++t) {
        if (g.kind == RulebookKind::kTransposed) {
          const int64_t o = c * g.stride[dim] - g.padding[dim] + t * g.dilation[dim];
          n += o >= 0 && o < g.out_shape[dim];
        } else {
          const int64_t scaled = c + g.padding[dim] - t * g.dilation[dim];
          n += scaled >= 0 && scaled % g.stride[dim] == 0 && scaled / g.stride[dim] < g.out_shape[dim];
        }
      }
      best = std::max(best, n);
    }
    reach *= best;
  }
  return reach;
}

TEST(output_bound_is_sound_and_tight) {
  std::mt19937 rng(1234);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 500; ++trial) {
    SparseRulebookAttrs a;
    const int d = pick(1, 3);
    for (int i = 0; i < d; ++i) {
      a.kernel_size.push_back(pick(1, 5));
      a.stride.push_back(pick(1, 4));
      a.dilation.push_back(pick(1, 3));
      a.padding.push_back(pick(0, 2));
      a.spatial_shape.push_back(pick(60, 100));  // large enough that the bound is reached
    }
    a.transposed = pick(0, 1);
    for (int i = 0; i < d; ++i) a.output_padding.push_back(a.transposed ? pick(0, 1) : 0);
    const RulebookGeometry g = makeGeometry(a);
    const int64_t bound = maxOutputsPerInput(g), brute = bruteReach(g);
    if (!g.pointwise) CHECK(bound == brute);  // a grid this large reaches the bound somewhere
    CHECK(bound >= brute);
  }
  SparseRulebookAttrs a = strided3d();
  CHECK(maxOutputsPerInput(makeGeometry(a)) == 8);  // k3 s2: 2 taps per dim land on the grid
  CHECK(sparseRulebookOutputBound(a, 1000) == 8000);
  a.max_out = 5000;
  CHECK(sparseRulebookOutputBound(a, 1000) == 5000);
  a.max_out = 50000;
  CHECK(sparseRulebookOutputBound(a, 1000) == 8000);  // the derived bound is tighter than the user's
  a.transposed = 1;
  a.max_out = 0;
  CHECK(sparseRulebookOutputBound(a, 10) == 270);
  // The grid caps the bound: [41, 1440, 1440] k3 s2 p1 gives a [21, 720, 720] grid per batch sample.
  a = strided3d();
  CHECK(sparseRulebookOutputBound(a, 10'000'000) == int64_t{2} * 21 * 720 * 720);
  a.batch_size = 1;
  CHECK(sparseRulebookOutputBound(a, 10'000'000) == int64_t{21} * 720 * 720);
}

TEST(overflow_is_refused_not_wrapped) {
  // 2^21 * 2^21 * 2^22 = 2^64 wrapped to 0 in int64 and passed the kernel-volume check.
  SparseRulebookAttrs a = strided3d();
  a.kernel_size = {1 << 21, 1 << 21, 1 << 22};
  CHECK_THROWS_WITH(AttributeError, validate("big", a), "'big'", "'kernel_size'", "kernel volume", "exceeds 2^20");
  // (k / 2) * dilation overflowed int32 in makeGeometry: the reach rule refuses it first.
  SubmRulebookAttrs s{{8}, {1 << 20}, {1 << 20}};
  CHECK_THROWS_WITH(AttributeError, validate("wide", s), "'kernel_size'", "fits int32", "exceeds 2^31 - 1");
  // Unvalidated attributes never reach undefined behaviour either: checked arithmetic throws.
  CHECK_THROWS_WITH(OverflowError, makeGeometry(SubmRulebookAttrs{{8, 8, 8}, {1 << 21, 1 << 21, 1 << 22}, {1, 1, 1}}),
                    "kernel volume");
  CHECK_THROWS_WITH(OverflowError, makeGeometry(SubmRulebookAttrs{{8}, {1 << 30}, {1 << 30}}), "padding");
  // The grid and the output grid, at int32's limit, in checked int64.
  a = strided3d();
  a.spatial_shape = {2, 1, 1};
  a.stride = {2147483647, 1, 1};
  a.transposed = 1;
  CHECK_THROWS_WITH(AttributeError, validate("t", a), "'spatial_shape'", "more than 2^31 - 1");
  a.transposed = 0;
  a.stride = {1, 1, 1};
  a.padding = {1073741824, 1, 1};
  CHECK_THROWS_WITH(AttributeError, validate("p", a), "'kernel_size'", "fits int32");
  // N from TensorRT's int64 dims: the bound saturates at the grid instead of wrapping.
  a = strided3d();
  CHECK(sparseRulebookOutputBound(a, std::numeric_limits<int64_t>::max()) == int64_t{2} * 21 * 720 * 720);
  a.transposed = 1;
  a.spatial_shape = {1, 1, 1};
  a.output_padding = {1, 1, 1};
  CHECK(sparseRulebookOutputBound(a, std::numeric_limits<int64_t>::max() / 2) ==
        int64_t{2} * 2 * 2 * 2);  // batch x the [2, 2, 2] grid
}

TEST_MAIN()
