// InverseRulebook's host logic, with no CUDA or TensorRT dependency: its input checks and output shape. Its plugin
// (inverse_rulebook_plugin.cpp) and kernels (inverse_rulebook_kernels.cu) use it; its host test
// (inverse_rulebook_test.cpp) runs it on any machine, and its check function (checkInverseRulebookNode, listed in the
// generated ops/op_table.h) lets the rules driver and the fuzzer of plugins/test/ reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparsetrt/geometry.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {

// [K, N]
Dims inverseRulebookOutput(const std::string& node, const Dims& neighbors, const Dims& indices);

// What an engine build does with one InverseRulebook node (sparsetrt/node_check.h): no attributes; given input dims,
// the output [K, N].
NodeResult checkInverseRulebookNode(const NodeDesc& node);

}  // namespace sparsetrt
