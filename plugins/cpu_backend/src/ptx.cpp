// The inline-PTX interpreter of the CPU backend: the warp-wide instructions of sparsetrt's tensor-core conv,
// executed from their definitions in the PTX ISA (fragment layouts of ldmatrix and mma.m16n8k16). Each is a
// warp collective: every lane hands in its registers, the last lane to arrive computes the whole warp's
// result (reading shared memory at that moment, as the warp-wide instruction would), and each lane takes its
// fragment of it. Anything else stops the kernel with cudaErrorIllegalInstruction and names the instruction.
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "internal.h"

namespace sparsetrt {
namespace cpu {
namespace ptx {
namespace {

// Executed warp instructions (counts()): bumped once per warp, by the lane that computes the warp's result.
std::atomic<uint64_t> g_mma{0}, g_ldmatrix{0};

const char* const kKnown =
    "ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared[::cta].b16 and "
    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32";

struct Instruction {
  enum Kind { kLdmatrix, kMma } kind = kLdmatrix;
  int matrices = 0;  // ldmatrix: 1, 2 or 4
  bool trans = false;
  std::vector<int> d, a, b, c;  // operand numbers of each register group
  int address = -1;             // ldmatrix: the operand holding the shared address
  int64_t address_offset = 0;   // [%n+imm]
  std::string text;
};

std::string trim(std::string s) {
  const std::size_t b = s.find_first_not_of(" \t\n\r");
  const std::size_t e = s.find_last_not_of(" \t\n\r;");
  return b == std::string::npos || e < b ? std::string() : s.substr(b, e - b + 1);
}

// "%3" -> 3, else -1.
int operandNumber(const std::string& s) {
  const std::string t = trim(s);
  if (t.size() < 2 || t[0] != '%') return -1;
  for (std::size_t i = 1; i < t.size(); ++i)
    if (t[i] < '0' || t[i] > '9') return -1;
  return std::stoi(t.substr(1));
}

// Top-level comma split, respecting {...} and [...].
std::vector<std::string> splitOperands(const std::string& s) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string cur;
  for (char ch : s) {
    if (ch == '{' || ch == '[') ++depth;
    if (ch == '}' || ch == ']') --depth;
    if (ch == ',' && depth == 0) {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!trim(cur).empty()) parts.push_back(trim(cur));
  return parts;
}

bool group(const std::string& s, std::size_t count, std::vector<int>* out) {
  const std::string t = trim(s);
  if (t.size() < 2 || t.front() != '{' || t.back() != '}') return false;
  out->clear();
  for (const std::string& p : splitOperands(t.substr(1, t.size() - 2))) {
    const int n = operandNumber(p);
    if (n < 0) return false;
    out->push_back(n);
  }
  return out->size() == count;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t b = 0;
  for (std::size_t e; (e = s.find(sep, b)) != std::string::npos; b = e + 1) parts.push_back(s.substr(b, e - b));
  parts.push_back(s.substr(b));
  return parts;
}

// Parses one instruction; on failure returns null and says why in *why.
std::unique_ptr<Instruction> parse(const char* text, std::string* why) {
  auto ins = std::make_unique<Instruction>();
  ins->text = trim(text);
  if (ins->text.find(';') != std::string::npos) {
    *why = "one instruction per statement";
    return nullptr;
  }
  const std::size_t space = ins->text.find_first_of(" \t");
  const std::string opcode = ins->text.substr(0, space);
  const std::vector<std::string> ops = splitOperands(space == std::string::npos ? "" : ins->text.substr(space));
  std::vector<std::string> t = split(opcode, '.');
  if (t.size() >= 5 && t[0] == "ldmatrix" && t[1] == "sync" && t[2] == "aligned" && t[3] == "m8n8") {
    std::size_t i = 4;
    if (t[i] != "x1" && t[i] != "x2" && t[i] != "x4") return nullptr;
    ins->matrices = t[i++][1] - '0';
    if (i < t.size() && t[i] == "trans") ins->trans = true, ++i;
    if (i < t.size() && (t[i] == "shared" || t[i] == "shared::cta"))
      ++i;
    else
      return nullptr;
    if (i + 1 != t.size() || t[i] != "b16") return nullptr;
    ins->kind = Instruction::kLdmatrix;
    if (ops.size() != 2 || !group(ops[0], static_cast<std::size_t>(ins->matrices), &ins->d)) {
      *why = "expected {%d...}, [%a]";
      return nullptr;
    }
    const std::string addr = trim(ops[1]);
    if (addr.size() < 3 || addr.front() != '[' || addr.back() != ']') {
      *why = "expected a [%n] address";
      return nullptr;
    }
    const std::string inner = addr.substr(1, addr.size() - 2);
    const std::size_t plus = inner.find('+');
    ins->address = operandNumber(inner.substr(0, plus));
    if (plus != std::string::npos) ins->address_offset = std::stoll(trim(inner.substr(plus + 1)));
    if (ins->address < 0) {
      *why = "expected a [%n] address";
      return nullptr;
    }
    return ins;
  }
  if (opcode == "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32") {
    ins->kind = Instruction::kMma;
    if (ops.size() != 4 || !group(ops[0], 4, &ins->d) || !group(ops[1], 4, &ins->a) || !group(ops[2], 2, &ins->b) ||
        !group(ops[3], 4, &ins->c)) {
      *why = "expected {d0..d3}, {a0..a3}, {b0, b1}, {c0..c3}";
      return nullptr;
    }
    return ins;
  }
  return nullptr;
}

const Instruction& lookup(const char* text) {
  // A kernel executes a handful of distinct statements millions of times: a few pointers compared first.
  struct Recent {
    const char* text = nullptr;
    const Instruction* ins = nullptr;
  };
  thread_local Recent recent[4];
  thread_local unsigned next = 0;
  for (const Recent& r : recent)
    if (r.text == text) return *r.ins;
  thread_local std::unordered_map<const char*, std::unique_ptr<Instruction>> cache;
  auto it = cache.find(text);
  if (it != cache.end()) {
    recent[next++ % 4] = Recent{text, it->second.get()};
    return *it->second;
  }
  std::string why;
  std::unique_ptr<Instruction> ins = parse(text, &why);
  if (ins == nullptr)
    deviceFail(cudaErrorIllegalInstruction,
               "inline PTX \"%s\" is not interpreted by the CPU backend%s%s (it knows %s; add what is needed to "
               "plugins/cpu_backend/src/ptx.cpp)",
               trim(text).c_str(), why.empty() ? "" : ": ", why.c_str(), kKnown);
  return *cache.emplace(text, std::move(ins)).first->second;
}

struct Operands {
  // Outputs, then inputs: asm's numbering. Pointers into the statement's operand lists (alive for the whole
  // call), no copies: this runs for every lane of every instruction.
  static constexpr std::size_t kMax = 32;
  const Operand* all_[kMax];
  std::size_t count = 0;

  void add(std::initializer_list<Operand> list) {
    for (const Operand& o : list) {
      if (count == kMax)
        deviceFail(cudaErrorIllegalInstruction, "an inline-PTX statement with over %zu operands", kMax);
      all_[count++] = &o;
    }
  }
  std::size_t size() const { return count; }

  const Operand& at(const Instruction& ins, int n, char constraint, unsigned size) const {
    if (n < 0 || n >= static_cast<int>(count))
      deviceFail(cudaErrorIllegalInstruction, "\"%s\": operand %%%d does not exist (%zu given)", ins.text.c_str(), n,
                 count);
    const Operand& o = *all_[static_cast<std::size_t>(n)];
    if (o.constraint != constraint || o.size != size)
      deviceFail(cudaErrorIllegalInstruction, "\"%s\": operand %%%d is \"%c\" of %u bytes, expected \"%c\" of %u",
                 ins.text.c_str(), n, o.constraint, o.size, constraint, size);
    return o;
  }
  template <typename T>
  T read(const Instruction& ins, int n, char constraint) const {
    const Operand& o = at(ins, n, constraint, sizeof(T));
    if (!o.read)
      deviceFail(cudaErrorIllegalInstruction, "\"%s\": operand %%%d is read but write-only (use \"+\")",
                 ins.text.c_str(), n);
    T v;
    std::memcpy(&v, o.value, sizeof v);
    return v;
  }
  template <typename T>
  void write(const Instruction& ins, int n, char constraint, T v) const {
    const Operand& o = at(ins, n, constraint, sizeof(T));
    if (!o.write)
      deviceFail(cudaErrorIllegalInstruction, "\"%s\": operand %%%d is written but an input", ins.text.c_str(), n);
    std::memcpy(o.target, &v, sizeof v);
  }
};

float half(uint32_t reg, int which) { return halfBitsToFloat(static_cast<uint16_t>(reg >> (16 * which))); }

// ldmatrix: matrix q's eight row addresses come from lanes 8q..8q+7. Without .trans, lane l receives in its
// register q the two halves at row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 of matrix q; with .trans, the
// halves at rows 2 (l % 4) and 2 (l % 4) + 1, column l / 4.
void combineLdmatrix(const void* ctx, const unsigned char (*in)[48], unsigned char (*out)[16], uint32_t lanes) {
  const auto& ins = *static_cast<const Instruction*>(ctx);
  if (lanes != ~0u) deviceFail(cudaErrorLaunchFailure, "\"%s\" needs all 32 lanes", ins.text.c_str());
  g_ldmatrix.fetch_add(1, std::memory_order_relaxed);
  const char* rows[32];
  for (int l = 0; l < 8 * ins.matrices; ++l) {
    std::memcpy(&rows[l], in[l], sizeof(const char*));
    if (reinterpret_cast<uintptr_t>(rows[l]) % 16 != 0)
      deviceFail(cudaErrorMisalignedAddress, "\"%s\": lane %d's row address %p is not 16-byte aligned",
                 ins.text.c_str(), l, static_cast<const void*>(rows[l]));
  }
  for (int l = 0; l < 32; ++l)
    for (int q = 0; q < ins.matrices; ++q) {
      uint16_t h[2];
      for (int e = 0; e < 2; ++e) {
        const int r = ins.trans ? 2 * (l % 4) + e : l / 4;
        const int c = ins.trans ? l / 4 : 2 * (l % 4) + e;
        std::memcpy(&h[e], rows[8 * q + r] + 2 * c, 2);
      }
      const uint32_t reg = uint32_t{h[0]} | (uint32_t{h[1]} << 16);
      std::memcpy(out[l] + 4 * q, &reg, 4);
    }
}

// mma.m16n8k16, f16 A (row) and B (col), f32 C and D. With g = lane / 4 and t = lane % 4, a lane holds
// A rows g and g + 8 at columns 2t, 2t+1 (a0: row g, a1: row g + 8) and 2t+8, 2t+9 (a2, a3); B column g at
// rows 2t, 2t+1 (b0) and 2t+8, 2t+9 (b1); C and D rows g (c0, c1) and g + 8 (c2, c3) at columns 2t, 2t+1.
// The lower half of a register is the lower column (A) or row (B). Products are exact; the sum is taken in
// double and rounded once (a tensor core's own accumulation order and rounding are for a GPU to show).
struct MmaIn {
  uint32_t a[4], b[2];
  float c[4];
};
void combineMma(const void* ctx, const unsigned char (*in)[48], unsigned char (*out)[16], uint32_t lanes) {
  const auto& ins = *static_cast<const Instruction*>(ctx);
  if (lanes != ~0u) deviceFail(cudaErrorLaunchFailure, "\"%s\" needs all 32 lanes", ins.text.c_str());
  g_mma.fetch_add(1, std::memory_order_relaxed);
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    MmaIn v;
    std::memcpy(&v, in[l], sizeof v);
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 2; ++e) {
      A[g][2 * t + e] = half(v.a[0], e);
      A[g + 8][2 * t + e] = half(v.a[1], e);
      A[g][2 * t + 8 + e] = half(v.a[2], e);
      A[g + 8][2 * t + 8 + e] = half(v.a[3], e);
      B[2 * t + e][g] = half(v.b[0], e);
      B[2 * t + 8 + e][g] = half(v.b[1], e);
      C[g][2 * t + e] = v.c[e];
      C[g + 8][2 * t + e] = v.c[2 + e];
    }
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    float d[4];
    for (int e = 0; e < 4; ++e) {
      const int row = g + 8 * (e / 2), col = 2 * t + (e % 2);
      double sum = C[row][col];
      for (int k = 0; k < 16; ++k) sum += static_cast<double>(A[row][k]) * B[k][col];
      d[e] = static_cast<float>(sum);
    }
    std::memcpy(out[l], d, sizeof d);
  }
}

}  // namespace

InstructionCounts counts() {
  return InstructionCounts{g_mma.load(std::memory_order_relaxed), g_ldmatrix.load(std::memory_order_relaxed)};
}

void resetCounts() {
  g_mma.store(0, std::memory_order_relaxed);
  g_ldmatrix.store(0, std::memory_order_relaxed);
}

void execute(const char* text, std::initializer_list<Operand> outputs, std::initializer_list<Operand> inputs) {
  const Instruction& ins = lookup(text);
  Operands ops;
  ops.add(outputs);
  ops.add(inputs);
  unsigned char result[16];
  if (ins.kind == Instruction::kLdmatrix) {
    if (ins.address >= static_cast<int>(ops.size()))
      deviceFail(cudaErrorIllegalInstruction, "\"%s\": operand %%%d does not exist (%zu given)", ins.text.c_str(),
                 ins.address, ops.size());
    int64_t offset;
    if (ops.all_[static_cast<std::size_t>(ins.address)]->size == 4) {
      offset = ops.read<int32_t>(ins, ins.address, 'r');  // a 32-bit shared-window address: sign-extended
    } else {
      offset = ops.read<int64_t>(ins, ins.address, 'l');
    }
    const char* row = static_cast<const char*>(sharedPointer(offset + ins.address_offset));
    warpCollective(text, ~0u, &row, sizeof row, result, 4 * ins.matrices, combineLdmatrix, &ins);
    for (int q = 0; q < ins.matrices; ++q) {
      uint32_t reg;
      std::memcpy(&reg, result + 4 * q, 4);
      ops.write<uint32_t>(ins, ins.d[q], 'r', reg);
    }
    return;
  }
  MmaIn v;
  for (int i = 0; i < 4; ++i) v.a[i] = ops.read<uint32_t>(ins, ins.a[i], 'r');
  for (int i = 0; i < 2; ++i) v.b[i] = ops.read<uint32_t>(ins, ins.b[i], 'r');
  for (int i = 0; i < 4; ++i) v.c[i] = ops.read<float>(ins, ins.c[i], 'f');
  warpCollective(text, ~0u, &v, sizeof v, result, 16, combineMma, &ins);
  for (int i = 0; i < 4; ++i) {
    float d;
    std::memcpy(&d, result + 4 * i, 4);
    ops.write<float>(ins, ins.d[i], 'f', d);
  }
}

}  // namespace ptx
}  // namespace cpu
}  // namespace sparsetrt
