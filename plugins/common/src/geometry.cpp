#include "sparsetrt/geometry.h"

#include <limits>

#include "sparsetrt/checked.h"

namespace sparsetrt {

int64_t kernelVolume(const std::vector<int32_t>& kernel) {
  int64_t p = 1;
  for (int32_t x : kernel) p = checkedMul(p, x, "the kernel volume");
  return p;
}

namespace {
int32_t product(const std::vector<int32_t>& v) {
  const int64_t p = kernelVolume(v);
  if (p > std::numeric_limits<int32_t>::max()) throw OverflowError("the kernel volume exceeds int32");
  return static_cast<int32_t>(p);
}
}  // namespace

RulebookGeometry baseGeometry(const std::vector<int32_t>& shape, const std::vector<int32_t>& kernel,
                              const std::vector<int32_t>& dilation) {
  RulebookGeometry g{};
  g.ndim = static_cast<int32_t>(shape.size());
  for (int i = 0; i < kMaxSpatialDims; ++i) {
    const bool used = i < g.ndim;
    g.in_shape[i] = g.out_shape[i] = used ? shape[i] : 1;
    g.kernel[i] = used ? kernel[i] : 1;
    g.dilation[i] = used ? dilation[i] : 1;
    g.stride[i] = 1;
    g.padding[i] = 0;
  }
  g.kernel_volume = product(kernel);
  return g;
}

}  // namespace sparsetrt
