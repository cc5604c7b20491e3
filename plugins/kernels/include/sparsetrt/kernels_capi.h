// A C ABI over the kernel library, for Python (ctypes): sparsetrt.runtime.KernelSession runs exported ONNX
// files with every sparsetrt op executed by these kernels, on a GPU (libsparsetrt_kernels_cuda.so) or on the
// CPU execution backend (libsparsetrt_kernels_cpu.so). The same source builds both.
//
// Every function returns 0 on success, else a cudaError_t value; spt_last_error() then says what went wrong
// (an attribute rule, an overflow, a CUDA error). Tensors are device pointers (spt_malloc) unless named
// *_host. Attributes are the schema's (exporter/schema/sparsetrt_ops.json), validated by the same code as the
// plugin creators'. Each op allocates its workspace, runs on the default stream and synchronizes: this ABI
// is for checking and timing whole networks, not for deployment (that is the TensorRT plugin library).
#pragma once

#include <cstddef>
#include <cstdint>

#define SPT_API __attribute__((visibility("default")))

extern "C" {

SPT_API int spt_abi_version();      // bumped when a signature changes
SPT_API const char* spt_backend();  // "cuda" or "cpu"
SPT_API const char* spt_last_error();
SPT_API int spt_device_name(char* buffer, int size);
// The device's compute capability and multiprocessor count (what sparseConvSplits is given).
SPT_API int spt_device_info(int32_t* major, int32_t* minor, int32_t* multiprocessors);

SPT_API int spt_malloc(void** ptr, std::size_t bytes);
SPT_API int spt_free(void* ptr);
SPT_API int spt_upload(void* dst, const void* src_host, std::size_t bytes);
SPT_API int spt_download(void* dst_host, const void* src, std::size_t bytes);
SPT_API int spt_synchronize();
// Device time since the last spt_timer_reset (CUDA events; the CPU backend's are wall-clock), milliseconds.
SPT_API int spt_timer_reset();
SPT_API int spt_timer_elapsed(float* ms);
// Device time of the last op's kernels, milliseconds: CUDA events on the default stream right around them (after
// the op's workspace is allocated; a rulebook's read-back included). -1 when the op failed.
SPT_API int spt_last_op_ms(float* ms);
// The CPU backend's count of executed warp instructions since the last reset, over all kernels:
// counts_host[0] = mma.sync m16n8k16, counts_host[1] = ldmatrix (sparsetrt_cpu/ptx.h). A GPU library has no
// such counter: it returns cudaErrorNotSupported (profile it with Nsight Compute instead).
SPT_API int spt_instruction_counts(uint64_t* counts_host);
SPT_API int spt_instruction_counts_reset();

// SubmRulebook: neighbors [K, N].
SPT_API int spt_subm_rulebook(const int32_t* indices, int64_t n, int32_t ndim, const int32_t* spatial_shape,
                              const int32_t* kernel_size, const int32_t* dilation, int32_t* neighbors);

// SparseRulebook: the declared bound on M for n inputs (what TensorRT allocates outputs for).
SPT_API int spt_sparse_rulebook_bound(int64_t n, int32_t ndim, const int32_t* spatial_shape, const int32_t* kernel_size,
                                      const int32_t* stride, const int32_t* padding, const int32_t* dilation,
                                      const int32_t* output_padding, int32_t transposed, int32_t max_out,
                                      int32_t batch_size, int64_t* bound_host, int64_t* out_shape_host);
// out_indices [bound, 1 + D], neighbors [K * bound] used as [K, M]; M written to *num_out_host. More sites
// than the bound fails (with the count found), never truncates.
SPT_API int spt_sparse_rulebook(const int32_t* indices, int64_t n, int32_t ndim, const int32_t* spatial_shape,
                                const int32_t* kernel_size, const int32_t* stride, const int32_t* padding,
                                const int32_t* dilation, const int32_t* output_padding, int32_t transposed,
                                int32_t max_out, int32_t batch_size, int32_t* out_indices, int32_t* neighbors,
                                int64_t* num_out_host);

SPT_API int spt_inverse_rulebook(const int32_t* neighbors, int64_t kernel_volume, int64_t num_out, int64_t num_in,
                                 int32_t* inverse);

// ConvPlan: plan [K + 1 + ceil(K/32), M] of neighbors [K, M] (sparsetrt/kernels.h).
SPT_API int spt_conv_plan(const int32_t* neighbors, int64_t kernel_volume, int64_t m, int32_t* plan);

// dtype: 0 float32, 1 float16 (sparsetrt::DataType). map: neighbors [K, M] (layout 0) or its ConvPlan
// (layout 1). bias and residual may be null. The split workspace is allocated at sparseConvWorkspaceSize.
SPT_API int spt_sparse_conv(int32_t dtype, const void* features, int64_t n, int64_t c_in, const int32_t* map,
                            int32_t layout, int64_t kernel_volume, int64_t m, const void* weight, const void* bias,
                            const void* residual, int64_t c_out, int32_t activation, float alpha, void* out);
SPT_API int spt_sparse_max_pool(int32_t dtype, const void* features, int64_t n, int64_t channels,
                                const int32_t* neighbors, int64_t kernel_volume, int64_t m, void* out);
// UniqueSites: unique [n, k] and counts [n] sized for the bound M <= n; M written to *num_out_host.
SPT_API int spt_unique_sites(const int32_t* indices, int64_t n, int64_t k, int32_t* unique, int32_t* inverse,
                             int32_t* counts, int64_t* num_out_host);
// SegmentReduce: out [m, channels] = init combined with features grouped by segments (reduction 0 sum, 1 max).
SPT_API int spt_segment_reduce(int32_t dtype, const void* features, const int32_t* segments, int64_t n,
                               int64_t channels, const void* init, int64_t m, int32_t reduction, void* out);
// MaskRows: rows [n] sized for the bound; M written to *num_out_host.
SPT_API int spt_mask_rows(const int32_t* mask, int64_t n, int32_t* rows, int64_t* num_out_host);
SPT_API int spt_densify(int32_t dtype, const void* features, const int32_t* indices, int64_t n, int64_t channels,
                        int32_t ndim, const int32_t* spatial_shape, int32_t batch_size, void* out);
}
