// Device helpers shared by the kernel sources: site keys, the open-addressing hash table, launch sizing,
// and the two constructs that the CPU execution backend (cpu_backend/) provides in its own way: kernel
// launches (detail::launch) and inline PTX (SPT_PTX). Kernel logic has no other backend-specific code.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "sparsetrt/geometry.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace kernels {
namespace detail {

constexpr int kThreads = 256;
// Grid-stride loops cover any size; capping the grid keeps launches valid for huge N * K.
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

inline unsigned int blocksFor(int64_t work) {
  return static_cast<unsigned int>(
      std::min<int64_t>(std::max<int64_t>((work + kThreads - 1) / kThreads, 1), kMaxBlocks));
}

// kernel<<<grid, block, shared, stream>>>(args...), then the launch's status. The CPU backend runs the same
// kernel as fibers instead (cpu_backend/include/sparsetrt_cpu/device.h).
#if defined(SPARSETRT_CPU_BACKEND)
using ::sparsetrt::cpu::launch;
#else
template <auto Kernel, typename... Args>
cudaError_t launch(dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream, Args&&... args) {
  // clang-format off
  Kernel<<<grid, block, shared, stream>>>(std::forward<Args>(args)...);
  // clang-format on
  return cudaGetLastError();
}
#endif

#define SPT_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{blockDim.x} * gridDim.x)

// Inline PTX: SPT_PTX(text, (outputs), (inputs), (clobbers)), operands written SPT_PTX_OUT("r", x),
// SPT_PTX_INOUT("f", acc), SPT_PTX_IN("r", addr). Under nvcc this is the asm statement; the CPU backend
// interprets the instruction instead (cpu_backend/src/ptx.cpp).
#if !defined(SPT_PTX)
#define SPT_PTX_LIST(...) __VA_ARGS__
#define SPT_PTX(text, outputs, inputs, clobbers) \
  asm volatile(text : SPT_PTX_LIST outputs : SPT_PTX_LIST inputs : SPT_PTX_LIST clobbers)
#define SPT_PTX_OUT(c, x) "=" c(x)
#define SPT_PTX_INOUT(c, x) "+" c(x)
#define SPT_PTX_IN(c, x) c(x)
#endif

constexpr uint64_t kEmptyKey = ~uint64_t{0};  // real keys are < 2^63, so all ones never occurs

// Row-major key of (batch, coords) over [batch, *shape]; sorting keys sorts sites by batch, z, y, x.
__device__ __forceinline__ uint64_t encodeKey(int32_t batch, const int32_t* coords, const int32_t* shape, int ndim) {
  uint64_t key = static_cast<uint64_t>(batch);
  for (int d = 0; d < ndim; ++d) key = key * static_cast<uint64_t>(shape[d]) + static_cast<uint64_t>(coords[d]);
  return key;
}

__device__ __forceinline__ void decodeKey(uint64_t key, const int32_t* shape, int ndim, int32_t* row /* 1 + ndim */) {
  for (int d = ndim - 1; d >= 0; --d) {
    row[1 + d] = static_cast<int32_t>(key % static_cast<uint64_t>(shape[d]));
    key /= static_cast<uint64_t>(shape[d]);
  }
  row[0] = static_cast<int32_t>(key);
}

// splitmix64's finalizer: row-major keys of neighbouring sites differ in low bits only, so the bits are
// mixed before masking, or linear probing would cluster.
__device__ __forceinline__ uint64_t mixHash(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Open addressing with linear probing over a power-of-two table. Tables sized for every key they can receive
// are kept at most half full (see sparsetrt::hashCapacity), so probe sequences stay short and end at the key
// or at an empty slot. SparseRulebook sizes its table for the declared output bound instead, so a layer that
// overflows that bound can fill the table: every probe sequence is therefore cut off after `capacity` probes,
// which have then visited every slot.
struct HashTable {
  unsigned long long* keys;  // kEmptyKey = free
  int32_t* values;
  uint64_t mask;  // capacity - 1

  // Inserts `key` (or finds it already there) and returns its slot; *inserted tells whether this call put it
  // there (exactly one caller per key). Returns -1 if the table is full without the key: all `capacity` slots
  // then hold other keys, and a slot, once taken, is never freed.
  __device__ __forceinline__ int64_t insert(uint64_t key, bool* inserted) const {
    uint64_t slot = mixHash(key) & mask;
    for (uint64_t probe = 0; probe <= mask; ++probe) {
      const unsigned long long prev =
          atomicCAS(&keys[slot], static_cast<unsigned long long>(kEmptyKey), static_cast<unsigned long long>(key));
      if (prev == kEmptyKey || prev == key) {
        *inserted = prev == kEmptyKey;
        return static_cast<int64_t>(slot);
      }
      slot = (slot + 1) & mask;
    }
    *inserted = false;
    return -1;
  }

  // The key's slot, or -1. Only called in kernels after the inserting kernel has finished.
  __device__ __forceinline__ int64_t find(uint64_t key) const {
    uint64_t slot = mixHash(key) & mask;
    for (uint64_t probe = 0; probe <= mask; ++probe) {
      const unsigned long long k = keys[slot];
      if (k == key) return static_cast<int64_t>(slot);
      if (k == kEmptyKey) return -1;
      slot = (slot + 1) & mask;
    }
    return -1;
  }
};

template <typename P>
P* carve(void* base, std::size_t offset) {
  return reinterpret_cast<P*>(static_cast<char*>(base) + offset);
}

inline HashTable tableAt(void* workspace, const HashTableLayout& layout) {
  return HashTable{carve<unsigned long long>(workspace, layout.keys_offset),
                   carve<int32_t>(workspace, layout.values_offset), static_cast<uint64_t>(layout.capacity - 1)};
}

static __global__ void iotaKernel(int32_t* __restrict__ out, int64_t n) {
  SPT_GRID_STRIDE(i, n) { out[i] = static_cast<int32_t>(i); }
}

// The kernel taps of flat offset k (row-major over the kernel: k = kz * kH * kW + ky * kW + kx).
__device__ __forceinline__ void splitOffset(int64_t k, const RulebookGeometry& g, int32_t* taps) {
  for (int d = g.ndim - 1; d >= 0; --d) {
    taps[d] = static_cast<int32_t>(k % g.kernel[d]);
    k /= g.kernel[d];
  }
}

template <typename T>
__device__ __forceinline__ float toFloat(T v);
template <>
__device__ __forceinline__ float toFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float toFloat<__half>(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) {
  return __float2half_rn(v);
}

}  // namespace detail
}  // namespace kernels
}  // namespace sparsetrt
