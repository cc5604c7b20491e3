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
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(num_in, 1));
  UniqueSitesWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignUp(w.keys_offset + n * sizeof(uint64_t));
  w.perm_offset = alignUp(w.alt_keys_offset + n * sizeof(uint64_t));
  w.alt_perm_offset = alignUp(w.perm_offset + n * sizeof(int32_t));
  w.sort_temp_offset = alignUp(w.alt_perm_offset + n * sizeof(int32_t));
  w.sort_temp_bytes = radixSortTempBound(static_cast<int64_t>(n), 64);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
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
