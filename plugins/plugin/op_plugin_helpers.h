// Small pieces several op plugins share: input-count checks and the format rules.
#pragma once

#include <NvInferRuntime.h>

#include <stdexcept>
#include <string>
#include <vector>

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

}  // namespace plugin
}  // namespace sparsetrt
