#include "ops/inverse_rulebook/inverse_rulebook_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims inverseRulebookOutput(const std::string& node, const Dims& neighbors, const Dims& indices) {
  checkInputs("InverseRulebook", node, -1, {&neighbors, &indices});
  return {neighbors[0], indices[0]};
}

NodeResult checkInverseRulebookNode(const NodeDesc& node) {
  parseNoAttributes("InverseRulebook", node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("InverseRulebook", node);
  r.outputs = {inverseRulebookOutput(node.name, *in[0], *in[1])};
  return r;
}

}  // namespace sparsetrt
