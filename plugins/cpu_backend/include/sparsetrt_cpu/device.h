// The device-side language of CUDA C++ as the CPU execution backend provides it to kernels compiled by the
// host compiler. Each thread block runs on one OS thread, each CUDA thread on a fiber of it; threads switch
// only at barriers and warp collectives, which are real rendezvous (see scheduler.cpp). `__shared__`
// variables are thread_local statics: every fiber of a block runs on the block's OS thread, so they are
// shared by exactly the block's threads.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_fp16.h"
#include "cuda_runtime_api.h"

// The architecture whose instructions the backend interprets: sm_80's mma.sync / ldmatrix. The device it
// reports (cudaGetDeviceProperties) is sm_80 too unless SPARSETRT_CPU_SM says otherwise, so host code may
// pick an older path at run time while the kernels are compiled once.
#define __CUDA_ARCH__ 800

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local
#define __constant__ static const

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};

struct __attribute__((aligned(16))) uint4 {
  unsigned int x, y, z, w;
};
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return uint4{x, y, z, w}; }

namespace sparsetrt {
namespace cpu {

// What a running CUDA thread sees of itself (the scheduler keeps one per fiber).
struct ThreadIdentity {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern thread_local const ThreadIdentity* tl_identity;

// Block barriers with an optional reduction (__syncthreads, _or, _and, _count).
enum class BarrierKind : int { kPlain, kOr, kAnd, kCount };
int blockBarrier(BarrierKind kind, int predicate);

// A warp-wide rendezvous of the lanes in `mask`: every lane hands in `in_bytes` of its own, the last to
// arrive runs `combine` over all of them, and each lane gets `out_bytes` back. `what` names the operation in
// diagnostics; lanes meeting at the same point must name the same operation and mask.
using WarpCombine = void (*)(const void* ctx, const unsigned char (*in)[48], unsigned char (*out)[16], uint32_t lanes);
void warpCollective(const char* what, uint32_t mask, const void* in, std::size_t in_bytes, void* out,
                    std::size_t out_bytes, WarpCombine combine, const void* ctx);

[[noreturn]] void deviceTrap();
[[noreturn]] void deviceFail(cudaError_t error, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Shared-memory addresses as 32-bit offsets from a thread_local anchor of the same module: the __shared__
// variables (thread_local statics) lie in the module's TLS block, well within +-2 GiB of it.
extern thread_local char tl_shared_anchor;
std::size_t sharedOffset(const void* p);
void* sharedPointer(int64_t offset);

// Kernel launches (deferred to the stream like every other operation).
struct KernelLaunch {
  const char* name;
  dim3 grid, block;
  std::size_t dynamic_shared;
  void (*run)(const void* args);  // calls the kernel with the launch's copy of its arguments
  std::shared_ptr<const void> args;
};
cudaError_t enqueueKernel(KernelLaunch launch, cudaStream_t stream);
// Null, or inside a live device allocation (one past its end included)?
bool isDevicePointerOrNull(const void* p);
cudaError_t refuseHostPointer(const char* kernel, int param, const void* p);

template <typename F>
struct KernelParams;
template <typename... P>
struct KernelParams<void (*)(P...)> {
  using Tuple = std::tuple<std::decay_t<P>...>;
};

// The kernel's name from the compiler's own spelling of this instantiation (no registry to keep).
template <auto Kernel>
const char* kernelName() {
  static const std::string name = [] {
    std::string s = __PRETTY_FUNCTION__;
    std::size_t b = s.find("Kernel = ");
    if (b == std::string::npos) return s;
    b += 9;
    int depth = 0;
    std::size_t e = b;
    for (; e < s.size(); ++e) {
      const char c = s[e];
      if (c == '<' || c == '(') ++depth;
      if (c == '>' || c == ')') --depth;
      if (depth < 0 || (depth == 0 && (c == ';' || c == ']'))) break;
    }
    s = s.substr(b, e - b);
    const std::size_t colon = s.rfind("::", s.find('<'));  // drop namespaces, keep template arguments
    return colon == std::string::npos ? s : s.substr(colon + 2);
  }();
  return name.c_str();
}

template <std::size_t I = 0, typename Tuple>
cudaError_t checkPointerArgs(const char* kernel, const Tuple& args) {
  if constexpr (I == std::tuple_size_v<Tuple>) {
    return cudaSuccess;
  } else {
    if constexpr (std::is_pointer_v<std::tuple_element_t<I, Tuple>>) {
      const void* p = static_cast<const void*>(std::get<I>(args));
      if (!isDevicePointerOrNull(p)) return refuseHostPointer(kernel, static_cast<int>(I), p);
    }
    return checkPointerArgs<I + 1>(kernel, args);
  }
}

// kernel<<<grid, block, shared, stream>>>(args...) of the CPU backend (device_common.cuh's detail::launch).
template <auto Kernel, typename... Args>
cudaError_t launch(dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream, Args&&... args) {
  using Tuple = typename KernelParams<decltype(Kernel)>::Tuple;
  auto tuple = std::make_shared<const Tuple>(std::forward<Args>(args)...);
  const char* name = kernelName<Kernel>();
  const cudaError_t err = checkPointerArgs(name, *tuple);
  if (err != cudaSuccess) return err;
  KernelLaunch l{name,
                 grid,
                 block,
                 shared,
                 [](const void* a) { std::apply(Kernel, *static_cast<const Tuple*>(a)); },
                 std::static_pointer_cast<const void>(tuple)};
  return enqueueKernel(std::move(l), stream);
}

}  // namespace cpu
}  // namespace sparsetrt

#define threadIdx (::sparsetrt::cpu::tl_identity->thread_idx)
#define blockIdx (::sparsetrt::cpu::tl_identity->block_idx)
#define blockDim (::sparsetrt::cpu::tl_identity->block_dim)
#define gridDim (::sparsetrt::cpu::tl_identity->grid_dim)
constexpr int warpSize = 32;

// ------------------------------------------------------------------------------------- synchronization
inline void __syncthreads() { sparsetrt::cpu::blockBarrier(sparsetrt::cpu::BarrierKind::kPlain, 0); }
inline int __syncthreads_or(int p) { return sparsetrt::cpu::blockBarrier(sparsetrt::cpu::BarrierKind::kOr, p != 0); }
inline int __syncthreads_and(int p) { return sparsetrt::cpu::blockBarrier(sparsetrt::cpu::BarrierKind::kAnd, p != 0); }
inline int __syncthreads_count(int p) {
  return sparsetrt::cpu::blockBarrier(sparsetrt::cpu::BarrierKind::kCount, p != 0);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ------------------------------------------------------------------------------------ warp collectives
namespace sparsetrt {
namespace cpu {
inline void combineBallot(const void*, const unsigned char (*in)[48], unsigned char (*out)[16], uint32_t lanes) {
  uint32_t bits = 0;
  for (int l = 0; l < 32; ++l)
    if ((lanes >> l) & 1u && in[l][0]) bits |= 1u << l;
  for (int l = 0; l < 32; ++l) std::memcpy(out[l], &bits, sizeof bits);
}
inline uint32_t ballot(const char* what, uint32_t mask, int predicate) {
  const unsigned char p = predicate != 0;
  uint32_t bits = 0;
  warpCollective(what, mask, &p, 1, &bits, sizeof bits, combineBallot, nullptr);
  return bits;
}
// Shuffles: lane l reads the value of lane source(l); out-of-range sources read the lane's own value.
template <typename T>
T shuffle(const char* what, uint32_t mask, T value, int (*source)(int lane, int arg, int width), int arg, int width) {
  static_assert(sizeof(T) <= 16 && std::is_trivially_copyable_v<T>, "shuffled values are at most 16 bytes");
  struct Ctx {
    int (*source)(int, int, int);
    int arg, width;
  } ctx{source, arg, width};
  const WarpCombine combine = [](const void* c, const unsigned char (*in)[48], unsigned char (*out)[16],
                                 uint32_t lanes) {
    const Ctx& x = *static_cast<const Ctx*>(c);
    for (int l = 0; l < 32; ++l) {
      if (!((lanes >> l) & 1u)) continue;
      const int s = x.source(l, x.arg, x.width);
      std::memcpy(out[l], in[s >= 0 && s < 32 && ((lanes >> s) & 1u) ? s : l], sizeof(T));
    }
  };
  T result;
  warpCollective(what, mask, &value, sizeof(T), &result, sizeof(T), combine, &ctx);
  return result;
}
inline int shflIdx(int lane, int src, int width) { return (lane / width) * width + (src % width); }
inline int shflXor(int lane, int m, int width) {
  const int s = lane ^ m;
  return s / width == lane / width ? s : lane;
}
inline int shflUp(int lane, int d, int width) { return lane % width >= d ? lane - d : lane; }
inline int shflDown(int lane, int d, int width) { return lane % width + d < width ? lane + d : lane; }
}  // namespace cpu
}  // namespace sparsetrt

inline unsigned int __ballot_sync(unsigned int mask, int predicate) {
  return sparsetrt::cpu::ballot("__ballot_sync", mask, predicate);
}
inline int __any_sync(unsigned int mask, int predicate) {
  return sparsetrt::cpu::ballot("__any_sync", mask, predicate) != 0;
}
inline int __all_sync(unsigned int mask, int predicate) {
  return (sparsetrt::cpu::ballot("__all_sync", mask, !predicate) & mask) == 0;
}
inline void __syncwarp(unsigned int mask = 0xffffffffu) { (void)sparsetrt::cpu::ballot("__syncwarp", mask, 0); }
template <typename T>
T __shfl_sync(unsigned int mask, T var, int src, int width = 32) {
  return sparsetrt::cpu::shuffle("__shfl_sync", mask, var, sparsetrt::cpu::shflIdx, src, width);
}
template <typename T>
T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = 32) {
  return sparsetrt::cpu::shuffle("__shfl_xor_sync", mask, var, sparsetrt::cpu::shflXor, lane_mask, width);
}
template <typename T>
T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = 32) {
  return sparsetrt::cpu::shuffle("__shfl_up_sync", mask, var, sparsetrt::cpu::shflUp, static_cast<int>(delta), width);
}
template <typename T>
T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = 32) {
  return sparsetrt::cpu::shuffle("__shfl_down_sync", mask, var, sparsetrt::cpu::shflDown, static_cast<int>(delta),
                                 width);
}

// ----------------------------------------------------------------------------------------------- atomics
// GPU atomics are relaxed read-modify-writes; blocks run on several OS threads, so these are real atomics.
#define SPT_CPU_ATOMIC(name, builtin, T) \
  inline T name(T* p, T v) { return builtin(p, v, __ATOMIC_RELAXED); }
#define SPT_CPU_ATOMIC_ALL(name, builtin)           \
  SPT_CPU_ATOMIC(name, builtin, int)                \
  SPT_CPU_ATOMIC(name, builtin, unsigned int)       \
  SPT_CPU_ATOMIC(name, builtin, unsigned long long) \
  SPT_CPU_ATOMIC(name, builtin, long long)
SPT_CPU_ATOMIC_ALL(atomicAdd, __atomic_fetch_add)
SPT_CPU_ATOMIC_ALL(atomicSub, __atomic_fetch_sub)
SPT_CPU_ATOMIC_ALL(atomicAnd, __atomic_fetch_and)
SPT_CPU_ATOMIC_ALL(atomicOr, __atomic_fetch_or)
SPT_CPU_ATOMIC_ALL(atomicXor, __atomic_fetch_xor)
SPT_CPU_ATOMIC_ALL(atomicExch, __atomic_exchange_n)
#undef SPT_CPU_ATOMIC_ALL
#undef SPT_CPU_ATOMIC

template <typename T>
T atomicCAS(T* p, T compare, T value) {
  static_assert(std::is_integral_v<T> && (sizeof(T) == 4 || sizeof(T) == 8), "atomicCAS on 32/64-bit integers");
  __atomic_compare_exchange_n(p, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // the previous value, whether or not the swap happened
}
template <typename T>
T atomicMin(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <typename T>
T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v > old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline float atomicAdd(float* p, float v) {
  uint32_t* u = reinterpret_cast<uint32_t*>(p);
  uint32_t old = __atomic_load_n(u, __ATOMIC_RELAXED), next;
  do {
    float f;
    std::memcpy(&f, &old, sizeof f);
    f += v;
    std::memcpy(&next, &f, sizeof f);
  } while (!__atomic_compare_exchange_n(u, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  float f;
  std::memcpy(&f, &old, sizeof f);
  return f;
}

// -------------------------------------------------------------------------------------- other intrinsics
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <typename T>
T __ldg(const T* p) {
  return *p;
}
inline float __expf(float x) { return std::exp(x); }
inline std::size_t __cvta_generic_to_shared(const void* p) { return sparsetrt::cpu::sharedOffset(p); }
[[noreturn]] inline void __trap() { sparsetrt::cpu::deviceTrap(); }
using std::isnan;

// Inline PTX: SPT_PTX(text, (outputs), (inputs), (clobbers)) is an asm statement under nvcc
// (device_common.cuh) and a call into the backend's PTX interpreter here, which knows the instructions
// sparsetrt's kernels use and stops the kernel with an error naming any other.
#include "sparsetrt_cpu/ptx.h"
