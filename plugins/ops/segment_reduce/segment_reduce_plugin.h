// SegmentReduce as a TensorRT IPluginV3: rows summed (or maxed) into the output row each names (README.md).
#pragma once

#include "ops/segment_reduce/segment_reduce_host.h"
#include "plugin/plugin_base.h"
#include "plugin/workspace_bound.h"

namespace sparsetrt {
namespace plugin {

class SegmentReducePlugin : public PluginBase<SegmentReducePlugin> {
 public:
  static constexpr char kName[] = "SegmentReduce";
  static constexpr int32_t kNbOutputs = 1;
  static SegmentReduceAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SegmentReducePlugin(std::string node, SegmentReduceAttrs attrs);
  const SegmentReduceAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  // The workspace (a sort of N keys) is sized for the largest N TensorRT reports at configure time.
  void configured(const std::vector<Dims>& max_inputs) { bound_.configured(max_inputs.at(0).at(0)); }
  std::vector<FieldValue> state() const { return {bound_.field()}; }
  void restoreState(const std::vector<FieldView>& fields) { bound_.restore(fields); }
  static bool isStateField(const char* name) { return std::string(name) == kStateMaxNumIn; }

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  SegmentReduceAttrs attrs_;
  WorkspaceBound bound_;
};

}  // namespace plugin
}  // namespace sparsetrt
