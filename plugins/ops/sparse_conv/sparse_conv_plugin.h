// SparseConv as a TensorRT IPluginV3: gather-GEMM conv over a neighbour map (or its ConvPlan), bias, residual
// and activation fused (README.md).
#pragma once

#include "ops/sparse_conv/sparse_conv_host.h"
#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class SparseConvPlugin : public PluginBase<SparseConvPlugin> {
 public:
  static constexpr char kName[] = "SparseConv";
  static constexpr int32_t kNbOutputs = 1;
  static SparseConvAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SparseConvPlugin(std::string node, SparseConvAttrs attrs);
  const SparseConvAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs);

  // Whether a bias and a residual are wired is decided from the inputs (configurePlugin, onShapeChange) and
  // serialized, so a deserialized plugin knows it before its first shape change.
  std::vector<FieldValue> state() const;
  void restoreState(const std::vector<FieldView>& fields);
  static bool isStateField(const char* name);
  bool hasBias() const { return has_bias_; }
  bool hasResidual() const { return has_residual_; }

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  SparseConvAttrs attrs_;
  bool has_bias_ = false;
  bool has_residual_ = false;
};

}  // namespace plugin
}  // namespace sparsetrt
