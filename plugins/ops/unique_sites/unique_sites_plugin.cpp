#include "unique_sites_plugin.h"

#include "ops/unique_sites/unique_sites_kernels.h"
#include "plugin/op_plugin_helpers.h"

namespace sparsetrt {
namespace plugin {

NoAttrs UniqueSitesPlugin::parse(const std::string& node, const std::vector<FieldView>& fields) {
  return parseNoAttrs(kName, node, fields);
}

UniqueSitesPlugin::UniqueSitesPlugin(std::string node, NoAttrs attrs) : PluginBase(std::move(node)), attrs_(attrs) {}

void UniqueSitesPlugin::checkInputs(const std::vector<Dims>& inputs) const {
  checkInputCount(kName, node(), inputs.size(), 1, 1);
  uniqueSitesOutputs(node(), inputs[0]);
}

int32_t UniqueSitesPlugin::getOutputDataTypes(nvinfer1::DataType* types, int32_t nb_outputs, const nvinfer1::DataType*,
                                              int32_t) const noexcept {
  return int32Outputs(types, nb_outputs, kNbOutputs);  // unique, inverse, counts, size tensor
}

// indices [N, K] give unique [M, K], inverse [N], counts [M] and the size tensor M <= N.
int32_t UniqueSitesPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nb_inputs,
                                           const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                           int32_t nb_outputs, nvinfer1::IExprBuilder& builder) noexcept {
  return guard(context(), [&] {
    checkInputCount(kName, node(), static_cast<std::size_t>(nb_inputs), 1, 1);
    if (nb_outputs != kNbOutputs || inputs[0].nbDims != 2)
      throw ShapeError(context() + ", input 'indices': must be [N, K] (rank 2)");
    const nvinfer1::IDimensionExpr* n = inputs[0].d[0];
    // Auto-tuned and bounded at N: the optimization value must lie inside [min, max] of M's range (a constant
    // above N fails the build: TensorRT-RTX 1.7), and N may itself be a sum of size tensors (a concatenation of
    // strided stages' outputs), which TensorRT accepts here.
    const nvinfer1::IDimensionExpr* m = builder.declareSizeTensor(3, *n, *n);
    if (m == nullptr) throw ShapeError(context() + ": TensorRT refused the size tensor num_out");
    outputs[0].nbDims = 2;
    outputs[0].d[0] = m;
    outputs[0].d[1] = inputs[0].d[1];
    outputs[1].nbDims = 1;
    outputs[1].d[0] = n;
    outputs[2].nbDims = 1;
    outputs[2].d[0] = m;
    outputs[3].nbDims = 0;  // a size tensor must be 0-D
  });
}

bool UniqueSitesPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* in_out, int32_t,
                                                  int32_t) noexcept {
  return isInt32Linear(in_out[pos].desc);
}

size_t UniqueSitesPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t,
                                           const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
  WorkspaceBound sized;  // the same N configurePlugin recorded
  sized.configured(inputs[0].max.d[0]);
  return kernels::uniqueSitesWorkspaceSize(sized.sizedFor());
}

int32_t UniqueSitesPlugin::enqueue(const nvinfer1::PluginTensorDesc* input_desc, const nvinfer1::PluginTensorDesc*,
                                   const void* const* inputs, void* const* outputs, void* workspace,
                                   cudaStream_t stream) noexcept {
  return guard(context(), [&] {
    const int64_t n = input_desc[0].dims.d[0], k = input_desc[0].dims.d[1];
    bound_.check(context(), n);
    // What TensorRT allocated (sized for the recorded N), so the kernel refuses a workspace too small for N.
    const cudaError_t err = kernels::uniqueSites(
        static_cast<const int32_t*>(inputs[0]), n, k, static_cast<int32_t*>(outputs[0]),
        static_cast<int32_t*>(outputs[1]), static_cast<int32_t*>(outputs[2]), static_cast<int32_t*>(outputs[3]),
        workspace, kernels::uniqueSitesWorkspaceSize(bound_.sizedFor()), stream);
    checkCuda(err);
  });
}

}  // namespace plugin
}  // namespace sparsetrt
