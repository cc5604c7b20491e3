// InverseRulebook as a TensorRT IPluginV3: the transposed neighbour map an inverse conv reads (README.md).
#pragma once

#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class InverseRulebookPlugin : public PluginBase<InverseRulebookPlugin> {
 public:
  static constexpr char kName[] = "InverseRulebook";
  static constexpr int32_t kNbOutputs = 1;
  static NoAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  InverseRulebookPlugin(std::string node, NoAttrs attrs);
  const NoAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  NoAttrs attrs_;
};

}  // namespace plugin
}  // namespace sparsetrt
