// ConvPlan's host logic, with no CUDA or TensorRT dependency: its output rows, input checks and output shape, and
// workspace. Its plugin (conv_plan_plugin.cpp) and kernels (conv_plan_kernels.cu) use it; its host test
// (conv_plan_test.cpp) runs it on any machine, and its check function (checkConvPlanNode, listed in the generated
// ops/op_table.h) lets the rules driver and the fuzzer of plugins/test/ reach it.
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

// [K + 1 + ceil(K/32), M] (a ConvPlan of neighbors [K, M]; K must be at most kConvPlanMaxOffsets)
Dims convPlanOutput(const std::string& node, const Dims& neighbors);

// ConvPlan (conv_plan_kernels.h): its output has convPlanRows(K) = K + 1 + ceil(K / 32) rows of M int32 (the permuted
// map, the permutation, the column masks). Columns are reordered within windows of kConvPlanWindow, for
// kernel volumes up to kConvPlanMaxOffsets. Its workspace: the column masks in map order (ceil(K/32) x M words).
constexpr int64_t kConvPlanWindow = 4096;

constexpr int64_t kConvPlanMaxOffsets = 1024;

int64_t convPlanRows(int64_t kernel_volume);

struct ConvPlanWorkspace {
  std::size_t masks_offset = 0;  // uint32 [ceil(K/32), M]
  std::size_t bytes = 0;
};

ConvPlanWorkspace convPlanWorkspace(int64_t num_out, int64_t kernel_volume);

// What an engine build does with one ConvPlan node (sparsetrt/node_check.h): no attributes; given input dims, the
// output and the workspace for M.
NodeResult checkConvPlanNode(const NodeDesc& node);

}  // namespace sparsetrt
