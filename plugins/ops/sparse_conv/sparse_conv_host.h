// SparseConv's host logic, with no CUDA or TensorRT dependency: its input checks and output shape. Its plugin
// (sparse_conv_plugin.cpp) and kernels (sparse_conv_kernels.cu) use it; its host test (sparse_conv_test.cpp) runs it on
// any machine, and its check function (checkSparseConvNode, listed in the generated ops/op_table.h) lets the rules
// driver and the fuzzer of plugins/test/ reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/sparse_conv/sparse_conv_attributes.h"
#include "sparsetrt/geometry.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {

// [M, C_out]. `neighbors` is the map [K, M] or its ConvPlan [convPlanRows(K), M] (K = weight dim 1); bias and
// residual may be null (the optional inputs absent); a residual needs a bias.
Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias, const Dims* residual = nullptr);

// What an engine build does with one SparseConv node (sparsetrt/node_check.h): its attributes; given input dims, the
// output [M, C_out] (its workspace is the kernel library's, sized from the GPU: not host logic).
NodeResult checkSparseConvNode(const NodeDesc& node);

}  // namespace sparsetrt
