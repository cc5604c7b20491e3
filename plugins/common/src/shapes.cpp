#include "sparsetrt/shapes.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
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

// A dim expression of the schema (terms joined by "+": an integer, a dim name, or ceil(NAME/INTEGER)) with the
// sizes bound so far; -1 if a name it uses is not bound yet. rules.py's _dim_value. In 128 bits: dims are int64
// and an expression such as K+1+ceil(K/32) of a huge K exceeds int64, where Python's ints just grow; the value
// then matches no dim, and the message shows it as rules.py does.
namespace {

using Wide = __int128;

std::string wideString(Wide v) {
  if (v < 0) return "-" + wideString(-v);
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return digits;
}

}  // namespace

template <typename Bound>
Wide dimValue(const std::string& expression, const std::vector<Bound>& bound) {
  Wide total = 0;
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
      total += std::stoll(term);  // the schema's own small constants
    } else if (term.rfind("ceil(", 0) == 0 && term.back() == ')') {
      const std::size_t slash = term.find('/');
      const int64_t value = size(term.substr(5, slash - 5));
      const int64_t divisor = std::stoll(term.substr(slash + 1, term.size() - slash - 2));
      if (value < 0) return -1;
      total += (Wide{value} + divisor - 1) / divisor;
    } else {
      const int64_t value = size(term);
      if (value < 0) return -1;
      total += value;
    }
  }
  return total;
}

// The schema's symbolic input shapes (sparsetrt/op_rules.h), checked as exporter/schema/rules.py's
// check_input_shapes does, with its messages: an input's `requires`, ranks, `max_dims`, "1+D" against
// spatial_shape, every dim name the same size wherever it appears (weight's K is the rulebook's K), and
// alternatives ("K|K+1+ceil(K/32)") once the names they use are bound. ndim < 0: the op has no spatial_shape.
void checkInputs(const char* op, const std::string& node, int64_t ndim, const std::vector<const Dims*>& inputs) {
  const OpRules* rules = &rulesOf(op);
  const std::string where = nodeWhere(op, node);
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
    std::vector<Wide> values;
    for (const std::string& o : options) values.push_back(dimValue(o, bound));
    bool known = true, match = false;
    for (Wide v : values) known = known && v >= 0, match = match || v == a.size;
    if (!known || match) continue;
    std::string shown, source;
    for (std::size_t k = 0; k < options.size(); ++k) {
      shown += (k ? " or " : "") + options[k] + " = " + wideString(values[k]);
      for (const Bound& b : bound)  // the dims named plainly, and where their sizes came from
        if (b.symbol == options[k])
          source +=
              (source.empty() ? "" : ", ") + b.symbol + " = " + std::to_string(b.size) + " of input '" + b.input + "'";
    }
    throw ShapeError(where + ", input '" + a.input + "': dim " + std::to_string(a.dim) + " must be " + shown + " (" +
                     source + "), got " + std::to_string(a.size));
  }
}

// ---------------------------------------------------------------------------------- shape arithmetic

}  // namespace sparsetrt
