#include "ops/densify/densify_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

std::vector<int64_t> densifyOutputShape(const DensifyAttrs& a, int64_t channels) {
  std::vector<int64_t> shape{a.batch_size, channels};
  for (int32_t s : a.spatial_shape) shape.push_back(s);
  return shape;
}

Dims densifyOutput(const std::string& node, const DensifyAttrs& a, const Dims& features, const Dims& indices) {
  checkInputs("Densify", node, static_cast<int64_t>(a.spatial_shape.size()), {&features, &indices});
  return densifyOutputShape(a, features[1]);
}

NodeResult checkDensifyNode(const NodeDesc& node) {
  const DensifyAttrs a = parseDensify(node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("Densify", node);
  r.outputs = {densifyOutput(node.name, a, *in[0], *in[1])};
  return r;
}

}  // namespace sparsetrt
