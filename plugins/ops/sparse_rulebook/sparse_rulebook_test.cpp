// SparseRulebook's host logic: parsing, validation messages and the round trip, its geometry and output grid, the
// bound on M (sound and tight against brute force), output shapes, the workspace layout and its sort bits. No CUDA,
// no TensorRT.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "harness.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "schema_checks.h"
#include "sparsetrt/checked.h"
#include "sparsetrt/workspace.h"

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

SparseRulebookAttrs stridedAttrs(std::vector<int32_t> shape, int32_t k, int32_t s, bool transposed = false) {
  SparseRulebookAttrs a;
  const std::size_t d = shape.size();
  a.spatial_shape = std::move(shape);
  a.kernel_size.assign(d, k);
  a.stride.assign(d, s);
  a.padding.assign(d, k / 2);
  a.dilation.assign(d, 1);
  a.output_padding.assign(d, 0);
  a.transposed = transposed;
  return a;
}

// Brute force: the most outputs any input site reaches, by enumerating sites and taps per dim.
int64_t bruteReach(const RulebookGeometry& g) {
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

}  // namespace

TEST(round_trip) {
  SparseRulebookAttrs r = strided3d();
  r.transposed = 1;
  r.output_padding = {1, 0, 1};
  r.max_out = 123456;
  r.batch_size = 7;
  CHECK(parseSR(toFields(r)) == r);
}

TEST(serialized_fields_follow_the_schema_table) { checkFieldsFollowSchema("SparseRulebook", toFields(strided3d())); }

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
}

TEST(output_grid) {
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
}

TEST(geometry) {
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

TEST(a_submanifold_geometry_reaches_one_output_per_input) {
  // Submanifold outputs are the input sites: whatever the kernel and dilation, one output per input.
  for (int32_t k : {1, 3, 5})
    for (int32_t d : {1, 2}) {
      RulebookGeometry g = baseGeometry({41, 1440, 1440}, {k, k, k}, {d, d, d});
      g.kind = RulebookKind::kSubmanifold;
      CHECK(g.kernel_volume >= 1 && maxOutputsPerInput(g) == 1);
    }
}

TEST(overflow_is_refused_not_wrapped) {
  // 2^21 * 2^21 * 2^22 = 2^64 wrapped to 0 in int64 and passed the kernel-volume check.
  SparseRulebookAttrs a = strided3d();
  a.kernel_size = {1 << 21, 1 << 21, 1 << 22};
  CHECK_THROWS_WITH(AttributeError, validate("big", a), "'big'", "'kernel_size'", "kernel volume", "exceeds 2^20");
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

TEST(output_shapes) {
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
}

TEST(workspace_layout) {
  const SparseRulebookAttrs attrs[] = {stridedAttrs({41, 1600, 1408}, 3, 2), stridedAttrs({11, 17, 15}, 3, 1),
                                       stridedAttrs({20, 30}, 2, 2, true), stridedAttrs({5, 5, 5, 5}, 3, 2)};
  for (const SparseRulebookAttrs& a : attrs) {
    const RulebookGeometry g = makeGeometry(a);
    for (int64_t n : {0, 1, 1000, 200000}) {
      for (int64_t cap : {int64_t{0}, int64_t{1}, int64_t{5000}, int64_t{1} << 40}) {
        const SparseRulebookWorkspace w = sparseRulebookWorkspace(n, g, cap);
        // keys = max(1, min(N * reach, out_capacity)): the declared bound, not N * reach, sizes everything.
        const int64_t expect_keys = std::max<int64_t>(std::min(n * maxOutputsPerInput(g), cap), 1);
        CHECK(w.keys == expect_keys);
        CHECK(w.sort_bits == sparseRulebookSortBits(g));
        const std::size_t keys = static_cast<std::size_t>(w.keys);
        // In order, aligned, and disjoint.
        const std::size_t offsets[] = {w.table.keys_offset,  w.table.values_offset, w.unique_keys_offset,
                                       w.sorted_keys_offset, w.counter_offset,      w.sort_temp_offset};
        for (std::size_t off : offsets) CHECK(off % kWorkspaceAlignment == 0);
        CHECK(w.table.values_offset >= w.table.keys_offset + w.table.capacity * sizeof(uint64_t));
        CHECK(w.unique_keys_offset >= w.table.values_offset + w.table.capacity * sizeof(int32_t));
        CHECK(w.sorted_keys_offset >= w.unique_keys_offset + keys * sizeof(uint64_t));
        CHECK(w.counter_offset >= w.sorted_keys_offset + keys * sizeof(uint64_t));
        CHECK(w.sort_temp_offset >= w.counter_offset + 2 * sizeof(uint64_t));
        CHECK(w.sort_temp_bytes == radixSortTempBound(w.keys, w.sort_bits));
        CHECK(w.bytes >= w.sort_temp_offset + w.sort_temp_bytes);
        CHECK(w.bytes % kWorkspaceAlignment == 0);
        CHECK(w.table.capacity >= 2 * w.keys);
      }
    }
    // Monotone in the declared bound, and capped by N * reach.
    CHECK(sparseRulebookWorkspace(1000, g, 2000).bytes > sparseRulebookWorkspace(1000, g, 1000).bytes);
    CHECK(sparseRulebookWorkspace(1000, g, int64_t{1} << 40).bytes ==
          sparseRulebookWorkspace(1000, g, 1000 * maxOutputsPerInput(g)).bytes);
  }
  // A pointwise rulebook is the identity map: no scratch.
  const RulebookGeometry pw = makeGeometry(stridedAttrs({7, 9}, 1, 1));
  CHECK(pw.pointwise);
  CHECK(sparseRulebookWorkspace(1000, pw, 1000).bytes == 0);
}

TEST(sort_bits) {
  // Unknown batch size: 31 batch bits + ceil(log2(prod(out_shape))).
  RulebookGeometry g{};
  g.ndim = 3;
  g.out_shape[0] = 21, g.out_shape[1] = 800, g.out_shape[2] = 704;  // 11,827,200 sites: 24 bits
  CHECK(sparseRulebookSortBits(g) == 55);
  g.out_shape[0] = g.out_shape[1] = g.out_shape[2] = 1;
  CHECK(sparseRulebookSortBits(g) == 31);
  g.out_shape[0] = 4, g.out_shape[1] = 4, g.out_shape[2] = 4;  // 64 sites: exactly 6 bits
  CHECK(sparseRulebookSortBits(g) == 37);
  g.out_shape[0] = g.out_shape[1] = g.out_shape[2] = 1 << 20;  // 60 bits: capped at 64
  CHECK(sparseRulebookSortBits(g) == 64);
  // A known batch size B: ceil(log2(B)) batch bits.
  g.out_shape[0] = 21, g.out_shape[1] = 800, g.out_shape[2] = 704;
  g.batch_size = 1;
  CHECK(sparseRulebookSortBits(g) == 24);
  g.batch_size = 2;
  CHECK(sparseRulebookSortBits(g) == 25);
  g.batch_size = 5;
  CHECK(sparseRulebookSortBits(g) == 27);
  g.batch_size = 8;
  CHECK(sparseRulebookSortBits(g) == 27);
  // From the attributes: the batch size reaches the geometry.
  SparseRulebookAttrs a = stridedAttrs({41, 1440, 1440}, 3, 2);
  a.batch_size = 4;
  CHECK(makeGeometry(a).batch_size == 4);
}

TEST(workspace_saturates_instead_of_wrapping) {
  // Counts from TensorRT's int64 dims: no size may wrap around to something small.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  RulebookGeometry g{};
  g.kind = RulebookKind::kTransposed;
  g.ndim = 3;
  for (int d = 0; d < 3; ++d) {
    g.in_shape[d] = g.out_shape[d] = 2147483647;
    g.kernel[d] = 100;
    g.stride[d] = g.dilation[d] = 1;
  }
  g.kernel_volume = 1000000;
  CHECK(sparseRulebookSortBits(g) == 64);
  const SparseRulebookWorkspace w = sparseRulebookWorkspace(kHuge, g, kHuge);
  CHECK(w.bytes == SIZE_MAX && w.keys == kHuge);
}

TEST_MAIN()
