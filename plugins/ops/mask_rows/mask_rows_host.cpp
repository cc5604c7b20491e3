#include "ops/mask_rows/mask_rows_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

std::vector<Dims> maskRowsOutputs(const std::string& node, const Dims& mask) {
  checkInputs("MaskRows", node, -1, {&mask});
  return {{mask[0]}, {}};
}

MaskRowsWorkspace maskRowsWorkspace(int64_t num_in) {
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(num_in, 1));
  MaskRowsWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignUp(w.keys_offset + n * sizeof(uint64_t));
  w.sort_temp_offset = alignUp(w.alt_keys_offset + n * sizeof(uint64_t));
  w.sort_temp_bytes = radixSortTempBound(static_cast<int64_t>(n), 32);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
  return w;
}

NodeResult checkMaskRowsNode(const NodeDesc& node) {
  parseNoAttributes("MaskRows", node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("MaskRows", node);
  r.outputs = maskRowsOutputs(node.name, *in[0]);
  r.workspace_bytes = maskRowsWorkspace(workspaceN((*in[0])[0])).bytes;
  return r;
}

}  // namespace sparsetrt
