#include "spin_policy.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace iocp {

namespace {

std::atomic<uint32_t> gSpinners{0};  // waiters of every port spinning right now

int64_t nowMs() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Linux: the fourth field of /proc/loadavg is "runnable/total" scheduling entities now.
int runnableNow() noexcept {
#if defined(__linux__)
  FILE* file = std::fopen("/proc/loadavg", "r");
  if (file == nullptr) return -1;
  double a, b, c;
  int runnable = -1, total = 0;
  if (std::fscanf(file, "%lf %lf %lf %d/%d", &a, &b, &c, &runnable, &total) != 5) runnable = -1;
  std::fclose(file);
  return runnable;
#else
  return -1;
#endif
}

}  // namespace

unsigned cpuCount() noexcept {
  static const unsigned count = [] {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1u : n;
  }();
  return count;
}

bool machineOversubscribed() noexcept {
  static std::atomic<int64_t> sampledAt{0};
  static std::atomic<bool> oversubscribed{false};
  const int64_t now = nowMs();
  int64_t last = sampledAt.load(std::memory_order_relaxed);
  if (now - last >= SpinPolicy::kSampleMs &&
      sampledAt.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    const int runnable = runnableNow();
    // The sampling thread itself is runnable; the others outnumber the cores when there are
    // more of them than cores (then a spinner would take a core from a thread with work).
    oversubscribed.store(runnable > 0 && static_cast<unsigned>(runnable - 1) > cpuCount(),
                         std::memory_order_relaxed);
  }
  return oversubscribed.load(std::memory_order_relaxed);
}

SpinPolicy::SpinPolicy(uint32_t spinNs) noexcept : spinNs_(cpuCount() > 1 ? spinNs : 0) {}

uint32_t SpinPolicy::begin() noexcept {
  if (spinNs_ == 0) return 0;
  if (score_.load(std::memory_order_relaxed) <= 0 &&
      skipped_.fetch_add(1, std::memory_order_relaxed) % kProbeEvery != kProbeEvery - 1) {
    return 0;
  }
  if (machineOversubscribed()) return 0;
  const uint32_t limit = cpuCount() - 1;
  uint32_t spinning = gSpinners.load(std::memory_order_relaxed);
  do {
    if (spinning >= limit) return 0;
  } while (!gSpinners.compare_exchange_weak(spinning, spinning + 1, std::memory_order_relaxed));
  return spinNs_;
}

void SpinPolicy::record(bool paidOff) noexcept {
  gSpinners.fetch_sub(1, std::memory_order_relaxed);
  int score = score_.load(std::memory_order_relaxed);
  const int next = paidOff ? (score >= kScoreMax ? kScoreMax : score + 1) : (score <= 2 ? 0 : score - 2);
  score_.compare_exchange_strong(score, next, std::memory_order_relaxed);
}

}  // namespace iocp
