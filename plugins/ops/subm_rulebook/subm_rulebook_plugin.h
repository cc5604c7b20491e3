// SubmRulebook as a TensorRT IPluginV3: the neighbour map [K, N] of a submanifold conv (README.md).
#pragma once

#include "plugin/plugin_base.h"

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

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  SubmRulebookAttrs attrs_;
  RulebookGeometry geometry_;
};

}  // namespace plugin
}  // namespace sparsetrt
