// Overflow-safe integer arithmetic for every size, volume and offset the host logic computes from attributes
// or dims it was handed. Two flavours:
//  - checked*: throw OverflowError (a std::overflow_error) where the true result does not fit, for code that
//    runs inside the plugin layer's guard() (validation, shape inference, enqueue), which logs the message;
//  - saturating*: clamp to the type's maximum, for noexcept paths that must return a number (workspace sizes:
//    TensorRT then fails to allocate, saying so, instead of being handed a wrapped-around small size).
// GCC and Clang builtins; no CUDA, no TensorRT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace sparsetrt {

class OverflowError : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

inline int64_t checkedMul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw OverflowError(std::string(what) + " overflows int64");
  return r;
}

inline int64_t checkedAdd(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw OverflowError(std::string(what) + " overflows int64");
  return r;
}

// a * b for a, b >= 0, or INT64_MAX where it would overflow.
inline int64_t saturatingMul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

inline std::size_t saturatingMul(std::size_t a, std::size_t b) {
  std::size_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<std::size_t>::max() : r;
}

inline std::size_t saturatingAdd(std::size_t a, std::size_t b) {
  std::size_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<std::size_t>::max() : r;
}

// An int64 count as a size_t, clamping negatives to 0.
inline std::size_t sizeOf(int64_t n) { return n > 0 ? static_cast<std::size_t>(n) : 0; }

}  // namespace sparsetrt
