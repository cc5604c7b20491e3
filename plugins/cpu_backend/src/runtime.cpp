// The CUDA runtime API of the CPU backend: errors, the device, memory calls, streams, events and graphs.
//
// Every stream operation goes into one process-wide FIFO and runs at the next synchronization point
// (a stream, event or device synchronization, a synchronous copy or memset, cudaFree). One FIFO is a valid
// CUDA schedule for any set of streams (it only adds ordering), and deferring the work makes code that reads
// results without synchronizing see stale data here too, instead of passing by accident. A stream being
// captured records its operations into the graph instead; calls that CUDA forbids during a capture fail and
// invalidate it, as on a GPU.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <unistd.h>

#include "internal.h"

namespace sparsetrt {
namespace cpu {
struct Op {
  std::function<bool()> run;  // false: it failed (and reported why); the context is then poisoned
};
}  // namespace cpu
}  // namespace sparsetrt

struct CUgraph_st {
  std::vector<sparsetrt::cpu::Op> ops;
};
struct CUgraphExec_st {
  std::vector<sparsetrt::cpu::Op> ops;
};
struct CUstream_st {
  CUgraph_st* capture = nullptr;  // the graph being recorded, if capturing
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
  bool invalidated = false;
};
struct CUevent_st {
  bool recorded = false;
  std::chrono::steady_clock::time_point time;
};

namespace sparsetrt {
namespace cpu {
namespace {

std::mutex g_state;  // streams, events, captures
std::set<CUstream_st*> g_streams;
std::set<CUevent_st*> g_events;
CUstream_st g_default_stream;  // the legacy default stream and cudaStreamPerThread

std::mutex g_queue_mutex;
std::deque<Op> g_queue;
std::mutex g_flush_mutex;

std::atomic<int> g_sticky{cudaSuccess};
thread_local cudaError_t tl_last_error = cudaSuccess;

cudaError_t record(cudaError_t err) {
  if (err != cudaSuccess) tl_last_error = err;
  return err;
}

int envInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// Runs every queued operation in order. Returns the sticky error if one of them failed.
cudaError_t flush() {
  std::lock_guard<std::mutex> flushing(g_flush_mutex);
  for (;;) {
    Op op;
    {
      std::lock_guard<std::mutex> lock(g_queue_mutex);
      if (g_queue.empty()) break;
      op = std::move(g_queue.front());
      g_queue.pop_front();
    }
    if (stickyError() == cudaSuccess && !op.run() && stickyError() == cudaSuccess)
      setStickyError(cudaErrorLaunchFailure);
  }
  return stickyError();
}

CUstream_st* resolve(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &g_default_stream;
  return s;
}

bool validStream(cudaStream_t s) {
  CUstream_st* r = resolve(s);
  return r == &g_default_stream || g_streams.count(r) != 0;
}

// This thread's capture interaction mode (cudaThreadExchangeStreamCaptureMode): which captures its
// potentially unsafe calls must respect.
thread_local cudaStreamCaptureMode tl_interaction = cudaStreamCaptureModeGlobal;

// Invalidates the captures that `api` breaks from this thread, as CUDA defines it: in global interaction
// mode, this thread's own non-relaxed captures and every other thread's global-mode capture; in thread-local
// mode, only its own non-relaxed captures; in relaxed mode, none. True if there was any (the call then fails).
bool breaksCapture(const char* api) {
  if (tl_interaction == cudaStreamCaptureModeRelaxed) return false;
  std::lock_guard<std::mutex> lock(g_state);
  bool broke = false;
  for (CUstream_st* s : g_streams) {
    if (s->capture == nullptr || s->mode == cudaStreamCaptureModeRelaxed) continue;
    const bool own = s->capture_thread == std::this_thread::get_id();
    const bool applies =
        own || (tl_interaction == cudaStreamCaptureModeGlobal && s->mode == cudaStreamCaptureModeGlobal);
    if (!applies) continue;
    if (!s->invalidated)
      report("%s during a %s-mode stream capture is not allowed: the capture is invalidated", api,
             s->mode == cudaStreamCaptureModeGlobal ? "global" : "thread-local");
    s->invalidated = true;
    broke = true;
  }
  return broke;
}

// A synchronization of `s` itself while it captures.
bool capturing(cudaStream_t s, const char* api) {
  std::lock_guard<std::mutex> lock(g_state);
  CUstream_st* r = resolve(s);
  if (r->capture == nullptr) return false;
  if (!r->invalidated) report("%s on a stream that is being captured: the capture is invalidated", api);
  r->invalidated = true;
  return true;
}

cudaError_t enqueue(cudaStream_t stream, Op op) {
  if (stickyError() != cudaSuccess) return stickyError();
  {
    std::lock_guard<std::mutex> lock(g_state);
    if (!validStream(stream)) return cudaErrorInvalidResourceHandle;
    CUstream_st* s = resolve(stream);
    if (s->capture != nullptr) {
      s->capture->ops.push_back(std::move(op));
      return cudaSuccess;
    }
  }
  if (resolve(stream) == &g_default_stream && breaksCapture("work on the legacy default stream"))
    return cudaErrorStreamCaptureImplicit;
  std::lock_guard<std::mutex> lock(g_queue_mutex);
  g_queue.push_back(std::move(op));
  return cudaSuccess;
}

}  // namespace

const Config& config() {
  static const Config c = [] {
    Config k;
    k.workers = std::max(1, envInt("SPARSETRT_CPU_THREADS", static_cast<int>(std::thread::hardware_concurrency())));
    if (const char* s = std::getenv("SPARSETRT_CPU_SHUFFLE"); s != nullptr && *s != '\0') {
      k.shuffle = true;
      k.seed = std::strtoull(s, nullptr, 10);
    }
    const int sm = envInt("SPARSETRT_CPU_SM", 80);
    k.sm_major = sm / 10;
    k.sm_minor = sm % 10;
    k.stack_bytes = static_cast<std::size_t>(std::max(16, envInt("SPARSETRT_CPU_STACK_KB", 256))) << 10;
    return k;
  }();
  return c;
}

void reportv(const char* format, va_list args) {
  char buf[2048];
  std::vsnprintf(buf, sizeof buf, format, args);
  std::fprintf(stderr, "sparsetrt CPU backend: %s\n", buf);
  std::fflush(stderr);
}

void report(const char* format, ...) {
  va_list args;
  va_start(args, format);
  reportv(format, args);
  va_end(args);
}

void setStickyError(cudaError_t error) {
  int expected = cudaSuccess;
  g_sticky.compare_exchange_strong(expected, error);
}
cudaError_t stickyError() { return static_cast<cudaError_t>(g_sticky.load()); }

cudaError_t enqueueKernel(KernelLaunch launch, cudaStream_t stream) {
  const dim3 g = launch.grid, b = launch.block;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0 || threads > 1024 || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    report("kernel %s: invalid launch configuration grid (%u, %u, %u), block (%u, %u, %u)", launch.name, g.x, g.y, g.z,
           b.x, b.y, b.z);
    return record(cudaErrorInvalidConfiguration);
  }
  if (launch.dynamic_shared != 0) {
    report("kernel %s: dynamic shared memory (%zu bytes) is not supported by the CPU backend", launch.name,
           launch.dynamic_shared);
    return record(cudaErrorNotSupported);
  }
  auto shared = std::make_shared<KernelLaunch>(std::move(launch));
  return record(enqueue(stream, Op{[shared] { return runKernel(*shared) && checkGuards(shared->name); }}));
}

cudaError_t refuseHostPointer(const char* kernel, int param, const void* p) {
  report("kernel %s: argument %d (%p) is not device memory (pass a pointer from cudaMalloc, or null)", kernel, param,
         p);
  return record(cudaErrorInvalidValue);
}

}  // namespace cpu
}  // namespace sparsetrt

using namespace sparsetrt::cpu;

// ---------------------------------------------------------------------------------------------- errors
cudaError_t cudaGetLastError() {
  const cudaError_t sticky = stickyError();
  const cudaError_t last = tl_last_error;
  tl_last_error = cudaSuccess;
  return sticky != cudaSuccess ? sticky : last;
}

cudaError_t cudaPeekAtLastError() { return stickyError() != cudaSuccess ? stickyError() : tl_last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define SPT_NAME(e) \
  case e:           \
    return #e;
    SPT_NAME(cudaSuccess)
    SPT_NAME(cudaErrorInvalidValue)
    SPT_NAME(cudaErrorMemoryAllocation)
    SPT_NAME(cudaErrorInitializationError)
    SPT_NAME(cudaErrorInvalidConfiguration)
    SPT_NAME(cudaErrorInvalidDevice)
    SPT_NAME(cudaErrorInvalidResourceHandle)
    SPT_NAME(cudaErrorNotReady)
    SPT_NAME(cudaErrorIllegalAddress)
    SPT_NAME(cudaErrorLaunchOutOfResources)
    SPT_NAME(cudaErrorAssert)
    SPT_NAME(cudaErrorIllegalInstruction)
    SPT_NAME(cudaErrorMisalignedAddress)
    SPT_NAME(cudaErrorLaunchFailure)
    SPT_NAME(cudaErrorNotSupported)
    SPT_NAME(cudaErrorStreamCaptureUnsupported)
    SPT_NAME(cudaErrorStreamCaptureInvalidated)
    SPT_NAME(cudaErrorStreamCaptureWrongThread)
    SPT_NAME(cudaErrorStreamCaptureImplicit)
    SPT_NAME(cudaErrorUnknown)
#undef SPT_NAME
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorIllegalInstruction:
      return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress:
      return "misaligned address";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorNotSupported:
      return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    default:
      return cudaGetErrorName(error);
  }
}

// ---------------------------------------------------------------------------------------------- device
cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return record(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr || device != 0) return record(device != 0 ? cudaErrorInvalidDevice : cudaErrorInvalidValue);
  std::memset(prop, 0, sizeof *prop);
  const Config& c = config();
  std::snprintf(prop->name, sizeof prop->name, "sparsetrt CPU backend");
  prop->major = c.sm_major;
  prop->minor = c.sm_minor;
  prop->multiProcessorCount = c.workers;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->sharedMemPerBlock = 48 << 10;
  prop->totalGlobalMem =
      static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  prop->l2CacheSize = 4 << 20;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr || device != 0) return record(device != 0 ? cudaErrorInvalidDevice : cudaErrorInvalidValue);
  cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = p.maxThreadsPerBlock;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = static_cast<int>(p.sharedMemPerBlock);
      return cudaSuccess;
    case cudaDevAttrWarpSize:
      *value = 32;
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = p.multiProcessorCount;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = p.major;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = p.minor;
      return cudaSuccess;
  }
  return record(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceSynchronize() {
  if (breaksCapture("cudaDeviceSynchronize")) return record(cudaErrorStreamCaptureUnsupported);
  return record(flush());
}

// ---------------------------------------------------------------------------------------------- memory
cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  if (ptr == nullptr) return record(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (breaksCapture("cudaMalloc")) return record(cudaErrorStreamCaptureUnsupported);
  if (stickyError() != cudaSuccess) return stickyError();
  if (bytes == 0) return cudaSuccess;  // as CUDA: success and a null pointer
  *ptr = deviceAlloc(bytes);
  return record(*ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  if (breaksCapture("cudaFree")) return record(cudaErrorStreamCaptureUnsupported);
  const cudaError_t err = flush();  // cudaFree synchronizes the device
  checkGuards("the device code before this cudaFree");
  if (!deviceFree(ptr)) {
    report("cudaFree(%p): not a pointer cudaMalloc returned, or freed already", ptr);
    return record(cudaErrorInvalidValue);
  }
  return record(err);
}

namespace {

// Checks a copy's ranges against its kind now (as CUDA validates at the call) and says which side is device
// memory. cudaMemcpyDefault infers it from the pointers.
cudaError_t checkCopy(const char* api, void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return cudaErrorInvalidValue;
  if (kind == cudaMemcpyDefault) {
    kind = overlapsDeviceMemory(src, bytes)
               ? (overlapsDeviceMemory(dst, bytes) ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
               : (overlapsDeviceMemory(dst, bytes) ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  }
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (src_device) {
    if (cudaError_t e = checkDeviceRange(api, "source", src, bytes); e != cudaSuccess) return e;
  } else if (overlapsDeviceMemory(src, bytes)) {
    report("%s: the source %p is device memory but the copy kind says host", api, src);
    return cudaErrorInvalidValue;
  }
  if (dst_device) {
    if (cudaError_t e = checkDeviceRange(api, "destination", dst, bytes); e != cudaSuccess) return e;
  } else if (overlapsDeviceMemory(dst, bytes)) {
    report("%s: the destination %p is device memory but the copy kind says host", api, dst);
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

Op copyOp(void* dst, const void* src, std::size_t bytes) {
  return Op{[=] {
    std::memmove(dst, src, bytes);
    return true;
  }};
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = checkCopy("cudaMemcpy", dst, src, bytes, kind); e != cudaSuccess) return record(e);
  if (breaksCapture("cudaMemcpy")) return record(cudaErrorStreamCaptureImplicit);
  if (cudaError_t e = flush(); e != cudaSuccess) return record(e);
  if (bytes != 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (cudaError_t e = checkCopy("cudaMemcpyAsync", dst, src, bytes, kind); e != cudaSuccess) return record(e);
  if (bytes == 0) return cudaSuccess;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaStreamIsCapturing(stream, &status);
  if (status == cudaStreamCaptureStatusNone && !overlapsDeviceMemory(src, bytes)) {
    // From pageable host memory CUDA copies the source before returning: later host writes do not matter.
    auto staged =
        std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    return record(enqueue(stream, Op{[=] {
                            std::memcpy(dst, staged->data(), bytes);
                            return true;
                          }}));
  }
  return record(enqueue(stream, copyOp(dst, src, bytes)));
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (cudaError_t e = checkDeviceRange("cudaMemset", "range", ptr, bytes); e != cudaSuccess) return record(e);
  if (breaksCapture("cudaMemset")) return record(cudaErrorStreamCaptureImplicit);
  if (cudaError_t e = flush(); e != cudaSuccess) return record(e);
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (cudaError_t e = checkDeviceRange("cudaMemsetAsync", "range", ptr, bytes); e != cudaSuccess) return record(e);
  return record(enqueue(stream, Op{[=] {
                          std::memset(ptr, value, bytes);
                          return true;
                        }}));
}

// --------------------------------------------------------------------------------------------- streams
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  if (stream == nullptr) return record(cudaErrorInvalidValue);
  installFaultHandler();
  std::lock_guard<std::mutex> lock(g_state);
  *stream = new CUstream_st();
  g_streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_state);
  if (g_streams.erase(stream) == 0) return record(cudaErrorInvalidResourceHandle);
  delete stream;  // its queued work still runs: the FIFO holds no reference to the stream
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(g_state);
    if (!validStream(stream)) return record(cudaErrorInvalidResourceHandle);
  }
  if (capturing(stream, "cudaStreamSynchronize")) return record(cudaErrorStreamCaptureUnsupported);
  if (breaksCapture("cudaStreamSynchronize")) return record(cudaErrorStreamCaptureUnsupported);
  return record(flush());
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (capturing(stream, "cudaStreamQuery")) return record(cudaErrorStreamCaptureUnsupported);
  return record(flush());
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  std::lock_guard<std::mutex> lock(g_state);
  if (!validStream(stream) || g_events.count(event) == 0) return record(cudaErrorInvalidResourceHandle);
  return cudaSuccess;  // one FIFO already orders everything enqueued before the wait
}

// ---------------------------------------------------------------------------------------------- events
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  if (event == nullptr) return record(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_state);
  *event = new CUevent_st();
  g_events.insert(*event);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  {
    std::lock_guard<std::mutex> lock(g_state);
    if (g_events.erase(event) == 0) return record(cudaErrorInvalidResourceHandle);
  }
  flush();  // queued records may still refer to it
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(g_state);
    if (g_events.count(event) == 0) return record(cudaErrorInvalidResourceHandle);
  }
  return record(enqueue(stream, Op{[event] {
                          event->time = std::chrono::steady_clock::now();
                          event->recorded = true;
                          return true;
                        }}));
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return record(cudaErrorInvalidResourceHandle);
  if (breaksCapture("cudaEventSynchronize")) return record(cudaErrorStreamCaptureUnsupported);
  return record(flush());
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (event == nullptr) return record(cudaErrorInvalidResourceHandle);
  return record(flush());
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr || start == nullptr || end == nullptr) return record(cudaErrorInvalidValue);
  if (!start->recorded || !end->recorded) return record(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------- graphs
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  std::lock_guard<std::mutex> lock(g_state);
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) {
    report("cudaStreamBeginCapture: the legacy default stream cannot be captured; use a created stream");
    return record(cudaErrorStreamCaptureUnsupported);
  }
  if (g_streams.count(stream) == 0) return record(cudaErrorInvalidResourceHandle);
  if (stream->capture != nullptr) return record(cudaErrorInvalidValue);
  stream->capture = new CUgraph_st();
  stream->mode = mode;
  stream->capture_thread = std::this_thread::get_id();
  stream->invalidated = false;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  std::lock_guard<std::mutex> lock(g_state);
  if (graph == nullptr) return record(cudaErrorInvalidValue);
  *graph = nullptr;
  if (g_streams.count(stream) == 0) return record(cudaErrorInvalidResourceHandle);
  if (stream->capture == nullptr) return record(cudaErrorInvalidValue);
  if (stream->mode != cudaStreamCaptureModeRelaxed && stream->capture_thread != std::this_thread::get_id())
    return record(cudaErrorStreamCaptureWrongThread);
  CUgraph_st* g = stream->capture;
  stream->capture = nullptr;
  if (stream->invalidated) {
    delete g;
    return record(cudaErrorStreamCaptureInvalidated);
  }
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  if (mode == nullptr) return record(cudaErrorInvalidValue);
  std::swap(*mode, tl_interaction);
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  std::lock_guard<std::mutex> lock(g_state);
  if (status == nullptr) return record(cudaErrorInvalidValue);
  if (!validStream(stream)) return record(cudaErrorInvalidResourceHandle);
  const CUstream_st* s = resolve(stream);
  *status = s->capture == nullptr
                ? cudaStreamCaptureStatusNone
                : (s->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (exec == nullptr || graph == nullptr) return record(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return record(cudaErrorInvalidValue);
  const std::vector<Op>* ops = &exec->ops;
  return record(enqueue(stream, Op{[ops] {
                          for (const Op& op : *ops)
                            if (!op.run()) return false;
                          return true;
                        }}));
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  flush();  // a queued launch may still refer to it
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
