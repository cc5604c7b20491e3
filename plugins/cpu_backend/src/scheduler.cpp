// Kernel execution on the CPU: blocks on a pool of OS threads, CUDA threads as fibers of their block's OS
// thread, block barriers and warp collectives as real rendezvous.
//
// A fiber runs until it reaches a barrier or a warp collective (or ends), then hands over to the next
// runnable fiber of its block, round robin. So between two barriers one thread runs all its work before the
// next starts: a missing __syncthreads lets a thread run far ahead of the others and read or overwrite shared
// memory they have not reached, which changes results instead of passing by luck. The last thread to arrive
// at a rendezvous completes it (a warp operation is computed once, over all its lanes' inputs, the moment
// the last lane arrives) and runs on. Misuse is an error that stops the kernel and names the block and
// thread: a barrier some threads skip by exiting, lanes meeting at different warp operations or masks, a
// mask without the calling lane, a deadlock.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "fiber.h"
#include "internal.h"

namespace sparsetrt {
namespace cpu {

thread_local const ThreadIdentity* tl_identity = nullptr;
thread_local char tl_shared_anchor = 0;

namespace {

enum class State : uint8_t { kRunnable, kAtBarrier, kAtWarp, kDone };

struct Fiber {
  Context ctx;
  char* stack = nullptr;  // mapping: guard page, then the stack
  ThreadIdentity identity;
  int index = 0;     // linear thread index in the block
  int position = 0;  // place in the block's run order
  State state = State::kRunnable;
};

struct Warp {
  uint32_t present = 0;  // lanes that exist (a partial last warp has fewer)
  uint32_t exited = 0;
  uint32_t arrived = 0;
  uint32_t generation = 0;
  const char* what = nullptr;
  uint32_t mask = 0;
  // Double-buffered by generation: a lane that runs ahead to the next operation writes the other half, and
  // the current results stay until every lane has read them (they all must arrive at the next operation
  // before it completes).
  alignas(16) unsigned char in[2][32][48];
  alignas(16) unsigned char out[2][32][16];
};

struct Block {
  const KernelLaunch* launch = nullptr;
  int threads = 0;
  std::vector<Fiber*> order;  // run order (shuffled or by index)
  std::vector<Warp> warps;
  int done = 0;
  bool aborted = false;
  // __syncthreads and friends
  int arrived = 0;
  int generation = 0;
  BarrierKind kind = BarrierKind::kPlain;
  int accumulator = 0;
  int result[2] = {0, 0};
};

struct Worker {
  Context scheduler;
  std::vector<Fiber*> fibers;  // reused across blocks
  std::vector<char> altstack;
};

thread_local Worker* tl_worker = nullptr;
thread_local Block* tl_block = nullptr;
thread_local Fiber* tl_fiber = nullptr;

std::size_t pageSize() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

Fiber* newFiber() {
  auto* f = new Fiber();
  const std::size_t bytes = config().stack_bytes, page = pageSize();
  void* m = mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    report("cannot map a %zu-byte fiber stack", bytes);
    std::abort();
  }
  mprotect(m, page, PROT_NONE);  // stack overflow faults here (and the fault report says so)
  f->stack = static_cast<char*>(m);
  return f;
}

[[noreturn]] void fiberMain(void* arg);

// The next runnable fiber after `from` in run order, or null.
Fiber* nextRunnable(Block& b, int from) {
  const int n = b.threads;
  for (int i = 1; i <= n; ++i) {
    Fiber* f = b.order[(from + i) % n];
    if (f->state == State::kRunnable) return f;
  }
  return nullptr;
}

void resume(Fiber* self, Fiber* next, bool self_ends) {
  tl_fiber = next;
  tl_identity = &next->identity;
  contextSwitch(&self->ctx, &next->ctx, self_ends);
}

// The calling fiber waits (or has ended): run the next runnable one, or go back to the scheduler.
void yieldFiber(bool ends = false) {
  Fiber* self = tl_fiber;
  Block& b = *tl_block;
  Fiber* next = b.aborted ? nullptr : nextRunnable(b, self->position);
  if (next != nullptr && next != self) {
    resume(self, next, ends);
    return;
  }
  tl_fiber = nullptr;
  tl_identity = nullptr;
  contextSwitch(&self->ctx, &tl_worker->scheduler, ends);
}

[[noreturn]] void abortBlock() {
  tl_block->aborted = true;
  Fiber* self = tl_fiber;
  tl_fiber = nullptr;
  tl_identity = nullptr;
  contextSwitch(&self->ctx, &tl_worker->scheduler, true);
  std::abort();  // never resumed
}

std::string where() {
  const ThreadIdentity* id = tl_identity;
  if (tl_block == nullptr || id == nullptr) return "";
  char buf[512];
  std::snprintf(buf, sizeof buf, "kernel %s, block (%u, %u, %u), thread (%u, %u, %u)", tl_block->launch->name,
                id->block_idx.x, id->block_idx.y, id->block_idx.z, id->thread_idx.x, id->thread_idx.y,
                id->thread_idx.z);
  return buf;
}

void fiberEnds() {
  Fiber* self = tl_fiber;
  Block& b = *tl_block;
  Warp& w = b.warps[self->index / 32];
  const uint32_t bit = 1u << (self->index % 32);
  self->state = State::kDone;
  ++b.done;
  w.exited |= bit;
  if (b.arrived > 0)
    deviceFail(cudaErrorLaunchFailure, "this thread exited while %d threads of its block wait at __syncthreads for it",
               b.arrived);
  if (w.arrived != 0 && (w.mask & bit))
    deviceFail(cudaErrorLaunchFailure, "lane %d exited while lanes 0x%08x wait for it at %s (mask 0x%08x)",
               self->index % 32, w.arrived, w.what, w.mask);
}

void fiberMain(void* arg) {
  contextStarted();
  (void)arg;
  const KernelLaunch& l = *tl_block->launch;
  l.run(l.args.get());
  fiberEnds();
  yieldFiber(true);
  std::abort();  // a finished fiber is never resumed
}

// Runs one block to completion on this OS thread. False if a thread faulted (already reported).
bool runBlock(const KernelLaunch& l, uint3 block_idx, std::mt19937_64* rng) {
  Worker& worker = *tl_worker;
  const int n = static_cast<int>(l.block.x * l.block.y * l.block.z);
  while (static_cast<int>(worker.fibers.size()) < n) worker.fibers.push_back(newFiber());
  Block b;
  b.launch = &l;
  b.threads = n;
  b.warps.assign((n + 31) / 32, Warp{});
  for (int w = 0; w < static_cast<int>(b.warps.size()); ++w) {
    const int lanes = std::min(32, n - 32 * w);
    b.warps[w].present = lanes == 32 ? ~0u : (1u << lanes) - 1u;
  }
  b.order.assign(worker.fibers.begin(), worker.fibers.begin() + n);
  if (rng != nullptr) std::shuffle(b.order.begin(), b.order.end(), *rng);
  const std::size_t page = pageSize(), stack = config().stack_bytes;
  for (int i = 0; i < n; ++i) {
    Fiber* f = worker.fibers[i];
    f->index = i;
    f->state = State::kRunnable;
    f->identity.thread_idx = uint3{i % l.block.x, (i / l.block.x) % l.block.y, i / (l.block.x * l.block.y)};
    f->identity.block_idx = block_idx;
    f->identity.block_dim = l.block;
    f->identity.grid_dim = l.grid;
    contextInit(&f->ctx, f->stack + page, stack, fiberMain, f);
  }
  for (int p = 0; p < n; ++p) b.order[p]->position = p;

  tl_block = &b;
  while (!b.aborted && b.done < n) {
    Fiber* next = nextRunnable(b, n - 1);
    if (next == nullptr) {  // everyone left is waiting for someone who never comes
      int at_barrier = 0, at_warp = 0;
      std::string detail;
      for (const Fiber* f : b.order) {
        at_barrier += f->state == State::kAtBarrier;
        at_warp += f->state == State::kAtWarp;
      }
      for (std::size_t w = 0; w < b.warps.size(); ++w)
        if (b.warps[w].arrived != 0) detail += "; warp " + std::to_string(w) + " waits at " + b.warps[w].what;
      report(
          "kernel %s, block (%u, %u, %u): deadlock: %d threads wait at __syncthreads, %d at warp operations, %d "
          "have exited%s",
          l.name, block_idx.x, block_idx.y, block_idx.z, at_barrier, at_warp, b.done, detail.c_str());
      setStickyError(cudaErrorLaunchFailure);
      b.aborted = true;
      break;
    }
    tl_fiber = next;
    tl_identity = &next->identity;
    contextSwitch(&worker.scheduler, &next->ctx);
  }
  tl_block = nullptr;
  tl_fiber = nullptr;
  tl_identity = nullptr;
  return !b.aborted;
}

// ------------------------------------------------------------------------------------------ worker pool
struct Job {
  const KernelLaunch* launch = nullptr;
  int64_t blocks = 0;
  std::vector<int64_t> permutation;  // empty: blocks in order
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  uint64_t seed = 0;
};

class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
  }

  void run(Job& job) {
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = &job;
    ++generation_;
    busy_ = static_cast<int>(threads_.size());
    wake_.notify_all();
    idle_.wait(lock, [this] { return busy_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop() {
    Worker worker;
    tl_worker = &worker;
    currentThreadStack(&worker.scheduler.stack_lo, &worker.scheduler.stack_bytes);
    // The fault handler runs on its own stack: a fiber's may be the one that overflowed.
    worker.altstack.resize(std::max<std::size_t>(SIGSTKSZ, 64 << 10));
    stack_t ss{};
    ss.ss_sp = worker.altstack.data();
    ss.ss_size = worker.altstack.size();
    sigaltstack(&ss, nullptr);
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        job = job_;
      }
      work(*job);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) idle_.notify_all();
    }
  }

  static void work(Job& job) {
    const KernelLaunch& l = *job.launch;
    for (;;) {
      const int64_t i = job.next.fetch_add(1);
      if (i >= job.blocks || job.failed.load()) return;
      const int64_t linear = job.permutation.empty() ? i : job.permutation[i];
      const uint3 idx{static_cast<unsigned>(linear % l.grid.x), static_cast<unsigned>((linear / l.grid.x) % l.grid.y),
                      static_cast<unsigned>(linear / (int64_t{l.grid.x} * l.grid.y))};
      std::mt19937_64 rng(job.seed ^ (static_cast<uint64_t>(linear) * 0x9E3779B97F4A7C15ULL));
      if (!runBlock(l, idx, job.permutation.empty() ? nullptr : &rng)) job.failed = true;
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  int busy_ = 0;
};

Pool& pool() {
  // Never destroyed: its threads wait forever and the process may exit at any time.
  static Pool* p = new Pool(config().workers);
  return *p;
}

std::atomic<uint64_t> g_launches{0};

struct sigaction g_previous_segv, g_previous_bus;

void onFault(int sig, siginfo_t* info, void* ucontext) {
  const std::string who = currentThreadDescription();
  const std::string what = describeAddress(info->si_addr);
  char buf[1024];
  const int n =
      std::snprintf(buf, sizeof buf, "sparsetrt CPU backend: %s at %p%s%s%s%s\n",
                    sig == SIGSEGV ? "invalid memory access" : "bus error", info->si_addr, what.empty() ? "" : ", ",
                    what.c_str(), who.empty() ? " (host code)" : " in ", who.c_str());
  if (n > 0) (void)!write(2, buf, static_cast<std::size_t>(std::min<int>(n, sizeof buf - 1)));
  // Let the previous handler (AddressSanitizer's, or the default core dump) have it.
  const struct sigaction& prev = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
  if (prev.sa_flags & SA_SIGINFO && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, ucontext);
    return;
  }
  sigaction(sig, &prev, nullptr);  // re-raised by the faulting instruction on return
}

}  // namespace

std::string currentThreadDescription() { return where(); }

void installFaultHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_sigaction = onFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
    sigaction(SIGBUS, &sa, &g_previous_bus);
  });
}

bool runKernel(const KernelLaunch& l) {
  installFaultHandler();
  Job job;
  job.launch = &l;
  job.blocks = int64_t{l.grid.x} * l.grid.y * l.grid.z;
  const uint64_t launch_number = g_launches.fetch_add(1);
  if (config().shuffle) {
    job.seed = config().seed * 0x100000001B3ULL + launch_number;
    job.permutation.resize(static_cast<std::size_t>(job.blocks));
    std::iota(job.permutation.begin(), job.permutation.end(), int64_t{0});
    std::mt19937_64 rng(job.seed);
    std::shuffle(job.permutation.begin(), job.permutation.end(), rng);
  }
  pool().run(job);
  return !job.failed.load();
}

// ------------------------------------------------------------------------------------ device functions
void deviceFail(cudaError_t error, const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  report("%s: %s", where().c_str(), buf);
  setStickyError(error);
  abortBlock();
}

void deviceTrap() { deviceFail(cudaErrorLaunchFailure, "__trap() executed"); }

int blockBarrier(BarrierKind kind, int predicate) {
  Block& b = *tl_block;
  Fiber* self = tl_fiber;
  if (b.done > 0)
    deviceFail(cudaErrorLaunchFailure,
               "__syncthreads reached after %d threads of the block exited: every thread must reach every barrier",
               b.done);
  const int gen = b.generation;
  if (b.arrived == 0) {
    b.kind = kind;
    b.accumulator = kind == BarrierKind::kAnd ? 1 : 0;
  } else if (b.kind != kind) {
    deviceFail(cudaErrorLaunchFailure,
               "threads of the block meet at different kinds of __syncthreads (_or/_and/_count)");
  }
  switch (kind) {
    case BarrierKind::kPlain:
      break;
    case BarrierKind::kOr:
      b.accumulator |= predicate;
      break;
    case BarrierKind::kAnd:
      b.accumulator &= predicate;
      break;
    case BarrierKind::kCount:
      b.accumulator += predicate;
      break;
  }
  if (++b.arrived == b.threads) {
    b.result[gen & 1] = b.accumulator;
    b.arrived = 0;
    ++b.generation;
    for (Fiber* f : b.order)
      if (f->state == State::kAtBarrier) f->state = State::kRunnable;
    return b.result[gen & 1];
  }
  self->state = State::kAtBarrier;
  yieldFiber();
  return b.result[gen & 1];
}

void warpCollective(const char* what, uint32_t mask, const void* in, std::size_t in_bytes, void* out,
                    std::size_t out_bytes, WarpCombine combine, const void* ctx) {
  Block& b = *tl_block;
  Fiber* self = tl_fiber;
  const int lane = self->index % 32;
  Warp& w = b.warps[self->index / 32];
  const uint32_t bit = 1u << lane;
  if ((mask & bit) == 0)
    deviceFail(cudaErrorLaunchFailure, "%s with mask 0x%08x, which does not include the calling lane %d", what, mask,
               lane);
  const uint32_t expected = mask & w.present;
  if (w.exited & expected)
    deviceFail(cudaErrorLaunchFailure, "%s with mask 0x%08x names lanes that have exited (0x%08x)", what, mask,
               w.exited & expected);
  const uint32_t gen = w.generation;
  if (w.arrived == 0) {
    w.what = what;
    w.mask = mask;
  } else if (w.mask != mask || (w.what != what && std::strcmp(w.what, what) != 0)) {
    deviceFail(cudaErrorLaunchFailure,
               "lanes of warp %d meet at different operations: '%s' (mask 0x%08x) and '%s' "
               "(mask 0x%08x)",
               self->index / 32, w.what, w.mask, what, mask);
  }
  std::memcpy(w.in[gen & 1][lane], in, in_bytes);
  w.arrived |= bit;
  if (w.arrived == expected) {
    combine(ctx, w.in[gen & 1], w.out[gen & 1], expected);
    w.arrived = 0;
    ++w.generation;
    const int base = (self->index / 32) * 32;
    for (int l = 0; l < 32; ++l) {
      if (((expected >> l) & 1u) == 0 || l == lane) continue;
      // Fibers are indexed by linear thread index in worker.fibers; order holds the same objects.
      Fiber* f = tl_worker->fibers[base + l];
      f->state = State::kRunnable;
    }
  } else {
    self->state = State::kAtWarp;
    yieldFiber();
  }
  std::memcpy(out, w.out[gen & 1][lane], out_bytes);
}

std::size_t sharedOffset(const void* p) {
  const int64_t offset = static_cast<const char*>(p) - &tl_shared_anchor;
  if (offset < INT32_MIN || offset > INT32_MAX)
    deviceFail(cudaErrorIllegalAddress, "__cvta_generic_to_shared(%p): not a __shared__ variable", p);
  return static_cast<std::size_t>(static_cast<uint32_t>(static_cast<int32_t>(offset)));
}

void* sharedPointer(int64_t offset) { return &tl_shared_anchor + offset; }

}  // namespace cpu
}  // namespace sparsetrt
