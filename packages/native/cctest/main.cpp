#include <cstdio>
#include <cstring>

#include "harness.h"

int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const cctest::Case& c : cctest::registry()) {
    if (only != nullptr && std::strstr(c.name, only) == nullptr) continue;
    bool caseFailed = false;
    c.run(caseFailed);
    std::printf("%s %s\n", caseFailed ? "FAIL" : "ok  ", c.name);
    std::fflush(stdout);
    (caseFailed ? failed : passed) += 1;
  }
  std::printf("cctest: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
