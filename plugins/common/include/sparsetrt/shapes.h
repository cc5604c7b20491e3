// Input-shape checks on concrete dims with -1 for "not known yet" (a dynamic dim before the profile fixes it),
// from the schema's symbolic shapes: each op's output-shape function (ops/<op>/<op>_host.h) starts with them,
// and the plugin layer calls those wherever TensorRT gives it dims (configure time, enqueue), so a malformed
// graph fails with a message naming the node and the input instead of reaching a kernel. No CUDA, no TensorRT.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsetrt/attributes.h"

namespace sparsetrt {

class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

using Dims = std::vector<int64_t>;  // -1: unknown

// The op's input dims against the schema's symbolic shapes (ranks, 1 + D, dims named alike agreeing); a null
// entry is an absent optional input, ndim < 0 an op without spatial_shape. Every op's output-shape function calls it.
void checkInputs(const char* op, const std::string& node, int64_t ndim, const std::vector<const Dims*>& inputs);

}  // namespace sparsetrt
