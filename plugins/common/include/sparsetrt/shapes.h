// Input-shape checks and output-shape inference of every op, on concrete dims with -1 for "not known yet"
// (a dynamic dim before the profile fixes it). The plugin layer calls these wherever TensorRT gives it
// dims (configure time, enqueue), so a malformed graph fails with a message naming the node and the input
// instead of reaching a kernel. No CUDA, no TensorRT.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/densify/densify_attributes.h"
#include "ops/segment_reduce/segment_reduce_attributes.h"
#include "ops/sparse_conv/sparse_conv_attributes.h"
#include "ops/sparse_rulebook/sparse_rulebook_attributes.h"
#include "ops/subm_rulebook/subm_rulebook_attributes.h"
#include "sparsetrt/attributes.h"
#include "sparsetrt/geometry.h"

namespace sparsetrt {

class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

using Dims = std::vector<int64_t>;  // -1: unknown

// The op's input dims against the schema's symbolic shapes (ranks, 1 + D, dims named alike agreeing); a null
// entry is an absent optional input, ndim < 0 an op without spatial_shape. Every function below calls it.
void checkInputs(const char* op, const std::string& node, int64_t ndim, const std::vector<const Dims*>& inputs);

// [K, N]
Dims submRulebookOutput(const std::string& node, const SubmRulebookAttrs& a, const Dims& indices);
// {out_indices [B, 1 + D], neighbors [K, B], num_out []} with B = sparseRulebookOutputBound (-1 if N unknown).
std::vector<Dims> sparseRulebookOutputs(const std::string& node, const SparseRulebookAttrs& a, const Dims& indices);
// [K, N]
Dims inverseRulebookOutput(const std::string& node, const Dims& neighbors, const Dims& indices);
// [K + 1 + ceil(K/32), M] (a ConvPlan of neighbors [K, M]; K must be at most kConvPlanMaxOffsets)
Dims convPlanOutput(const std::string& node, const Dims& neighbors);
// [M, C_out]. `neighbors` is the map [K, M] or its ConvPlan [convPlanRows(K), M] (K = weight dim 1); bias and
// residual may be null (the optional inputs absent); a residual needs a bias.
Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias, const Dims* residual = nullptr);
// [M, C]
Dims sparseMaxPoolOutput(const std::string& node, const Dims& features, const Dims& neighbors);
// {unique [B, K], inverse [N], counts [B], num_out []} with B = N, the bound on M.
std::vector<Dims> uniqueSitesOutputs(const std::string& node, const Dims& indices);
// [M, C]: features [N, C], segments [N], init [M, C].
Dims segmentReduceOutput(const std::string& node, const Dims& features, const Dims& segments, const Dims& init);
// {rows [N], num_out []}: the bound M <= N.
std::vector<Dims> maskRowsOutputs(const std::string& node, const Dims& mask);
// [batch_size, C, *spatial_shape]
Dims densifyOutput(const std::string& node, const DensifyAttrs& a, const Dims& features, const Dims& indices);

// Geometry for the kernels. Attributes must have been validated.
RulebookGeometry makeGeometry(const SubmRulebookAttrs& a);
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

// Elements of Densify's output [batch_size, C, *spatial_shape].
std::vector<int64_t> densifyOutputShape(const DensifyAttrs& a, int64_t channels);

}  // namespace sparsetrt
