#include "sparse_max_pool_plugin.h"

#include "ops/sparse_max_pool/sparse_max_pool_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

NoAttrs SparseMaxPoolPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseNoAttrs(kName, node, fields);
}

SparseMaxPoolPlugin::SparseMaxPoolPlugin(std::string node, NoAttrs attrs)
    : PluginBase(std::move(node)), attrs_(attrs) {}

void SparseMaxPoolPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 2, 2);
  sparseMaxPoolOutput(node(), inputs[0], inputs[1]);
}

int32_t SparseMaxPoolPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs,
                                                const nvinfer1::DataType* input_types,
                                                int32_t nb_inputs) const noexcept {
  return featureOutputType(types, nb_outputs, input_types, nb_inputs);
}

// features [N, C] and neighbors [K, M] give [M, C].
int32_t SparseMaxPoolPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                             const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                             int32_t nb_outputs, nvinfer1::IExprBuilder&) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 2, 2);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2 || inputs[1].nbDims != 2)
      throw ShapeError(context() + ": inputs must be features [N, C] and neighbors [K, M]");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = inputs[1].d[1];
    outputs[0].d[1] = inputs[0].d[1];
  });
}

bool SparseMaxPoolPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out,
                                                    int32_t, int32_t) noexcept {
  return followsFeatures(pos, in_out);  // the output follows the features
}

size_t SparseMaxPoolPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc*, int32_t,
                                             const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  return kernels::sparseMaxPoolWorkspaceSize();
}

int32_t SparseMaxPoolPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                     const void* const* inputs, void* const* outputs, void* workspace,
                                     cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0], c = input_desc[0].dims.d[1];
    const int64_t k = input_desc[1].dims.d[0], m = input_desc[1].dims.d[1];
    const cudaError_t err = kernels::sparseMaxPool(toKernelType(input_desc[0].type), inputs[0], n, c,
                                                   static_cast<const int32_t*>(inputs[1]), k, m, outputs[0], workspace,
                                                   kernels::sparseMaxPoolWorkspaceSize(), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
