// SubmRulebook's host logic, with no CUDA or TensorRT dependency: its geometry, output shape and workspace (the hash
// table over the input sites). Its plugin (subm_rulebook_plugin.cpp) and kernels (subm_rulebook_kernels.cu) use it; its
// host test (subm_rulebook_test.cpp) runs it on any machine, and its check function (checkSubmRulebookNode, listed in
// the generated ops/op_table.h) lets the rules driver and the fuzzer of plugins/test/ reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/subm_rulebook/subm_rulebook_attributes.h"
#include "sparsetrt/geometry.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {

// Geometry for the kernels. Attributes must have been validated.
RulebookGeometry makeGeometry(const SubmRulebookAttrs& a);

// [K, N]
Dims submRulebookOutput(const std::string& node, const SubmRulebookAttrs& a, const Dims& indices);

// SubmRulebook: the hash table over the N input sites.
struct SubmRulebookWorkspace {
  HashTableLayout table;
  std::size_t bytes = 0;
};

SubmRulebookWorkspace submRulebookWorkspace(int64_t num_in);

// What an engine build does with one SubmRulebook node (sparsetrt/node_check.h): its attributes and geometry; given
// input dims, the output [K, N] and the hash table for N.
NodeResult checkSubmRulebookNode(const NodeDesc& node);

}  // namespace sparsetrt
