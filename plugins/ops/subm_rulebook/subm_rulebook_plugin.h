// SubmRulebook as a TensorRT IPluginV3: the neighbour map [K, N] of a submanifold conv (README.md).
#pragma once

#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "plugin/plugin_base.h"
#include "plugin/workspace_bound.h"

namespace sparsetrt {
namespace plugin {

class SubmRulebookPlugin : public PluginBase<SubmRulebookPlugin> {
 public:
  static constexpr char kName[] = "SubmRulebook";
  static constexpr int32_t kNbOutputs = 1;
  static SubmRulebookAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SubmRulebookPlugin(std::string node, SubmRulebookAttrs attrs);
  const SubmRulebookAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  // The workspace bound (workspace_bound.h): recorded at configure time, serialized, enforced at enqueue.
  void configured(const std::vector<Dims>& max_inputs) { bound_.configured(max_inputs.at(0).at(0)); }
  std::vector<FieldValue> state() const { return {bound_.field()}; }
  void restoreState(const std::vector<FieldView>& fields) { bound_.restore(fields); }
  static bool isStateField(const char* name) { return std::string(name) == kStateMaxNumIn; }

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  SubmRulebookAttrs attrs_;
  RulebookGeometry geometry_;
  WorkspaceBound bound_;
};

}  // namespace plugin
}  // namespace sparsetrt
