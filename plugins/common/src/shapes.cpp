#include "sparsetrt/shapes.h"

#include <sstream>

namespace sparsetrt {
namespace {

std::string str(const Dims& d) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < d.size(); ++i)
    s << (i ? ", " : "") << (d[i] < 0 ? std::string("?") : std::to_string(d[i]));
  s << "]";
  return s.str();
}

[[noreturn]] void fail(const char* op, const std::string& node, const char* input, const std::string& what) {
  throw ShapeError(std::string("sparsetrt::") + op + " node '" + node + "', input '" + input + "': " + what);
}

void rank(const char* op, const std::string& node, const char* input, const Dims& d, std::size_t r,
          const char* expected) {
  if (d.size() != r)
    fail(op, node, input, "must be " + std::string(expected) + " (rank " + std::to_string(r) + "), got " + str(d));
}

// Two dims that must agree; -1 (unknown) agrees with anything.
void same(const char* op, const std::string& node, const char* input, int64_t got, int64_t want,
          const std::string& what) {
  if (got >= 0 && want >= 0 && got != want)
    fail(op, node, input, what + ": got " + std::to_string(got) + ", expected " + std::to_string(want));
}

int64_t volume(const std::vector<int32_t>& v) {
  int64_t p = 1;
  for (int32_t x : v) p *= x;
  return p;
}

}  // namespace

Dims submRulebookOutput(const std::string& node, const SubmRulebookAttrs& a, const Dims& indices) {
  rank("SubmRulebook", node, "indices", indices, 2, "[N, 1 + D]");
  same("SubmRulebook", node, "indices", indices[1], 1 + static_cast<int64_t>(a.spatial_shape.size()),
       "columns must be (batch, one coordinate per dim of spatial_shape)");
  return {volume(a.kernel_size), indices[0]};
}

std::vector<Dims> sparseRulebookOutputs(const std::string& node, const SparseRulebookAttrs& a, const Dims& indices) {
  rank("SparseRulebook", node, "indices", indices, 2, "[N, 1 + D]");
  const int64_t cols = 1 + static_cast<int64_t>(a.spatial_shape.size());
  same("SparseRulebook", node, "indices", indices[1], cols,
       "columns must be (batch, one coordinate per dim of spatial_shape)");
  const int64_t bound = indices[0] < 0 ? -1 : sparseRulebookOutputBound(a, indices[0]);
  return {{bound, cols}, {volume(a.kernel_size), bound}, {}};
}

Dims inverseRulebookOutput(const std::string& node, const Dims& neighbors, const Dims& indices) {
  rank("InverseRulebook", node, "neighbors", neighbors, 2, "[K, M]");
  rank("InverseRulebook", node, "indices", indices, 2, "[N, 1 + D]");
  return {neighbors[0], indices[0]};
}

Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias) {
  const char* op = "SparseConv";
  rank(op, node, "features", features, 2, "[N, C_in]");
  rank(op, node, "neighbors", neighbors, 2, "[K, M]");
  rank(op, node, "weight", weight, 3, "[C_out, K, C_in] (the kernel flattened)");
  same(op, node, "weight", weight[1], neighbors[0], "dim 1 (K) must equal the rulebook's kernel volume");
  same(op, node, "weight", weight[2], features[1], "dim 2 (C_in) must equal the features' channels");
  if (bias) {
    rank(op, node, "bias", *bias, 1, "[C_out]");
    same(op, node, "bias", (*bias)[0], weight[0], "length must equal C_out");
  }
  return {neighbors[1], weight[0]};
}

Dims sparseMaxPoolOutput(const std::string& node, const Dims& features, const Dims& neighbors) {
  rank("SparseMaxPool", node, "features", features, 2, "[N, C]");
  rank("SparseMaxPool", node, "neighbors", neighbors, 2, "[K, M]");
  return {neighbors[1], features[1]};
}

Dims densifyOutput(const std::string& node, const DensifyAttrs& a, const Dims& features, const Dims& indices) {
  rank("Densify", node, "features", features, 2, "[N, C]");
  rank("Densify", node, "indices", indices, 2, "[N, 1 + D]");
  same("Densify", node, "indices", indices[0], features[0], "rows must match the features' rows");
  same("Densify", node, "indices", indices[1], 1 + static_cast<int64_t>(a.spatial_shape.size()),
       "columns must be (batch, one coordinate per dim of spatial_shape)");
  return densifyOutputShape(a, features[1]);
}

std::vector<Dims> uniqueSitesOutputs(const std::string& node, const Dims& indices) {
  rank("UniqueSites", node, "indices", indices, 2, "[N, K]");
  return {{indices[0], indices[1]}, {indices[0]}, {indices[0]}, {}};
}

std::vector<Dims> maskRowsOutputs(const std::string& node, const Dims& mask) {
  rank("MaskRows", node, "mask", mask, 1, "[N]");
  return {{mask[0]}, {}};
}

Dims segmentReduceOutput(const std::string& node, const Dims& features, const Dims& segments, const Dims& init) {
  const char* op = "SegmentReduce";
  rank(op, node, "features", features, 2, "[N, C]");
  rank(op, node, "segments", segments, 1, "[N]");
  rank(op, node, "init", init, 2, "[M, C]");
  same(op, node, "segments", segments[0], features[0], "length must equal the features' rows");
  same(op, node, "init", init[1], features[1], "channels must equal the features' channels");
  return {init[0], init[1]};
}

}  // namespace sparsetrt
