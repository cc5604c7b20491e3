#include "sparsetrt/node_check.h"

#include <stdexcept>
#include <string>

#include "sparsetrt/op_rules.h"

namespace sparsetrt {

std::vector<const Dims*> nodeInputs(const char* op, const NodeDesc& node) {
  const OpRules* rules = &rulesOf(op);
  const std::string where = nodeWhere(op, node.name);
  if (node.inputs.size() > rules->num_inputs)
    throw ShapeError(where + ": expected at most " + std::to_string(rules->num_inputs) + " inputs, got " +
                     std::to_string(node.inputs.size()));
  std::vector<const Dims*> inputs(node.inputs);
  inputs.resize(rules->num_inputs, nullptr);
  for (std::size_t i = 0; i < rules->num_inputs; ++i)
    if (inputs[i] == nullptr && !rules->inputs[i].optional)
      throw ShapeError(where + ", input '" + rules->inputs[i].name + "': missing (it is not optional)");
  return inputs;
}

void requireContract(bool holds, const char* op, const char* contract) {
  if (!holds)
    throw std::logic_error(std::string("sparsetrt::") + op + ": broken contract of the host logic: " + contract);
}

}  // namespace sparsetrt
