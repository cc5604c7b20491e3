// libFuzzer target over the plugin creators' attribute parser and everything computed from what it accepts:
// validation against the schema's rules, the serialization round trip, the geometry, the output grid and
// bound, the workspace layouts and the input-shape checks, on field collections decoded from the fuzzer's
// bytes. Built with -fsanitize=fuzzer,address,undefined by tests/test_fuzz.py (where clang exists), so an
// overflow, an out-of-bounds read or any exception other than AttributeError/ShapeError is a finding.
//
// Input layout (missing bytes read as zero):
//   u8 op (index into the schema's ops), u8 mode;
//   mode even ("schema"): u8 D; per declared field: u8 mutation (0-11 as is, 12 dropped, 13 wrong type,
//     14 one entry more, 15 one fewer) and its values, 4 bytes each (int32 or float32 bits); a u8 below 16
//     picks an edge value instead of the next 4 bytes;
//   mode odd ("raw"): u8 count, then per field u8 name (any field name of any op, or an unknown one),
//     u8 type, u8 length, values as above;
//   then i64 N (input sites) and per input u8 rank and i64 dims.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

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
#include "sparsetrt/workspace.h"

using namespace sparsetrt;

namespace {

class Bytes {
 public:
  Bytes(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{u8()} << (8 * i);
    return v;
  }
  int64_t i64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{u8()} << (8 * i);
    int64_t s;
    std::memcpy(&s, &v, sizeof(s));
    return s;
  }
  // An int32: an edge value for a small selector byte, else 4 raw bytes.
  int32_t value() {
    static const int32_t kEdges[] = {0,
                                     1,
                                     2,
                                     3,
                                     5,
                                     -1,
                                     1 << 20,
                                     (1 << 20) + 1,
                                     1 << 21,
                                     1 << 22,
                                     1 << 30,
                                     std::numeric_limits<int32_t>::max(),
                                     std::numeric_limits<int32_t>::min(),
                                     41,
                                     1440,
                                     65536};
    const uint8_t pick = u8();
    if (pick < 16) return kEdges[pick];
    if (pick < 128) return pick - 16;  // small values dominate real models
    const uint32_t raw = u32();
    int32_t v;
    std::memcpy(&v, &raw, sizeof(v));
    return v;
  }

 private:
  const uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

FieldValue makeField(const char* name, FieldType type, int32_t length, Bytes& in) {
  FieldValue f;
  f.name = name;
  f.type = type;
  if (type == FieldType::kFloat32) {
    const int32_t bits = in.value();
    std::memcpy(&f.f, &bits, sizeof(f.f));
  } else {
    for (int32_t i = 0; i < length; ++i) f.ints.push_back(in.value());
  }
  return f;
}

std::vector<FieldValue> decodeFields(const OpSpec& spec, Bytes& in) {
  std::vector<FieldValue> fields;
  if (in.u8() % 2 == 0) {
    const int32_t d = in.u8() % 6;
    for (std::size_t i = 0; i < spec.num_fields; ++i) {
      const FieldSpec& declared = spec.fields[i];
      const uint8_t mutation = in.u8() % 16;
      if (mutation == 12) continue;
      FieldType type = declared.type;
      if (mutation == 13) type = static_cast<FieldType>((static_cast<int>(type) + 1) % 3);
      int32_t length = type == FieldType::kInt32Array ? d : 1;
      if (mutation == 14) ++length;
      if (mutation == 15) --length;
      fields.push_back(makeField(declared.name, type, std::max(length, 0), in));
    }
  } else {
    std::vector<const char*> names{"groups", ""};
    for (const OpSpec& op : kOps)
      for (std::size_t i = 0; i < op.num_fields; ++i) names.push_back(op.fields[i].name);
    const int count = in.u8() % 12;
    for (int i = 0; i < count; ++i) {
      const char* name = names[in.u8() % names.size()];
      const auto type = static_cast<FieldType>(in.u8() % 3);
      fields.push_back(makeField(name, type, in.u8() % 8, in));
    }
  }
  return fields;
}

Dims decodeDims(Bytes& in) {
  Dims dims(in.u8() % 5);
  for (int64_t& d : dims) {
    const uint8_t pick = in.u8();
    d = pick < 200 ? static_cast<int64_t>(pick) - 1 : in.i64();  // mostly small, -1 (unknown) included
  }
  return dims;
}

// A finding: libFuzzer reports the input that reached it.
void require(bool ok) {
  if (!ok) __builtin_trap();
}

template <typename Attrs, typename Parse>
void roundTrip(const std::string& node, const Attrs& a, Parse parse) {
  const std::vector<FieldValue> fields = toFields(a);
  const std::vector<FieldView> views = viewsOf(fields);
  require(parse(node, views.data(), static_cast<int32_t>(views.size())) == a);
}

void exercise(const char* op, const std::vector<FieldValue>& fields, Bytes& in) {
  const std::string node = "fuzz";
  const std::vector<FieldView> views = viewsOf(fields);
  const FieldView* data = views.empty() ? nullptr : views.data();
  const auto n = static_cast<int32_t>(views.size());
  const int64_t num_in = in.i64();
  std::vector<Dims> dims;
  for (int i = 0; i < 4; ++i) dims.push_back(decodeDims(in));
  try {
    const std::string name = op;
    if (name == "SubmRulebook") {
      const SubmRulebookAttrs a = parseSubmRulebook(node, data, n);
      roundTrip(node, a, parseSubmRulebook);
      const RulebookGeometry g = makeGeometry(a);
      require(g.kernel_volume >= 1 && maxOutputsPerInput(g) == 1);
      require(submRulebookWorkspace(num_in).bytes >= kWorkspaceAlignment);
      const Dims out = submRulebookOutput(node, a, dims[0]);
      require(out.size() == 2 && out[0] == g.kernel_volume);
    } else if (name == "SparseRulebook") {
      const SparseRulebookAttrs a = parseSparseRulebook(node, data, n);
      roundTrip(node, a, parseSparseRulebook);
      const RulebookGeometry g = makeGeometry(a);
      for (int64_t s : outputSpatialShape(a)) require(s >= 1 && s <= std::numeric_limits<int32_t>::max());
      const int64_t bound = sparseRulebookOutputBound(a, num_in);
      require(bound >= 0);
      const SparseRulebookWorkspace w = sparseRulebookWorkspace(num_in, g, bound);
      require(g.pointwise || (w.keys >= 1 && w.bytes >= w.sort_temp_offset && w.sort_bits <= 64));
      sparseRulebookOutputs(node, a, dims[0]);
    } else if (name == "SparseConv") {
      const SparseConvAttrs a = parseSparseConv(node, data, n);
      roundTrip(node, a, parseSparseConv);
      sparseConvOutput(node, dims[0], dims[1], dims[2], dims[3].empty() ? nullptr : &dims[3]);
    } else if (name == "Densify") {
      const DensifyAttrs a = parseDensify(node, data, n);
      roundTrip(node, a, parseDensify);
      densifyOutput(node, a, dims[0], dims[1]);
    } else if (name == "InverseRulebook") {
      parseNoAttributes(op, node, data, n);
      inverseRulebookOutput(node, dims[0], dims[1]);
    } else {
      parseNoAttributes(op, node, data, n);
      sparseMaxPoolOutput(node, dims[0], dims[1]);
    }
  } catch (const AttributeError&) {
  } catch (const ShapeError&) {
  }
  // Anything else (OverflowError, logic_error, bad_alloc) escapes: libFuzzer reports it as a crash.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const OpSpec& spec = kOps[in.u8() % kNumOps];
  const std::vector<FieldValue> fields = decodeFields(spec, in);
  exercise(spec.name, fields, in);
  return 0;
}
