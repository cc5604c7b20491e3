// UniqueSites's host logic, with no CUDA or TensorRT dependency: its input checks, output shapes and workspace. Its
// plugin (unique_sites_plugin.cpp) and kernels (unique_sites_kernels.cu) use it; its host test (unique_sites_test.cpp)
// runs it on any machine, and its check function (checkUniqueSitesNode, listed in the generated ops/op_table.h) lets
// the rules driver and the fuzzer of plugins/test/ reach it.
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

// {unique [B, K], inverse [N], counts [B], num_out []} with B = N, the bound on M.
std::vector<Dims> uniqueSitesOutputs(const std::string& node, const Dims& indices);

// UniqueSites: two 64-bit key buffers (the radix sort's double buffer), two int32 permutations and CUB's sort
// scratch for `num_in` keys of all 64 bits. Pure arithmetic (engines build without a GPU).
struct UniqueSitesWorkspace {
  std::size_t keys_offset = 0;       // uint64 [N]
  std::size_t alt_keys_offset = 0;   // uint64 [N]
  std::size_t perm_offset = 0;       // int32 [N]
  std::size_t alt_perm_offset = 0;   // int32 [N]
  std::size_t sort_temp_offset = 0;  // CUB temp storage
  std::size_t sort_temp_bytes = 0;   // radixSortTempBound(N, 64)
  std::size_t bytes = 0;
};

UniqueSitesWorkspace uniqueSitesWorkspace(int64_t num_in);

// What an engine build does with one UniqueSites node (sparsetrt/node_check.h): no attributes; given input dims, the
// outputs and the workspace for N.
NodeResult checkUniqueSitesNode(const NodeDesc& node);

}  // namespace sparsetrt
