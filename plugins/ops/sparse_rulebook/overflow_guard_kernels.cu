#include <cstdio>

#include "device_common.cuh"
#include "overflow_guard.h"

namespace sparsetrt {
namespace kernels {
namespace {

__global__ void trapOnOverflowKernel(const int32_t* overflow, int64_t bound) {
  if (*overflow != 0) {
    printf(
        "sparsetrt: SparseRulebook created %d output sites, more than the bound %lld the engine was built "
        "for; raise max_sites at export (0 derives the bound) or feed fewer voxels\n",
        *overflow, static_cast<long long>(bound));
    __trap();
  }
}

}  // namespace

cudaError_t trapOnOverflow(const int32_t* d_overflow, int64_t bound, cudaStream_t stream) {
  return detail::launch<trapOnOverflowKernel>(1, 1, 0, stream, d_overflow, bound);
}

}  // namespace kernels
}  // namespace sparsetrt
