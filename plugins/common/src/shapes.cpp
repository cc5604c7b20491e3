#include "sparsetrt/shapes.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#include "sparsetrt/checked.h"
#include "sparsetrt/op_rules.h"
#include "sparsetrt/workspace.h"

namespace sparsetrt {
namespace {

std::string str(const Dims& d) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < d.size(); ++i)
    s << (i ? ", " : "") << (d[i] < 0 ? std::string("?") : std::to_string(d[i]));
  s << "]";
  return s.str();
}

}  // namespace

// A dim expression of the schema (terms joined by "+": an integer, a dim name, or ceil(NAME/INTEGER)) with the
// sizes bound so far; -1 if a name it uses is not bound yet. rules.py's _dim_value.
template <typename Bound>
int64_t dimValue(const std::string& expression, const std::vector<Bound>& bound) {
  int64_t total = 0;
  std::size_t start = 0;
  while (start <= expression.size()) {
    const std::size_t plus = expression.find('+', start);
    const std::string term = expression.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    start = plus == std::string::npos ? expression.size() + 1 : plus + 1;
    auto size = [&](const std::string& name) -> int64_t {
      for (const Bound& b : bound)
        if (b.symbol == name) return b.size;
      return -1;
    };
    if (!term.empty() && term.find_first_not_of("0123456789") == std::string::npos) {
      total = checkedAdd(total, std::stoll(term), "a dim expression");
    } else if (term.rfind("ceil(", 0) == 0 && term.back() == ')') {
      const std::size_t slash = term.find('/');
      const int64_t value = size(term.substr(5, slash - 5));
      const int64_t divisor = std::stoll(term.substr(slash + 1, term.size() - slash - 2));
      if (value < 0) return -1;
      total = checkedAdd(total, (value + divisor - 1) / divisor, "a dim expression");
    } else {
      const int64_t value = size(term);
      if (value < 0) return -1;
      total = checkedAdd(total, value, "a dim expression");
    }
  }
  return total;
}

// The schema's symbolic input shapes (sparsetrt/op_rules.h), checked as exporter/schema/rules.py's
// check_input_shapes does, with its messages: an input's `requires`, ranks, `max_dims`, "1+D" against
// spatial_shape, every dim name the same size wherever it appears (weight's K is the rulebook's K), and
// alternatives ("K|K+1+ceil(K/32)") once the names they use are bound. ndim < 0: the op has no spatial_shape.
void checkInputs(const char* op, const std::string& node, int64_t ndim, const std::vector<const Dims*>& inputs) {
  const OpRules* rules = nullptr;
  for (const OpRules& r : kOpRules)
    if (std::strcmp(r.op, op) == 0) rules = &r;
  if (rules == nullptr) throw std::logic_error(std::string("no schema rules for op ") + op);
  const std::string where = std::string("sparsetrt::") + op + " node '" + node + "'";
  struct Bound {
    std::string symbol;
    int64_t size;
    const char* input;
  };
  struct Alternative {
    const char* input;
    std::size_t dim;
    std::string symbol;
    int64_t size;
  };
  std::vector<Bound> bound;
  std::vector<Alternative> alternatives;
  auto given = [&](const char* name) {
    for (std::size_t i = 0; i < inputs.size() && i < rules->num_inputs; ++i)
      if (inputs[i] != nullptr && std::strcmp(rules->inputs[i].name, name) == 0) return true;
    return false;
  };
  for (std::size_t i = 0; i < inputs.size() && i < rules->num_inputs; ++i) {
    if (inputs[i] == nullptr) continue;
    const InputShape& param = rules->inputs[i];
    const Dims& dims = *inputs[i];
    if (param.requires != nullptr && !given(param.requires))
      throw ShapeError(where + ", input '" + param.name + "': needs input '" + param.requires + "' as well");
    if (dims.size() != param.rank) {
      std::string expected = "[";
      for (std::size_t j = 0; j < param.rank; ++j) expected += (j ? ", " : "") + std::string(param.dims[j]);
      throw ShapeError(where + ", input '" + param.name + "': must be " + expected + "] (rank " +
                       std::to_string(param.rank) + "), got " + str(dims));
    }
    for (std::size_t j = 0; j < dims.size(); ++j) {
      const int64_t got = dims[j];
      if (got < 0) continue;
      const std::string symbol = param.dims[j];
      if (param.max_dims != nullptr && param.max_dims[j] >= 0 && got > param.max_dims[j])
        throw ShapeError(where + ", input '" + param.name + "': dim " + std::to_string(j) + " (" + symbol +
                         ") must be at most " + std::to_string(param.max_dims[j]) + ", got " + std::to_string(got));
      if (symbol == "1+D" && ndim >= 0) {
        if (got != 1 + ndim)
          throw ShapeError(where + ", input '" + param.name + "': dim " + std::to_string(j) +
                           " must be 1 + D = " + std::to_string(1 + ndim) +
                           " (batch, one coordinate per dim of spatial_shape), got " + std::to_string(got));
        continue;
      }
      if (symbol.find('|') != std::string::npos) {
        alternatives.push_back(Alternative{param.name, j, symbol, got});
        continue;
      }
      const Bound* first = nullptr;
      for (const Bound& b : bound)
        if (b.symbol == symbol) first = &b;
      if (first == nullptr) {
        bound.push_back(Bound{symbol, got, param.name});
      } else if (first->size != got) {
        throw ShapeError(where + ", input '" + param.name + "': dim " + std::to_string(j) + " (" + symbol +
                         ") must equal " + symbol + " = " + std::to_string(first->size) + " of input '" + first->input +
                         "', got " + std::to_string(got));
      }
    }
  }
  for (const Alternative& a : alternatives) {
    std::vector<std::string> options;
    for (std::size_t start = 0;;) {
      const std::size_t bar = a.symbol.find('|', start);
      options.push_back(a.symbol.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    std::vector<int64_t> values;
    for (const std::string& o : options) values.push_back(dimValue(o, bound));
    bool known = true, match = false;
    for (int64_t v : values) known = known && v >= 0, match = match || v == a.size;
    if (!known || match) continue;
    std::string shown, source;
    for (std::size_t k = 0; k < options.size(); ++k) {
      shown += (k ? " or " : "") + options[k] + " = " + std::to_string(values[k]);
      for (const Bound& b : bound)  // the dims named plainly, and where their sizes came from
        if (b.symbol == options[k])
          source +=
              (source.empty() ? "" : ", ") + b.symbol + " = " + std::to_string(b.size) + " of input '" + b.input + "'";
    }
    throw ShapeError(where + ", input '" + a.input + "': dim " + std::to_string(a.dim) + " must be " + shown + " (" +
                     source + "), got " + std::to_string(a.size));
  }
}

namespace {

int64_t volume(const std::vector<int32_t>& v) {
  int64_t p = 1;
  for (int32_t x : v) p = checkedMul(p, x, "the kernel volume");
  return p;
}

}  // namespace

Dims submRulebookOutput(const std::string& node, const SubmRulebookAttrs& a, const Dims& indices) {
  checkInputs("SubmRulebook", node, static_cast<int64_t>(a.spatial_shape.size()), {&indices});
  return {volume(a.kernel_size), indices[0]};
}

std::vector<Dims> sparseRulebookOutputs(const std::string& node, const SparseRulebookAttrs& a, const Dims& indices) {
  checkInputs("SparseRulebook", node, static_cast<int64_t>(a.spatial_shape.size()), {&indices});
  const int64_t bound = indices[0] < 0 ? -1 : sparseRulebookOutputBound(a, indices[0]);
  const int64_t cols = 1 + static_cast<int64_t>(a.spatial_shape.size());
  return {{bound, cols}, {volume(a.kernel_size), bound}, {}};
}

Dims inverseRulebookOutput(const std::string& node, const Dims& neighbors, const Dims& indices) {
  checkInputs("InverseRulebook", node, -1, {&neighbors, &indices});
  return {neighbors[0], indices[0]};
}

Dims convPlanOutput(const std::string& node, const Dims& neighbors) {
  checkInputs("ConvPlan", node, -1, {&neighbors});
  return {neighbors[0] < 0 ? -1 : convPlanRows(neighbors[0]), neighbors[1]};
}

Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias, const Dims* residual) {
  checkInputs("SparseConv", node, -1, {&features, &neighbors, &weight, bias, residual});
  return {neighbors[1], weight[0]};
}

Dims sparseMaxPoolOutput(const std::string& node, const Dims& features, const Dims& neighbors) {
  checkInputs("SparseMaxPool", node, -1, {&features, &neighbors});
  return {neighbors[1], features[1]};
}

Dims densifyOutput(const std::string& node, const DensifyAttrs& a, const Dims& features, const Dims& indices) {
  checkInputs("Densify", node, static_cast<int64_t>(a.spatial_shape.size()), {&features, &indices});
  return densifyOutputShape(a, features[1]);
}

std::vector<Dims> uniqueSitesOutputs(const std::string& node, const Dims& indices) {
  checkInputs("UniqueSites", node, -1, {&indices});
  return {{indices[0], indices[1]}, {indices[0]}, {indices[0]}, {}};
}

std::vector<Dims> maskRowsOutputs(const std::string& node, const Dims& mask) {
  checkInputs("MaskRows", node, -1, {&mask});
  return {{mask[0]}, {}};
}

Dims segmentReduceOutput(const std::string& node, const Dims& features, const Dims& segments, const Dims& init) {
  checkInputs("SegmentReduce", node, -1, {&features, &segments, &init});
  return {init[0], init[1]};
}

// ---------------------------------------------------------------------------------- shape arithmetic
std::vector<int64_t> outputSpatialShape(const SparseRulebookAttrs& a) {
  return outputGrid("SparseRulebook", "", toFields(a));
}

namespace {
int32_t product(const std::vector<int32_t>& v) {
  int64_t p = 1;
  for (int32_t x : v) p = checkedMul(p, x, "the kernel volume");
  if (p > std::numeric_limits<int32_t>::max()) throw OverflowError("the kernel volume exceeds int32");
  return static_cast<int32_t>(p);
}
}  // namespace

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
  for (int i = 0; i < g.ndim; ++i) {
    // (k // 2) * dilation <= (k - 1) * dilation, which the reach rule keeps within int32.
    const int64_t padding = checkedMul(a.kernel_size[i] / 2, a.dilation[i], "the submanifold padding");
    if (padding > std::numeric_limits<int32_t>::max()) throw OverflowError("the submanifold padding exceeds int32");
    g.padding[i] = static_cast<int32_t>(padding);
  }
  g.pointwise = g.kernel_volume == 1;
  return g;
}

RulebookGeometry makeGeometry(const SparseRulebookAttrs& a) {
  RulebookGeometry g = baseGeometry(a.spatial_shape, a.kernel_size, a.dilation);
  g.kind = a.transposed ? RulebookKind::kTransposed : RulebookKind::kRegular;
  g.batch_size = a.batch_size;
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
      reach = saturatingMul(reach, k);
    } else {
      // Tap t is valid only if t * dilation == c + padding (mod stride): one residue class of period
      // stride / gcd(stride, dilation) in t.
      const int64_t period = g.stride[i] / std::gcd(g.stride[i], g.dilation[i]);
      reach = saturatingMul(reach, (k + period - 1) / period);
    }
  }
  return reach;
}

int64_t sparseRulebookOutputBound(const SparseRulebookAttrs& a, int64_t num_in) {
  // Saturating: N comes from TensorRT's dims (int64); the grid term is below 2^62 for validated attributes.
  int64_t grid = a.batch_size;
  for (int64_t s : outputSpatialShape(a)) grid = saturatingMul(grid, s);
  const int64_t bound =
      std::min(saturatingMul(std::max<int64_t>(num_in, 0), maxOutputsPerInput(makeGeometry(a))), grid);
  return a.max_out > 0 ? std::min<int64_t>(bound, a.max_out) : bound;
}

std::vector<int64_t> densifyOutputShape(const DensifyAttrs& a, int64_t channels) {
  std::vector<int64_t> shape{a.batch_size, channels};
  for (int32_t s : a.spatial_shape) shape.push_back(s);
  return shape;
}

}  // namespace sparsetrt
