// InverseRulebook's host logic: no attributes, and its output shape. No CUDA, no TensorRT.
#include "harness.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"

using namespace sparsetrt;

TEST(no_attributes) { parseNoAttributes("InverseRulebook", "inv", nullptr, 0); }

TEST(output_shape) { CHECK((inverseRulebookOutput("inv", {27, 800}, {1000, 4}) == Dims{27, 1000})); }

TEST_MAIN()
