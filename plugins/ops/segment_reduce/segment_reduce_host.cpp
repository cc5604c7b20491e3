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
  const int64_t n = std::max<int64_t>(num_in, 1);
  const std::size_t keys = saturatingMul(sizeOf(n), sizeof(uint64_t));
  SegmentReduceWorkspace w;
  w.keys_offset = 0;
  w.alt_keys_offset = alignedEnd(w.keys_offset, keys);
  w.sort_temp_offset = alignedEnd(w.alt_keys_offset, keys);
  w.sort_temp_bytes = radixSortTempBound(n, 64);
  w.bytes = alignedEnd(w.sort_temp_offset, w.sort_temp_bytes);
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
