#include "mask_rows_plugin.h"

#include "ops/mask_rows/mask_rows_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

NoAttrs MaskRowsPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseNoAttrs(kName, node, fields);
}

MaskRowsPlugin::MaskRowsPlugin(std::string node, NoAttrs attrs) : PluginBase(std::move(node)), attrs_(attrs) {}

void MaskRowsPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 1, 1);
  maskRowsOutputs(node(), inputs[0]);
}

int32_t MaskRowsPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType*,
                                           int32_t) const noexcept {
  return int32Outputs(types, nb_outputs, kNbOutputs);  // rows, size tensor
}

// mask [N] gives rows [M] and the size tensor M <= N.
int32_t MaskRowsPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                        const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                        int32_t nb_outputs, nvinfer1::IExprBuilder& builder) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 1, 1);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 1)
      throw ShapeError(context() + ", input 'mask': must be [N] (rank 1)");
    const nvinfer1::IDimensionExpr* n = inputs[0].d[0];
    // Auto-tuned and bounded at N, as UniqueSites (the optimization value must lie inside M's range).
    const nvinfer1::IDimensionExpr* m = builder.declareSizeTensor(1, *n, *n);
    if (m == nullptr) throw ShapeError(context() + ": TensorRT refused the size tensor num_out");
    outputs[0].nbDims = 1;
    outputs[0].d[0] = m;
    outputs[1].nbDims = 0;  // a size tensor must be 0-D
  });
}

bool MaskRowsPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t,
                                               int32_t) noexcept {
  return isInt32Linear(in_out[pos].desc);
}

size_t MaskRowsPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t,
                                        const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  WorkspaceBound sized;  // the same N configurePlugin recorded
  sized.configured(inputs[0].max.d[0]);
  return kernels::maskRowsWorkspaceSize(sized.sizedFor());
}

int32_t MaskRowsPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                const void* const* inputs, void* const* outputs, void* workspace,
                                cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0];
    bound_.check(context(), n);
    const cudaError_t err = kernels::maskRows(static_cast<const int32_t*>(inputs[0]), n,
                                              static_cast<int32_t*>(outputs[0]), static_cast<int32_t*>(outputs[1]),
                                              workspace, kernels::maskRowsWorkspaceSize(bound_.sizedFor()), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
