// ConvPlan's kernel against its CPU model (test "plan"); the conv's tests run convs over plans.
#include <algorithm>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/conv_plan/conv_plan_kernels.h"
#include "ops/conv_plan/conv_plan_kernels_test.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

// ConvPlan against its CPU model: several windows, every key width (K = 1 .. above 32 offsets), empty
// columns, and a kernel volume past the limit refused before anything is enqueued. The conv group checks that
// convs over a plan compute the map's result.
void testPlan(std::mt19937& rng) {
  struct PlanCase {
    const char* name;
    int64_t n, m, kvol;
    MapMode mode;
    double density;
  } cases[] = {
      {"plan K=27, 3 windows", 500, 2 * kConvPlanWindow + 777, 27, MapMode::kRandom, 0.25},
      {"plan K=27 blocky", 500, 3000, 27, MapMode::kBlocky, 0.6},
      {"plan K=1", 50, 100, 1, MapMode::kRandom, 0.5},
      {"plan K=8, one column", 5, 1, 8, MapMode::kRandom, 0.5},
      {"plan K=125 (4 mask words)", 300, 700, 125, MapMode::kRandom, 0.1},
      {"plan K=300", 100, 300, 300, MapMode::kRandom, 0.05},
      {"plan empty map", 10, 200, 27, MapMode::kEmpty, 0.0},
  };
  for (const PlanCase& pc : cases) {
    const auto nb = makeMap(rng, pc.n, pc.m, pc.kvol, pc.mode, pc.density);
    Dev<int32_t> d_plan(convPlanRows(pc.kvol) * pc.m), d_plan2(convPlanRows(pc.kvol) * pc.m);
    if (!makePlan(pc.name, nb, pc.kvol, pc.m, &d_plan)) continue;
    makePlan(pc.name, nb, pc.kvol, pc.m, &d_plan2);
    EXPECT(sameBits(d_plan.get(), d_plan2.get()), "%s: ConvPlan differs between runs", pc.name);
  }
  // M = 0 enqueues nothing; K above kConvPlanMaxOffsets and a short workspace are refused, nothing written.
  CUDA_OK(K::convPlan(nullptr, 27, 0, nullptr, nullptr, 0, stream));
  Dev<int32_t> d_nb(std::vector<int32_t>(27 * 10, 1)), d_out(convPlanRows(27) * 10);
  Dev<char> ws(K::convPlanWorkspaceSize(10, 27));
  d_out.fill(0x5A);
  EXPECT(K::convPlan(d_nb.p, kConvPlanMaxOffsets + 1, 10, d_out.p, ws.p, ws.n, stream) == cudaErrorInvalidValue,
         "ConvPlan accepted K = %lld", (long long)kConvPlanMaxOffsets + 1);
  EXPECT(K::convPlan(d_nb.p, 27, 10, d_out.p, ws.p, ws.n - 1, stream) == cudaErrorInvalidValue,
         "ConvPlan accepted a short workspace");
  const auto untouched = d_out.get();
  EXPECT(std::all_of(untouched.begin(), untouched.end(), [](int32_t v) { return v == 0x5A5A5A5A; }),
         "refused ConvPlan calls wrote their output");
}

}  // namespace

KERNEL_TEST_PART("plan", testPlan);
