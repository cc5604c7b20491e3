#include "ops/sparse_conv/sparse_conv_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias, const Dims* residual) {
  checkInputs("SparseConv", node, -1, {&features, &neighbors, &weight, bias, residual});
  return {neighbors[1], weight[0]};
}

}  // namespace sparsetrt
