// SparseRulebook as a TensorRT IPluginV3: output sites and neighbour map of a strided or transposed conv, with a
// data-dependent count (README.md).
#pragma once

#include "plugin/plugin_base.h"

namespace sparsetrt {
namespace plugin {

class SparseRulebookPlugin : public PluginBase<SparseRulebookPlugin> {
 public:
  static constexpr char kName[] = "SparseRulebook";
  static constexpr int32_t kNbOutputs = 3;
  static SparseRulebookAttrs parse(const std::string& node, const std::vector<FieldView>& fields);

  SparseRulebookPlugin(std::string node, SparseRulebookAttrs attrs);
  const SparseRulebookAttrs& attrs() const { return attrs_; }
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
  // M's upper bound for N input sites: what TensorRT allocates the outputs for (getOutputShapes declares
  // the same formula), so also the capacity the kernel must not exceed.
  int64_t outputBound(int64_t num_in) const { return sparseRulebookOutputBound(attrs_, num_in); }

  SparseRulebookAttrs attrs_;
  RulebookGeometry geometry_;
};

}  // namespace plugin
}  // namespace sparsetrt
