#include "ops/conv_plan/conv_plan_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims convPlanOutput(const std::string& node, const Dims& neighbors) {
  checkInputs("ConvPlan", node, -1, {&neighbors});
  return {neighbors[0] < 0 ? -1 : convPlanRows(neighbors[0]), neighbors[1]};
}

int64_t convPlanRows(int64_t kernel_volume) {
  const int64_t k = std::max<int64_t>(kernel_volume, 1);
  return k + 1 + (k + 31) / 32;
}

ConvPlanWorkspace convPlanWorkspace(int64_t num_out, int64_t kernel_volume) {
  ConvPlanWorkspace w;
  const auto m = static_cast<std::size_t>(std::max<int64_t>(num_out, 1));
  const auto words = static_cast<std::size_t>((std::max<int64_t>(kernel_volume, 1) + 31) / 32);
  w.bytes = alignUp(w.masks_offset + words * m * sizeof(uint32_t));
  return w;
}

}  // namespace sparsetrt
