#include "ops/segment_reduce/segment_reduce_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims segmentReduceOutput(const std::string& node, const Dims& features, const Dims& segments, const Dims& init) {
  checkInputs("SegmentReduce", node, -1, {&features, &segments, &init});
  return {init[0], init[1]};
}

SegmentReduceWorkspace segmentReduceWorkspace(int64_t num_in) {
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(num_in, 1));
  SegmentReduceWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignUp(w.keys_offset + n * sizeof(uint64_t));
  w.sort_temp_offset = alignUp(w.alt_keys_offset + n * sizeof(uint64_t));
  w.sort_temp_bytes = radixSortTempBound(static_cast<int64_t>(n), 64);
  w.bytes = alignUp(w.sort_temp_offset + w.sort_temp_bytes);
  return w;
}

NodeResult checkSegmentReduceNode(const NodeDesc& node) {
  parseSegmentReduce(node.name, node.fields, node.num_fields);
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("SegmentReduce", node);
  r.outputs = {segmentReduceOutput(node.name, *in[0], *in[1], *in[2])};
  r.workspace_bytes = segmentReduceWorkspace(workspaceN((*in[0])[0])).bytes;
  return r;
}

}  // namespace sparsetrt
