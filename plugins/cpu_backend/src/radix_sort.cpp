// The stand-in for CUB's radix sort (cub/device/device_radix_sort.cuh says what it is and is not).
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstring>
#include <functional>
#include <tuple>

#include "internal.h"

namespace sparsetrt {
namespace cpu {

cudaError_t enqueueRadixSort(void* first, void* second, std::size_t key_bytes, int64_t n, int begin_bit, int end_bit,
                             void* temp, std::size_t temp_bytes, cudaStream_t stream) {
  const std::size_t bytes = static_cast<std::size_t>(n) * key_bytes;
  const int passes = (end_bit - begin_bit + 7) / 8;
  for (auto [p, what, size] : {std::tuple<const void*, const char*, std::size_t>{first, "keys (current)", bytes},
                               {second, "keys (alternate)", bytes},
                               {temp, "temp storage", static_cast<std::size_t>(passes) * 256 * sizeof(uint64_t)}}) {
    if (cudaError_t e = checkDeviceRange("cub::DeviceRadixSort::SortKeys", what, p, size); e != cudaSuccess) return e;
  }
  (void)temp_bytes;
  // A kernel of its own (one block, one thread), so it is ordered, captured and replayed like any other.
  struct Args {
    void *first, *second, *temp;
    std::size_t key_bytes;
    int64_t n;
    int begin_bit, end_bit, passes;
  };
  auto args = std::make_shared<const Args>(Args{first, second, temp, key_bytes, n, begin_bit, end_bit, passes});
  KernelLaunch l{"cub::DeviceRadixSort::SortKeys (CPU stand-in)",
                 dim3(1),
                 dim3(1),
                 0,
                 [](const void* a) {
                   const Args& s = *static_cast<const Args*>(a);
                   auto key = [&](const char* base, int64_t i) {
                     uint64_t k = 0;
                     std::memcpy(&k, base + i * s.key_bytes, s.key_bytes);
                     return k;
                   };
                   char* src = static_cast<char*>(s.first);
                   char* dst = static_cast<char*>(s.second);
                   for (int p = 0; p < s.passes; ++p) {
                     uint64_t* count = static_cast<uint64_t*>(s.temp) + 256 * p;
                     const int shift = s.begin_bit + 8 * p;  // digit bits [shift, min(shift + 8, end))
                     const uint64_t mask = (uint64_t{1} << std::min(8, s.end_bit - shift)) - 1;
                     std::memset(count, 0, 256 * sizeof(uint64_t));
                     for (int64_t i = 0; i < s.n; ++i) ++count[(key(src, i) >> shift) & mask];
                     uint64_t sum = 0;
                     for (int d = 0; d < 256; ++d) {
                       const uint64_t c = count[d];
                       count[d] = sum;
                       sum += c;
                     }
                     for (int64_t i = 0; i < s.n; ++i) {
                       const uint64_t pos = count[(key(src, i) >> shift) & mask]++;
                       std::memcpy(dst + pos * s.key_bytes, src + i * s.key_bytes, s.key_bytes);
                     }
                     std::swap(src, dst);
                   }
                 },
                 std::static_pointer_cast<const void>(args)};
  return enqueueKernel(std::move(l), stream);
}

}  // namespace cpu
}  // namespace sparsetrt
