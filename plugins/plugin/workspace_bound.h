// The input count a rulebook plugin's workspace was sized for. TensorRT asks for the workspace once, at build
// time, for the profile's largest input (getWorkspaceSize), and then hands enqueue a buffer of that size
// without saying how big it is. So the plugin records that largest N at configure time, serializes it with
// the engine, and refuses at enqueue any N beyond it (an input from an earlier data-dependent layer can be
// larger than what was planned for, and so can one TensorRT gave no bound for), instead of letting the
// kernels' hash tables run past the buffer into other layers' memory.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class WorkspaceBound {
 public:
  // configurePlugin's max of dim 0 of the sites input; negative when TensorRT knows no bound.
  void configured(int64_t max_num_in) { max_num_in_ = max_num_in < 0 ? -1 : max_num_in; }
  // The N to size for, when known; else 0 (the smallest workspace: enqueue then refuses every N > 0).
  int64_t sizedFor() const { return max_num_in_ < 0 ? 0 : max_num_in_; }

  FieldValue field() const {
    const int32_t v = max_num_in_ < 0 || max_num_in_ > INT32_MAX ? -1 : static_cast<int32_t>(max_num_in_);
    return FieldValue{kStateMaxNumIn, FieldType::kInt32, {v}, 0.0f};
  }
  // An engine serialized without the field (an older plugin library) has an unknown bound.
  void restore(const std::vector<FieldView>& fields) { max_num_in_ = stateInt(fields, kStateMaxNumIn, -1); }

  // Throws (enqueue fails, nothing enqueued) unless `num_in` sites fit the workspace TensorRT allocated.
  void check(const std::string& context, int64_t num_in) const {
    if (num_in <= sizedFor()) return;
    if (max_num_in_ < 0)
      throw std::runtime_error(context + ": N = " + std::to_string(num_in) +
                               " input sites, but no upper bound on N was known when the engine was built (TensorRT "
                               "gave none, or an older sparsetrt plugin library built the engine), so its workspace "
                               "holds none; rebuild the engine with this plugin library");
    throw std::runtime_error(context + ": N = " + std::to_string(num_in) + " input sites, more than the " +
                             std::to_string(max_num_in_) +
                             " the engine's workspace was sized for at build time (the optimization profile's "
                             "maximum voxel count, or the bound of the layer producing N); rebuild the engine with a "
                             "larger maximum (sparsetrt build --voxels MIN:OPT:MAX) or feed fewer voxels");
  }

 private:
  int64_t max_num_in_ = -1;
};

}  // namespace plugin
}  // namespace sparsetrt
