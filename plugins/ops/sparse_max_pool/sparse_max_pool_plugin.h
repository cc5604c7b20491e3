// SparseMaxPool as a TensorRT IPluginV3: max over each output site's active inputs (README.md).
#pragma once

#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class SparseMaxPoolPlugin : public PluginBase<SparseMaxPoolPlugin> {
 public:
  static constexpr char kName[] = "SparseMaxPool";
  static constexpr int32_t kNbOutputs = 1;
  static NoAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SparseMaxPoolPlugin(std::string node, NoAttrs attrs);
  const NoAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  NoAttrs attrs_;
};

}  // namespace plugin
}  // namespace sparsetrt
