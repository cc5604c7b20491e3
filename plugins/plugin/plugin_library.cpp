// The two C entry points TensorRT looks up when it loads a plugin library (IPluginRegistry::loadLibrary,
// trtexec --dynamicPlugins, polygraphy, TensorRT-RTX, or a plugin library embedded in an engine): the
// creators of every sparsetrt op, and the logger finder. Nothing here links libnvinfer.
#include <NvInferRuntime.h>

#include "ops/conv_plan/conv_plan_plugin.h"
#include "ops/densify/densify_plugin.h"
#include "ops/inverse_rulebook/inverse_rulebook_plugin.h"
#include "ops/mask_rows/mask_rows_plugin.h"
#include "ops/segment_reduce/segment_reduce_plugin.h"
#include "ops/sparse_conv/sparse_conv_plugin.h"
#include "ops/sparse_max_pool/sparse_max_pool_plugin.h"
#include "ops/sparse_rulebook/sparse_rulebook_plugin.h"
#include "ops/subm_rulebook/subm_rulebook_plugin.h"
#include "ops/unique_sites/unique_sites_plugin.h"
#include "plugin_base.h"

#define SPARSETRT_EXPORT extern "C" __attribute__((visibility("default")))

SPARSETRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) { sparsetrt::plugin::setLoggerFinder(finder); }

SPARSETRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  using namespace sparsetrt::plugin;
  // Function-local statics: built on first use, after every other static of the library exists.
  static Creator<SubmRulebookPlugin> subm;
  static Creator<SparseRulebookPlugin> sparse;
  static Creator<InverseRulebookPlugin> inverse;
  static Creator<ConvPlanPlugin> plan;
  static Creator<SparseConvPlugin> conv;
  static Creator<SparseMaxPoolPlugin> pool;
  static Creator<DensifyPlugin> densify;
  static Creator<UniqueSitesPlugin> unique;
  static Creator<SegmentReducePlugin> segment;
  static Creator<MaskRowsPlugin> mask;
  // Files and engines of an op's previous version (op_fields.h): SparseConv 1 (no residual, no ConvPlan input).
  static Creator<SparseConvPlugin> conv_v1(opSpec(SparseConvPlugin::kName).previous_version);
  // Schema order (op_fields.h kOps), then the previous versions; the contract test checks every op has a creator.
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&subm,    &sparse, &inverse, &plan, &conv,   &pool,
                                                                &densify, &unique, &segment, &mask, &conv_v1};
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}
