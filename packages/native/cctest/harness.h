// A tiny test harness: TEST(name) registers a case, CHECK records a failure and returns from
// the case. main() runs every case and ends with one line `cctest: N passed, M failed`.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace cctest {

struct Case {
  const char* name;
  void (*run)(bool& failed);
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

struct Register {
  Register(const char* name, void (*run)(bool&)) { registry().push_back(Case{name, run}); }
};

}  // namespace cctest

#define TEST(name)                                              \
  static void name(bool& cctest_failed);                        \
  static ::cctest::Register name##_register(#name, &name);      \
  static void name(bool& cctest_failed)

#define CHECK(condition)                                                              \
  do {                                                                                \
    if (!(condition)) {                                                               \
      std::fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #condition); \
      cctest_failed = true;                                                           \
      return;                                                                         \
    }                                                                                 \
  } while (0)
