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
  const int64_t n = std::max<int64_t>(num_in, 1);
  const std::size_t keys = saturatingMul(sizeOf(n), sizeof(uint64_t));
  MaskRowsWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignedEnd(w.keys_offset, keys);
  w.sort_temp_offset = alignedEnd(w.alt_keys_offset, keys);
  w.sort_temp_bytes = radixSortTempBound(n, 32);
  w.bytes = alignedEnd(w.sort_temp_offset, w.sort_temp_bytes);
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
