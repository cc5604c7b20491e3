// SparseMaxPool's host logic, with no CUDA or TensorRT dependency: its input checks and output shape. Its plugin
// (sparse_max_pool_plugin.cpp) and kernels (sparse_max_pool_kernels.cu) use it; its host test
// (sparse_max_pool_test.cpp) runs it on any machine, and its check function (checkSparseMaxPoolNode, listed in the
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

// [M, C]
Dims sparseMaxPoolOutput(const std::string& node, const Dims& features, const Dims& neighbors);

// What an engine build does with one SparseMaxPool node (sparsetrt/node_check.h): no attributes; given input dims, the
// output [M, C].
NodeResult checkSparseMaxPoolNode(const NodeDesc& node);

}  // namespace sparsetrt
