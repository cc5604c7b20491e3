// IEEE binary16 for the CPU execution backend, standing in for the toolkit's <cuda_fp16.h>: the storage type
// and the conversions sparsetrt's kernels and tests use, rounding as the GPU's conversion instructions do
// (to nearest even; overflow to infinity; subnormals kept; NaN stays NaN).
#pragma once

#include <cstdint>
#include <cstring>

struct __half {
  unsigned short x;
  __half() = default;  // trivial, as __shared__ arrays (thread_local on the CPU) need no initialisation
};

struct __half2 {
  __half x, y;
  __half2() = default;
};

namespace sparsetrt {
namespace cpu {

inline float halfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    uint32_t m = mant;
    do {
      ++e;
      m <<= 1;
    } while ((m & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((m & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t floatToHalfBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return sign | (abs > 0x7F800000u ? 0x7E00u : 0x7C00u);  // NaN, inf
  if (abs >= 0x477FF000u) return sign | 0x7C00u;                                  // rounds to >= 65520: infinity
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  const int exp = static_cast<int>(abs >> 23);
  uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
  // Shift so the result's lowest kept bit is bit 0; normal results keep 11 bits, subnormals fewer.
  const int shift = exp < 113 ? 126 - exp : 13;
  uint32_t kept = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (kept & 1u))) ++kept;  // to nearest, ties to even
  if (exp < 113) return sign | static_cast<uint16_t>(kept);  // subnormal (a carry makes it the smallest normal)
  return sign | static_cast<uint16_t>((static_cast<uint32_t>(exp - 112) << 10) + (kept - 0x400u));
}

}  // namespace cpu
}  // namespace sparsetrt

inline float __half2float(__half h) { return sparsetrt::cpu::halfBitsToFloat(h.x); }
inline __half __float2half_rn(float f) {
  __half h;
  h.x = sparsetrt::cpu::floatToHalfBits(f);
  return h;
}
inline __half __float2half(float f) { return __float2half_rn(f); }
inline __half2 __floats2half2_rn(float a, float b) {
  __half2 h;
  h.x = __float2half_rn(a);
  h.y = __float2half_rn(b);
  return h;
}
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }
