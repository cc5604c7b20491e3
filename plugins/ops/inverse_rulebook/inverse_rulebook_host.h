// InverseRulebook's host logic, with no CUDA or TensorRT dependency: its input checks and output shape.
// Its plugin (inverse_rulebook_plugin.cpp) and kernels (inverse_rulebook_kernels.cu) use it; the host tests
// (test/test_attributes.cpp, test_shapes.cpp, test_workspace.cpp) run it on any machine.
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
