// The TensorRT side of every sparsetrt plugin: what all IPluginV3 plugins and their creators share.
//
// A plugin here is validation, shape arithmetic, serialization and one call into the kernel library
// (ops/<op>/<op>_kernels.h, conventions in kernels/include/sparsetrt/kernels.h). PluginBase implements the IPluginV3
// plumbing once (capabilities, clone, names, serialization, shape checks at configure/shape-change time, the exception
// barrier); each op's class in ops/<op>/<op>_plugin.h adds its shapes, types, workspace and enqueue.
//
// No exception crosses the TensorRT boundary: every TensorRT-facing method is noexcept and runs its
// body through guard(), which logs the message (naming the op and ONNX node) and returns an error code.
#pragma once

#include <NvInferRuntime.h>

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparsetrt/geometry.h"
#include "sparsetrt/op_fields.h"
#include "sparsetrt/shapes.h"

namespace sparsetrt {
namespace plugin {

// ------------------------------------------------------------------------------------------ logging
// The logger comes from TensorRT through setLoggerFinder (exported by the library); before that, or
// without one, messages go to stderr so an error is never lost.
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;
void logMessage(nvinfer1::ILogger::Severity severity, const std::string& message) noexcept;
inline void logError(const std::string& message) noexcept { logMessage(nvinfer1::ILogger::Severity::kERROR, message); }

// Runs `body`; on an exception logs "<context>: <what>" and returns 1, else returns 0.
template <typename F>
int32_t guard(const std::string& context, F&& body) noexcept {
  try {
    body();
    return 0;
  } catch (const AttributeError& e) {  // the host logic's messages already name op, node and field
    logError(e.what());
  } catch (const ShapeError& e) {
    logError(e.what());
  } catch (const std::exception& e) {
    logError(context + ": " + e.what());
  } catch (...) {
    logError(context + ": unknown error");
  }
  return 1;
}

// ------------------------------------------------------------------------------------------- fields
const OpSpec& opSpec(const char* op);

// TensorRT's fields as the host logic's FieldViews. TensorRT types an ONNX int and a one-element ints
// alike (INT32, length 1), so the schema's field table decides which one a field is. The lookup attributes
// (plugin_namespace, plugin_version: op_fields.h kLookupFields) are checked against this creator and dropped:
// they chose the creator, they configure nothing.
std::vector<FieldView> fieldViews(const OpSpec& spec, const std::string& node,
                                  const nvinfer1::PluginFieldCollection* fc, const char* version);

// Plugin state that is not an ONNX attribute: facts learnt at build time (configurePlugin) that the engine
// must carry to the runtime, serialized next to the attributes under these names. A deserialized plugin gets
// them back; the ONNX parser never passes them (no creator declares them).
inline constexpr char kStateHasBias[] = "has_bias";          // SparseConv: a bias input is wired (0/1)
inline constexpr char kStateHasResidual[] = "has_residual";  // SparseConv: a residual input is wired (0/1)
inline constexpr char kStateMaxNumIn[] = "max_num_in";       // rulebooks: the N the workspace was sized for, -1 unknown

// Owns the fields a plugin hands TensorRT to serialize (valid until the next call or destruction).
class SerializedFields {
 public:
  SerializedFields() = default;
  SerializedFields(const SerializedFields&) {}  // a clone rebuilds its own on demand
  SerializedFields& operator=(const SerializedFields&) { return *this; }
  const nvinfer1::PluginFieldCollection* set(std::vector<FieldValue> values);

 private:
  std::vector<FieldValue> values_;
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection collection_{};
};

// The declared fields of an op, for IPluginCreatorV3One::getFieldNames.
class FieldNames {
 public:
  explicit FieldNames(const OpSpec& spec);
  const nvinfer1::PluginFieldCollection* collection() const { return &collection_; }

 private:
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection collection_{};
};

// -------------------------------------------------------------------------------------------- types
Dims toDims(const nvinfer1::Dims& d);

// FLOAT or HALF: the feature types every compute plugin accepts (networks are strongly typed, so a
// plugin follows its input's type instead of choosing one).
bool isFeatureType(nvinfer1::DataType t);
DataType toKernelType(nvinfer1::DataType t);

inline bool isLinear(const nvinfer1::PluginTensorDesc& d) { return d.format == nvinfer1::TensorFormat::kLINEAR; }

// The constant value of a dimension expression, or -1 when it is not a build-time constant.
int64_t constantOr(const nvinfer1::IDimensionExpr* e);

// The IPluginV3 methods each op implements itself, declared once for all op classes.
#define SPARSETRT_OP_PLUGIN_METHODS                                                                                \
  int32_t getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType* input_types, \
                             int32_t nb_inputs) const noexcept override;                                           \
  int32_t getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,                                    \
                          const nvinfer1::DimsExprs* shape_inputs, int32_t nb_shape_inputs,                        \
                          nvinfer1::DimsExprs* outputs, int32_t nb_outputs,                                        \
                          nvinfer1::IExprBuilder& builder) noexcept override;                                      \
  bool supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t nb_inputs,  \
                                 int32_t nb_outputs) noexcept override;                                            \
  size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nb_inputs,                      \
                          const nvinfer1::DynamicPluginTensorDesc* outputs, int32_t nb_outputs)                    \
      const noexcept override;                                                                                     \
  int32_t enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc* output_desc,     \
                  const void* const* inputs, void* const* outputs, void* workspace,                                \
                  cudaStream_t stream) noexcept override;

// --------------------------------------------------------------------------------------------- base
template <typename Derived>
class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  explicit PluginBase(std::string node) : node_(std::move(node)) {}
  PluginBase(const PluginBase&) = default;
  ~PluginBase() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
    switch (type) {
      case nvinfer1::PluginCapabilityType::kCORE:
        return static_cast<nvinfer1::IPluginV3OneCore*>(this);
      case nvinfer1::PluginCapabilityType::kBUILD:
        return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
      case nvinfer1::PluginCapabilityType::kRUNTIME:
        return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }

  nvinfer1::IPluginV3* clone() noexcept override {
    nvinfer1::IPluginV3* copy = nullptr;
    guard(context(), [&] { copy = new Derived(static_cast<const Derived&>(*this)); });
    return copy;
  }

  // IPluginV3OneCore
  const char* getPluginName() const noexcept override { return Derived::kName; }
  const char* getPluginVersion() const noexcept override { return version_; }
  const char* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override { return Derived::kNbOutputs; }

  int32_t configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nb_inputs,
                          const nvinfer1::DynamicPluginTensorDesc* /*out*/, int32_t /*nb_outputs*/) noexcept override {
    return guard(context(), [&] {
      std::vector<Dims> dims, max_dims;
      for (int32_t i = 0; i < nb_inputs; ++i) {
        dims.push_back(toDims(in[i].desc.dims));
        max_dims.push_back(toDims(in[i].max));
      }
      derived().checkInputs(dims);
      derived().configured(max_dims);
    });
  }

  // IPluginV3OneRuntime
  int32_t onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nb_inputs, const nvinfer1::PluginTensorDesc*,
                        int32_t) noexcept override {
    return guard(context(), [&] {
      std::vector<Dims> dims;
      for (int32_t i = 0; i < nb_inputs; ++i) dims.push_back(toDims(in[i].dims));
      derived().checkInputs(dims);
    });
  }

  // Plugins keep no per-context state, so attaching is cloning.
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext*) noexcept override { return clone(); }

  const nvinfer1::PluginFieldCollection* getFieldsToSerialize() noexcept override {
    const nvinfer1::PluginFieldCollection* fc = nullptr;
    guard(context(), [&] {
      std::vector<FieldValue> fields = toFields(derived().attrs());
      for (FieldValue& v : derived().state()) fields.push_back(std::move(v));
      fc = serialized_.set(std::move(fields));
    });
    return fc;
  }

  const std::string& node() const { return node_; }

  // kBUILD: created by the ONNX parser or the network builder, run by the builder (possibly on uninitialized
  // inputs while it times tactics); kRUNTIME: deserialized from an engine. Clones keep it.
  nvinfer1::TensorRTPhase phase() const { return phase_; }
  void setPhase(nvinfer1::TensorRTPhase phase) { phase_ = phase; }
  // The version of the creator that made it (the op's current one, or a previous one for older files and
  // engines); an engine records it and finds that creator again when it is deserialized.
  void setVersion(const char* version) { version_ = version; }

  // Hooks an op class may hide (CRTP): the input bounds at configure time (build only), its state fields, and
  // which serialized fields are state rather than attributes.
  void configured(const std::vector<Dims>& /*max_inputs*/) {}
  std::vector<FieldValue> state() const { return {}; }
  void restoreState(const std::vector<FieldView>& /*fields*/) {}
  static bool isStateField(const char* /*name*/) { return false; }

 protected:
  std::string context() const { return std::string("sparsetrt::") + Derived::kName + " node '" + node_ + "'"; }
  Derived& derived() { return static_cast<Derived&>(*this); }
  const Derived& derived() const { return static_cast<const Derived&>(*this); }

 private:
  std::string node_;
  nvinfer1::TensorRTPhase phase_ = nvinfer1::TensorRTPhase::kBUILD;
  const char* version_ = opSpec(Derived::kName).version;
  SerializedFields serialized_;
};

// A state field's single int32 value; `fallback` when it is absent (an engine serialized before it existed).
int32_t stateInt(const std::vector<FieldView>& fields, const char* name, int32_t fallback);

// An op without attributes serializes nothing.
struct NoAttrs {
  bool operator==(const NoAttrs&) const { return true; }
};
inline std::vector<FieldValue> toFields(const NoAttrs&) { return {}; }
// It still refuses any field it is given (schema drift shows up at build time).
inline NoAttrs parseNoAttrs(const char* op, const std::string& node, const std::vector<FieldView>& fields) {
  parseNoAttributes(op, node, fields.data(), static_cast<int32_t>(fields.size()));
  return {};
}

// ------------------------------------------------------------------------------------------ creator
// One creator per op: declares the schema's fields (op_fields.h) and parses them with the host logic,
// whose messages name the node and field; a rejected node logs that message and yields no plugin. Fields the
// plugin serialized as state (not attributes) go back to the plugin instead of the attribute parser.
template <typename Plugin>
class Creator : public nvinfer1::IPluginCreatorV3One {
 public:
  // `version`: the op's current version by default, or one of its previous versions (op_fields.h), whose nodes
  // the same plugin serves.
  explicit Creator(const char* version = nullptr)
      : names_(opSpec(Plugin::kName)), version_(version ? version : opSpec(Plugin::kName).version) {}

  const char* getPluginName() const noexcept override { return Plugin::kName; }
  const char* getPluginVersion() const noexcept override { return version_; }
  const char* getPluginNamespace() const noexcept override { return kPluginNamespace; }
  const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override { return names_.collection(); }

  nvinfer1::IPluginV3* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override {
    const std::string node = name ? name : "";
    nvinfer1::IPluginV3* plugin = nullptr;
    guard(std::string("sparsetrt::") + Plugin::kName + " node '" + node + "'", [&] {
      std::vector<FieldView> attributes, state;
      for (const FieldView& v : fieldViews(opSpec(Plugin::kName), node, fc, version_))
        (v.name && Plugin::isStateField(v.name) ? state : attributes).push_back(v);
      auto created = std::make_unique<Plugin>(node, Plugin::parse(node, attributes));
      created->setPhase(phase);
      created->setVersion(version_);
      created->restoreState(state);
      plugin = created.release();
    });
    return plugin;
  }

 private:
  FieldNames names_;
  const char* version_;
};

}  // namespace plugin
}  // namespace sparsetrt
