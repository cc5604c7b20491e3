#include "densify_plugin.h"

#include "ops/densify/densify_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

DensifyAttrs DensifyPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseDensify(node, fields.data(), static_cast<int32_t>(fields.size()));
}

DensifyPlugin::DensifyPlugin(std::string node, DensifyAttrs attrs)
    : PluginBase(std::move(node)), attrs_(std::move(attrs)) {}

void DensifyPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 2, 2);
  densifyOutput(node(), attrs_, inputs[0], inputs[1]);
}

int32_t DensifyPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs,
                                          const nvinfer1::DataType* input_types, int32_t nb_inputs) const noexcept {
  return featureOutputType(types, nb_outputs, input_types, nb_inputs);
}

// features [N, C] give [batch_size, C, *spatial_shape]: static but for C, whatever N is.
int32_t DensifyPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs, const nvinfer1::DimsExprs*,
                                       int32_t, nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                                       nvinfer1::IExprBuilder& builder) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 2, 2);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2)
      throw ShapeError(context() + ": inputs must be features [N, C] and indices [N, 1 + D]");
    if (2 + attrs_.spatial_shape.size() > static_cast<std::size_t>(nvinfer1::Dims::MAX_DIMS))
      throw ShapeError(context() + ": the dense output has more dims than TensorRT allows");
    outputs[0].nbDims = static_cast<int32_t>(2 + attrs_.spatial_shape.size());
    outputs[0].d[0] = builder.constant(attrs_.batch_size);
    outputs[0].d[1] = inputs[0].d[1];
    for (std::size_t i = 0; i < attrs_.spatial_shape.size(); ++i)
      outputs[0].d[2 + i] = builder.constant(attrs_.spatial_shape[i]);
  });
}

bool DensifyPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t,
                                              int32_t) noexcept {
  return followsFeatures(pos, in_out);  // the output follows the features
}

size_t DensifyPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc*, int32_t,
                                       const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  return kernels::densifyWorkspaceSize();
}

int32_t DensifyPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                               const void* const* inputs, void* const* outputs, void* workspace,
                               cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0], c = input_desc[0].dims.d[1];
    const cudaError_t err =
        kernels::densify(toKernelType(input_desc[0].type), inputs[0], static_cast<const int32_t*>(inputs[1]), n, c,
                         static_cast<int32_t>(attrs_.spatial_shape.size()), attrs_.spatial_shape.data(),
                         attrs_.batch_size, outputs[0], workspace, kernels::densifyWorkspaceSize(), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
