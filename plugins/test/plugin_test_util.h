// Helpers for driving the plugins through TensorRT's interfaces without TensorRT's runtime: plugin fields
// as the ONNX parser hands them over, the library's creators, tensor descriptors.
#pragma once

#include <NvInferRuntime.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder);

namespace sparsetrt_test {

using namespace nvinfer1;

// Owns example field values for an op, in the shape TensorRT's ONNX parser hands them over.
struct Fields {
  std::vector<std::vector<int32_t>> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
  std::vector<PluginField> fields;
  PluginFieldCollection fc{};

  void addInts(const char* name, std::vector<int32_t> v) {
    ints.push_back(std::move(v));
    fields.emplace_back(name, nullptr, PluginFieldType::kINT32, static_cast<int32_t>(ints.back().size()));
  }
  void addFloat(const char* name, float v) {
    floats.push_back(v);
    fields.emplace_back(name, nullptr, PluginFieldType::kFLOAT32, 1);
  }
  // A string attribute as TensorRT's ONNX parser hands it over: CHAR, its characters, no NUL.
  void addString(const char* name, std::string v) {
    strings.push_back(std::move(v));
    fields.emplace_back(name, nullptr, PluginFieldType::kCHAR, static_cast<int32_t>(strings.back().size()));
  }
  const PluginFieldCollection* collection() {
    // Pointers are bound last: the vectors above no longer move.
    std::size_t i = 0, f = 0, c = 0;
    for (PluginField& field : fields)
      field.data = field.type == PluginFieldType::kINT32  ? static_cast<const void*>(ints[i++].data())
                   : field.type == PluginFieldType::kCHAR ? static_cast<const void*>(strings[c++].data())
                                                          : &floats[f++];
    fc.nbFields = static_cast<int32_t>(fields.size());
    fc.fields = fields.data();
    return &fc;
  }
};

inline Fields exampleFields(const std::string& op) {
  Fields f;
  if (op == "SubmRulebook") {
    f.addInts("spatial_shape", {41, 160, 160});
    f.addInts("kernel_size", {3, 3, 3});
    f.addInts("dilation", {1, 1, 1});
  } else if (op == "SparseRulebook") {
    f.addInts("spatial_shape", {41, 160, 160});
    f.addInts("kernel_size", {3, 3, 3});
    f.addInts("stride", {2, 2, 2});
    f.addInts("padding", {1, 1, 1});
    f.addInts("dilation", {1, 1, 1});
    f.addInts("output_padding", {0, 0, 0});
    f.addInts("transposed", {0});
    f.addInts("max_out", {0});
    f.addInts("batch_size", {2});
  } else if (op == "SparseConv") {
    f.addInts("activation", {2});
    f.addFloat("alpha", 0.1f);
  } else if (op == "Densify") {
    f.addInts("spatial_shape", {2, 160, 160});
    f.addInts("batch_size", {2});
  } else if (op == "SegmentReduce") {
    f.addInts("reduction", {0});
  }
  return f;
}

// The creator of each op's current version, by op name (getCreators also lists creators of previous versions:
// allCreators).
inline std::vector<IPluginCreatorV3One*> allCreators() {
  int32_t n = 0;
  IPluginCreatorInterface* const* list = getCreators(n);
  std::vector<IPluginCreatorV3One*> all;
  for (int32_t i = 0; i < n; ++i) all.push_back(static_cast<IPluginCreatorV3One*>(list[i]));
  return all;
}

inline std::map<std::string, IPluginCreatorV3One*> creators() {
  std::map<std::string, IPluginCreatorV3One*> byName;
  for (IPluginCreatorV3One* c : allCreators())
    if (byName.find(c->getPluginName()) == byName.end()) byName[c->getPluginName()] = c;  // schema order first
  return byName;
}

inline IPluginV3OneBuild* build(IPluginV3* p) {
  return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}

inline DynamicPluginTensorDesc desc(DataType type, std::vector<int64_t> dims, int64_t max_first = -1) {
  DynamicPluginTensorDesc d{};
  d.desc.type = type;
  d.desc.format = TensorFormat::kLINEAR;
  d.desc.dims.nbDims = static_cast<int32_t>(dims.size());
  d.min.nbDims = d.max.nbDims = d.opt.nbDims = d.desc.dims.nbDims;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    d.desc.dims.d[i] = dims[i];
    d.min.d[i] = d.opt.d[i] = d.max.d[i] = dims[i] < 0 ? 1 : dims[i];
  }
  if (max_first >= 0) d.max.d[0] = max_first;
  return d;
}

inline IPluginV3OneRuntime* runtime(IPluginV3* p) {
  return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

// Collects what the plugin library logs, as TensorRT's logger would receive it (install with
// setLoggerFinder(&logs), uninstall with setLoggerFinder(nullptr)).
class CapturedLog : public ILoggerFinder, public ILogger {
 public:
  ILogger* findLogger() noexcept override { return this; }
  void log(Severity, const char* msg) noexcept override { text += std::string(msg) + "\n"; }
  bool contains(const std::string& part) const { return text.find(part) != std::string::npos; }
  std::string text;
};

}  // namespace sparsetrt_test
