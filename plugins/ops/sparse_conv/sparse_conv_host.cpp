#include "ops/sparse_conv/sparse_conv_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias, const Dims* residual) {
  checkInputs("SparseConv", node, -1, {&features, &neighbors, &weight, bias, residual});
  return {neighbors[1], weight[0]};
}

NodeResult checkSparseConvNode(const NodeDesc& node) {
  parseSparseConv(node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("SparseConv", node);
  r.outputs = {sparseConvOutput(node.name, *in[0], *in[1], *in[2], in[3], in[4])};
  return r;
}

}  // namespace sparsetrt
