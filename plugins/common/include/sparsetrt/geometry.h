// Plain-old-data geometry shared by the host logic (common/) and the CUDA kernels (kernels/).
// No CUDA or TensorRT header: kernels receive it by value as a kernel argument.
#pragma once

#include <cstdint>
#include <vector>

namespace sparsetrt {

// spconv supports 1D to 4D layers; the fixed bound keeps RulebookGeometry a flat struct.
constexpr int kMaxSpatialDims = 4;

// Feature element types; a plugin follows its features input (TensorRT networks are strongly typed).
enum class DataType : int32_t { kFloat32 = 0, kFloat16 = 1 };

enum class RulebookKind : int32_t {
  kSubmanifold = 0,  // outputs are the input sites, in their row order; kernel centred at k // 2
  kRegular = 1,      // output o reads input o * stride - padding + t * dilation
  kTransposed = 2,   // the adjoint of kRegular: input i feeds output i * stride - padding + t * dilation
};

struct RulebookGeometry {
  RulebookKind kind;
  int32_t ndim;
  int32_t in_shape[kMaxSpatialDims];
  int32_t out_shape[kMaxSpatialDims];  // equals in_shape for kSubmanifold
  int32_t kernel[kMaxSpatialDims];
  int32_t stride[kMaxSpatialDims];
  int32_t padding[kMaxSpatialDims];  // for kSubmanifold: the centring padding (kernel / 2) * dilation
  int32_t dilation[kMaxSpatialDims];
  int32_t kernel_volume;  // product of kernel
  // Regular / transposed: the batch size B (indices[:, 0] in [0, B)), which bounds the output keys' bits;
  // 0 when unknown (then 31 bits, any non-negative int32). Unused for kSubmanifold.
  int32_t batch_size;
  // A 1x1 kernel that maps every site to itself: the rulebook is the identity in input row order,
  // exactly as the CPU reference builds it (exporter/backend/rulebook.py).
  bool pointwise;
};

// What the rulebook ops' geometries share (ops/{subm,sparse}_rulebook/*_host.cpp fill in the rest): ndim, the
// grid as both input and output shape, kernel and dilation, unit stride, no padding, the kernel volume (checked:
// OverflowError past int32). Unused dims are 1. Host only.
RulebookGeometry baseGeometry(const std::vector<int32_t>& shape, const std::vector<int32_t>& kernel,
                              const std::vector<int32_t>& dilation);

// The product of a kernel's extents, overflow-checked (OverflowError).
int64_t kernelVolume(const std::vector<int32_t>& kernel);

}  // namespace sparsetrt
