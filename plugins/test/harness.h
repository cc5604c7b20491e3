// A tiny test harness (no external framework: CI must not download anything). CHECK records a failure
// and goes on, so one run lists every broken expectation; main() returns non-zero if any failed.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace sparsetrt_test {

inline int& failures() {
  static int n = 0;
  return n;
}

inline std::vector<std::pair<std::string, std::function<void()>>>& registry() {
  static std::vector<std::pair<std::string, std::function<void()>>> r;
  return r;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().emplace_back(name, std::move(fn)); }
};

inline int runAll() {
  for (auto& [name, fn] : registry()) {
    const int before = failures();
    try {
      fn();
    } catch (const std::exception& e) {
      std::printf("  unexpected exception: %s\n", e.what());
      ++failures();
    }
    std::printf("%s %s\n", failures() == before ? "[ ok ]" : "[FAIL]", name.c_str());
  }
  std::printf("%zu tests, %d failed checks\n", registry().size(), failures());
  return failures() == 0 ? 0 : 1;
}

}  // namespace sparsetrt_test

#define SPT_CONCAT2(a, b) a##b
#define SPT_CONCAT(a, b) SPT_CONCAT2(a, b)
#define TEST(name)                                                            \
  static void name();                                                         \
  static ::sparsetrt_test::Register SPT_CONCAT(register_, name)(#name, name); \
  static void name()

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++::sparsetrt_test::failures();                                        \
    }                                                                        \
  } while (0)

// Expects `expr` to throw ExceptionType whose what() contains every one of the given substrings.
#define CHECK_THROWS_WITH(ExceptionType, expr, ...)                                                    \
  do {                                                                                                 \
    bool thrown_ = false;                                                                              \
    try {                                                                                              \
      (void)(expr);                                                                                    \
    } catch (const ExceptionType& e_) {                                                                \
      thrown_ = true;                                                                                  \
      for (const char* part_ : {__VA_ARGS__}) {                                                        \
        if (std::string(e_.what()).find(part_) == std::string::npos) {                                 \
          std::printf("  %s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, e_.what(), part_); \
          ++::sparsetrt_test::failures();                                                              \
        }                                                                                              \
      }                                                                                                \
    }                                                                                                  \
    if (!thrown_) {                                                                                    \
      std::printf("  %s:%d: %s did not throw\n", __FILE__, __LINE__, #expr);                           \
      ++::sparsetrt_test::failures();                                                                  \
    }                                                                                                  \
  } while (0)

#define TEST_MAIN() \
  int main() { return ::sparsetrt_test::runAll(); }
