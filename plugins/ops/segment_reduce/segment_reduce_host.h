// SegmentReduce's host logic, with no CUDA or TensorRT dependency: its input checks, output shape and workspace. Its
// plugin (segment_reduce_plugin.cpp) and kernels (segment_reduce_kernels.cu) use it; its host test
// (segment_reduce_test.cpp) runs it on any machine, and its check function (checkSegmentReduceNode, listed in the
// generated ops/op_table.h) lets the rules driver and the fuzzer of plugins/test/ reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/segment_reduce/segment_reduce_attributes.h"
#include "sparsetrt/geometry.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {

// [M, C]: features [N, C], segments [N], init [M, C].
Dims segmentReduceOutput(const std::string& node, const Dims& features, const Dims& segments, const Dims& init);

// SegmentReduce: two 64-bit key buffers and CUB's sort scratch for `num_in` keys of all 64 bits.
struct SegmentReduceWorkspace {
  std::size_t keys_offset = 0;      // uint64 [N]
  std::size_t alt_keys_offset = 0;  // uint64 [N]
  std::size_t sort_temp_offset = 0;
  std::size_t sort_temp_bytes = 0;
  std::size_t bytes = 0;
};

SegmentReduceWorkspace segmentReduceWorkspace(int64_t num_in);

// What an engine build does with one SegmentReduce node (sparsetrt/node_check.h): its attributes; given input dims, the
// output and the workspace for N.
NodeResult checkSegmentReduceNode(const NodeDesc& node);

}  // namespace sparsetrt
