#include "ops/unique_sites/unique_sites_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

std::vector<Dims> uniqueSitesOutputs(const std::string& node, const Dims& indices) {
  checkInputs("UniqueSites", node, -1, {&indices});
  return {{indices[0], indices[1]}, {indices[0]}, {indices[0]}, {}};
}

UniqueSitesWorkspace uniqueSitesWorkspace(int64_t num_in) {
  const int64_t n = std::max<int64_t>(num_in, 1);
  const std::size_t keys = saturatingMul(sizeOf(n), sizeof(uint64_t));
  const std::size_t perm = saturatingMul(sizeOf(n), sizeof(int32_t));
  UniqueSitesWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignedEnd(w.keys_offset, keys);
  w.perm_offset = alignedEnd(w.alt_keys_offset, keys);
  w.alt_perm_offset = alignedEnd(w.perm_offset, perm);
  w.sort_temp_offset = alignedEnd(w.alt_perm_offset, perm);
  w.sort_temp_bytes = radixSortTempBound(n, 64);
  w.bytes = alignedEnd(w.sort_temp_offset, w.sort_temp_bytes);
  return w;
}

NodeResult checkUniqueSitesNode(const NodeDesc& node) {
  parseNoAttributes("UniqueSites", node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("UniqueSites", node);
  r.outputs = uniqueSitesOutputs(node.name, *in[0]);
  r.workspace_bytes = uniqueSitesWorkspace(workspaceN((*in[0])[0])).bytes;
  return r;
}

}  // namespace sparsetrt
