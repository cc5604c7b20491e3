// The registration list: every op's plugin creator, one line each, returned by the exported getCreators (the entry
// point TensorRT looks up when it loads the library: IPluginRegistry::loadLibrary, trtexec --dynamicPlugins,
// polygraphy, TensorRT-RTX, an engine that embeds the library). It sits above the ops so that the shared base
// (plugin/) includes no op. Adding an op: its folder, the schema, one line here (test_plugins checks that every
// op of op_fields.h has a creator declaring its fields, and nothing else is registered).
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
#include "plugin/plugin_base.h"

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators) {
  using namespace sparsetrt::plugin;
  // Function-local statics: built on first use, after every other static of the library exists. Schema order
  // (op_fields.h kOps), then the previous versions that older files and engines name (op_fields.h
  // previous_version): SparseConv 1 (no residual, no ConvPlan input) is served by the version-2 plugin.
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
  static Creator<SparseConvPlugin> conv_v1(opSpec(SparseConvPlugin::kName).previous_version);
  static nvinfer1::IPluginCreatorInterface* const creators[] = {
      &subm, &sparse, &inverse, &plan, &conv, &pool, &densify, &unique, &segment, &mask, &conv_v1,
  };
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}
