#include "subm_rulebook_plugin.h"

#include "ops/subm_rulebook/subm_rulebook_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

SubmRulebookAttrs SubmRulebookPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseSubmRulebook(node, fields.data(), static_cast<int32_t>(fields.size()));
}

SubmRulebookPlugin::SubmRulebookPlugin(std::string node, SubmRulebookAttrs attrs)
    : PluginBase(std::move(node)), attrs_(std::move(attrs)), geometry_(makeGeometry(attrs_)) {}

void SubmRulebookPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 1, 1);
  submRulebookOutput(node(), attrs_, inputs[0]);
}

int32_t SubmRulebookPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType*,
                                               int32_t) const noexcept {
  return int32Outputs(types, nb_outputs, kNbOutputs);
}

int32_t SubmRulebookPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                            const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                            int32_t nb_outputs, nvinfer1::IExprBuilder& builder) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 1, 1);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2)
      throw ShapeError(context() + ", input 'indices': must be [N, 1 + D] (rank 2)");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = builder.constant(geometry_.kernel_volume);
    outputs[0].d[1] = inputs[0].d[0];
  });
}

bool SubmRulebookPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out,
                                                   int32_t, int32_t) noexcept {
  return isInt32Linear(in_out[pos].desc);
}

size_t SubmRulebookPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t,
                                            const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  // The same N configurePlugin recorded (an unknown bound, -1, sizes for none: enqueue then refuses).
  WorkspaceBound sized;
  sized.configured(inputs[0].max.d[0]);
  return kernels::submRulebookWorkspaceSize(sized.sizedFor());
}

int32_t SubmRulebookPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                    const void* const* inputs, void* const* outputs, void* workspace,
                                    cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0];
    bound_.check(context(), n);
    // What TensorRT allocated (the size for the recorded N), not what this N needs: the kernel library then
    // refuses a workspace too small for N itself.
    const cudaError_t err =
        kernels::submRulebook(static_cast<const int32_t*>(inputs[0]), n, geometry_, static_cast<int32_t*>(outputs[0]),
                              workspace, kernels::submRulebookWorkspaceSize(bound_.sizedFor()), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
