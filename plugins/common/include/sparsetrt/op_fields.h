// The plugin-facing view of the op schema (exporter/schema/sparsetrt_ops.json), with no TensorRT or CUDA
// header, so the contract test (test/test_op_fields.cpp) can check it against the JSON on any machine.
// Every plugin creator declares exactly these fields; if the exporter's schema changes, that test fails
// until this table (and the creators built from it) follow.
#pragma once

#include <cstddef>

namespace sparsetrt {

// Attribute types as TensorRT's ONNX parser passes them: int -> INT32, ints -> INT32 array,
// float -> FLOAT32 (no conversion happens, so a creator declaring another type never sees the value).
enum class FieldType { kInt32, kInt32Array, kFloat32 };

struct FieldSpec {
  const char* name;
  FieldType type;
};

struct OpSpec {
  const char* name;
  const char* version;  // the plugin version: the schema's since_version as a string
  const FieldSpec* fields;
  std::size_t num_fields;
  // The schema's previous_versions (at most one here): older files and engines name it, and the plugin library
  // registers a creator for it too (the op's later additions are optional, so one plugin serves both).
  const char* previous_version = nullptr;
};

// The ONNX domain, which TensorRT's parser also uses as the plugin namespace.
inline constexpr char kPluginNamespace[] = "sparsetrt";

// The schema's lookup attributes: every exported node carries them (string attributes) so that TensorRT's ONNX
// parser finds our creators. TensorRT 10.3-10.9 read the namespace only from `plugin_namespace` (default "");
// 10.10 and later, and TensorRT-RTX, fall back to the node's domain. They select the creator and are not plugin
// parameters: creators do not declare them (the parser hands a creator only the fields it declares), and accept
// them, checking their values, when a caller passes them anyway (docs/deployment.md).
inline constexpr const char* kLookupFields[] = {"plugin_namespace", "plugin_version"};
inline constexpr std::size_t kNumLookupFields = sizeof(kLookupFields) / sizeof(kLookupFields[0]);

inline constexpr FieldSpec kSubmRulebookFields[] = {
    {"spatial_shape", FieldType::kInt32Array},
    {"kernel_size", FieldType::kInt32Array},
    {"dilation", FieldType::kInt32Array},
};

inline constexpr FieldSpec kSparseRulebookFields[] = {
    {"spatial_shape", FieldType::kInt32Array}, {"kernel_size", FieldType::kInt32Array},
    {"stride", FieldType::kInt32Array},        {"padding", FieldType::kInt32Array},
    {"dilation", FieldType::kInt32Array},      {"output_padding", FieldType::kInt32Array},
    {"transposed", FieldType::kInt32},         {"max_out", FieldType::kInt32},
    {"batch_size", FieldType::kInt32},
};

inline constexpr FieldSpec kSparseConvFields[] = {
    {"activation", FieldType::kInt32},
    {"alpha", FieldType::kFloat32},
};

inline constexpr FieldSpec kDensifyFields[] = {
    {"spatial_shape", FieldType::kInt32Array},
    {"batch_size", FieldType::kInt32},
};

inline constexpr FieldSpec kSegmentReduceFields[] = {
    {"reduction", FieldType::kInt32},
};

template <std::size_t N>
constexpr std::size_t countOf(const FieldSpec (&)[N]) {
  return N;
}

// Schema order. Ops without attributes have no field array (C++ has no zero-length arrays).
inline constexpr OpSpec kOps[] = {
    {"SubmRulebook", "1", kSubmRulebookFields, countOf(kSubmRulebookFields)},
    {"SparseRulebook", "1", kSparseRulebookFields, countOf(kSparseRulebookFields)},
    {"InverseRulebook", "1", nullptr, 0},
    {"ConvPlan", "2", nullptr, 0},
    {"SparseConv", "2", kSparseConvFields, countOf(kSparseConvFields), "1"},
    {"SparseMaxPool", "1", nullptr, 0},
    {"Densify", "1", kDensifyFields, countOf(kDensifyFields)},
    {"UniqueSites", "2", nullptr, 0},
    {"SegmentReduce", "2", kSegmentReduceFields, countOf(kSegmentReduceFields)},
    {"MaskRows", "2", nullptr, 0},
};

inline constexpr std::size_t kNumOps = sizeof(kOps) / sizeof(kOps[0]);

inline const char* fieldTypeName(FieldType t) {
  switch (t) {
    case FieldType::kInt32:
      return "int";
    case FieldType::kInt32Array:
      return "ints";
    case FieldType::kFloat32:
      return "float";
  }
  return "?";
}

}  // namespace sparsetrt
