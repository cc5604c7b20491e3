#include "ops/conv_plan/conv_plan_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims convPlanOutput(const std::string& node, const Dims& neighbors) {
  checkInputs("ConvPlan", node, -1, {&neighbors});
  return {neighbors[0] < 0 ? -1 : convPlanRows(neighbors[0]), neighbors[1]};
}

int64_t convPlanRows(int64_t kernel_volume) {
  const int64_t k = std::max<int64_t>(kernel_volume, 1);
  return k + 1 + (k + 31) / 32;
}

ConvPlanWorkspace convPlanWorkspace(int64_t num_out, int64_t kernel_volume) {
  ConvPlanWorkspace w;
  const std::size_t m = sizeOf(std::max<int64_t>(num_out, 1));
  const int64_t k = std::max<int64_t>(kernel_volume, 1);
  const std::size_t words = sizeOf(k / 32 + (k % 32 != 0));  // ceil(K / 32) with no K + 31 overflow
  w.bytes = alignedEnd(w.masks_offset, saturatingMul(saturatingMul(words, m), sizeof(uint32_t)));
  return w;
}

NodeResult checkConvPlanNode(const NodeDesc& node) {
  parseNoAttributes("ConvPlan", node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("ConvPlan", node);
  const Dims& neighbors = *in[0];
  r.outputs = {convPlanOutput(node.name, neighbors)};
  r.workspace_bytes = convPlanWorkspace(workspaceN(neighbors[1]), neighbors[0]).bytes;
  return r;
}

}  // namespace sparsetrt
