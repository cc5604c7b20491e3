#include "inverse_rulebook_plugin.h"

#include "ops/inverse_rulebook/inverse_rulebook_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

NoAttrs InverseRulebookPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseNoAttrs(kName, node, fields);
}

InverseRulebookPlugin::InverseRulebookPlugin(std::string node, NoAttrs attrs)
    : PluginBase(std::move(node)), attrs_(attrs) {}

void InverseRulebookPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 2, 2);
  inverseRulebookOutput(node(), inputs[0], inputs[1]);
}

int32_t InverseRulebookPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs,
                                                  const nvinfer1::DataType*, int32_t) const noexcept {
  return int32Outputs(types, nb_outputs, kNbOutputs);
}

// neighbors [K, M] of the strided conv and its input sites [N, 1 + D] give the inverse map [K, N].
int32_t InverseRulebookPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                               const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                               int32_t nb_outputs, nvinfer1::IExprBuilder&) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 2, 2);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2 || inputs[1].nbDims != 2)
      throw ShapeError(context() + ": inputs must be neighbors [K, M] and indices [N, 1 + D]");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = inputs[0].d[0];
    outputs[0].d[1] = inputs[1].d[0];
  });
}

bool InverseRulebookPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out,
                                                      int32_t, int32_t) noexcept {
  return isInt32Linear(in_out[pos].desc);
}

size_t InverseRulebookPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc*, int32_t,
                                               const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  return kernels::inverseRulebookWorkspaceSize();
}

int32_t InverseRulebookPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                       const void* const* inputs, void* const* outputs, void* workspace,
                                       cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t k = input_desc[0].dims.d[0], m = input_desc[0].dims.d[1], n = input_desc[1].dims.d[0];
    const cudaError_t err =
        kernels::inverseRulebook(static_cast<const int32_t*>(inputs[0]), k, m, n, static_cast<int32_t*>(outputs[0]),
                                 workspace, kernels::inverseRulebookWorkspaceSize(), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
