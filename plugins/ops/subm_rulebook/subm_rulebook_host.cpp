#include "ops/subm_rulebook/subm_rulebook_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

RulebookGeometry makeGeometry(const SubmRulebookAttrs& a) {
  RulebookGeometry g = baseGeometry(a.spatial_shape, a.kernel_size, a.dilation);
  g.kind = RulebookKind::kSubmanifold;
  for (int i = 0; i < g.ndim; ++i) {
    // (k // 2) * dilation <= (k - 1) * dilation, which the reach rule keeps within int32.
    const int64_t padding = checkedMul(a.kernel_size[i] / 2, a.dilation[i], "the submanifold padding");
    if (padding > std::numeric_limits<int32_t>::max()) throw OverflowError("the submanifold padding exceeds int32");
    g.padding[i] = static_cast<int32_t>(padding);
  }
  g.pointwise = g.kernel_volume == 1;
  return g;
}

Dims submRulebookOutput(const std::string& node, const SubmRulebookAttrs& a, const Dims& indices) {
  checkInputs("SubmRulebook", node, static_cast<int64_t>(a.spatial_shape.size()), {&indices});
  return {kernelVolume(a.kernel_size), indices[0]};
}

SubmRulebookWorkspace submRulebookWorkspace(int64_t num_in) {
  SubmRulebookWorkspace w;
  w.table = hashTableLayout(num_in);
  w.bytes = w.table.bytes;
  return w;
}

}  // namespace sparsetrt
