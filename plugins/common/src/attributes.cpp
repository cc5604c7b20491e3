#include "sparsetrt/attributes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#include "sparsetrt/checked.h"
#include "sparsetrt/op_rules.h"

namespace sparsetrt {
namespace {

[[noreturn]] void fail(const std::string& op, const std::string& node, const std::string& field,
                       const std::string& what) {
  std::ostringstream msg;
  msg << nodeWhere(op, node);
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

// ------------------------------------------------------------------------------- the schema's rules
// Applied from the generated table (sparsetrt/op_rules.h), in the order and with the messages of the Python
// side (exporter/schema/rules.py): each attribute in schema order (length, min, max, values, finite), then
// the rules across attributes.

const FieldValue* findField(const std::vector<FieldValue>& fields, const char* name) {
  for (const FieldValue& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

std::string str64(const std::vector<int64_t>& v) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << "]";
  return s.str();
}

// 2^32, 2^31 - 1, else decimal (as rules.py's fmt_limit).
std::string fmtLimit(int64_t v) {
  for (int k = 10; k < 63; ++k) {
    const int64_t p = int64_t{1} << k;
    if (v == p) return "2^" + std::to_string(k);
    if (v == p - 1) return "2^" + std::to_string(k) + " - 1";
  }
  if (v == std::numeric_limits<int64_t>::max()) return "2^63 - 1";
  return std::to_string(v);
}

std::string alternatives(const ValueRule& r) {
  std::string out;
  for (std::size_t i = 0; i < r.num_values; ++i) {
    if (i) out += i + 1 == r.num_values ? " or " : ", ";
    out += std::to_string(r.values[i]);
    if (r.value_names) out += std::string(" (") + r.value_names[i] + ")";
  }
  return out;
}

void checkValue(const char* op, const std::string& node, const ValueRule& r, const FieldValue& f, int64_t ndim) {
  if (f.type == FieldType::kInt32) {
    const int64_t v = f.ints.empty() ? 0 : f.ints[0];
    if (r.has_min && v < r.min)
      fail(op, node, r.field, "must be >= " + std::to_string(r.min) + ", got " + std::to_string(v));
    if (r.has_max && v > r.max)
      fail(op, node, r.field, "must be <= " + std::to_string(r.max) + ", got " + std::to_string(v));
    if (r.values) {
      bool allowed = false;
      for (std::size_t i = 0; i < r.num_values; ++i) allowed = allowed || r.values[i] == v;
      if (!allowed) fail(op, node, r.field, "must be " + alternatives(r) + ", got " + std::to_string(v));
    }
  } else if (f.type == FieldType::kInt32Array) {
    const int64_t n = static_cast<int64_t>(f.ints.size());
    if (r.length == LengthRule::kSpatialDims && ndim >= 0 && n != ndim)
      fail(op, node, r.field,
           "must have " + std::to_string(ndim) + " entries (one per spatial dim of spatial_shape), got " + str(f.ints));
    if (r.length == LengthRule::kRange && (n < r.length_min || n > r.length_max))
      fail(op, node, r.field,
           "must have " + std::to_string(r.length_min) + " to " + std::to_string(r.length_max) +
               " entries (one per spatial dim), got " + str(f.ints));
    for (int32_t x : f.ints)
      if (r.has_min && x < r.min)
        fail(op, node, r.field, "every entry must be >= " + std::to_string(r.min) + ", got " + str(f.ints));
    for (int32_t x : f.ints)
      if (r.has_max && x > r.max)
        fail(op, node, r.field, "every entry must be <= " + std::to_string(r.max) + ", got " + str(f.ints));
  } else if (f.type == FieldType::kFloat32) {
    if (r.finite && !std::isfinite(f.f)) fail(op, node, r.field, "must be finite (not NaN or infinity)");
  }
}

const std::vector<int32_t>& intsOf(const char* op, const std::string& node, const std::vector<FieldValue>& fields,
                                   const char* name) {
  const FieldValue* f = findField(fields, name);
  if (f == nullptr) fail(op, node, name, "missing (every attribute of the schema is required)");
  return f->ints;
}

void checkRule(const char* op, const std::string& node, const CrossRule& r, const std::vector<FieldValue>& fields) {
  const auto term = [&](std::size_t i) { return std::string(r.terms[i]); };
  switch (r.kind) {
    case RuleKind::kProduct: {
      int64_t product = 1;
      bool over = false;
      std::string terms;
      for (std::size_t i = 0; i < r.num_terms; ++i) {
        std::vector<int64_t> values;
        std::string shown;
        if (term(i) == "output_grid") {
          values = outputGrid(op, node, fields);
          shown = str64(values);
        } else {
          const FieldValue* f = findField(fields, r.terms[i]);
          if (f == nullptr) fail(op, node, r.terms[i], "missing (every attribute of the schema is required)");
          values.assign(f->ints.begin(), f->ints.end());
          shown = f->type == FieldType::kInt32 ? std::to_string(f->ints.empty() ? 0 : f->ints[0]) : str(f->ints);
        }
        for (int64_t v : values) {
          product = saturatingMul(product, v);
          over = over || product > r.max;  // factors are >= 1 by then (their min rules ran first)
        }
        terms += (i ? " and " : "") + term(i) + " " + shown;
      }
      if (over)
        fail(op, node, r.field, std::string(r.doc) + " (the product of " + terms + ") exceeds " + fmtLimit(r.max));
      break;
    }
    case RuleKind::kReach: {
      const auto& grid = intsOf(op, node, fields, r.terms[0]);
      const bool has_padding = r.terms[1][0] != '\0';
      const auto& kernel = intsOf(op, node, fields, r.terms[2]);
      const auto& dilation = intsOf(op, node, fields, r.terms[3]);
      const std::vector<int32_t> none(grid.size(), 0);
      const auto& padding = has_padding ? intsOf(op, node, fields, r.terms[1]) : none;
      for (std::size_t i = 0; i < grid.size() && i < kernel.size() && i < dilation.size() && i < padding.size(); ++i) {
        // Each term is below 2^62 for int32 attributes; checked anyway.
        const int64_t span = checkedMul(int64_t{kernel[i]} - 1, dilation[i], "the kernel's reach");
        const int64_t reach = checkedAdd(int64_t{grid[i]} + 2 * int64_t{padding[i]}, span, "the kernel's reach");
        if (reach > r.max) {
          std::string expr =
              term(0) + (has_padding ? " + 2 * " + term(1) : std::string()) + " + (" + term(2) + " - 1) * " + term(3);
          fail(op, node, r.field,
               std::string(r.doc) + ": in dim " + std::to_string(i) + ", " + expr + " = " + std::to_string(reach) +
                   " exceeds " + fmtLimit(r.max));
        }
      }
      break;
    }
    case RuleKind::kZeroUnless: {
      const auto& value = intsOf(op, node, fields, r.field);
      const auto& unless = intsOf(op, node, fields, r.terms[0]);
      const bool allowed = !unless.empty() && unless[0] != 0;
      if (!allowed)
        for (int32_t v : value)
          if (v != 0) fail(op, node, r.field, std::string(r.doc) + ", got " + str(value));
      break;
    }
    case RuleKind::kOutputGrid: {
      const auto& shape = intsOf(op, node, fields, "spatial_shape");
      const std::vector<int64_t> out = outputGrid(op, node, fields);
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] < 1)
          fail(op, node, r.field,
               "dim " + std::to_string(i) + " of size " + std::to_string(shape[i]) + " becomes " +
                   std::to_string(out[i]) + " with this kernel_size/stride/padding/dilation; the grid is too small");
        if (out[i] > r.max)
          fail(op, node, r.field,
               "dim " + std::to_string(i) + " of the output grid is " + std::to_string(out[i]) + ", more than " +
                   fmtLimit(r.max));
      }
      break;
    }
  }
}

}  // namespace

const OpRules& rulesOf(const char* op) {
  for (const OpRules& r : kOpRules)
    if (std::strcmp(r.op, op) == 0) return r;
  throw std::logic_error(std::string("no schema rules for op ") + op);
}

std::string nodeWhere(const std::string& op, const std::string& node) {
  return "sparsetrt::" + op + " node '" + node + "'";
}

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
void validateFields(const char* op, const std::string& node, const std::vector<FieldValue>& fields) {
  const OpRules& rules = rulesOf(op);
  int64_t ndim = -1;
  if (const FieldValue* shape = findField(fields, "spatial_shape")) ndim = static_cast<int64_t>(shape->ints.size());
  for (std::size_t i = 0; i < rules.num_values; ++i) {
    const FieldValue* f = findField(fields, rules.values[i].field);
    if (f == nullptr) fail(op, node, rules.values[i].field, "missing (every attribute of the schema is required)");
    checkValue(op, node, rules.values[i], *f, ndim);
  }
  for (std::size_t i = 0; i < rules.num_rules; ++i) checkRule(op, node, rules.rules[i], fields);
}

// ------------------------------------------------------------------------------------------ the reader
FieldReader::FieldReader(const char* op, const std::string& node, const FieldView* fields, int32_t num_fields)
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

const FieldView& FieldReader::get(const char* name) const {
  for (int32_t i = 0; i < num_; ++i)
    if (std::strcmp(fields_[i].name, name) == 0) return fields_[i];
  fail(op_, node_, name, "missing (every attribute of the schema is required)");
}

std::vector<int32_t> FieldReader::ints(const char* name) const {
  const FieldView& f = get(name);
  const auto* p = static_cast<const int32_t*>(f.data);
  return std::vector<int32_t>(p, p + f.length);
}

int32_t FieldReader::int32(const char* name) const {
  const FieldView& f = get(name);
  if (f.length != 1) fail(op_, node_, name, "must hold one value, got " + std::to_string(f.length));
  int32_t v;
  std::memcpy(&v, f.data, sizeof(v));
  return v;
}

float FieldReader::float32(const char* name) const {
  const FieldView& f = get(name);
  if (f.length != 1) fail(op_, node_, name, "must hold one value, got " + std::to_string(f.length));
  float v;
  std::memcpy(&v, f.data, sizeof(v));
  return v;
}

FieldValue intsField(const char* name, const std::vector<int32_t>& v) {
  return FieldValue{name, FieldType::kInt32Array, v, 0.0f};
}
FieldValue intField(const char* name, int32_t v) { return FieldValue{name, FieldType::kInt32, {v}, 0.0f}; }
FieldValue floatField(const char* name, float v) { return FieldValue{name, FieldType::kFloat32, {}, v}; }

void parseNoAttributes(const std::string& op, const std::string& node, const FieldView* fields, int32_t num_fields) {
  FieldReader r(op.c_str(), node, fields, num_fields);  // refuses any field: the op declares none
}

// ------------------------------------------------------------------------------------------ the output grid
// Validated int32 attributes cannot overflow the int64 arithmetic, but nothing here relies on that.
std::vector<int64_t> outputGrid(const char* op, const std::string& node, const std::vector<FieldValue>& fields) {
  const auto& shape = intsOf(op, node, fields, "spatial_shape");
  const auto& kernel = intsOf(op, node, fields, "kernel_size");
  const auto& stride = intsOf(op, node, fields, "stride");
  const auto& padding = intsOf(op, node, fields, "padding");
  const auto& dilation = intsOf(op, node, fields, "dilation");
  const auto& out_pad = intsOf(op, node, fields, "output_padding");
  const auto& transposed = intsOf(op, node, fields, "transposed");
  const std::size_t d = shape.size();
  if (kernel.size() != d || stride.size() != d || padding.size() != d || dilation.size() != d || out_pad.size() != d ||
      transposed.size() != 1)
    throw std::logic_error("outputGrid needs validated attributes");
  std::vector<int64_t> out(d);
  for (std::size_t i = 0; i < d; ++i) {
    const int64_t s = shape[i], k = kernel[i], st = stride[i], p = padding[i], dl = dilation[i], op_ = out_pad[i];
    const int64_t span = checkedMul(dl, k - 1, "dilation * (kernel_size - 1)");
    if (transposed[0]) {
      int64_t o = checkedMul(s - 1, st, "(spatial_shape - 1) * stride");
      o = checkedAdd(checkedAdd(o, -2 * p, "the output grid"), span, "the output grid");
      out[i] = checkedAdd(o, op_ + 1, "the output grid");
    } else {
      const int64_t num = checkedAdd(s + 2 * p - 1, -span, "the output grid");
      if (st < 1) throw std::logic_error("outputGrid needs validated attributes");
      out[i] = (num >= 0 ? num / st : -((-num + st - 1) / st)) + 1;  // floor division, as Python's //
    }
  }
  return out;
}

}  // namespace sparsetrt
