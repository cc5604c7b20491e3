// SparseRulebook's host logic, with no CUDA or TensorRT dependency: its geometry and output grid, the bound on M
// declared to TensorRT, output shapes and workspace. Its plugin (sparse_rulebook_plugin.cpp) and kernels
// (sparse_rulebook_kernels.cu) use it; its host test (sparse_rulebook_test.cpp) runs it on any machine, and its check
// function (checkSparseRulebookNode, listed in the generated ops/op_table.h) lets the rules driver and the fuzzer of
// plugins/test/ reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/sparse_rulebook/sparse_rulebook_attributes.h"
#include "sparsetrt/geometry.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {

RulebookGeometry makeGeometry(const SparseRulebookAttrs& a);

// The output grid of a strided/transposed rulebook (spconv's formulas), one entry per spatial dim.
std::vector<int64_t> outputSpatialShape(const SparseRulebookAttrs& a);

// How many output sites one input site can reach, at most: per dim, a regular conv's taps that land on the
// stride grid recur every stride / gcd(stride, dilation) taps, so at most ceil(k / that) of them are valid;
// a transposed conv reaches all k. The product over dims bounds M / N and is much tighter than K for
// strided convs (8 instead of 27 for a 3x3x3 kernel with stride 2).
int64_t maxOutputsPerInput(const RulebookGeometry& g);

// The upper bound on M declared to TensorRT (declareSizeTensor) for N input sites:
// min(N * maxOutputsPerInput, batch_size * prod(output grid)), tightened to max_out when the user gave one.
// The grid term keeps bounds from compounding across strided stages (N * 8^3 after three). Going past the
// bound at run time is a reported error.
int64_t sparseRulebookOutputBound(const SparseRulebookAttrs& a, int64_t num_in);

// {out_indices [B, 1 + D], neighbors [K, B], num_out []} with B = sparseRulebookOutputBound (-1 if N unknown).
std::vector<Dims> sparseRulebookOutputs(const std::string& node, const SparseRulebookAttrs& a, const Dims& indices);

// SparseRulebook (regular or transposed): a hash table of the output keys, the compacted unique keys and the
// other half of the radix sort's double buffer, two 64-bit counters and CUB's radix-sort scratch. Everything
// is sized from
//   keys = max(1, min(num_in * maxOutputsPerInput(g), out_capacity)),
// out_capacity being the bound on M declared to TensorRT (often far below N * maxOutputsPerInput once the
// grid caps it). When the layer creates more than out_capacity sites the kernels detect it (see
// sparse_rulebook_kernels.h) instead of needing room for them. Pure arithmetic: TensorRT-RTX builds engines (and
// asks for workspace sizes) on machines without a GPU.
struct SparseRulebookWorkspace {
  int64_t keys = 0;                    // entries of each key buffer and of the sort
  int sort_bits = 0;                   // radix-sort key bits [0, sort_bits)
  HashTableLayout table;               // sized for `keys`
  std::size_t unique_keys_offset = 0;  // uint64 [keys]: the sort's input half of the double buffer
  std::size_t sorted_keys_offset = 0;  // uint64 [keys]: the other half
  std::size_t counter_offset = 0;      // uint64 [2]: distinct output keys found, table-full flag
  std::size_t sort_temp_offset = 0;    // CUB temp storage
  std::size_t sort_temp_bytes = 0;     // radixSortTempBound(keys, sort_bits)
  std::size_t bytes = 0;               // 0 for a pointwise geometry (no scratch at all)
};

SparseRulebookWorkspace sparseRulebookWorkspace(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity);

// Key bits the output keys of `g` occupy: a key is batch * prod(out_shape) + linear site with batch < 2^31.
int sparseRulebookSortBits(const RulebookGeometry& g);

// What an engine build does with one SparseRulebook node (sparsetrt/node_check.h): its attributes, geometry and output
// grid; given input dims, the outputs, the bound on M and the workspace for N.
NodeResult checkSparseRulebookNode(const NodeDesc& node);

}  // namespace sparsetrt
