#include "conv_plan_plugin.h"

#include "ops/conv_plan/conv_plan_kernels.h"
#include "plugin/op_plugin_helpers.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace plugin {

NoAttrs ConvPlanPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseNoAttrs(kName, node, fields);
}

ConvPlanPlugin::ConvPlanPlugin(std::string node, NoAttrs attrs) : PluginBase(std::move(node)), attrs_(attrs) {}

void ConvPlanPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 1, 1);
  convPlanOutput(node(), inputs[0]);
}

int32_t ConvPlanPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType*,
                                           int32_t) const noexcept {
  return int32Outputs(types, nb_outputs, kNbOutputs);
}

// neighbors [K, M] give the plan [K + 1 + ceil(K/32), M]. K is a constant of every map (the rulebooks declare it).
int32_t ConvPlanPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                        const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                        int32_t nb_outputs, nvinfer1::IExprBuilder& builder) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 1, 1);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2)
      throw ShapeError(context() + ", input 'neighbors': must be [K, M] (rank 2)");
    if (!inputs[0].d[0]->isConstant())
      throw ShapeError(context() +
                       ", input 'neighbors': its dim 0 (the kernel volume K) must be a build-time constant");
    const int64_t k = inputs[0].d[0]->getConstantValue();
    convPlanOutput(node(), {k, -1});  // K within the plan's limit
    outputs[0].nbDims = 2;
    outputs[0].d[0] = builder.constant(convPlanRows(k));
    outputs[0].d[1] = inputs[0].d[1];
  });
}

bool ConvPlanPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t,
                                               int32_t) noexcept {
  return isInt32Linear(in_out[pos].desc);
}

size_t ConvPlanPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t,
                                        const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  // The same M configurePlugin recorded (an unknown bound, -1, sizes for none: enqueue then refuses).
  WorkspaceBound sized;
  sized.configured(inputs[0].max.d[1]);
  return kernels::convPlanWorkspaceSize(sized.sizedFor(), inputs[0].max.d[0]);
}

int32_t ConvPlanPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                const void* const* inputs, void* const* outputs, void* workspace,
                                cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t k = input_desc[0].dims.d[0], m = input_desc[0].dims.d[1];
    bound_.check(context(), m);
    // What TensorRT allocated (the size for the recorded M), not what this M needs: the kernel library then
    // refuses a workspace too small for M itself.
    checkCuda(kernels::convPlan(static_cast<const int32_t*>(inputs[0]), k, m, static_cast<int32_t*>(outputs[0]),
                                workspace, kernels::convPlanWorkspaceSize(bound_.sizedFor(), k), stream));
  });
}

}  // namespace plugin
}  // namespace sparsetrt
