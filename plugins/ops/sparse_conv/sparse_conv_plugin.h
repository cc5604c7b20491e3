// SparseConv as a TensorRT IPluginV3: gather-GEMM-scatter conv over a neighbour map, bias and activation fused
// (README.md).
#pragma once

#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class SparseConvPlugin : public PluginBase<SparseConvPlugin> {
 public:
  static constexpr char kName[] = "SparseConv";
  static constexpr int32_t kNbOutputs = 1;
  static SparseConvAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SparseConvPlugin(std::string node, SparseConvAttrs attrs);
  const SparseConvAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs);

  int32_t getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType* input_types,
                             int32_t nb_inputs) const noexcept override;
  int32_t getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs, const nvinfer1::DimsExprs* shape_inputs,
                          int32_t nb_shape_inputs, nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                          nvinfer1::IExprBuilder& builder) noexcept override;
  bool supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t nb_inputs,
                                 int32_t nb_outputs) noexcept override;
  size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nb_inputs,
                          const nvinfer1::DynamicPluginTensorDesc* outputs, int32_t nb_outputs) const noexcept override;
  int32_t enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc* output_desc,
                  const void* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;

 private:
  SparseConvAttrs attrs_;
  bool has_bias_ = false;
};

}  // namespace plugin
}  // namespace sparsetrt
