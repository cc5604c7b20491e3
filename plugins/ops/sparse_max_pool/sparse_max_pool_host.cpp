#include "ops/sparse_max_pool/sparse_max_pool_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims sparseMaxPoolOutput(const std::string& node, const Dims& features, const Dims& neighbors) {
  checkInputs("SparseMaxPool", node, -1, {&features, &neighbors});
  return {neighbors[1], features[1]};
}

NodeResult checkSparseMaxPoolNode(const NodeDesc& node) {
  parseNoAttributes("SparseMaxPool", node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("SparseMaxPool", node);
  r.outputs = {sparseMaxPoolOutput(node.name, *in[0], *in[1])};
  return r;
}

}  // namespace sparsetrt
