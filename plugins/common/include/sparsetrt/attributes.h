// Host logic of the plugins with no CUDA or TensorRT dependency: one attribute struct per op, parsed from
// (and written back to) a list of plugin fields, validated with messages that name the node and field,
// plus output-shape arithmetic and the sound upper bound on a data-dependent output count.
//
// FieldView/FieldValue mirror TensorRT's PluginField (name, type, data, length) so the plugin layer maps
// one onto the other in a line, and IPluginV3's getFieldsToSerialize/createPlugin round trip is exactly
// toFields() followed by parse*() -- which the unit tests check without TensorRT.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsetrt/geometry.h"
#include "sparsetrt/op_fields.h"

namespace sparsetrt {

// Thrown by parsing and validation; the plugin layer catches it at the TensorRT boundary and logs what().
class AttributeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

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

struct SubmRulebookAttrs {
  std::vector<int32_t> spatial_shape, kernel_size, dilation;
  bool operator==(const SubmRulebookAttrs& o) const {
    return spatial_shape == o.spatial_shape && kernel_size == o.kernel_size && dilation == o.dilation;
  }
};

struct SparseRulebookAttrs {
  std::vector<int32_t> spatial_shape, kernel_size, stride, padding, dilation, output_padding;
  int32_t transposed = 0;
  int32_t max_out = 0;
  int32_t batch_size = 1;
  bool operator==(const SparseRulebookAttrs& o) const {
    return spatial_shape == o.spatial_shape && kernel_size == o.kernel_size && stride == o.stride &&
           padding == o.padding && dilation == o.dilation && output_padding == o.output_padding &&
           transposed == o.transposed && max_out == o.max_out && batch_size == o.batch_size;
  }
};

struct SparseConvAttrs {
  int32_t activation = 0;
  float alpha = 0.0f;
  bool operator==(const SparseConvAttrs& o) const { return activation == o.activation && alpha == o.alpha; }
};

struct DensifyAttrs {
  std::vector<int32_t> spatial_shape;
  int32_t batch_size = 1;
  bool operator==(const DensifyAttrs& o) const {
    return spatial_shape == o.spatial_shape && batch_size == o.batch_size;
  }
};

// SegmentReduce: 0 sum, 1 max (sparsetrt::Reduction).
struct SegmentReduceAttrs {
  int32_t reduction = 0;
  bool operator==(const SegmentReduceAttrs& o) const { return reduction == o.reduction; }
};

// Parse and validate. `node` is the ONNX node's name (TensorRT passes it to createPlugin), used in every
// message. Every schema field is required (the exporter always writes them all); unknown fields are refused
// so a schema drift shows up at engine build time rather than as a silently ignored attribute.
SubmRulebookAttrs parseSubmRulebook(const std::string& node, const FieldView* fields, int32_t num_fields);
SparseRulebookAttrs parseSparseRulebook(const std::string& node, const FieldView* fields, int32_t num_fields);
SparseConvAttrs parseSparseConv(const std::string& node, const FieldView* fields, int32_t num_fields);
DensifyAttrs parseDensify(const std::string& node, const FieldView* fields, int32_t num_fields);
SegmentReduceAttrs parseSegmentReduce(const std::string& node, const FieldView* fields, int32_t num_fields);
// Ops without attributes still refuse unexpected fields.
void parseNoAttributes(const std::string& op, const std::string& node, const FieldView* fields, int32_t num_fields);

// The fields to serialize, in schema order; parse*(toFields(a)) == a.
std::vector<FieldValue> toFields(const SubmRulebookAttrs& a);
std::vector<FieldValue> toFields(const SparseRulebookAttrs& a);
std::vector<FieldValue> toFields(const SparseConvAttrs& a);
std::vector<FieldValue> toFields(const DensifyAttrs& a);
std::vector<FieldValue> toFields(const SegmentReduceAttrs& a);

// Validation alone (parse* calls these): throws AttributeError naming node and field. The rules are the
// schema's (sparsetrt/op_rules.h, generated from exporter/schema/sparsetrt_ops.json), applied by
// validateFields to the fields in schema order, with the messages of the Python side.
void validateFields(const char* op, const std::string& node, const std::vector<FieldValue>& fields);
void validate(const std::string& node, const SubmRulebookAttrs& a);
void validate(const std::string& node, const SparseRulebookAttrs& a);
void validate(const std::string& node, const SparseConvAttrs& a);
void validate(const std::string& node, const DensifyAttrs& a);
void validate(const std::string& node, const SegmentReduceAttrs& a);

// Geometry for the kernels. Attributes must have been validated.
RulebookGeometry makeGeometry(const SubmRulebookAttrs& a);
RulebookGeometry makeGeometry(const SparseRulebookAttrs& a);

// The output grid of a strided/transposed rulebook (spconv's formulas), one entry per spatial dim.
std::vector<int64_t> outputSpatialShape(const SparseRulebookAttrs& a);

// How many output sites one input site can reach, at most: per dim, a regular conv's taps that land on the
// stride grid recur every stride / gcd(stride, dilation) taps, so at most ceil(k / that) of them are valid;
// a transposed conv reaches all k. The product over dims bounds M / N and is much tighter than K for
// strided convs (8 instead of 27 for a 3x3x3 kernel with stride 2).
int64_t maxOutputsPerInput(const RulebookGeometry& g);

// The upper bound on M declared to TensorRT (declareSizeTensor) for N input sites:
// min(N * maxOutputsPerInput, batch_size * prod(output grid)), tightened to max_out when the user gave one.
// The grid term keeps bounds from compounding across strided stages (N * 8^3 after three). Going past the
// bound at run time is a reported error.
int64_t sparseRulebookOutputBound(const SparseRulebookAttrs& a, int64_t num_in);

// Elements of Densify's output [batch_size, C, *spatial_shape].
std::vector<int64_t> densifyOutputShape(const DensifyAttrs& a, int64_t channels);

}  // namespace sparsetrt
