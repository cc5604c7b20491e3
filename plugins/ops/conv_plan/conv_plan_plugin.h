// ConvPlan as a TensorRT IPluginV3: a conv's neighbour map arranged for the tensor-core conv (README.md).
#pragma once

#include "ops/conv_plan/conv_plan_host.h"
#include "plugin/plugin_base.h"
#include "plugin/workspace_bound.h"

namespace sparsetrt {
namespace plugin {

class ConvPlanPlugin : public PluginBase<ConvPlanPlugin> {
 public:
  static constexpr char kName[] = "ConvPlan";
  static constexpr int32_t kNbOutputs = 1;
  static NoAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  ConvPlanPlugin(std::string node, NoAttrs attrs);
  const NoAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  // The workspace bound (workspace_bound.h) over M, the map's columns: recorded at configure time, serialized,
  // enforced at enqueue.
  void configured(const std::vector<Dims>& max_inputs) { bound_.configured(max_inputs.at(0).at(1)); }
  std::vector<FieldValue> state() const { return {bound_.field()}; }
  void restoreState(const std::vector<FieldView>& fields) { bound_.restore(fields); }
  static bool isStateField(const char* name) { return std::string(name) == kStateMaxNumIn; }

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  NoAttrs attrs_;
  WorkspaceBound bound_;
};

}  // namespace plugin
}  // namespace sparsetrt
