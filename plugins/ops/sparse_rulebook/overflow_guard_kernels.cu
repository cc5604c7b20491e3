#include <cstdio>
#include <cstring>

#include "device_common.cuh"
#include "overflow_guard.h"

namespace sparsetrt {
namespace kernels {
namespace {

struct Label {  // passed by value: a graph keeps its own copy of the text
  char text[128];
};

__global__ void reportOverflowKernel(const int32_t* overflow, int64_t bound, Label label) {
  if (*overflow != 0)
    printf(
        "%s: created %d output sites, more than the bound %lld the engine was built for; this run's later layers "
        "saw 0 sites. Raise max_sites at export (0 derives the bound) or feed fewer voxels\n",
        label.text, *overflow, static_cast<long long>(bound));
}

}  // namespace

cudaError_t reportOverflow(const int32_t* d_overflow, int64_t bound, const char* context, cudaStream_t stream) {
  Label label{};
  std::strncpy(label.text, context ? context : "sparsetrt::SparseRulebook", sizeof(label.text) - 1);
  return detail::launch<reportOverflowKernel>(1, 1, 0, stream, d_overflow, bound, label);
}

}  // namespace kernels
}  // namespace sparsetrt
