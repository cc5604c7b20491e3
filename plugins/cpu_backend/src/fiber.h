// User-mode contexts: each CUDA thread of a block is a fiber on its block's OS thread. A switch saves the
// callee-saved registers and the stack pointer (x86-64: a dozen instructions, no system call); elsewhere
// ucontext is the portable fallback. AddressSanitizer is told about every switch, so it follows the stacks.
#pragma once

#include <cstddef>

#if !defined(__x86_64__) || defined(SPARSETRT_CPU_UCONTEXT)
#define SPARSETRT_CPU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace sparsetrt {
namespace cpu {

struct Context {
  void* sp = nullptr;  // saved stack pointer (x86-64 switch)
#if defined(SPARSETRT_CPU_USE_UCONTEXT)
  ucontext_t uc;
#endif
  void* stack_lo = nullptr;  // the stack this context runs on, for AddressSanitizer
  std::size_t stack_bytes = 0;
};

// Prepares `ctx` to run entry(arg) on [stack_lo, stack_lo + bytes) when first switched to; entry never returns.
void contextInit(Context* ctx, void* stack_lo, std::size_t bytes, void (*entry)(void*), void* arg);
// Saves the running context in `from` and resumes `to`. `from_ends`: `from` will never be resumed.
void contextSwitch(Context* from, Context* to, bool from_ends = false);
// The first thing a fiber's entry function does (AddressSanitizer bookkeeping of the switch into it).
void contextStarted();
// The stack of the calling OS thread, for the scheduler's own context.
void currentThreadStack(void** lo, std::size_t* bytes);

}  // namespace cpu
}  // namespace sparsetrt
