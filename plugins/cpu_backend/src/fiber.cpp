#include "fiber.h"

#include <pthread.h>

#include <cstdint>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SPT_ASAN 1
#endif

#if !defined(SPARSETRT_CPU_USE_UCONTEXT)
// sparsetrt_cpu_switch(void** save_sp, void* load_sp): pushes the callee-saved registers and the SSE/x87
// control words of the System V ABI, stores the stack pointer, loads the other one and pops its registers.
// A new context's stack holds a frame whose return address is sparsetrt_cpu_start, which calls entry(arg)
// from r12(rbx).
asm(R"(
    .text
    .globl sparsetrt_cpu_switch
    .hidden sparsetrt_cpu_switch
    .type sparsetrt_cpu_switch, @function
sparsetrt_cpu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size sparsetrt_cpu_switch, .-sparsetrt_cpu_switch

    .globl sparsetrt_cpu_start
    .hidden sparsetrt_cpu_start
    .type sparsetrt_cpu_start, @function
sparsetrt_cpu_start:
    movq %rbx, %rdi
    callq *%r12
    ud2
    .size sparsetrt_cpu_start, .-sparsetrt_cpu_start
    .section .note.GNU-stack,"",@progbits
    .text
)");
extern "C" void sparsetrt_cpu_switch(void** save_sp, void* load_sp);
extern "C" void sparsetrt_cpu_start();
#endif

namespace sparsetrt {
namespace cpu {

void contextInit(Context* ctx, void* stack_lo, std::size_t bytes, void (*entry)(void*), void* arg) {
  ctx->stack_lo = stack_lo;
  ctx->stack_bytes = bytes;
#if defined(SPARSETRT_CPU_USE_UCONTEXT)
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack_lo;
  ctx->uc.uc_stack.ss_size = bytes;
  ctx->uc.uc_link = nullptr;
  // makecontext passes int arguments: split the pointer.
  const auto a = reinterpret_cast<uintptr_t>(arg), e = reinterpret_cast<uintptr_t>(entry);
  makecontext(&ctx->uc, reinterpret_cast<void (*)()>(+[](unsigned ah, unsigned al, unsigned eh, unsigned el) {
    reinterpret_cast<void (*)(void*)>((uintptr_t{eh} << 32) | el)(reinterpret_cast<void*>((uintptr_t{ah} << 32) | al));
  }),
              4, static_cast<unsigned>(a >> 32), static_cast<unsigned>(a), static_cast<unsigned>(e >> 32),
              static_cast<unsigned>(e));
#else
  // The top of the stack, 16-byte aligned; after the switch's `ret` the stack pointer is 16-byte aligned at
  // the `call` in sparsetrt_cpu_start, as the ABI wants.
  auto top = (reinterpret_cast<uintptr_t>(stack_lo) + bytes) & ~uintptr_t{15};
  auto* frame = reinterpret_cast<uint64_t*>(top - 16 - 8 * 8);
  frame[0] = 0x037F00001F80ULL;                  // mxcsr (low), x87 control word (high): the defaults
  frame[1] = 0;                                  // r15
  frame[2] = 0;                                  // r14
  frame[3] = 0;                                  // r13
  frame[4] = reinterpret_cast<uint64_t>(entry);  // r12
  frame[5] = reinterpret_cast<uint64_t>(arg);    // rbx
  frame[6] = 0;                                  // rbp
  frame[7] = reinterpret_cast<uint64_t>(&sparsetrt_cpu_start);
  ctx->sp = frame;
#endif
}

void contextSwitch(Context* from, Context* to, bool from_ends) {
#if defined(SPT_ASAN)
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(from_ends ? nullptr : &fake_stack, to->stack_lo, to->stack_bytes);
#else
  (void)from_ends;
#endif
#if defined(SPARSETRT_CPU_USE_UCONTEXT)
  swapcontext(&from->uc, &to->uc);
#else
  sparsetrt_cpu_switch(&from->sp, to->sp);
#endif
#if defined(SPT_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
}

void contextStarted() {
#if defined(SPT_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

void currentThreadStack(void** lo, std::size_t* bytes) {
  pthread_attr_t attr;
  *lo = nullptr;
  *bytes = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, lo, bytes);
    pthread_attr_destroy(&attr);
  }
}

}  // namespace cpu
}  // namespace sparsetrt
