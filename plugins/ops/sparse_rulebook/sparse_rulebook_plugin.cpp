#include "sparse_rulebook_plugin.h"

#include <algorithm>

#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "overflow_guard.h"
#include "plugin/op_plugin_helpers.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace plugin {

namespace {
// The plugin's own scratch (the overflow flag) sits before the kernel's workspace.
constexpr std::size_t kFlagBytes = kWorkspaceAlignment;
}  // namespace

SparseRulebookAttrs SparseRulebookPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseSparseRulebook(node, fields.data(), static_cast<int32_t>(fields.size()));
}

SparseRulebookPlugin::SparseRulebookPlugin(std::string node, SparseRulebookAttrs attrs)
    : PluginBase(std::move(node)), attrs_(std::move(attrs)), geometry_(makeGeometry(attrs_)) {}

void SparseRulebookPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 1, 1);
  sparseRulebookOutputs(node(), attrs_, inputs[0]);
}

int32_t SparseRulebookPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs,
                                                 const nvinfer1::DataType*, int32_t) const noexcept {
  return int32Outputs(types, nb_outputs, kNbOutputs);  // sites, map, size tensor
}

int32_t SparseRulebookPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                              const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                              int32_t nb_outputs, nvinfer1::IExprBuilder& builder) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 1, 1);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2)
      throw ShapeError(context() + ", input 'indices': must be [N, 1 + D] (rank 2)");
    using Op = nvinfer1::DimensionOperation;
    const nvinfer1::IDimensionExpr* n = inputs[0].d[0];
    // The bound is outputBound() as an expression: min(N * reach, batch * prod(grid)), then max_out.
    int64_t grid = attrs_.batch_size;
    for (int64_t s : outputSpatialShape(attrs_)) grid *= s;
    const nvinfer1::IDimensionExpr* upper =
        builder.operation(Op::kPROD, *n, *builder.constant(maxOutputsPerInput(geometry_)));
    upper = builder.operation(Op::kMIN, *upper, *builder.constant(grid));
    if (attrs_.max_out > 0) upper = builder.operation(Op::kMIN, *upper, *builder.constant(attrs_.max_out));
    // The auto-tuning value may not depend on a size tensor, and N is one after an earlier strided stage;
    // tuning at the bound is never too small.
    int64_t opt_constant = std::min<int64_t>(grid, int64_t{1} << 16);
    if (attrs_.max_out > 0) opt_constant = std::min<int64_t>(opt_constant, attrs_.max_out);
    const nvinfer1::IDimensionExpr* opt =
        n->isSizeTensor() ? builder.constant(opt_constant) : builder.operation(Op::kMIN, *n, *upper);
    const nvinfer1::IDimensionExpr* m = builder.declareSizeTensor(2, *opt, *upper);
    if (m == nullptr) throw ShapeError(context() + ": TensorRT refused the size tensor num_out");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = m;
    outputs[0].d[1] = builder.constant(1 + geometry_.ndim);
    outputs[1].nbDims = 2;
    outputs[1].d[0] = builder.constant(geometry_.kernel_volume);
    outputs[1].d[1] = m;
    outputs[2].nbDims = 0;  // a size tensor must be 0-D
  });
}

bool SparseRulebookPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out,
                                                     int32_t, int32_t) noexcept {
  return isInt32Linear(in_out[pos].desc);
}

size_t SparseRulebookPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t,
                                              const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  // The same N configurePlugin recorded (an unknown bound, -1, sizes for none: enqueue then refuses).
  WorkspaceBound sized;
  sized.configured(inputs[0].max.d[0]);
  const int64_t n = sized.sizedFor();
  return kFlagBytes + kernels::sparseRulebookWorkspaceSize(n, geometry_, outputBound(n));
}

int32_t SparseRulebookPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                      const void* const* inputs, void* const* outputs, void* workspace,
                                      cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0];
    bound_.check(context(), n);
    const int64_t bound = outputBound(n);
    auto* d_overflow = static_cast<int32_t*>(workspace);
    void* kernel_ws = static_cast<char*>(workspace) + kFlagBytes;
    // What TensorRT allocated (sized for the recorded N), not what this N needs: the kernel library then refuses
    // a workspace too small for N itself.
    const int64_t sized = bound_.sizedFor();
    const std::size_t ws_size = kernels::sparseRulebookWorkspaceSize(sized, geometry_, outputBound(sized));
    const auto enqueueRulebook = [&](int32_t* h_counts) {
      return kernels::sparseRulebook(static_cast<const int32_t*>(inputs[0]), n, geometry_, bound,
                                     static_cast<int32_t*>(outputs[0]), static_cast<int32_t*>(outputs[1]),
                                     static_cast<int32_t*>(outputs[2]), d_overflow, kernel_ws, ws_size, stream,
                                     h_counts);
    };

    // More sites than the bound is an error, never a truncation: the kernel then writes M = 0 and the count
    // found. How it is reported depends on where this runs (README.md, "Data-dependent output count"):
    // - build phase: the builder times tactics on inputs that may be uninitialized, so an "overflow" means
    //   nothing; no read-back, no error (consumers see M = 0).
    if (phase() == nvinfer1::TensorRTPhase::kBUILD) {
      checkCuda(enqueueRulebook(nullptr));
      return;
    }
    // - inside a CUDA-graph capture nothing may synchronize: a device-side report prints the facts at the next
    //   synchronization and consumers see M = 0. Never a trap, which would kill the process's CUDA context.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    checkCuda(cudaStreamIsCapturing(stream, &capture));
    if (capture != cudaStreamCaptureStatusNone) {
      checkCuda(enqueueRulebook(nullptr));
      checkCuda(kernels::reportOverflow(d_overflow, bound, context().c_str(), stream));
      return;
    }
    // - otherwise: the kernels read [M, overflow] back once (TensorRT synchronizes on num_out right after this
    //   plugin anyway), then sort exactly M keys; an overflow fails the enqueue.
    int32_t counts[2] = {0, 0};
    checkCuda(enqueueRulebook(counts));
    const int32_t overflow = counts[1];
    if (overflow != 0)
      throw std::runtime_error(
          "the layer created " + std::to_string(overflow) + " output sites from " + std::to_string(n) +
          " inputs, more than the bound " + std::to_string(bound) + (attrs_.max_out > 0 ? " (max_out)" : "") +
          (attrs_.max_out > 0 ? "; raise max_sites at export (0 derives the bound) or feed fewer voxels"
                              : "; the derived bound only fails for invalid input: check that batch "
                                "indices are < batch_size and coordinates lie inside the grid"));
  });
}

}  // namespace plugin
}  // namespace sparsetrt
