// Benchmark of the kernel library on synthetic lidar-like scenes: rulebook construction (submanifold and
// strided) and SparseConv over the submanifold map, fp32 and fp16, at 16/32/64/128 channels. Prints a
// markdown table. CUDA-event timing on one stream, warm-up runs first, median (and min) of many runs.
//
//   bench_kernels [runs] [voxels ...]     defaults: 50 runs, 20000 and 100000 voxels
//
// The scene: a ray-cast 64-beam spinning lidar in a street (ground, building fronts, cars, poles), sweeps
// accumulated until N voxels are occupied, on a [41, 1600, 1600] grid (z y x) of 0.1 m x 0.05 m x 0.05 m
// voxels over z [-3, 1.1), y and x [-40, 40). Occupied voxels are thin sheets and scan lines as in real
// scans, so neighbour maps have realistic density (about 7 of the 27 submanifold offsets active per site,
// measured on the generator); uniform random sites would be far sparser. Exits 77 without a GPU.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ops/conv_plan/conv_plan_host.h"
#include "ops/conv_plan/conv_plan_kernels.h"
#include "ops/densify/densify_host.h"
#include "ops/densify/densify_kernels.h"
#include "ops/inverse_rulebook/inverse_rulebook_host.h"
#include "ops/mask_rows/mask_rows_host.h"
#include "ops/segment_reduce/segment_reduce_host.h"
#include "ops/sparse_conv/sparse_conv_host.h"
#include "ops/sparse_conv/sparse_conv_kernels.h"
#include "ops/sparse_max_pool/sparse_max_pool_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_host.h"
#include "ops/sparse_rulebook/sparse_rulebook_kernels.h"
#include "ops/subm_rulebook/subm_rulebook_host.h"
#include "ops/subm_rulebook/subm_rulebook_kernels.h"
#include "ops/unique_sites/unique_sites_host.h"
#include "sparsetrt/shapes.h"
#include "sparsetrt/workspace.h"

using namespace sparsetrt;
namespace K = sparsetrt::kernels;

#define CUDA_OK(expr)                                                                               \
  do {                                                                                              \
    cudaError_t e_ = (expr);                                                                        \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                                 \
    }                                                                                               \
  } while (0)

template <typename T>
struct Dev {
  T* p = nullptr;
  std::size_t n = 0;
  explicit Dev(std::size_t count) : n(count) { CUDA_OK(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T))); }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) {
    if (n) CUDA_OK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { cudaFree(p); }
  std::vector<T> get(std::size_t count) const {
    std::vector<T> h(count);
    if (count) CUDA_OK(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

// ------------------------------------------------------------------------------------------ scene
constexpr int32_t kGridZ = 41, kGridY = 1600, kGridX = 1600;
constexpr double kVoxelXY = 0.05, kVoxelZ = 0.1, kMinXY = -40.0, kMinZ = -3.0;
constexpr double kPi = 3.14159265358979323846;

struct Box {
  double lo[3], hi[3];
};

// Distance along the unit ray (o, d) to the box, or +inf (slab method).
double hitBox(const double* o, const double* d, const Box& b) {
  double t0 = 0.0, t1 = 1e30;
  for (int a = 0; a < 3; ++a) {
    if (std::abs(d[a]) < 1e-12) {
      if (o[a] < b.lo[a] || o[a] > b.hi[a]) return 1e30;
      continue;
    }
    double ta = (b.lo[a] - o[a]) / d[a], tb = (b.hi[a] - o[a]) / d[a];
    if (ta > tb) std::swap(ta, tb);
    t0 = std::max(t0, ta);
    t1 = std::min(t1, tb);
    if (t0 > t1) return 1e30;
  }
  return t0 > 1e-6 ? t0 : 1e30;
}

// Ray-cast sweeps of a 64-beam spinning lidar (elevation -25 to +3 degrees, 2048 azimuth steps, 2 cm range
// noise) through a street: ground, building fronts on both sides, cars, poles. Sweeps from positions 0.5 m
// apart along the street are accumulated (as multi-sweep detectors do) until `voxels` voxels are occupied.
std::vector<int32_t> lidarScene(int64_t voxels, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const double ground = -1.73;
  std::vector<Box> boxes{{{-60.0, 14.0, ground}, {60.0, 15.0, ground + 8.0}},  // building fronts
                         {{-60.0, -15.0, ground}, {60.0, -14.0, ground + 8.0}}};
  for (int i = 0; i < 40; ++i) {  // cars, parked along both sides and in the lanes
    const double x = -38.0 + 76.0 * u01(rng), y = -11.0 + 22.0 * u01(rng);
    if (std::abs(y) < 2.5 && std::abs(x) < 6.0) continue;  // not on top of the sensor
    boxes.push_back({{x, y, ground}, {x + 4.2, y + 1.8, ground + 1.5}});
  }
  for (int i = 0; i < 50; ++i) {  // poles and tree trunks on the sidewalks
    const double x = -39.0 + 78.0 * u01(rng), y = (u01(rng) < 0.5 ? -1.0 : 1.0) * (12.0 + 1.5 * u01(rng));
    boxes.push_back({{x, y, ground}, {x + 0.3, y + 0.3, ground + 4.0}});
  }
  std::set<std::tuple<int32_t, int32_t, int32_t>> occupied;
  std::normal_distribution<double> noise(0.0, 0.02);
  for (int sweep = 0; static_cast<int64_t>(occupied.size()) < voxels && sweep < 200; ++sweep) {
    const double origin[3] = {-20.0 + 0.5 * sweep, 0.3 * std::sin(0.7 * sweep), 0.0};
    const double az0 = u01(rng);
    for (int beam = 0; beam < 64 && static_cast<int64_t>(occupied.size()) < voxels; ++beam) {
      const double el = (-25.0 + 28.0 * beam / 63.0) * kPi / 180.0;
      for (int step = 0; step < 2048; ++step) {
        const double az = (step + az0) * 2.0 * kPi / 2048.0;
        const double d[3] = {std::cos(el) * std::cos(az), std::cos(el) * std::sin(az), std::sin(el)};
        double t = d[2] < 0.0 ? (ground - origin[2]) / d[2] : 1e30;
        for (const Box& b : boxes) t = std::min(t, hitBox(origin, d, b));
        if (t > 80.0) continue;  // no return
        t += noise(rng);
        const double p[3] = {origin[0] + t * d[0], origin[1] + t * d[1], origin[2] + t * d[2]};
        const auto ix = static_cast<int32_t>(std::floor((p[0] - kMinXY) / kVoxelXY));
        const auto iy = static_cast<int32_t>(std::floor((p[1] - kMinXY) / kVoxelXY));
        const auto iz = static_cast<int32_t>(std::floor((p[2] - kMinZ) / kVoxelZ));
        if (ix >= 0 && ix < kGridX && iy >= 0 && iy < kGridY && iz >= 0 && iz < kGridZ) {
          occupied.insert({iz, iy, ix});
          if (static_cast<int64_t>(occupied.size()) >= voxels) break;
        }
      }
    }
  }
  std::vector<int32_t> flat;
  flat.reserve(occupied.size() * 4);
  for (const auto& [z, y, x] : occupied) flat.insert(flat.end(), {0, z, y, x});
  // Rows in a fixed pseudo-random order, as a voxelizer's hash order would leave them.
  std::vector<std::size_t> order(occupied.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int32_t> shuffled(flat.size());
  for (std::size_t i = 0; i < order.size(); ++i) std::copy_n(flat.begin() + order[i] * 4, 4, shuffled.begin() + i * 4);
  return shuffled;
}

// --------------------------------------------------------------------------------------- timing
struct Timing {
  double median_ms, min_ms;
};

template <typename F>
Timing timeIt(cudaStream_t stream, int runs, F&& enqueue) {
  for (int i = 0; i < 5; ++i) enqueue();  // warm-up: caches, clocks, lazy module loading
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaEvent_t start, stop;
  CUDA_OK(cudaEventCreate(&start));
  CUDA_OK(cudaEventCreate(&stop));
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    CUDA_OK(cudaEventRecord(start, stream));
    enqueue();
    CUDA_OK(cudaEventRecord(stop, stream));
    CUDA_OK(cudaEventSynchronize(stop));
    float t = 0.0f;
    CUDA_OK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  CUDA_OK(cudaEventDestroy(start));
  CUDA_OK(cudaEventDestroy(stop));
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

void row(const char* op, int64_t n, int64_t m, const std::string& channels, const char* dtype, const Timing& t,
         double flops) {
  char rate[32] = "";
  if (flops > 0) std::snprintf(rate, sizeof(rate), "%.0f", flops / (t.median_ms * 1e-3) / 1e9);
  std::printf("| %s | %lld | %lld | %s | %s | %.3f | %.3f | %s |\n", op, (long long)n, (long long)m, channels.c_str(),
              dtype, t.median_ms, t.min_ms, rate);
}

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: benchmark skipped\n");
    return 77;
  }
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  std::vector<int64_t> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::atoll(argv[i]));
  if (sizes.empty()) sizes = {20000, 100000};
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));

  std::printf("\n### sparsetrt kernels on %s (sm_%d%d), median of %d runs after 5 warm-up runs\n\n", prop.name,
              prop.major, prop.minor, runs);
  std::printf(
      "Synthetic lidar-like scene, grid [41, 1600, 1600], 3x3x3 kernels. Conv: C_in = C_out = C over the\n"
      "submanifold map (M = N); GFLOP/s counts 2 * C_in * C_out per active map entry.\n\n");
  std::printf("| op | N | M | C | dtype | median ms | min ms | GFLOP/s |\n|---|---|---|---|---|---|---|---|\n");

  SubmRulebookAttrs sa{{kGridZ, kGridY, kGridX}, {3, 3, 3}, {1, 1, 1}};
  SparseRulebookAttrs ra;
  ra.spatial_shape = {kGridZ, kGridY, kGridX};
  ra.kernel_size = {3, 3, 3};
  ra.stride = {2, 2, 2};
  ra.padding = {1, 1, 1};
  ra.dilation = {1, 1, 1};
  ra.output_padding = {0, 0, 0};
  ra.batch_size = 1;
  const RulebookGeometry gs = makeGeometry(sa), gr = makeGeometry(ra);
  const int64_t kvol = 27;

  for (int64_t n : sizes) {
    const auto idx = lidarScene(n, 7u + static_cast<uint32_t>(n));
    Dev<int32_t> d_idx(idx), d_subm(kvol * n);
    Dev<char> ws_subm(K::submRulebookWorkspaceSize(n));
    const Timing ts =
        timeIt(stream, runs, [&] { CUDA_OK(K::submRulebook(d_idx.p, n, gs, d_subm.p, ws_subm.p, ws_subm.n, stream)); });
    row("SubmRulebook", n, n, "-", "-", ts, 0);

    const int64_t cap = sparseRulebookOutputBound(ra, n);
    Dev<int32_t> d_out(cap * 4), d_nb(kvol * cap), d_count(2);
    Dev<char> ws_rule(K::sparseRulebookWorkspaceSize(n, gr, cap));
    const Timing tr = timeIt(stream, runs, [&] {
      CUDA_OK(K::sparseRulebook(d_idx.p, n, gr, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws_rule.p, ws_rule.n,
                                stream));
    });
    const auto count = d_count.get(2);
    row("SparseRulebook s2 (capturable)", n, count[0], "-", "-", tr, 0);
    int32_t host[2] = {0, 0};
    const Timing trb = timeIt(stream, runs, [&] {
      CUDA_OK(K::sparseRulebook(d_idx.p, n, gr, cap, d_out.p, d_nb.p, d_count.p, d_count.p + 1, ws_rule.p, ws_rule.n,
                                stream, host));
    });
    row("SparseRulebook s2 (read-back, exact sort)", n, host[0], "-", "-", trb, 0);

    Dev<int32_t> d_plan(convPlanRows(kvol) * n);
    Dev<char> ws_plan(K::convPlanWorkspaceSize(n, kvol));
    const Timing tp =
        timeIt(stream, runs, [&] { CUDA_OK(K::convPlan(d_subm.p, kvol, n, d_plan.p, ws_plan.p, ws_plan.n, stream)); });
    row("ConvPlan (subm map)", n, n, "-", "-", tp, 0);

    const auto subm_map = d_subm.get(kvol * n);
    const int64_t active = std::count_if(subm_map.begin(), subm_map.end(), [](int32_t v) { return v >= 0; });
    for (int64_t c : {16, 32, 64, 128}) {
      std::mt19937 rng(static_cast<uint32_t>(c));
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      std::vector<float> xf(n * c), wf(c * kvol * c), bf(c);
      for (float& v : xf) v = u(rng);
      for (float& v : wf) v = u(rng) * 0.1f;
      for (float& v : bf) v = u(rng);
      std::vector<__half> xh(xf.size()), wh(wf.size()), bh(bf.size());
      for (std::size_t i = 0; i < xf.size(); ++i) xh[i] = __float2half(xf[i]);
      for (std::size_t i = 0; i < wf.size(); ++i) wh[i] = __float2half(wf[i]);
      for (std::size_t i = 0; i < bf.size(); ++i) bh[i] = __float2half(bf[i]);
      const double flops = 2.0 * static_cast<double>(active) * c * c;
      Dev<char> ws_conv(K::sparseConvWorkspaceSize(n, c, kvol));
      {
        Dev<float> d_x(xf), d_w(wf), d_b(bf), d_y(n * c);
        const Timing t = timeIt(stream, runs, [&] {
          CUDA_OK(K::sparseConv(DataType::kFloat32, d_x.p, n, c, d_subm.p, K::MapLayout::kNeighbors, kvol, n, d_w.p,
                                d_b.p, nullptr, c, Activation::kRelu, 0.0f, d_y.p, nullptr, 0, stream));
        });
        row("SparseConv subm", n, n, std::to_string(c), "fp32", t, flops);
      }
      {
        Dev<__half> d_x(xh), d_w(wh), d_b(bh), d_y(n * c);
        const Timing t = timeIt(stream, runs, [&] {
          CUDA_OK(K::sparseConv(DataType::kFloat16, d_x.p, n, c, d_subm.p, K::MapLayout::kNeighbors, kvol, n, d_w.p,
                                d_b.p, nullptr, c, Activation::kRelu, 0.0f, d_y.p, ws_conv.p, ws_conv.n, stream));
        });
        row("SparseConv subm", n, n, std::to_string(c), "fp16", t, flops);
        const Timing tq = timeIt(stream, runs, [&] {
          CUDA_OK(K::sparseConv(DataType::kFloat16, d_x.p, n, c, d_plan.p, K::MapLayout::kPlan, kvol, n, d_w.p, d_b.p,
                                nullptr, c, Activation::kRelu, 0.0f, d_y.p, ws_conv.p, ws_conv.n, stream));
        });
        row("SparseConv subm, plan", n, n, std::to_string(c), "fp16", tq, flops);
        const Timing tn = timeIt(stream, runs, [&] {  // no workspace: one block per tile, never split
          CUDA_OK(K::sparseConv(DataType::kFloat16, d_x.p, n, c, d_plan.p, K::MapLayout::kPlan, kvol, n, d_w.p, d_b.p,
                                nullptr, c, Activation::kRelu, 0.0f, d_y.p, nullptr, 0, stream));
        });
        row("SparseConv subm, plan, no split", n, n, std::to_string(c), "fp16", tn, flops);
      }
    }
    std::printf("| (map density: %.1f of 27 offsets active per site at N = %lld) | | | | | | | |\n",
                static_cast<double>(active) / static_cast<double>(n), (long long)n);
  }
  CUDA_OK(cudaStreamDestroy(stream));
  return 0;
}
