#include "sparsetrt/attributes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

namespace sparsetrt {
namespace {

// Keys are b * prod(shape) + row-major site, in int64 with b < 2^31: a grid of at most 2^32 sites keeps
// every key below 2^63 (and leaves the radix sort a bounded bit range).
constexpr int64_t kMaxGridSites = int64_t{1} << 32;

[[noreturn]] void fail(const std::string& op, const std::string& node, const std::string& field,
                       const std::string& what) {
  std::ostringstream msg;
  msg << "sparsetrt::" << op << " node '" << node << "'";
  if (!field.empty()) msg << ", attribute '" << field << "'";
  msg << ": " << what;
  throw AttributeError(msg.str());
}

std::string str(const std::vector<int32_t>& v) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << "]";
  return s.str();
}

// Collects the fields of one op by name, refusing unknown, repeated, mistyped and missing ones.
class FieldReader {
 public:
  FieldReader(const char* op, const std::string& node, const FieldView* fields, int32_t num_fields)
      : op_(op), node_(node), fields_(fields), num_(num_fields) {
    const OpSpec* spec = nullptr;
    for (const OpSpec& s : kOps)
      if (std::strcmp(s.name, op) == 0) spec = &s;
    if (num_fields < 0 || (num_fields > 0 && fields == nullptr)) fail(op_, node_, "", "malformed field collection");
    for (int32_t i = 0; i < num_fields; ++i) {
      const FieldView& f = fields[i];
      if (f.name == nullptr) fail(op_, node_, "", "a field has no name");
      const FieldSpec* match = nullptr;
      for (std::size_t j = 0; spec && j < spec->num_fields; ++j)
        if (std::strcmp(spec->fields[j].name, f.name) == 0) match = &spec->fields[j];
      if (match == nullptr) fail(op_, node_, f.name, "unknown attribute for this op (schema drift?)");
      for (int32_t j = 0; j < i; ++j)
        if (std::strcmp(fields[j].name, f.name) == 0) fail(op_, node_, f.name, "given twice");
      if (f.type != match->type)
        fail(op_, node_, f.name,
             std::string("must be of type ") + fieldTypeName(match->type) + ", got " + fieldTypeName(f.type));
      if (f.length < 0 || (f.length > 0 && f.data == nullptr)) fail(op_, node_, f.name, "malformed value");
    }
  }

  const FieldView& get(const char* name) const {
    for (int32_t i = 0; i < num_; ++i)
      if (std::strcmp(fields_[i].name, name) == 0) return fields_[i];
    fail(op_, node_, name, "missing (every attribute of the schema is required)");
  }

  std::vector<int32_t> ints(const char* name) const {
    const FieldView& f = get(name);
    const auto* p = static_cast<const int32_t*>(f.data);
    return std::vector<int32_t>(p, p + f.length);
  }

  int32_t int32(const char* name) const {
    const FieldView& f = get(name);
    if (f.length != 1) fail(op_, node_, name, "must hold one value, got " + std::to_string(f.length));
    int32_t v;
    std::memcpy(&v, f.data, sizeof(v));
    return v;
  }

  float float32(const char* name) const {
    const FieldView& f = get(name);
    if (f.length != 1) fail(op_, node_, name, "must hold one value, got " + std::to_string(f.length));
    float v;
    std::memcpy(&v, f.data, sizeof(v));
    return v;
  }

 private:
  const char* op_;
  const std::string& node_;
  const FieldView* fields_;
  int32_t num_;
};

FieldValue intsField(const char* name, const std::vector<int32_t>& v) {
  return FieldValue{name, FieldType::kInt32Array, v, 0.0f};
}
FieldValue intField(const char* name, int32_t v) { return FieldValue{name, FieldType::kInt32, {v}, 0.0f}; }
FieldValue floatField(const char* name, float v) { return FieldValue{name, FieldType::kFloat32, {}, v}; }

void checkSpatialShape(const char* op, const std::string& node, const std::vector<int32_t>& shape) {
  if (shape.empty() || shape.size() > static_cast<std::size_t>(kMaxSpatialDims))
    fail(op, node, "spatial_shape",
         "must have 1 to " + std::to_string(kMaxSpatialDims) + " entries (one per spatial dim), got " + str(shape));
  int64_t sites = 1;
  for (int32_t s : shape) {
    if (s < 1) fail(op, node, "spatial_shape", "every entry must be >= 1, got " + str(shape));
    sites *= s;
    if (sites > kMaxGridSites)
      fail(op, node, "spatial_shape", "the grid " + str(shape) + " has more than 2^32 sites, too many for 64-bit keys");
  }
}

void checkPerDim(const char* op, const std::string& node, const char* field, const std::vector<int32_t>& v,
                 std::size_t ndim, int32_t min_value) {
  if (v.size() != ndim)
    fail(op, node, field,
         "must have " + std::to_string(ndim) + " entries (one per spatial dim of spatial_shape), got " + str(v));
  for (int32_t x : v)
    if (x < min_value) fail(op, node, field, "every entry must be >= " + std::to_string(min_value) + ", got " + str(v));
}

int32_t product(const std::vector<int32_t>& v) {
  int64_t p = 1;
  for (int32_t x : v) p *= x;
  return static_cast<int32_t>(p);
}

}  // namespace

FieldView FieldValue::view() const {
  if (type == FieldType::kFloat32) return FieldView{name.c_str(), type, &f, 1};
  return FieldView{name.c_str(), type, ints.data(), static_cast<int32_t>(ints.size())};
}

std::vector<FieldView> viewsOf(const std::vector<FieldValue>& values) {
  std::vector<FieldView> views;
  views.reserve(values.size());
  for (const FieldValue& v : values) views.push_back(v.view());
  return views;
}

// ------------------------------------------------------------------------------------------ validation
void validate(const std::string& node, const SubmRulebookAttrs& a) {
  const char* op = "SubmRulebook";
  checkSpatialShape(op, node, a.spatial_shape);
  const std::size_t d = a.spatial_shape.size();
  checkPerDim(op, node, "kernel_size", a.kernel_size, d, 1);
  checkPerDim(op, node, "dilation", a.dilation, d, 1);
  int64_t volume = 1;
  for (int32_t k : a.kernel_size) volume *= k;
  // K is a tensor dim and a kernel loop bound; a kernel this large is a mistake, not a model.
  if (volume > (1 << 20)) fail(op, node, "kernel_size", "kernel volume " + std::to_string(volume) + " exceeds 2^20");
}

void validate(const std::string& node, const SparseRulebookAttrs& a) {
  const char* op = "SparseRulebook";
  checkSpatialShape(op, node, a.spatial_shape);
  const std::size_t d = a.spatial_shape.size();
  checkPerDim(op, node, "kernel_size", a.kernel_size, d, 1);
  checkPerDim(op, node, "stride", a.stride, d, 1);
  checkPerDim(op, node, "padding", a.padding, d, 0);
  checkPerDim(op, node, "dilation", a.dilation, d, 1);
  checkPerDim(op, node, "output_padding", a.output_padding, d, 0);
  if (a.transposed != 0 && a.transposed != 1)
    fail(op, node, "transposed", "must be 0 (regular) or 1 (transposed), got " + std::to_string(a.transposed));
  if (!a.transposed)
    for (int32_t p : a.output_padding)
      if (p != 0)
        fail(op, node, "output_padding", "must be all zeros for a regular conv, got " + str(a.output_padding));
  if (a.max_out < 0) fail(op, node, "max_out", "must be >= 0 (0 = derive the bound), got " + std::to_string(a.max_out));
  if (a.batch_size < 1) fail(op, node, "batch_size", "must be >= 1, got " + std::to_string(a.batch_size));
  int64_t volume = 1;
  for (int32_t k : a.kernel_size) volume *= k;
  if (volume > (1 << 20)) fail(op, node, "kernel_size", "kernel volume " + std::to_string(volume) + " exceeds 2^20");
  int64_t sites = 1;
  const std::vector<int64_t> out = outputSpatialShape(a);
  for (std::size_t i = 0; i < d; ++i) {
    if (out[i] < 1)
      fail(op, node, "spatial_shape",
           "dim " + std::to_string(i) + " of size " + std::to_string(a.spatial_shape[i]) + " becomes " +
               std::to_string(out[i]) + " with this kernel_size/stride/padding/dilation; the grid is too small");
    sites *= out[i];
    if (sites > kMaxGridSites) fail(op, node, "spatial_shape", "the output grid has more than 2^32 sites");
  }
  for (int64_t o : out)
    if (o > std::numeric_limits<int32_t>::max()) fail(op, node, "spatial_shape", "an output dim exceeds int32");
}

void validate(const std::string& node, const SparseConvAttrs& a) {
  if (a.activation < 0 || a.activation > 3)
    fail("SparseConv", node, "activation",
         "must be 0 (none), 1 (relu), 2 (leaky_relu) or 3 (sigmoid), got " + std::to_string(a.activation));
  if (!std::isfinite(a.alpha)) fail("SparseConv", node, "alpha", "must be finite");
}

void validate(const std::string& node, const DensifyAttrs& a) {
  checkSpatialShape("Densify", node, a.spatial_shape);
  if (a.batch_size < 1) fail("Densify", node, "batch_size", "must be >= 1, got " + std::to_string(a.batch_size));
}

void validate(const std::string& node, const SegmentReduceAttrs& a) {
  if (a.reduction != 0 && a.reduction != 1)
    fail("SegmentReduce", node, "reduction", "must be 0 (sum) or 1 (max), got " + std::to_string(a.reduction));
}

// -------------------------------------------------------------------------------------------- parsing
SubmRulebookAttrs parseSubmRulebook(const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r("SubmRulebook", node, fields, num_fields);
  SubmRulebookAttrs a;
  a.spatial_shape = r.ints("spatial_shape");
  a.kernel_size = r.ints("kernel_size");
  a.dilation = r.ints("dilation");
  validate(node, a);
  return a;
}

SparseRulebookAttrs parseSparseRulebook(const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r("SparseRulebook", node, fields, num_fields);
  SparseRulebookAttrs a;
  a.spatial_shape = r.ints("spatial_shape");
  a.kernel_size = r.ints("kernel_size");
  a.stride = r.ints("stride");
  a.padding = r.ints("padding");
  a.dilation = r.ints("dilation");
  a.output_padding = r.ints("output_padding");
  a.transposed = r.int32("transposed");
  a.max_out = r.int32("max_out");
  a.batch_size = r.int32("batch_size");
  validate(node, a);
  return a;
}

SparseConvAttrs parseSparseConv(const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r("SparseConv", node, fields, num_fields);
  SparseConvAttrs a;
  a.activation = r.int32("activation");
  a.alpha = r.float32("alpha");
  validate(node, a);
  return a;
}

DensifyAttrs parseDensify(const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r("Densify", node, fields, num_fields);
  DensifyAttrs a;
  a.spatial_shape = r.ints("spatial_shape");
  a.batch_size = r.int32("batch_size");
  validate(node, a);
  return a;
}

SegmentReduceAttrs parseSegmentReduce(const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r("SegmentReduce", node, fields, num_fields);
  SegmentReduceAttrs a;
  a.reduction = r.int32("reduction");
  validate(node, a);
  return a;
}

void parseNoAttributes(const std::string& op, const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r(op.c_str(), node, fields, num_fields);  // refuses any field: the op declares none
}

// ------------------------------------------------------------------------------------- serialization
std::vector<FieldValue> toFields(const SubmRulebookAttrs& a) {
  return {intsField("spatial_shape", a.spatial_shape), intsField("kernel_size", a.kernel_size),
          intsField("dilation", a.dilation)};
}

std::vector<FieldValue> toFields(const SparseRulebookAttrs& a) {
  return {intsField("spatial_shape", a.spatial_shape),
          intsField("kernel_size", a.kernel_size),
          intsField("stride", a.stride),
          intsField("padding", a.padding),
          intsField("dilation", a.dilation),
          intsField("output_padding", a.output_padding),
          intField("transposed", a.transposed),
          intField("max_out", a.max_out),
          intField("batch_size", a.batch_size)};
}

std::vector<FieldValue> toFields(const SparseConvAttrs& a) {
  return {intField("activation", a.activation), floatField("alpha", a.alpha)};
}

std::vector<FieldValue> toFields(const DensifyAttrs& a) {
  return {intsField("spatial_shape", a.spatial_shape), intField("batch_size", a.batch_size)};
}

std::vector<FieldValue> toFields(const SegmentReduceAttrs& a) { return {intField("reduction", a.reduction)}; }

// ---------------------------------------------------------------------------------- shape arithmetic
std::vector<int64_t> outputSpatialShape(const SparseRulebookAttrs& a) {
  std::vector<int64_t> out(a.spatial_shape.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int64_t s = a.spatial_shape[i], k = a.kernel_size[i], st = a.stride[i], p = a.padding[i], d = a.dilation[i],
                  op = a.output_padding[i];
    if (a.transposed) {
      out[i] = (s - 1) * st - 2 * p + d * (k - 1) + op + 1;
    } else {
      const int64_t num = s + 2 * p - d * (k - 1) - 1;
      // Floor division (num may be negative for a too-small grid, which validation then reports).
      out[i] = (num >= 0 ? num / st : -((-num + st - 1) / st)) + 1;
    }
  }
  return out;
}

namespace {
RulebookGeometry baseGeometry(const std::vector<int32_t>& shape, const std::vector<int32_t>& kernel,
                              const std::vector<int32_t>& dilation) {
  RulebookGeometry g{};
  g.ndim = static_cast<int32_t>(shape.size());
  for (int i = 0; i < kMaxSpatialDims; ++i) {
    const bool used = i < g.ndim;
    g.in_shape[i] = g.out_shape[i] = used ? shape[i] : 1;
    g.kernel[i] = used ? kernel[i] : 1;
    g.dilation[i] = used ? dilation[i] : 1;
    g.stride[i] = 1;
    g.padding[i] = 0;
  }
  g.kernel_volume = product(kernel);
  return g;
}
}  // namespace

RulebookGeometry makeGeometry(const SubmRulebookAttrs& a) {
  RulebookGeometry g = baseGeometry(a.spatial_shape, a.kernel_size, a.dilation);
  g.kind = RulebookKind::kSubmanifold;
  for (int i = 0; i < g.ndim; ++i) g.padding[i] = (a.kernel_size[i] / 2) * a.dilation[i];
  g.pointwise = g.kernel_volume == 1;
  return g;
}

RulebookGeometry makeGeometry(const SparseRulebookAttrs& a) {
  RulebookGeometry g = baseGeometry(a.spatial_shape, a.kernel_size, a.dilation);
  g.kind = a.transposed ? RulebookKind::kTransposed : RulebookKind::kRegular;
  const std::vector<int64_t> out = outputSpatialShape(a);
  bool unit = g.kernel_volume == 1;
  for (int i = 0; i < g.ndim; ++i) {
    g.out_shape[i] = static_cast<int32_t>(out[i]);
    g.stride[i] = a.stride[i];
    g.padding[i] = a.padding[i];
    unit = unit && a.stride[i] == 1 && a.padding[i] == 0 && a.output_padding[i] == 0;
  }
  g.pointwise = unit;
  return g;
}

int64_t maxOutputsPerInput(const RulebookGeometry& g) {
  if (g.kind == RulebookKind::kSubmanifold || g.pointwise) return 1;
  int64_t reach = 1;
  for (int i = 0; i < g.ndim; ++i) {
    const int64_t k = g.kernel[i];
    if (g.kind == RulebookKind::kTransposed) {
      reach *= k;
    } else {
      // Tap t is valid only if t * dilation == c + padding (mod stride): one residue class of period
      // stride / gcd(stride, dilation) in t.
      const int64_t period = g.stride[i] / std::gcd(g.stride[i], g.dilation[i]);
      reach *= (k + period - 1) / period;
    }
  }
  return reach;
}

int64_t sparseRulebookOutputBound(const SparseRulebookAttrs& a, int64_t num_in) {
  int64_t grid = a.batch_size;
  for (int64_t s : outputSpatialShape(a)) grid *= s;
  const int64_t bound = std::min(num_in * maxOutputsPerInput(makeGeometry(a)), grid);
  return a.max_out > 0 ? std::min<int64_t>(bound, a.max_out) : bound;
}

std::vector<int64_t> densifyOutputShape(const DensifyAttrs& a, int64_t channels) {
  std::vector<int64_t> shape{a.batch_size, channels};
  for (int32_t s : a.spatial_shape) shape.push_back(s);
  return shape;
}

}  // namespace sparsetrt
