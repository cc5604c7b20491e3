// Small pieces several op plugins share: input-count checks and the format rules.
#pragma once

#include <NvInferRuntime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "plugin/plugin_base.h"
#include "sparsetrt/shapes.h"

namespace sparsetrt {
namespace plugin {

// The number of inputs TensorRT wired to the node must be one the schema allows.
inline void checkInputCount(const char* op, const std::string& node, std::size_t got, std::size_t lo, std::size_t hi) {
  if (got < lo || got > hi)
    throw ShapeError(std::string("sparsetrt::") + op + " node '" + node + "': expected " + std::to_string(lo) +
                     (hi != lo ? " or " + std::to_string(hi) : std::string()) + " inputs, got " + std::to_string(got) +
                     " (was the ONNX node edited by hand?)");
}

inline bool isInt32Linear(const nvinfer1::PluginTensorDesc& d) {
  return d.type == nvinfer1::DataType::kINT32 && d.format == nvinfer1::TensorFormat::kLINEAR;
}

// The format rule of the compute ops: input 0 (features) is FLOAT or HALF, input 1 an INT32 map or site list,
// everything else (weight, bias, the output) the features' type; all linear.
inline bool followsFeatures(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out) {
  const nvinfer1::PluginTensorDesc& d = in_out[pos].desc;
  if (pos == 1) return isInt32Linear(d);
  if (pos == 0) return isFeatureType(d.type) && isLinear(d);
  return d.type == in_out[0].desc.type && isLinear(d);
}

// The output type of the compute ops: the features'.
inline int32_t featureOutputType(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType* input_types,
                                 int32_t nb_inputs) {
  if (nb_outputs != 1 || nb_inputs < 1) return 1;
  types[0] = input_types[0];
  return 0;
}

// The rulebook ops output INT32 only (sites, maps, size tensors).
inline int32_t int32Outputs(nvinfer1::DataType* types, int32_t nb_outputs, int32_t expected) {
  if (nb_outputs != expected) return 1;
  for (int32_t i = 0; i < nb_outputs; ++i) types[i] = nvinfer1::DataType::kINT32;
  return 0;
}

// A kernel's status as an exception for guard() to log.
inline void checkCuda(cudaError_t err) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(err));
}

}  // namespace plugin
}  // namespace sparsetrt
