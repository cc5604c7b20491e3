// The shared side of the ops' check functions (sparsetrt/node_check.h) and the generated table of them
// (ops/op_table.h): inputs counted and matched to the schema's, contracts, and every op reachable by name.
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"
#include "ops/op_table.h"
#include "sparsetrt/node_check.h"

using namespace sparsetrt;

TEST(node_inputs_follow_the_schema) {
  const Dims features{1000, 16}, neighbors{27, 900}, weight{64, 27, 16}, bias{64};
  NodeDesc node;
  node.name = "conv";
  node.has_inputs = true;
  node.inputs = {&features, &neighbors, &weight};
  // Absent optional inputs at the end may be left out: one entry per schema input, nullptr for those.
  const std::vector<const Dims*> in = nodeInputs("SparseConv", node);
  CHECK(in.size() == 5 && in[2] == &weight && in[3] == nullptr && in[4] == nullptr);
  node.inputs = {&features, &neighbors, &weight, &bias, nullptr, &bias};
  CHECK_THROWS_WITH(ShapeError, nodeInputs("SparseConv", node), "SparseConv", "'conv'", "at most 5 inputs", "got 6");
  node.inputs = {&features, nullptr, &weight};
  CHECK_THROWS_WITH(ShapeError, nodeInputs("SparseConv", node), "'conv'", "'neighbors'", "missing");
  CHECK_THROWS_WITH(std::logic_error, nodeInputs("NoSuchOp", node), "NoSuchOp");
}

TEST(a_broken_contract_is_a_logic_error) {
  requireContract(true, "Op", "holds");
  CHECK_THROWS_WITH(std::logic_error, requireContract(false, "Op", "this contract"), "sparsetrt::Op", "this contract");
}

TEST(every_op_is_in_the_table_by_name) {
  CHECK(sizeof(kOpTable) / sizeof(kOpTable[0]) == kNumOps);
  CHECK(findOp("NoSuchOp") == nullptr);
  for (std::size_t i = 0; i < kNumOps; ++i) {
    CHECK(findOp(kOps[i].name) == &kOpTable[i]);
    // A node without fields: an op without attributes accepts it (no outputs without input dims), one with
    // attributes refuses it, naming the node; a round trip exists exactly for the ops with attributes.
    NodeDesc node;
    node.name = "bare";
    CHECK((kOpTable[i].round_trip != nullptr) == (kOps[i].num_fields > 0));
    if (kOps[i].num_fields == 0) {
      CHECK(kOpTable[i].check(node).outputs.empty());
    } else {
      CHECK_THROWS_WITH(AttributeError, kOpTable[i].check(node), kOps[i].name, "'bare'", "missing");
    }
  }
}

TEST_MAIN()
