// libFuzzer target over the plugin creators' attribute parser and everything computed from what it accepts:
// validation against the schema's rules, the serialization round trip, the geometry, the output grid and
// bound, the workspace layouts and the input-shape checks, on field collections and input dims decoded from the
// fuzzer's bytes. Every op goes through its own check function and round trip, found in the generated table
// ops/op_table.h (the target names no op); those functions also check the contracts between the parts of each
// op's host logic. Built with -fsanitize=fuzzer,address,undefined by tests/test_fuzz.py (where clang exists), so
// an overflow, an out-of-bounds read, a broken contract (std::logic_error) or any exception other than
// AttributeError/ShapeError is a finding.
//
// Input layout (missing bytes read as zero):
//   u8 op (index into the schema's ops), u8 mode;
//   mode even ("schema"): u8 D; per declared field: u8 mutation (0-11 as is, 12 dropped, 13 wrong type,
//     14 one entry more, 15 one fewer) and its values, 4 bytes each (int32 or float32 bits); a u8 below 16
//     picks an edge value instead of the next 4 bytes;
//   mode odd ("raw"): u8 count, then per field u8 name (any field name of any op, or an unknown one),
//     u8 type, u8 length, values as above;
//   then u8 inputs (a multiple of 4: attributes only, no input dims), and per schema input of the op: for an
//   optional one a u8 (odd: absent), then u8 rank and per dim a u8 (below 200: that value - 1, so -1 is
//   unknown; else the next 8 bytes as an int64).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/op_rules.h"
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

void exercise(const OpEntry& op, const std::vector<FieldValue>& fields, Bytes& in) {
  const std::vector<FieldView> views = viewsOf(fields);
  NodeDesc node;
  node.name = "fuzz";
  node.fields = views.empty() ? nullptr : views.data();
  node.num_fields = static_cast<int32_t>(views.size());
  const OpRules& rules = rulesOf(op.name);
  std::vector<Dims> dims(rules.num_inputs);
  node.has_inputs = in.u8() % 4 != 0;
  bool dims_from_tensorrt = true;  // every dim >= -1, as TensorRT gives them
  if (node.has_inputs) {
    for (std::size_t i = 0; i < rules.num_inputs; ++i) {
      const bool absent = rules.inputs[i].optional && in.u8() % 2 == 1;
      dims[i] = decodeDims(in);
      for (int64_t d : dims[i]) dims_from_tensorrt = dims_from_tensorrt && d >= -1;
      node.inputs.push_back(absent ? nullptr : &dims[i]);
    }
  }
  try {
    if (op.round_trip != nullptr) require(op.round_trip(node));  // throws AttributeError first if refused
    const NodeResult r = op.check(node);
    // What every op's results share: known or unknown (-1) output dims, never negative ones, from TensorRT's dims;
    // workspace sizes in whole aligned blocks, or saturated (TensorRT then fails to allocate) instead of wrapped.
    if (dims_from_tensorrt)
      for (const Dims& out : r.outputs)
        for (int64_t d : out) require(d >= -1);
    require(r.workspace_bytes % kWorkspaceAlignment == 0 || r.workspace_bytes == SIZE_MAX);
  } catch (const AttributeError&) {
  } catch (const ShapeError&) {
  }
  // Anything else (OverflowError, logic_error, bad_alloc) escapes: libFuzzer reports it as a crash.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const std::size_t index = in.u8() % kNumOps;
  const std::vector<FieldValue> fields = decodeFields(kOps[index], in);
  exercise(kOpTable[index], fields, in);  // kOpTable follows kOps (op_table.h asserts it)
  return 0;
}
