#include "ops/subm_rulebook/subm_rulebook_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

RulebookGeometry makeGeometry(const SubmRulebookAttrs& a) {
  RulebookGeometry g = baseGeometry(a.spatial_shape, a.kernel_size, a.dilation);
  g.kind = RulebookKind::kSubmanifold;
  for (int i = 0; i < g.ndim; ++i) {
    // (k // 2) * dilation <= (k - 1) * dilation, which the reach rule keeps within int32.
    const int64_t padding = checkedMul(a.kernel_size[i] / 2, a.dilation[i], "the submanifold padding");
    if (padding > std::numeric_limits<int32_t>::max()) throw OverflowError("the submanifold padding exceeds int32");
    g.padding[i] = static_cast<int32_t>(padding);
  }
  g.pointwise = g.kernel_volume == 1;
  return g;
}

Dims submRulebookOutput(const std::string& node, const SubmRulebookAttrs& a, const Dims& indices) {
  checkInputs("SubmRulebook", node, static_cast<int64_t>(a.spatial_shape.size()), {&indices});
  return {kernelVolume(a.kernel_size), indices[0]};
}

SubmRulebookWorkspace submRulebookWorkspace(int64_t num_in) {
  SubmRulebookWorkspace w;
  w.table = hashTableLayout(num_in);
  w.bytes = w.table.bytes;
  return w;
}

NodeResult checkSubmRulebookNode(const NodeDesc& node) {
  const SubmRulebookAttrs a = parseSubmRulebook(node.name, node.fields, node.num_fields);
  const RulebookGeometry g = makeGeometry(a);  // what the plugin's constructor computes
  requireContract(g.kind == RulebookKind::kSubmanifold && g.kernel_volume >= 1, "SubmRulebook",
                  "a submanifold geometry of at least one offset");
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("SubmRulebook", node);
  r.outputs = {submRulebookOutput(node.name, a, *in[0])};
  // The plugin declares K from its geometry, the shape function from the attributes: the same K.
  requireContract(r.outputs[0].size() == 2 && r.outputs[0][0] == g.kernel_volume, "SubmRulebook",
                  "output [K, N] with K the geometry's kernel volume");
  r.workspace_bytes = submRulebookWorkspace(workspaceN((*in[0])[0])).bytes;
  requireContract(r.workspace_bytes >= kWorkspaceAlignment, "SubmRulebook",
                  "a hash table in the workspace for every N, 0 included");
  return r;
}

}  // namespace sparsetrt
