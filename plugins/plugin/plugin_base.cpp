#include "plugin_base.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace sparsetrt {
namespace plugin {

namespace {
std::atomic<nvinfer1::ILoggerFinder*> g_logger_finder{nullptr};
}  // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept { g_logger_finder.store(finder); }

void logMessage(nvinfer1::ILogger::Severity severity, const std::string& message) noexcept {
  nvinfer1::ILoggerFinder* finder = g_logger_finder.load();
  nvinfer1::ILogger* logger = nullptr;
  try {
    logger = finder ? finder->findLogger() : nullptr;
  } catch (...) {
    logger = nullptr;
  }
  if (logger) {
    logger->log(severity, message.c_str());
  } else {
    std::fprintf(stderr, "[sparsetrt] %s\n", message.c_str());
  }
}

const OpSpec& opSpec(const char* op) {
  for (const OpSpec& spec : kOps)
    if (std::strcmp(spec.name, op) == 0) return spec;
  throw std::logic_error(std::string("no schema entry for op ") + op);
}

namespace {

bool isLookupField(const char* name) {
  if (name == nullptr) return false;
  for (const char* lookup : kLookupFields)
    if (std::strcmp(lookup, name) == 0) return true;
  return false;
}

// A lookup attribute reaches a creator only if a caller passes it on purpose (TensorRT's parser does not: the
// creators do not declare it). It must then name this creator: a string (CHAR, NUL-terminated or not).
void checkLookupField(const OpSpec& spec, const std::string& node, const nvinfer1::PluginField& f,
                      const char* version) {
  const std::string where = std::string("sparsetrt::") + spec.name + " node '" + node + "', attribute '" + f.name + "'";
  if (f.type != nvinfer1::PluginFieldType::kCHAR || f.length < 0 || (f.length > 0 && f.data == nullptr))
    throw AttributeError(where + ": must be a string (TensorRT field type CHAR)");
  std::string value(static_cast<const char*>(f.data), static_cast<std::size_t>(f.length));
  value = value.substr(0, value.find('\0'));
  const bool is_namespace = std::strcmp(f.name, "plugin_namespace") == 0;
  const std::string expected = is_namespace ? kPluginNamespace : version;
  if (value != expected)
    throw AttributeError(where + ": is \"" + value + "\", this creator is " + (is_namespace ? "namespace" : "version") +
                         " \"" + expected + "\"");
}

}  // namespace

std::vector<FieldView> fieldViews(const OpSpec& spec, const std::string& node,
                                  const nvinfer1::PluginFieldCollection* fc, const char* version) {
  std::vector<FieldView> views;
  if (fc == nullptr) return views;
  if (fc->nbFields < 0 || (fc->nbFields > 0 && fc->fields == nullptr))
    throw AttributeError(std::string("sparsetrt::") + spec.name + " node '" + node +
                         "': malformed plugin field collection");
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    const nvinfer1::PluginField& f = fc->fields[i];
    if (isLookupField(f.name)) {
      checkLookupField(spec, node, f, version);
      continue;
    }
    const FieldSpec* declared = nullptr;
    for (std::size_t j = 0; f.name && j < spec.num_fields; ++j)
      if (std::strcmp(spec.fields[j].name, f.name) == 0) declared = &spec.fields[j];
    FieldType type;
    switch (f.type) {
      case nvinfer1::PluginFieldType::kINT32:
        type = declared && declared->type == FieldType::kInt32Array ? FieldType::kInt32Array : FieldType::kInt32;
        break;
      case nvinfer1::PluginFieldType::kFLOAT32:
        type = FieldType::kFloat32;
        break;
      default:
        // The ONNX parser passes ints as INT32 and floats as FLOAT32 without conversion; anything else
        // means the node was not written by our exporter.
        throw AttributeError(std::string("sparsetrt::") + spec.name + " node '" + node + "', attribute '" +
                             (f.name ? f.name : "?") + "': unsupported plugin field type " +
                             std::to_string(static_cast<int>(f.type)) +
                             " (expected INT32 or FLOAT32; re-export the model with sparsetrt)");
    }
    views.push_back(FieldView{f.name, type, f.data, f.length});
  }
  return views;
}

int32_t stateInt(const std::vector<FieldView>& fields, const char* name, int32_t fallback) {
  for (const FieldView& f : fields) {
    if (f.name == nullptr || std::strcmp(f.name, name) != 0) continue;
    if (f.type != FieldType::kInt32 || f.length != 1 || f.data == nullptr)
      throw AttributeError(std::string("serialized plugin state '") + name + "' must be one INT32 value");
    int32_t v;
    std::memcpy(&v, f.data, sizeof(v));
    return v;
  }
  return fallback;
}

const nvinfer1::PluginFieldCollection* SerializedFields::set(std::vector<FieldValue> values) {
  values_ = std::move(values);
  fields_.clear();
  for (const FieldValue& v : values_) {
    if (v.type == FieldType::kFloat32) {
      fields_.emplace_back(v.name.c_str(), &v.f, nvinfer1::PluginFieldType::kFLOAT32, 1);
    } else {
      fields_.emplace_back(v.name.c_str(), v.ints.data(), nvinfer1::PluginFieldType::kINT32,
                           static_cast<int32_t>(v.ints.size()));
    }
  }
  collection_.nbFields = static_cast<int32_t>(fields_.size());
  collection_.fields = fields_.data();
  return &collection_;
}

FieldNames::FieldNames(const OpSpec& spec) {
  for (std::size_t i = 0; i < spec.num_fields; ++i) {
    const FieldSpec& f = spec.fields[i];
    const auto type =
        f.type == FieldType::kFloat32 ? nvinfer1::PluginFieldType::kFLOAT32 : nvinfer1::PluginFieldType::kINT32;
    // Length 0 for arrays: their length depends on the model (the number of spatial dims).
    fields_.emplace_back(f.name, nullptr, type, f.type == FieldType::kInt32Array ? 0 : 1);
  }
  collection_.nbFields = static_cast<int32_t>(fields_.size());
  collection_.fields = fields_.data();
}

Dims toDims(const nvinfer1::Dims& d) {
  if (d.nbDims < 0) return {};
  return Dims(d.d, d.d + d.nbDims);
}

bool isFeatureType(nvinfer1::DataType t) { return t == nvinfer1::DataType::kFLOAT || t == nvinfer1::DataType::kHALF; }

DataType toKernelType(nvinfer1::DataType t) {
  if (t == nvinfer1::DataType::kFLOAT) return DataType::kFloat32;
  if (t == nvinfer1::DataType::kHALF) return DataType::kFloat16;
  throw std::invalid_argument("features must be FLOAT or HALF, got TensorRT DataType " +
                              std::to_string(static_cast<int>(t)));
}

int64_t constantOr(const nvinfer1::IDimensionExpr* e) { return e && e->isConstant() ? e->getConstantValue() : -1; }

}  // namespace plugin
}  // namespace sparsetrt
