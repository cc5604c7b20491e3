// SparseMaxPool as a TensorRT IPluginV3: max over each output site's active inputs (README.md).
#pragma once

#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class SparseMaxPoolPlugin : public PluginBase<SparseMaxPoolPlugin> {
 public:
  static constexpr char kName[] = "SparseMaxPool";
  static constexpr int32_t kNbOutputs = 1;
  static NoAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SparseMaxPoolPlugin(std::string node, NoAttrs attrs);
  const NoAttrs& attrs() const { return attrs_; }
  void checkInputs(const std::vector<Dims>& inputs) const;

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
  NoAttrs attrs_;
};

}  // namespace plugin
}  // namespace sparsetrt
