#include "sparsetrt/shapes.h"

#include <cstring>
#include <sstream>

#include "sparsetrt/checked.h"
#include "sparsetrt/op_rules.h"

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

// The schema's symbolic input shapes (sparsetrt/op_rules.h), checked as exporter/schema/rules.py's
// check_input_shapes does, with its messages: ranks, "1+D" against spatial_shape, and every dim name the
// same size wherever it appears (weight's K is the rulebook's K). ndim < 0: the op has no spatial_shape.
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
  std::vector<Bound> bound;
  for (std::size_t i = 0; i < inputs.size() && i < rules->num_inputs; ++i) {
    if (inputs[i] == nullptr) continue;
    const InputShape& param = rules->inputs[i];
    const Dims& dims = *inputs[i];
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
      if (symbol == "1+D" && ndim >= 0) {
        if (got != 1 + ndim)
          throw ShapeError(where + ", input '" + param.name + "': dim " + std::to_string(j) +
                           " must be 1 + D = " + std::to_string(1 + ndim) +
                           " (batch, one coordinate per dim of spatial_shape), got " + std::to_string(got));
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

Dims sparseConvOutput(const std::string& node, const Dims& features, const Dims& neighbors, const Dims& weight,
                      const Dims* bias) {
  checkInputs("SparseConv", node, -1, {&features, &neighbors, &weight, bias});
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

}  // namespace sparsetrt
