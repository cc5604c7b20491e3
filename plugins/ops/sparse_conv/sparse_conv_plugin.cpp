#include "sparse_conv_plugin.h"

#include <cstring>

#include "ops/sparse_conv/sparse_conv_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

SparseConvAttrs SparseConvPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseSparseConv(node, fields.data(), static_cast<int32_t>(fields.size()));
}

SparseConvPlugin::SparseConvPlugin(std::string node, SparseConvAttrs attrs)
    : PluginBase(std::move(node)), attrs_(attrs) {}

void SparseConvPlugin::checkInputs(const std::vector<Dims>& inputs) {
  checkInputCount(kName, node(), inputs.size(), 3, 5);
  // enqueue is not told how many inputs there are; configurePlugin (build) and onShapeChange are, and both
  // come here. The engine also carries the answer (state()), for a plugin that enqueues before any shape change.
  has_bias_ = inputs.size() >= 4;
  has_residual_ = inputs.size() == 5;
  sparseConvOutput(node(), inputs[0], inputs[1], inputs[2], has_bias_ ? &inputs[3] : nullptr,
                   has_residual_ ? &inputs[4] : nullptr);
}

std::vector<FieldValue> SparseConvPlugin::state() const {
  return {FieldValue{kStateHasBias, FieldType::kInt32, {has_bias_ ? 1 : 0}, 0.0f},
          FieldValue{kStateHasResidual, FieldType::kInt32, {has_residual_ ? 1 : 0}, 0.0f}};
}

void SparseConvPlugin::restoreState(const std::vector<FieldView>& fields) {
  has_bias_ = stateInt(fields, kStateHasBias, 0) != 0;
  has_residual_ = stateInt(fields, kStateHasResidual, 0) != 0;
}

bool SparseConvPlugin::isStateField(const char* name) {
  return std::strcmp(name, kStateHasBias) == 0 || std::strcmp(name, kStateHasResidual) == 0;
}

int32_t SparseConvPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs,
                                             const nvinfer1::DataType* input_types, int32_t nb_inputs) const noexcept {
  return featureOutputType(types, nb_outputs, input_types, nb_inputs);
}

// features [N, C_in], neighbors [K, M], weight [C_out, K, C_in] give [M, C_out].
int32_t SparseConvPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                          const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                          int32_t nb_outputs, nvinfer1::IExprBuilder&) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 3, 5);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2 || inputs[1].nbDims != 2 || inputs[2].nbDims != 3)
      throw ShapeError(context() +
                       ": inputs must be features [N, C_in], neighbors [K, M] (or its ConvPlan), weight [C_out, K, "
                       "C_in]");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = inputs[1].d[1];
    outputs[0].d[1] = inputs[2].d[0];
  });
}

bool SparseConvPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t,
                                                 int32_t) noexcept {
  return followsFeatures(pos, in_out);  // the output follows the features
}

// The split workspace for the largest M of the profile (sparseConvWorkspaceSize grows with M, so any M at run time
// fits); pure arithmetic, as TensorRT-RTX asks on machines without a GPU.
size_t SparseConvPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nb_inputs,
                                          const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  if (nb_inputs < 3 || inputs[1].max.nbDims != 2 || inputs[2].max.nbDims != 3) return 0;
  const int64_t m = inputs[1].max.d[1], c_out = inputs[2].max.d[0], k = inputs[2].max.d[1];
  return m > 0 && c_out > 0 && k > 0 ? kernels::sparseConvWorkspaceSize(m, c_out, k) : 0;
}

int32_t SparseConvPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                  const void* const* inputs, void* const* outputs, void* workspace,
                                  cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0], c_in = input_desc[0].dims.d[1];
    const int64_t rows = input_desc[1].dims.d[0], m = input_desc[1].dims.d[1];
    const int64_t c_out = input_desc[2].dims.d[0], k = input_desc[2].dims.d[1];
    // The map itself or its ConvPlan, told by the row count (checked at every shape change).
    const auto layout = rows == k ? kernels::MapLayout::kNeighbors : kernels::MapLayout::kPlan;
    const cudaError_t err = kernels::sparseConv(
        toKernelType(input_desc[0].type), inputs[0], n, c_in, static_cast<const int32_t*>(inputs[1]), layout, k, m,
        inputs[2], has_bias_ ? inputs[3] : nullptr, has_residual_ ? inputs[4] : nullptr, c_out,
        static_cast<Activation>(attrs_.activation), attrs_.alpha, outputs[0], workspace,
        workspace != nullptr ? kernels::sparseConvWorkspaceSize(m, c_out, k) : 0, stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
