// MaskRows as a TensorRT IPluginV3: the rows a mask keeps, with a data-dependent count (README.md).
#pragma once

#include "ops/mask_rows/mask_rows_host.h"
#include "plugin/plugin_base.h"
#include "plugin/workspace_bound.h"

namespace sparsetrt {
namespace plugin {

class MaskRowsPlugin : public PluginBase<MaskRowsPlugin> {
 public:
  static constexpr char kName[] = "MaskRows";
  static constexpr int32_t kNbOutputs = 2;
  static NoAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  MaskRowsPlugin(std::string node, NoAttrs attrs);
  const NoAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  // The workspace bound (workspace_bound.h): recorded at configure time, serialized, enforced at enqueue.
  void configured(const std::vector<Dims>& max_inputs) { bound_.configured(max_inputs.at(0).at(0)); }
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
