// SparseConv's kernels against a double-precision model with stated tolerances: odd channel counts (1, 3, 13, 67,
// ...), kernel volumes 1/8/27/125 and one past the conv's offset window, empty maps, N = 0, C_in = 0, M = 0,
// C_out = 0, every activation, bias or none, a residual, maps and their ConvPlans, unaligned pointers, with and
// without the split workspace; the fp16 tensor-core path against an fp32-exact model; bitwise run-to-run
// determinism (test "conv"; "conv_quick" is a small subset, one case per kernel variant, for racecheck and the
// sm_75 run). Map entries outside [0, N) act as -1 ("untrusted").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernel_test.h"
#include "ops/conv_plan/conv_plan_kernels.h"
#include "ops/conv_plan/conv_plan_kernels_test.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_conv/sparse_conv_kernels.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

namespace {

double activateRef(double s, int act, double alpha) {
  if (act == 1) return std::max(s, 0.0);
  if (act == 2) return s > 0 ? s : s * alpha;
  if (act == 3) return 1.0 / (1.0 + std::exp(-s));
  return s;
}

struct ConvCase {
  const char* name;
  int64_t n, m, c_in, c_out, kvol;
  MapMode mode;
  double density;
};

struct ConvOptions {
  bool misalign = false;
  bool bias = true;
  bool residual = false;
  bool plan = false;      // the map as its ConvPlan (checked against the model too)
  bool workspace = true;  // the split workspace: offsets split over blocks when the grid is small
};

// fp32: |got - ref| <= 1e-5 * (1 + S), S = |bias| + |residual| + sum |w * x| over the terms (the scale of a
// floating-point sum's rounding error; ref is the double-precision sum of the same, already-rounded inputs).
// fp16: output rounding (2^-11 relative, doubled) plus the same accumulation allowance: tensor cores
// accumulate in fp32. Every activation is 1-Lipschitz, so pre-activation allowances carry over.
template <typename T>
void convCase(std::mt19937& rng, const ConvCase& cc, DataType dtype, ConvOptions o) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(cc.n * cc.c_in), w(cc.c_out * cc.kvol * cc.c_in), b(cc.c_out), res(cc.m * cc.c_out);
  for (float& v : x) v = toF(fromF<T>(u(rng)));  // rounded to T: the reference sees what the GPU sees
  for (float& v : w) v = toF(fromF<T>(u(rng)));
  for (float& v : b) v = toF(fromF<T>(u(rng)));
  for (float& v : res) v = toF(fromF<T>(u(rng)));
  const auto nb = makeMap(rng, cc.n, cc.m, cc.kvol, cc.mode, cc.density);
  std::vector<double> pre(cc.m * cc.c_out), scale(cc.m * cc.c_out);
  for (int64_t j = 0; j < cc.m; ++j)
    for (int64_t co = 0; co < cc.c_out; ++co) {
      double s = (o.bias ? b[co] : 0.0) + (o.residual ? res[j * cc.c_out + co] : 0.0);
      double mag = std::abs(s);
      for (int64_t k = 0; k < cc.kvol; ++k) {
        const int32_t r = nb[k * cc.m + j];
        if (r < 0) continue;
        const float* wr = &w[(co * cc.kvol + k) * cc.c_in];
        const float* xr = &x[r * cc.c_in];
        for (int64_t ci = 0; ci < cc.c_in; ++ci) {
          const double t = double(wr[ci]) * xr[ci];
          s += t;
          mag += std::abs(t);
        }
      }
      pre[j * cc.c_out + co] = s;
      scale[j * cc.c_out + co] = mag;
    }
  std::vector<T> xt(x.size()), wt(w.size()), bt(b.size()), rt(res.size());
  for (std::size_t i = 0; i < x.size(); ++i) xt[i] = fromF<T>(x[i]);
  for (std::size_t i = 0; i < w.size(); ++i) wt[i] = fromF<T>(w[i]);
  for (std::size_t i = 0; i < b.size(); ++i) bt[i] = fromF<T>(b[i]);
  for (std::size_t i = 0; i < res.size(); ++i) rt[i] = fromF<T>(res[i]);
  const std::size_t off = o.misalign ? 1 : 0;
  Dev<T> d_x(xt, off), d_w(wt, off), d_b(bt), d_res(rt), d_out(cc.m * cc.c_out, off), d_out2(cc.m * cc.c_out, off);
  const bool plan = o.plan && cc.kvol <= kConvPlanMaxOffsets && cc.m > 0;
  Dev<int32_t> d_nb(nb), d_plan(plan ? convPlanRows(cc.kvol) * cc.m : 0);
  if (plan && !makePlan(cc.name, nb, cc.kvol, cc.m, &d_plan)) return;
  const std::size_t ws_bytes = o.workspace ? K::sparseConvWorkspaceSize(cc.m, cc.c_out, cc.kvol) : 0;
  Dev<char> d_ws(ws_bytes);
  const float alpha = 0.1f;
  for (int act = 0; act < 4; ++act) {
    if (!o.bias && act != 0) continue;
    const auto run = [&](T* out) {
      return K::sparseConv(dtype, d_x.p, cc.n, cc.c_in, plan ? d_plan.p : d_nb.p,
                           plan ? K::MapLayout::kPlan : K::MapLayout::kNeighbors, cc.kvol, cc.m, d_w.p,
                           o.bias ? d_b.p : nullptr, o.residual ? d_res.p : nullptr, cc.c_out,
                           static_cast<Activation>(act), alpha, out, o.workspace ? d_ws.p : nullptr, ws_bytes, stream);
    };
    CUDA_OK(run(d_out.p));
    CUDA_OK(run(d_out2.p));
    const auto got = d_out.get(), again = d_out2.get();
    EXPECT(sameBits(got, again), "%s: conv not deterministic (dtype %d, activation %d)", cc.name, int(dtype), act);
    double worst = 0.0;
    int64_t worst_at = -1;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double ref = activateRef(pre[i], act, alpha);
      double tol = 1e-5 * (1.0 + scale[i]);
      if (dtype == DataType::kFloat16) tol += std::ldexp(std::abs(ref), -10) + 1e-6;
      const double err = std::abs(double(toF(got[i])) - ref);
      if (!(err <= tol) && (worst_at < 0 || err / tol > worst)) {
        worst = err / tol;
        worst_at = static_cast<int64_t>(i);
      }
    }
    EXPECT(worst_at < 0,
           "%s (dtype %d, activation %d%s%s%s%s%s): at (m %lld, c %lld) got %g, expected %g (error %.2fx the "
           "tolerance)",
           cc.name, int(dtype), act, o.misalign ? ", unaligned" : "", o.bias ? "" : ", no bias",
           o.residual ? ", residual" : "", plan ? ", plan" : "", o.workspace ? "" : ", no workspace",
           worst_at < 0 ? 0LL : (long long)(worst_at / cc.c_out), worst_at < 0 ? 0LL : (long long)(worst_at % cc.c_out),
           worst_at < 0 ? 0.0 : double(toF(got[worst_at])), worst_at < 0 ? 0.0 : activateRef(pre[worst_at], act, alpha),
           worst);
  }
}

void testConv(std::mt19937& rng) {
  const ConvCase cases[] = {
      {"one voxel", 1, 1, 1, 1, 1, MapMode::kRandom, 1.0},
      {"odd channels 3->13, K=8", 50, 40, 3, 13, 8, MapMode::kRandom, 0.4},
      {"odd channels 19->70, K=27", 200, 150, 19, 70, 27, MapMode::kRandom, 0.25},
      {"odd channels 13->67, K=27", 300, 257, 13, 67, 27, MapMode::kRandom, 0.3},
      {"odd channels 67->3, K=125", 500, 300, 67, 3, 125, MapMode::kRandom, 0.1},
      {"channels 1->1, K=27", 100, 90, 1, 1, 27, MapMode::kRandom, 0.5},
      {"5->16, K=27 (thin input: offsets packed)", 200, 300, 5, 16, 27, MapMode::kRandom, 0.2},
      {"16->16, K=27 (vector loads)", 400, 200, 16, 16, 27, MapMode::kRandom, 0.3},
      {"24->16, K=27 (8-channel groups across offsets)", 200, 150, 24, 16, 27, MapMode::kRandom, 0.3},
      {"32->33, K=1", 100, 70, 32, 33, 1, MapMode::kRandom, 0.9},
      {"64->128, K=27 (vector loads)", 400, 200, 64, 128, 27, MapMode::kRandom, 0.2},
      {"128->200, K=8 (two channel tiles)", 300, 130, 128, 200, 8, MapMode::kRandom, 0.5},
      {"blocky map 32->64, K=27", 2000, 1000, 32, 64, 27, MapMode::kBlocky, 0.7},
      {"K=300 (past one offset window)", 100, 130, 8, 16, 300, MapMode::kRandom, 0.02},
      {"blocky K=300", 100, 200, 24, 40, 300, MapMode::kBlocky, 0.5},
      {"N=0 (no inputs: act(bias))", 0, 50, 16, 32, 27, MapMode::kEmpty, 0.0},
      {"empty map 13->67", 40, 70, 13, 67, 27, MapMode::kEmpty, 0.0},
      {"C_in=0 (act(bias))", 10, 20, 0, 5, 8, MapMode::kRandom, 0.5},
      {"M=0", 50, 0, 16, 16, 27, MapMode::kRandom, 0.5},
      {"C_out=0", 50, 30, 16, 0, 27, MapMode::kRandom, 0.5},
      {"many tiles 32->64, K=27", 3000, 5000, 32, 64, 27, MapMode::kRandom, 0.15},
  };
  for (const ConvCase& cc : cases) {
    for (bool plan : {false, true}) {
      ConvOptions o;
      o.plan = plan;
      o.residual = plan;  // the residual rides along with the plan: both change only the epilogue's rows
      convCase<float>(rng, cc, DataType::kFloat32, o);
      convCase<__half>(rng, cc, DataType::kFloat16, o);
    }
  }
  // Unaligned pointers (16-byte loads impossible even with C_in % 8 == 0), a null bias, and a small grid
  // without the split workspace (one block per tile) next to the same with it.
  const ConvCase unaligned{"unaligned 16->32, K=27", 300, 200, 16, 32, 27, MapMode::kRandom, 0.3};
  ConvOptions o;
  o.misalign = true;
  convCase<__half>(rng, unaligned, DataType::kFloat16, o);
  convCase<float>(rng, unaligned, DataType::kFloat32, o);
  const ConvCase nobias{"no bias 13->67, K=27", 300, 257, 13, 67, 27, MapMode::kRandom, 0.3};
  o = ConvOptions{};
  o.bias = false;
  convCase<__half>(rng, nobias, DataType::kFloat16, o);
  convCase<float>(rng, nobias, DataType::kFloat32, o);
  o.residual = true;
  o.plan = true;
  convCase<__half>(rng, nobias, DataType::kFloat16, o);
  const ConvCase small{"one tile 64->64, K=27", 200, 60, 64, 64, 27, MapMode::kRandom, 0.3};
  o = ConvOptions{};
  o.workspace = false;
  convCase<__half>(rng, small, DataType::kFloat16, o);
}

// One small case per kernel variant (each block width, vector and 2-byte loads, more offsets than one
// window, a plan, a residual, split offsets, fp32): enough for compute-sanitizer's slow racecheck to see every
// shared-memory access pattern.
void testConvQuick(std::mt19937& rng) {
  const ConvCase cases[] = {
      {"quick 3->13, K=8", 60, 70, 3, 13, 8, MapMode::kRandom, 0.4},
      {"quick 16->32, K=27", 120, 130, 16, 32, 27, MapMode::kRandom, 0.3},
      {"quick 64->64, K=27", 120, 70, 64, 64, 27, MapMode::kBlocky, 0.6},
      {"quick 13->67, K=27", 120, 130, 13, 67, 27, MapMode::kRandom, 0.3},
      {"quick K=300", 50, 70, 8, 16, 300, MapMode::kRandom, 0.02},
  };
  for (const ConvCase& cc : cases) {
    convCase<float>(rng, cc, DataType::kFloat32, ConvOptions{});
    convCase<__half>(rng, cc, DataType::kFloat16, ConvOptions{});
  }
  ConvOptions o;
  o.misalign = true;
  convCase<__half>(rng, cases[1], DataType::kFloat16, o);
  o = ConvOptions{};
  o.plan = true;
  o.residual = true;
  convCase<__half>(rng, cases[3], DataType::kFloat16, o);
  convCase<float>(rng, cases[1], DataType::kFloat32, o);
}

// ------------------------------------------------------------------------------- untrusted maps
// Each case poisons some entries of a valid map (poison(), kernel_test.h) and expects the same bits as the clean
// map, whose results the conv group checks against the model; the plan of the poisoned map stays in bounds.
template <typename T>
void untrustedConvCase(std::mt19937& rng, const char* name, DataType dtype, int64_t n, int64_t m, int64_t c_in,
                       int64_t c_out, int64_t kvol) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<T> x(n * c_in), w(c_out * kvol * c_in), b(c_out);
  for (T& v : x) v = fromF<T>(u(rng));
  for (T& v : w) v = fromF<T>(u(rng));
  for (T& v : b) v = fromF<T>(u(rng));
  std::vector<int32_t> nb = makeMap(rng, n, m, kvol, MapMode::kRandom, 0.5);
  const std::vector<int32_t> clean = poison(rng, &nb, n);
  Dev<T> d_x(x), d_w(w), d_b(b), d_out(m * c_out), d_ref(m * c_out);
  Dev<int32_t> d_nb(nb), d_clean(clean);
  const auto conv = [&](const int32_t* map, K::MapLayout layout, T* out) {
    CUDA_OK(K::sparseConv(dtype, d_x.p, n, c_in, map, layout, kvol, m, d_w.p, d_b.p, nullptr, c_out, Activation::kNone,
                          0.0f, out, nullptr, 0, stream));
  };
  conv(d_nb.p, K::MapLayout::kNeighbors, d_out.p);
  conv(d_clean.p, K::MapLayout::kNeighbors, d_ref.p);
  EXPECT(sameBits(d_out.get(), d_ref.get()), "%s (dtype %d): entries outside [0, N) were not treated as -1", name,
         int(dtype));
  if (m == 0) return;
  // The plan of the poisoned map: its masks list the poisoned entries too, which may shift how the reduction
  // packs offsets (so the bits may differ), but nothing is read through them.
  Dev<int32_t> d_plan(convPlanRows(kvol) * m);
  Dev<char> ws(K::convPlanWorkspaceSize(m, kvol));
  CUDA_OK(K::convPlan(d_nb.p, kvol, m, d_plan.p, ws.p, ws.n, stream));
  conv(d_plan.p, K::MapLayout::kPlan, d_out.p);
  const auto got = d_out.get(), ref = d_ref.get();
  double worst = 0.0, top = 1.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(double(toF(got[i])) - double(toF(ref[i]))));
    top = std::max(top, std::abs(double(toF(ref[i]))));
  }
  EXPECT(worst <= (dtype == DataType::kFloat16 ? 2e-3 : 1e-5) * top,
         "%s (dtype %d): the plan of a poisoned map gives %g off the clean map's result", name, int(dtype), worst);
  // A plan of garbage (any permutation entry, mask and map entry): in-bounds, whatever it computes.
  std::vector<int32_t> garbage(convPlanRows(kvol) * m);
  for (int32_t& v : garbage) v = static_cast<int32_t>(rng());
  Dev<int32_t> d_garbage(garbage);
  conv(d_garbage.p, K::MapLayout::kPlan, d_out.p);
  syncStream();
}

void testUntrustedConv(std::mt19937& rng) {
  untrustedConvCase<float>(rng, "untrusted map conv 13->7, K=27", DataType::kFloat32, 300, 200, 13, 7, 27);
  untrustedConvCase<__half>(rng, "untrusted map conv fp16 16->32, K=27", DataType::kFloat16, 300, 200, 16, 32, 27);
  untrustedConvCase<__half>(rng, "untrusted map conv fp16 13->67, K=8", DataType::kFloat16, 100, 130, 13, 67, 8);
  untrustedConvCase<float>(rng, "untrusted map conv, N=0", DataType::kFloat32, 0, 50, 8, 8, 27);
}

}  // namespace

KERNEL_TEST_PART("conv", testConv);
KERNEL_TEST_PART_NAMED_ONLY("conv_quick", testConvQuick);
KERNEL_TEST_PART("untrusted", testUntrustedConv);
