#include "segment_reduce_plugin.h"

#include "ops/segment_reduce/segment_reduce_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

SegmentReduceAttrs SegmentReducePlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseSegmentReduce(node, fields.data(), static_cast<int32_t>(fields.size()));
}

SegmentReducePlugin::SegmentReducePlugin(std::string node, SegmentReduceAttrs attrs)
    : PluginBase(std::move(node)), attrs_(attrs) {}

void SegmentReducePlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 3, 3);
  segmentReduceOutput(node(), inputs[0], inputs[1], inputs[2]);
}

int32_t SegmentReducePlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs,
                                                const nvinfer1::DataType* input_types,
                                                int32_t nb_inputs) const noexcept {
  return featureOutputType(types, nb_outputs, input_types, nb_inputs);
}

// features [N, C], segments [N], init [M, C] give [M, C].
int32_t SegmentReducePlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                             const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                             int32_t nb_outputs, nvinfer1::IExprBuilder&) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 3, 3);
    if (nb_outputs != kNbOutputs || inputs[2].nbDims != 2)
      throw ShapeError(context() + ": inputs must be features [N, C], segments [N] and init [M, C]");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = inputs[2].d[0];
    outputs[0].d[1] = inputs[2].d[1];
  });
}

// features (FLOAT or HALF), segments INT32, init and the output the features' type; all linear.
bool SegmentReducePlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out,
                                                    int32_t, int32_t) noexcept {
  return followsFeatures(pos, in_out);
}

size_t SegmentReducePlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t,
                                             const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  WorkspaceBound sized;  // the same N configurePlugin recorded
  sized.configured(inputs[0].max.d[0]);
  return kernels::segmentReduceWorkspaceSize(sized.sizedFor());
}

int32_t SegmentReducePlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                     const void* const* inputs, void* const* outputs, void* workspace,
                                     cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0], c = input_desc[0].dims.d[1], m = input_desc[2].dims.d[0];
    bound_.check(context(), n);
    const cudaError_t err =
        kernels::segmentReduce(toKernelType(input_desc[0].type), inputs[0], static_cast<const int32_t*>(inputs[1]), n,
                               c, inputs[2], m, static_cast<Reduction>(attrs_.reduction), outputs[0], workspace,
                               kernels::segmentReduceWorkspaceSize(bound_.sizedFor()), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
