// Densify's host logic, with no CUDA or TensorRT dependency: its input checks and output shape. Its plugin
// (densify_plugin.cpp) and kernels (densify_kernels.cu) use it; its host test (densify_test.cpp) runs it on any
// machine, and its check function (checkDensifyNode, listed in the generated ops/op_table.h) lets the rules driver and
// the fuzzer of plugins/test/ reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/densify/densify_attributes.h"
#include "sparsetrt/geometry.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {

// Elements of Densify's output [batch_size, C, *spatial_shape].
std::vector<int64_t> densifyOutputShape(const DensifyAttrs& a, int64_t channels);

// [batch_size, C, *spatial_shape]
Dims densifyOutput(const std::string& node, const DensifyAttrs& a, const Dims& features, const Dims& indices);

// What an engine build does with one Densify node (sparsetrt/node_check.h): its attributes; given input dims, the
// output [batch_size, C, *spatial_shape].
NodeResult checkDensifyNode(const NodeDesc& node);

}  // namespace sparsetrt
