// One node as an engine build sees it, and what the build computes from it. Each op's check function
// (check<Op>Node, ops/<op>/<op>_host.h) takes a NodeDesc and does with it what the op's plugin does across
// createPlugin, getOutputShapes and getWorkspaceSize: parse the attributes with the schema's rules and, given input
// dims, run the input-shape checks and compute the output dims and the workspace. The generated table
// ops/op_table.h lists them in schema order, so the rules driver and the fuzzer (plugins/test/) reach every op
// without naming one. No CUDA, no TensorRT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparsetrt/attributes.h"
#include "sparsetrt/shapes.h"

namespace sparsetrt {

struct NodeDesc {
  std::string name;  // the ONNX node's name, in every message
  const FieldView* fields = nullptr;
  int32_t num_fields = 0;
  // Whether input dims are known; without them only the attributes are checked (what createPlugin sees).
  bool has_inputs = false;
  // Input i's dims (-1: not known yet), nullptr for an absent optional input; absent optional inputs at the end
  // may be left out, as ONNX leaves them out.
  std::vector<const Dims*> inputs;
};

struct NodeResult {
  std::vector<Dims> outputs;  // each output's dims (-1: not known yet); empty without input dims
  // The op's workspace layout (ops/<op>/<op>_host.h) for the inputs' N, sized for 0 when N is unknown as the
  // plugins do (plugin/workspace_bound.h); 0 for ops whose host logic has no layout.
  std::size_t workspace_bytes = 0;
};

using CheckNodeFn = NodeResult (*)(const NodeDesc&);

// The node's inputs, one entry per schema input of `op` (absent optional ones nullptr). ShapeError naming the op
// and node when more inputs than the schema's are given or a required one is absent.
std::vector<const Dims*> nodeInputs(const char* op, const NodeDesc& node);

// The N a plugin sizes its workspace for from a dim TensorRT gives: unknown (-1) sizes for none.
inline int64_t workspaceN(int64_t dim) { return dim < 0 ? 0 : dim; }

// parse(toFields(a)) == a for the attributes the node's fields parse to (AttributeError if they are refused):
// what IPluginV3's getFieldsToSerialize and createPlugin do to a plugin on an engine's round trip. The generated
// op table (ops/op_table.h) lists it for every op with attributes, e.g. roundTrips<DensifyAttrs, parseDensify>.
template <typename Attrs, Attrs (*Parse)(const std::string&, const FieldView*, int32_t)>
bool roundTrips(const NodeDesc& node) {
  const Attrs a = Parse(node.name, node.fields, node.num_fields);
  const std::vector<FieldValue> fields = toFields(a);
  const std::vector<FieldView> views = viewsOf(fields);
  return Parse(node.name, views.data(), static_cast<int32_t>(views.size())) == a;
}

// A contract between parts of the host logic (what one function returns and another, or a plugin, relies on).
// Broken, it is a bug, never bad input: std::logic_error, which the fuzzer reports as a finding.
void requireContract(bool holds, const char* op, const char* contract);

}  // namespace sparsetrt
