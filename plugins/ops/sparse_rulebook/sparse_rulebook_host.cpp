#include "ops/sparse_rulebook/sparse_rulebook_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

std::vector<int64_t> outputSpatialShape(const SparseRulebookAttrs& a) {
  return outputGrid("SparseRulebook", "", toFields(a));
}

RulebookGeometry makeGeometry(const SparseRulebookAttrs& a) {
  RulebookGeometry g = baseGeometry(a.spatial_shape, a.kernel_size, a.dilation);
  g.kind = a.transposed ? RulebookKind::kTransposed : RulebookKind::kRegular;
  g.batch_size = a.batch_size;
  const std::vector<int64_t> out = outputSpatialShape(a);
  bool unit = g.kernel_volume == 1;
  for (int i = 0; i < g.ndim; ++i) {
    g.out_shape[i] = static_cast<int32_t>(out[i]);
    g.stride[i] = a.stride[i];
    g.padding[i] = a.padding[i];
    unit = unit && a.stride[i] == 1 && a.padding[i] == 0 && a.output_padding[i] == 0;
  }
  g.pointwise = unit;
  return g;
}

int64_t maxOutputsPerInput(const RulebookGeometry& g) {
  if (g.kind == RulebookKind::kSubmanifold || g.pointwise) return 1;
  int64_t reach = 1;
  for (int i = 0; i < g.ndim; ++i) {
    const int64_t k = g.kernel[i];
    if (g.kind == RulebookKind::kTransposed) {
      reach = saturatingMul(reach, k);
    } else {
      // Tap t is valid only if t * dilation == c + padding (mod stride): one residue class of period
      // stride / gcd(stride, dilation) in t.
      const int64_t period = g.stride[i] / std::gcd(g.stride[i], g.dilation[i]);
      reach = saturatingMul(reach, (k + period - 1) / period);
    }
  }
  return reach;
}

int64_t sparseRulebookOutputBound(const SparseRulebookAttrs& a, int64_t num_in) {
  // Saturating: N comes from TensorRT's dims (int64); the grid term is below 2^62 for validated attributes.
  int64_t grid = a.batch_size;
  for (int64_t s : outputSpatialShape(a)) grid = saturatingMul(grid, s);
  const int64_t bound =
      std::min(saturatingMul(std::max<int64_t>(num_in, 0), maxOutputsPerInput(makeGeometry(a))), grid);
  return a.max_out > 0 ? std::min<int64_t>(bound, a.max_out) : bound;
}

std::vector<Dims> sparseRulebookOutputs(const std::string& node, const SparseRulebookAttrs& a, const Dims& indices) {
  checkInputs("SparseRulebook", node, static_cast<int64_t>(a.spatial_shape.size()), {&indices});
  const int64_t bound = indices[0] < 0 ? -1 : sparseRulebookOutputBound(a, indices[0]);
  const int64_t cols = 1 + static_cast<int64_t>(a.spatial_shape.size());
  return {{bound, cols}, {kernelVolume(a.kernel_size), bound}, {}};
}

int sparseRulebookSortBits(const RulebookGeometry& g) {
  // key = batch * prod(out_shape) + site < B * prod(out_shape) for batch indices in [0, B), so
  // ceil(log2(B * sites)) bits hold every key; 31 batch bits (any non-negative int32) when B is unknown.
  // Fewer bits than 64 means fewer radix passes: a single sample of a 21 x 720 x 720 grid needs 24 bits
  // (3 passes), not 55 (7 passes).
  uint64_t sites = 1;
  for (int d = 0; d < g.ndim; ++d) {
    const uint64_t s = static_cast<uint64_t>(std::max<int32_t>(g.out_shape[d], 1));
    sites = sites > UINT64_MAX / s ? UINT64_MAX : sites * s;  // saturate: 64 bits are the cap anyway
  }
  int bits = 0;
  while (bits < 63 && (uint64_t{1} << bits) < sites) ++bits;
  int batch_bits = 31;
  if (g.batch_size > 0) {
    batch_bits = 0;
    while ((int64_t{1} << batch_bits) < g.batch_size) ++batch_bits;
  }
  // The product: B * sites <= 2^batch_bits * 2^bits, so the sum of the two widths suffices.
  return std::min(batch_bits + bits, 64);
}

SparseRulebookWorkspace sparseRulebookWorkspace(int64_t num_in, const RulebookGeometry& g, int64_t out_capacity) {
  SparseRulebookWorkspace w;
  if (g.pointwise) return w;  // the identity map: no table, no sort
  const int64_t reach = saturatingMul(std::max<int64_t>(num_in, 0), maxOutputsPerInput(g));
  w.keys = std::max<int64_t>(std::min(reach, std::max<int64_t>(out_capacity, 0)), 1);
  w.sort_bits = sparseRulebookSortBits(g);
  const std::size_t key_bytes = saturatingMul(sizeOf(w.keys), sizeof(uint64_t));
  w.table = hashTableLayout(w.keys);
  w.unique_keys_offset = alignUpSat(w.table.bytes);
  w.sorted_keys_offset = alignedEnd(w.unique_keys_offset, key_bytes);
  w.counter_offset = alignedEnd(w.sorted_keys_offset, key_bytes);
  w.sort_temp_offset = alignedEnd(w.counter_offset, 2 * sizeof(uint64_t));
  w.sort_temp_bytes = radixSortTempBound(w.keys, w.sort_bits);
  w.bytes = alignedEnd(w.sort_temp_offset, w.sort_temp_bytes);
  return w;
}

NodeResult checkSparseRulebookNode(const NodeDesc& node) {
  const SparseRulebookAttrs a = parseSparseRulebook(node.name, node.fields, node.num_fields);
  const RulebookGeometry g = makeGeometry(a);  // what the plugin's constructor computes
  // makeGeometry stores the output grid as int32 and the kernels index it so: the schema's rules keep it in range.
  for (int64_t s : outputSpatialShape(a))
    requireContract(s >= 1 && s <= std::numeric_limits<int32_t>::max(), "SparseRulebook",
                    "every extent of the output grid in [1, 2^31 - 1]");
  NodeResult r;
  if (!node.has_inputs) return r;
  const std::vector<const Dims*> in = nodeInputs("SparseRulebook", node);
  r.outputs = sparseRulebookOutputs(node.name, a, *in[0]);
  const int64_t n = workspaceN((*in[0])[0]);
  const int64_t bound = sparseRulebookOutputBound(a, n);  // the bound on M the plugin declares and sizes for
  requireContract(bound >= 0, "SparseRulebook", "the bound on M is >= 0");
  const SparseRulebookWorkspace w = sparseRulebookWorkspace(n, g, bound);
  requireContract(g.pointwise || (w.keys >= 1 && w.bytes >= w.sort_temp_offset && w.sort_bits <= 64), "SparseRulebook",
                  "a workspace of at least one key of at most 64 bits, the sort's scratch last");
  r.workspace_bytes = w.bytes;
  return r;
}

}  // namespace sparsetrt
