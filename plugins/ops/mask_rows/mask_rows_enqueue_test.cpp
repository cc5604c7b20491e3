// MaskRows' plugin, driven as TensorRT drives it, against its kernel (enqueue_test.h).
#include "enqueue_test.h"
#include "ops/mask_rows/mask_rows_kernels.h"

using namespace sparsetrt_enqueue_test;

ENQUEUE_TEST(MaskRows) {
  const int64_t n = scene.n;
  // A mask of every third row.
  std::vector<int32_t> keep(n);
  for (int64_t i = 0; i < n; ++i) keep[i] = i % 3 == 0 ? 7 : 0;
  Buffer d_keep(keep), rows_p(n * 4), rows_k(n * 4), mnum_p(4), mnum_k(4);
  Fields no_fields;
  IPluginV3* mask = make("MaskRows", no_fields);
  EXPECT(run(mask, {plain(DataType::kINT32, {n})}, {plain(DataType::kINT32, {n}), plain(DataType::kINT32, {})},
             {d_keep.p}, {rows_p.p, mnum_p.p}) == 0,
         "MaskRows enqueue");
  Buffer ws_m(K::maskRowsWorkspaceSize(n));
  CUDA_OK(K::maskRows(d_keep.i32(), n, rows_k.i32(), mnum_k.i32(), ws_m.p, ws_m.bytes, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t mk = mnum_k.get<int32_t>(1)[0];
  EXPECT(mk == (n + 2) / 3 && mnum_p.get<int32_t>(1)[0] == mk && rows_p.get<int32_t>(mk) == rows_k.get<int32_t>(mk),
         "MaskRows plugin == kernel");
  delete mask;
}
