// MaskRows's host logic, with no CUDA or TensorRT dependency: its input checks, output shapes and workspace. Its plugin
// (mask_rows_plugin.cpp) and kernels (mask_rows_kernels.cu) use it; its host test (mask_rows_test.cpp) runs it on any
// machine, and its check function (checkMaskRowsNode, listed in the generated ops/op_table.h) lets the rules driver and
// the fuzzer of plugins/test/ reach it.
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

// {rows [N], num_out []}: the bound M <= N.
std::vector<Dims> maskRowsOutputs(const std::string& node, const Dims& mask);

// MaskRows: two 64-bit key buffers and CUB's sort scratch for `num_in` keys of 32 bits.
struct MaskRowsWorkspace {
  std::size_t keys_offset = 0;      // uint64 [N]
  std::size_t alt_keys_offset = 0;  // uint64 [N]
  std::size_t sort_temp_offset = 0;
  std::size_t sort_temp_bytes = 0;
  std::size_t bytes = 0;
};

MaskRowsWorkspace maskRowsWorkspace(int64_t num_in);

// What an engine build does with one MaskRows node (sparsetrt/node_check.h): no attributes; given input dims, the
// outputs and the workspace for N.
NodeResult checkMaskRowsNode(const NodeDesc& node);

}  // namespace sparsetrt
