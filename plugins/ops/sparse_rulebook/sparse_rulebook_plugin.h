// SparseRulebook as a TensorRT IPluginV3: output sites and neighbour map of a strided or transposed conv, with a
// data-dependent count (README.md).
#pragma once

#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "plugin/plugin_base.h"
#include "plugin/workspace_bound.h"

namespace sparsetrt {
namespace plugin {

class SparseRulebookPlugin : public PluginBase<SparseRulebookPlugin> {
 public:
  static constexpr char kName[] = "SparseRulebook";
  static constexpr int32_t kNbOutputs = 3;
  static SparseRulebookAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SparseRulebookPlugin(std::string node, SparseRulebookAttrs attrs);
  const SparseRulebookAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

  // The workspace bound (workspace_bound.h): recorded at configure time, serialized, enforced at enqueue.
  void configured(const std::vector<Dims>& max_inputs) { bound_.configured(max_inputs.at(0).at(0)); }
  std::vector<FieldValue> state() const { return {bound_.field()}; }
  void restoreState(const std::vector<FieldView>& fields) { bound_.restore(fields); }
  static bool isStateField(const char* name) { return std::string(name) == kStateMaxNumIn; }

  SPARSETRT_OP_PLUGIN_METHODS

 private:
  // M's upper bound for N input sites: what TensorRT allocates the outputs for (getOutputShapes declares
  // the same formula), so also the capacity the kernel must not exceed.
  int64_t outputBound(int64_t num_in) const { return sparseRulebookOutputBound(attrs_, num_in); }

  SparseRulebookAttrs attrs_;
  RulebookGeometry geometry_;
  WorkspaceBound bound_;
};

}  // namespace plugin
}  // namespace sparsetrt
