// The TensorRT plugin layer without TensorRT's runtime: drives every creator and plugin through the
// IPluginV3 interfaces exactly as TensorRT would at build time (fields in, fields out, clone, formats,
// output types, shape checks, workspace sizes). Needs only TensorRT's headers and no GPU: workspace sizes
// must be computable on a CPU-only machine, because TensorRT-RTX builds engines there.
#include <NvInferRuntime.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "harness.h"
#include "plugin_test_util.h"
#include "sparsetrt/op_fields.h"

using namespace nvinfer1;
using namespace sparsetrt_test;

namespace {

// A comparable copy of what a plugin serializes.
std::vector<std::string> serialized(IPluginV3* plugin) {
  auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  const PluginFieldCollection* fc = runtime->getFieldsToSerialize();
  std::vector<std::string> out;
  for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
    const PluginField& f = fc->fields[i];
    const std::size_t bytes = f.length * (f.type == PluginFieldType::kFLOAT32 ? sizeof(float) : sizeof(int32_t));
    out.push_back(std::string(f.name) + ":" + std::to_string(static_cast<int>(f.type)) + ":" +
                  std::string(static_cast<const char*>(f.data), bytes));
  }
  return out;
}

// Plugin state serialized next to the attributes (plugin_base.h): SparseConv's bias and residual, the rulebooks'
// and ConvPlan's workspace bound.
std::size_t stateFields(const std::string& op) {
  if (op == "SparseConv") return 2;
  return op == "SubmRulebook" || op == "SparseRulebook" || op == "ConvPlan" || op == "UniqueSites" ||
                 op == "SegmentReduce" || op == "MaskRows"
             ? 1
             : 0;
}

// The value of one serialized INT32 field, or `missing`.
int32_t serializedInt(IPluginV3* plugin, const char* name, int32_t missing = -12345) {
  const PluginFieldCollection* fc = runtime(plugin)->getFieldsToSerialize();
  for (int32_t i = 0; fc && i < fc->nbFields; ++i)
    if (std::strcmp(fc->fields[i].name, name) == 0 && fc->fields[i].type == PluginFieldType::kINT32 &&
        fc->fields[i].length == 1)
      return *static_cast<const int32_t*>(fc->fields[i].data);
  return missing;
}

}  // namespace

TEST(every_schema_op_has_a_creator_declaring_its_fields) {
  auto byName = creators();
  CHECK(byName.size() == sparsetrt::kNumOps);
  // Previous versions get creators of their own (older files and engines name them), declaring the same fields.
  std::size_t previous = 0;
  for (const sparsetrt::OpSpec& spec : sparsetrt::kOps) {
    if (!spec.previous_version) continue;
    ++previous;
    bool found = false;
    for (IPluginCreatorV3One* c : allCreators())
      if (spec.name == std::string(c->getPluginName()) &&
          std::strcmp(c->getPluginVersion(), spec.previous_version) == 0)
        found = c->getFieldNames()->nbFields == static_cast<int32_t>(spec.num_fields);
    CHECK(found);
  }
  CHECK(allCreators().size() == sparsetrt::kNumOps + previous);
  for (const sparsetrt::OpSpec& spec : sparsetrt::kOps) {
    IPluginCreatorV3One* c = byName[spec.name];
    CHECK(c != nullptr);
    if (!c) continue;
    CHECK(std::strcmp(c->getPluginVersion(), spec.version) == 0);
    CHECK(std::strcmp(c->getPluginNamespace(), sparsetrt::kPluginNamespace) == 0);
    const PluginFieldCollection* names = c->getFieldNames();
    CHECK(names->nbFields == static_cast<int32_t>(spec.num_fields));
    for (std::size_t i = 0; i < spec.num_fields && static_cast<int32_t>(i) < names->nbFields; ++i) {
      CHECK(std::strcmp(names->fields[i].name, spec.fields[i].name) == 0);
      const bool is_float = spec.fields[i].type == sparsetrt::FieldType::kFloat32;
      CHECK(names->fields[i].type == (is_float ? PluginFieldType::kFLOAT32 : PluginFieldType::kINT32));
    }
  }
}

TEST(every_plugin_round_trips_through_serialization_and_clone) {
  for (auto& [name, creator] : creators()) {
    Fields f = exampleFields(name);
    IPluginV3* plugin = creator->createPlugin("node0", f.collection(), TensorRTPhase::kBUILD);
    CHECK(plugin != nullptr);
    if (!plugin) continue;
    for (auto type : {PluginCapabilityType::kCORE, PluginCapabilityType::kBUILD, PluginCapabilityType::kRUNTIME})
      CHECK(plugin->getCapabilityInterface(type) != nullptr);
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    CHECK(name == core->getPluginName());
    const std::vector<std::string> first = serialized(plugin);
    CHECK(first.size() == f.fields.size() + stateFields(name));
    // What TensorRT stores in the engine recreates an equal plugin (the runtime phase of deserialization).
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    IPluginV3* again = creator->createPlugin("node0", runtime->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
    CHECK(again != nullptr);
    if (again) CHECK(serialized(again) == first);
    IPluginV3* copy = plugin->clone();
    CHECK(copy != nullptr && serialized(copy) == first);
    IPluginV3* attached = runtime->attachToContext(nullptr);
    CHECK(attached != nullptr && serialized(attached) == first);
    delete attached;
    delete copy;
    delete again;
    delete plugin;
  }
}

TEST(invalid_fields_yield_no_plugin) {
  auto byName = creators();
  Fields bad = exampleFields("SparseRulebook");
  bad.ints[2] = {0, 2, 2};  // stride
  CHECK(byName["SparseRulebook"]->createPlugin("bad", bad.collection(), TensorRTPhase::kBUILD) == nullptr);
  Fields missing = exampleFields("SubmRulebook");
  missing.fields.pop_back();
  missing.ints.pop_back();
  CHECK(byName["SubmRulebook"]->createPlugin("bad", missing.collection(), TensorRTPhase::kBUILD) == nullptr);
  Fields extra = exampleFields("SparseMaxPool");
  extra.addInts("stride", {2});
  CHECK(byName["SparseMaxPool"]->createPlugin("bad", extra.collection(), TensorRTPhase::kBUILD) == nullptr);
  Fields wrong_type = exampleFields("SparseConv");
  wrong_type.fields[1].type = PluginFieldType::kFLOAT16;
  CHECK(byName["SparseConv"]->createPlugin("bad", wrong_type.collection(), TensorRTPhase::kBUILD) == nullptr);
}

TEST(formats_and_types_follow_the_features) {
  auto byName = creators();
  Fields f = exampleFields("SparseConv");
  IPluginV3* conv = byName["SparseConv"]->createPlugin("conv", f.collection(), TensorRTPhase::kBUILD);
  CHECK(conv != nullptr);
  if (!conv) return;
  for (DataType t : {DataType::kFLOAT, DataType::kHALF}) {
    const DataType other = t == DataType::kFLOAT ? DataType::kHALF : DataType::kFLOAT;
    DynamicPluginTensorDesc io[5] = {desc(t, {-1, 13}), desc(DataType::kINT32, {27, -1}), desc(t, {7, 27, 13}),
                                     desc(t, {7}), desc(t, {-1, 7})};
    for (int pos = 0; pos < 5; ++pos) CHECK(build(conv)->supportsFormatCombination(pos, io, 4, 1));
    io[2].desc.type = other;  // a weight of another type than the features
    CHECK(!build(conv)->supportsFormatCombination(2, io, 4, 1));
    io[1].desc.type = t;  // a float neighbour map
    CHECK(!build(conv)->supportsFormatCombination(1, io, 4, 1));
    DataType in_types[4] = {t, DataType::kINT32, t, t}, out_type = other;
    CHECK(build(conv)->getOutputDataTypes(&out_type, 1, in_types, 4) == 0 && out_type == t);
  }
  DataType bad8 = DataType::kINT8;
  DynamicPluginTensorDesc int8_features[1] = {desc(bad8, {-1, 13})};
  CHECK(!build(conv)->supportsFormatCombination(0, int8_features, 4, 1));
  delete conv;
}

TEST(shape_checks_name_the_node_and_workspaces_need_no_device) {
  auto byName = creators();
  Fields sf = exampleFields("SparseRulebook");
  IPluginV3* rb = byName["SparseRulebook"]->createPlugin("down1", sf.collection(), TensorRTPhase::kBUILD);
  CHECK(rb != nullptr);
  if (!rb) return;
  DynamicPluginTensorDesc good[1] = {desc(DataType::kINT32, {-1, 4}, 20000)};
  DynamicPluginTensorDesc outs[3] = {desc(DataType::kINT32, {-1, 4}), desc(DataType::kINT32, {27, -1}),
                                     desc(DataType::kINT32, {})};
  CHECK(build(rb)->configurePlugin(good, 1, outs, 3) == 0);
  DynamicPluginTensorDesc wrong_cols[1] = {desc(DataType::kINT32, {-1, 3}, 20000)};  // 2-D sites for a 3-D conv
  CHECK(build(rb)->configurePlugin(wrong_cols, 1, outs, 3) != 0);
  const std::size_t small = build(rb)->getWorkspaceSize(good, 1, outs, 3);
  DynamicPluginTensorDesc more[1] = {desc(DataType::kINT32, {-1, 4}, 200000)};
  const std::size_t large = build(rb)->getWorkspaceSize(more, 1, outs, 3);
  CHECK(small > 0 && large > small);
  delete rb;

  Fields mf = exampleFields("SubmRulebook");
  IPluginV3* subm = byName["SubmRulebook"]->createPlugin("subm1", mf.collection(), TensorRTPhase::kBUILD);
  CHECK(subm != nullptr && build(subm)->getWorkspaceSize(good, 1, outs, 1) > 0);
  delete subm;

  Fields cf = exampleFields("SparseConv");
  IPluginV3* conv = byName["SparseConv"]->createPlugin("conv1", cf.collection(), TensorRTPhase::kBUILD);
  DynamicPluginTensorDesc mismatch[3] = {desc(DataType::kFLOAT, {-1, 16}), desc(DataType::kINT32, {27, -1}),
                                         desc(DataType::kFLOAT, {32, 8, 16})};  // K 27 vs 8
  CHECK(conv != nullptr && build(conv)->configurePlugin(mismatch, 3, outs, 1) != 0);
  delete conv;
}

// TensorRT 10.3-10.9's ONNX parser finds creators by the plugin_namespace / plugin_version attributes; whoever
// hands them to a creator anyway (a tool passing every attribute) must not be refused for it, and a value naming
// another creator is an error.
TEST(lookup_attributes_are_accepted_and_checked) {
  for (auto& [name, creator] : creators()) {
    const sparsetrt::OpSpec& spec = *std::find_if(std::begin(sparsetrt::kOps), std::end(sparsetrt::kOps),
                                                  [&](const sparsetrt::OpSpec& o) { return name == o.name; });
    Fields f = exampleFields(name);
    const std::size_t attrs = f.fields.size();
    f.addString("plugin_namespace", sparsetrt::kPluginNamespace);
    f.addString("plugin_version", spec.version);
    IPluginV3* plugin = creator->createPlugin("node0", f.collection(), TensorRTPhase::kBUILD);
    CHECK(plugin != nullptr);
    if (plugin) CHECK(serialized(plugin).size() == attrs + stateFields(name));  // they configure nothing
    delete plugin;
    Fields other = exampleFields(name);
    other.addString("plugin_namespace", "someone_else");
    CHECK(creator->createPlugin("node0", other.collection(), TensorRTPhase::kBUILD) == nullptr);
    Fields version = exampleFields(name);
    version.addString("plugin_version", "99");
    CHECK(creator->createPlugin("node0", version.collection(), TensorRTPhase::kBUILD) == nullptr);
  }
}

// configurePlugin decides whether a bias is wired; the engine carries it, so a deserialized plugin knows before
// any shape change (it used to start with has_bias = false).
TEST(sparse_conv_bias_is_decided_from_the_inputs_and_serialized) {
  auto byName = creators();
  for (bool with_bias : {true, false}) {
    Fields f = exampleFields("SparseConv");
    IPluginV3* conv = byName["SparseConv"]->createPlugin("conv", f.collection(), TensorRTPhase::kBUILD);
    CHECK(conv != nullptr);
    if (!conv) continue;
    DynamicPluginTensorDesc in[4] = {desc(DataType::kFLOAT, {-1, 16}), desc(DataType::kINT32, {27, -1}),
                                     desc(DataType::kFLOAT, {32, 27, 16}), desc(DataType::kFLOAT, {32})};
    DynamicPluginTensorDesc out[1] = {desc(DataType::kFLOAT, {-1, 32})};
    CHECK(build(conv)->configurePlugin(in, with_bias ? 4 : 3, out, 1) == 0);
    CHECK(serializedInt(conv, "has_bias") == (with_bias ? 1 : 0));
    IPluginV3* restored =
        byName["SparseConv"]->createPlugin("conv", runtime(conv)->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
    CHECK(restored != nullptr);
    if (restored) {
      CHECK(serializedInt(restored, "has_bias") == (with_bias ? 1 : 0));
      IPluginV3* attached = runtime(restored)->attachToContext(nullptr);
      CHECK(attached != nullptr && serializedInt(attached, "has_bias") == (with_bias ? 1 : 0));
      delete attached;
    }
    delete restored;
    delete conv;
  }
}

// TensorRT sizes a rulebook's workspace once, for the profile's largest N, and hands enqueue that buffer without
// its size. The plugin records that N at configure time, the engine carries it, and enqueue refuses a larger N
// (or any N when no bound was known) before touching the device, with a message; it used to pass the size this
// N needs as the size available, so nothing could refuse, and the hash tables overran other layers' memory.
TEST(rulebook_workspaces_are_recorded_at_configure_time_and_enforced_at_enqueue) {
  auto byName = creators();
  CapturedLog logs;
  setLoggerFinder(&logs);
  for (const char* op : {"SubmRulebook", "SparseRulebook"}) {
    const bool sparse = std::string(op) == "SparseRulebook";
    Fields f = exampleFields(op);
    IPluginV3* rb = byName[op]->createPlugin("rb", f.collection(), TensorRTPhase::kBUILD);
    CHECK(rb != nullptr);
    if (!rb) continue;
    const int32_t nb_out = sparse ? 3 : 1;
    DynamicPluginTensorDesc in[1] = {desc(DataType::kINT32, {-1, 4}, 20000)};
    DynamicPluginTensorDesc outs[3] = {desc(DataType::kINT32, {-1, 4}), desc(DataType::kINT32, {27, -1}),
                                       desc(DataType::kINT32, {})};
    CHECK(build(rb)->configurePlugin(in, 1, outs, nb_out) == 0);
    CHECK(build(rb)->getWorkspaceSize(in, 1, outs, nb_out) > 0);
    CHECK(serializedInt(rb, "max_num_in") == 20000);

    // The runtime: deserialized, attached, shapes set, then a frame with more sites than the workspace holds.
    IPluginV3* restored = byName[op]->createPlugin("rb", runtime(rb)->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
    CHECK(restored != nullptr);
    if (restored) {
      IPluginV3* context = runtime(restored)->attachToContext(nullptr);
      CHECK(context != nullptr && serializedInt(context, "max_num_in") == 20000);
      PluginTensorDesc big[1] = {desc(DataType::kINT32, {30000, 4}).desc};
      PluginTensorDesc big_out[3] = {desc(DataType::kINT32, {30000 * 8, 4}).desc,
                                     desc(DataType::kINT32, {27, 30000 * 8}).desc, desc(DataType::kINT32, {}).desc};
      CHECK(runtime(context)->onShapeChange(big, 1, big_out, nb_out) == 0);
      const void* in_ptrs[1] = {nullptr};
      void* out_ptrs[3] = {nullptr, nullptr, nullptr};
      logs.text.clear();
      CHECK(runtime(context)->enqueue(big, big_out, in_ptrs, out_ptrs, nullptr, nullptr) != 0);
      CHECK(
          logs.contains("node 'rb': N = 30000 input sites, more than the 20000 the engine's workspace was sized for"));
      delete context;
    }
    delete restored;

    // No bound known at build time: the smallest workspace, and every N > 0 refused with a message.
    IPluginV3* unbounded = byName[op]->createPlugin("rb", f.collection(), TensorRTPhase::kBUILD);
    DynamicPluginTensorDesc unknown[1] = {desc(DataType::kINT32, {-1, 4})};
    unknown[0].max.d[0] = -1;
    CHECK(build(unbounded)->configurePlugin(unknown, 1, outs, nb_out) == 0);
    CHECK(serializedInt(unbounded, "max_num_in") == -1);
    CHECK(build(unbounded)->getWorkspaceSize(unknown, 1, outs, nb_out) <
          build(rb)->getWorkspaceSize(in, 1, outs, nb_out));
    PluginTensorDesc one[1] = {desc(DataType::kINT32, {1, 4}).desc};
    const void* in_ptrs[1] = {nullptr};
    void* out_ptrs[3] = {nullptr, nullptr, nullptr};
    logs.text.clear();
    CHECK(runtime(unbounded)->enqueue(one, &outs[0].desc, in_ptrs, out_ptrs, nullptr, nullptr) != 0);
    CHECK(logs.contains("no upper bound on N was known when the engine was built"));
    delete unbounded;
    delete rb;
  }
  setLoggerFinder(nullptr);
}

// SparseConv 2: a residual input (after the bias), the map as its ConvPlan (told by its row count), both recorded as
// plugin state; version-1 nodes (older files) get a creator of their own that makes the same plugin and says "1".
TEST(sparse_conv_version_2_inputs_and_the_version_1_creator) {
  auto byName = creators();
  Fields f = exampleFields("SparseConv");
  IPluginV3* conv = byName["SparseConv"]->createPlugin("conv", f.collection(), TensorRTPhase::kBUILD);
  CHECK(conv != nullptr);
  if (!conv) return;
  DynamicPluginTensorDesc in[5] = {desc(DataType::kHALF, {-1, 16}), desc(DataType::kINT32, {29, -1}, -1),
                                   desc(DataType::kHALF, {32, 27, 16}), desc(DataType::kHALF, {32}),
                                   desc(DataType::kHALF, {-1, 32})};
  in[1].max.d[1] = 5000;  // the plan's M bound: the split workspace is sized for it
  DynamicPluginTensorDesc out[1] = {desc(DataType::kHALF, {-1, 32})};
  CHECK(build(conv)->configurePlugin(in, 5, out, 1) == 0);  // a plan (27 + 1 + 1 rows) and a residual
  CHECK(serializedInt(conv, "has_residual") == 1 && serializedInt(conv, "has_bias") == 1);
  CHECK(build(conv)->getWorkspaceSize(in, 5, out, 1) > 0);
  in[1].desc.dims.d[0] = in[1].min.d[0] = in[1].opt.d[0] = in[1].max.d[0] = 28;  // neither a map nor its plan
  CHECK(build(conv)->configurePlugin(in, 5, out, 1) != 0);
  in[1].desc.dims.d[0] = in[1].min.d[0] = in[1].opt.d[0] = in[1].max.d[0] = 27;
  in[4].desc.dims.d[1] = in[4].min.d[1] = in[4].opt.d[1] = in[4].max.d[1] = 16;  // a residual of the wrong width
  CHECK(build(conv)->configurePlugin(in, 5, out, 1) != 0);
  IPluginV3* restored =
      byName["SparseConv"]->createPlugin("conv", runtime(conv)->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
  CHECK(restored != nullptr && serializedInt(restored, "has_residual") == 1);
  delete restored;
  delete conv;

  IPluginCreatorV3One* v1 = nullptr;
  for (IPluginCreatorV3One* c : allCreators())
    if (std::string(c->getPluginName()) == "SparseConv" && std::string(c->getPluginVersion()) == "1") v1 = c;
  CHECK(v1 != nullptr);
  if (!v1) return;
  Fields old = exampleFields("SparseConv");
  old.addString("plugin_version", "1");
  IPluginV3* legacy = v1->createPlugin("conv", old.collection(), TensorRTPhase::kBUILD);
  CHECK(legacy != nullptr);
  if (legacy) {
    auto* core = static_cast<IPluginV3OneCore*>(legacy->getCapabilityInterface(PluginCapabilityType::kCORE));
    CHECK(std::string(core->getPluginVersion()) == "1");  // what the engine records, to find this creator again
    IPluginV3* copy = legacy->clone();
    CHECK(copy != nullptr &&
          std::string(static_cast<IPluginV3OneCore*>(copy->getCapabilityInterface(PluginCapabilityType::kCORE))
                          ->getPluginVersion()) == "1");
    delete copy;
  }
  delete legacy;
  Fields wrong = exampleFields("SparseConv");
  wrong.addString("plugin_version", "2");  // the version-1 creator is not version 2's
  CHECK(v1->createPlugin("conv", wrong.collection(), TensorRTPhase::kBUILD) == nullptr);
}

// ConvPlan: [K, M] -> [K + 1 + ceil(K/32), M], a workspace bound on M recorded like the rulebooks' N.
TEST(conv_plan_shapes_and_workspace) {
  auto byName = creators();
  Fields f = exampleFields("ConvPlan");
  IPluginV3* plan = byName["ConvPlan"]->createPlugin("plan", f.collection(), TensorRTPhase::kBUILD);
  CHECK(plan != nullptr);
  if (!plan) return;
  DynamicPluginTensorDesc in[1] = {desc(DataType::kINT32, {27, -1})};
  in[0].max.d[1] = 30000;
  DynamicPluginTensorDesc out[1] = {desc(DataType::kINT32, {29, -1})};
  CHECK(build(plan)->configurePlugin(in, 1, out, 1) == 0);
  CHECK(serializedInt(plan, "max_num_in") == 30000);
  CHECK(build(plan)->getWorkspaceSize(in, 1, out, 1) >= 30000 * sizeof(uint32_t));
  DynamicPluginTensorDesc huge[1] = {desc(DataType::kINT32, {2000, -1})};  // above the plan's 1024 offsets
  CHECK(build(plan)->configurePlugin(huge, 1, out, 1) != 0);
  DynamicPluginTensorDesc flat[1] = {desc(DataType::kINT32, {27})};
  CHECK(build(plan)->configurePlugin(flat, 1, out, 1) != 0);
  delete plan;
}

TEST_MAIN()
