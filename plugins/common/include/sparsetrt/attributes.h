// The generic attribute reader of the plugins' host logic (no CUDA or TensorRT dependency): fields by name,
// strictly (unknown, repeated, mistyped, malformed and missing fields refused), and the schema's value rules,
// with messages that name the op, node and field. Each op's attribute struct, parse, validate and toFields
// are generated from the schema into ops/<op>/<op>_attributes.h on top of this; what stays here by hand is
// what no op owns: the field plumbing and the interpreter of the schema's rule table (op_rules.h).
//
// FieldView/FieldValue mirror TensorRT's PluginField (name, type, data, length) so the plugin layer maps
// one onto the other in a line, and IPluginV3's getFieldsToSerialize/createPlugin round trip is exactly
// toFields() followed by parse*() -- which the unit tests check without TensorRT.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsetrt/op_fields.h"

namespace sparsetrt {

// Thrown by parsing and validation; the plugin layer catches it at the TensorRT boundary and logs what().
class AttributeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct OpRules;  // sparsetrt/op_rules.h

// The schema's rules of `op` (its attribute rules, its inputs and their symbolic shapes); std::logic_error for an op
// the schema lacks (op_rules.h and op_fields.h come from the same schema, so that is a bug).
const OpRules& rulesOf(const char* op);

// How every message names a node: "sparsetrt::<op> node '<node>'" (the Python side writes the same).
std::string nodeWhere(const std::string& op, const std::string& node);

// A borrowed field, as TensorRT hands it to a creator: data points at `length` int32 or float values.
struct FieldView {
  const char* name;
  FieldType type;
  const void* data;
  int32_t length;
};

// An owned field, as a plugin returns it for serialization.
struct FieldValue {
  std::string name;
  FieldType type;
  std::vector<int32_t> ints;  // kInt32 (one entry) or kInt32Array
  float f = 0.0f;             // kFloat32

  FieldView view() const;
};

std::vector<FieldView> viewsOf(const std::vector<FieldValue>& values);

// Collects the fields of one op by name (the op's row of op_fields.h), refusing unknown, repeated, mistyped and
// malformed ones at construction and missing ones when asked for. Each op's generated parse function
// (ops/<op>/<op>_attributes.h) reads its fields through one.
class FieldReader {
 public:
  FieldReader(const char* op, const std::string& node, const FieldView* fields, int32_t num_fields);
  std::vector<int32_t> ints(const char* name) const;  // kInt32Array
  int32_t int32(const char* name) const;              // kInt32, exactly one value
  float float32(const char* name) const;              // kFloat32, exactly one value

 private:
  const FieldView& get(const char* name) const;
  const char* op_;
  const std::string& node_;
  const FieldView* fields_;
  int32_t num_;
};

// Owned fields for serialization.
FieldValue intsField(const char* name, const std::vector<int32_t>& v);
FieldValue intField(const char* name, int32_t v);
FieldValue floatField(const char* name, float v);

// Ops without attributes still refuse unexpected fields.
void parseNoAttributes(const std::string& op, const std::string& node, const FieldView* fields, int32_t num_fields);

// Validation of one op's fields (each op's generated validate() calls it): throws AttributeError naming node and
// field. The rules are the schema's (sparsetrt/op_rules.h, generated from exporter/schema/sparsetrt_ops.json),
// applied to the fields in schema order, with the messages of the Python side.
void validateFields(const char* op, const std::string& node, const std::vector<FieldValue>& fields);

// The output grid of a strided/transposed rulebook from its fields (spconv's formulas, checked int64), one entry
// per spatial dim; the schema's `output_grid` rules use it. The fields must have passed their own value rules.
std::vector<int64_t> outputGrid(const char* op, const std::string& node, const std::vector<FieldValue>& fields);

}  // namespace sparsetrt
