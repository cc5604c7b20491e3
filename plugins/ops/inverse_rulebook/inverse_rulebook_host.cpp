#include "ops/inverse_rulebook/inverse_rulebook_host.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "sparsetrt/checked.h"

namespace sparsetrt {

Dims inverseRulebookOutput(const std::string& node, const Dims& neighbors, const Dims& indices) {
  checkInputs("InverseRulebook", node, -1, {&neighbors, &indices});
  return {neighbors[0], indices[0]};
}

}  // namespace sparsetrt
