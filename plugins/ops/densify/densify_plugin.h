// Densify as a TensorRT IPluginV3: features scattered into a dense [B, C, *spatial] tensor (README.md).
#pragma once

#include "ops/densify/densify_host.h"
#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class DensifyPlugin : public PluginBase<DensifyPlugin> {
 public:
  static constexpr char kName[] = "Densify";
  static constexpr int32_t kNbOutputs = 1;
  static DensifyAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  DensifyPlugin(std::string node, DensifyAttrs attrs);
  const DensifyAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  DensifyAttrs attrs_;
};

}  // namespace plugin
}  // namespace sparsetrt
