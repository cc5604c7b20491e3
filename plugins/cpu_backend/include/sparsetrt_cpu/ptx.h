// Inline PTX on the CPU execution backend. A kernel writes
//   SPT_PTX("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, ...};",
//           (SPT_PTX_INOUT("f", d0), ...), (SPT_PTX_IN("r", a0), ...), ());
// which device_common.cuh turns into the equivalent asm statement under nvcc. Here it calls the interpreter
// (ptx.cpp) with the instruction text and its operands, numbered as asm numbers them: outputs first, then
// inputs. The interpreter executes the instructions sparsetrt uses from the PTX ISA's definitions and
// fragment layouts; any other instruction stops the kernel with an error that names it.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace sparsetrt {
namespace cpu {
namespace ptx {

struct Operand {
  char constraint;         // 'h' 16-bit, 'r' 32-bit integer, 'l' 64-bit integer, 'f' float, 'd' double
  bool write;              // "=" or "+"
  bool read;               // an input, or "+"
  void* target;            // where a written operand goes
  unsigned size;           // the C++ operand's size, checked against the constraint
  unsigned char value[8];  // a read operand's value at the statement
};

template <typename T>
Operand make(const char* constraint, const T& x, bool write, bool read, void* target) {
  static_assert(sizeof(T) <= 8, "PTX operands are at most 64 bits");
  Operand o{constraint[0], write, read, target, static_cast<unsigned>(sizeof(T)), {}};
  std::memcpy(o.value, &x, sizeof(T));
  return o;
}
template <typename T>
Operand out(const char* c, T& x) {
  return make(c, x, true, false, &x);
}
template <typename T>
Operand inout(const char* c, T& x) {
  return make(c, x, true, true, &x);
}
template <typename T>
Operand in(const char* c, const T& x) {
  return make(c, x, false, true, nullptr);
}

void execute(const char* text, std::initializer_list<Operand> outputs, std::initializer_list<Operand> inputs);

// Warp-level instructions executed since the last resetCounts(), over all kernels and threads: what a GPU's
// profiler would count as executed warp instructions (one per warp, however many lanes take part). The work
// counter (benchmarks/bench_work.py) checks its model of the tensor-core conv's tiling against these.
struct InstructionCounts {
  uint64_t mma;       // mma.sync.aligned.m16n8k16: 16 x 8 x 16 multiply-adds each
  uint64_t ldmatrix;  // ldmatrix.sync.aligned.m8n8 (x1, x2 or x4)
};
InstructionCounts counts();
void resetCounts();

}  // namespace ptx
}  // namespace cpu
}  // namespace sparsetrt

#define SPT_PTX_LIST(...) __VA_ARGS__
#define SPT_PTX(text, outputs, inputs, clobbers) \
  ::sparsetrt::cpu::ptx::execute(text, {SPT_PTX_LIST outputs}, {SPT_PTX_LIST inputs})
#define SPT_PTX_OUT(c, x) ::sparsetrt::cpu::ptx::out(c, x)
#define SPT_PTX_INOUT(c, x) ::sparsetrt::cpu::ptx::inout(c, x)
#define SPT_PTX_IN(c, x) ::sparsetrt::cpu::ptx::in(c, x)
