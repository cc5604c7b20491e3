// A C ABI over the kernel library, for Python (ctypes): sparsetrt.runtime.KernelSession runs exported ONNX
// files with every sparsetrt op executed by these kernels, on a GPU (libsparsetrt_kernels_cuda.so) or on the
// CPU execution backend (libsparsetrt_kernels_cpu.so). The same sources build both: kernels/capi/ and each op's
// ops/<op>/<op>_capi.cpp.
//
// Every function returns 0 on success, else a cudaError_t value; spt_last_error() then says what went wrong
// (an attribute rule, an overflow, a CUDA error). Tensors are device pointers (spt_malloc) unless named
// *_host. Attributes are the schema's (exporter/schema/sparsetrt_ops.json), validated by the same code as the
// plugin creators'. Each op allocates its workspace, runs on the default stream and synchronizes: this ABI
// is for checking and timing whole networks, not for deployment (that is the TensorRT plugin library).
// spt_abi_version is bumped when any signature changes, an op's included.
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

// Each op's entry points (spt_subm_rulebook, spt_sparse_conv, ...) are declared where they are defined, in the
// op's folder (ops/<op>/<op>_capi.cpp, SPT_API), with what their arguments mean: the ABI's one client is ctypes
// (runtime/kernel_session.py declares every signature it calls), so a header listing them all would be read by no
// compiler and would name every op. Adding an op adds its file; nothing here changes.
}
