// When a blocking get may spin before it parks. Spinning saves the sleep and the wake-up (a few
// microseconds each) when a packet comes soon, and burns a core when none does; on a machine
// where runnable threads outnumber cores it also takes the core from the very thread that would
// post. So a waiter spins only when all of these hold:
//
//   - the port's spinning has been paying off: a score per port goes up when a spin ends with a
//     packet and down (faster) when it ends in a park; at zero the port stops spinning, and
//     every kProbeEvery-th wait spins anyway to notice when it would pay again;
//   - fewer threads of this process are spinning than there are cores, less one;
//   - the machine's runnable threads (Linux: /proc/loadavg's fourth field, sampled at most every
//     kSampleMs) do not outnumber its cores.
//
// Thread-safe. The score is a hint: races on it only change how long somebody spins.
#pragma once

#include <atomic>
#include <cstdint>

namespace iocp {

class SpinPolicy {
 public:
  explicit SpinPolicy(uint32_t spinNs) noexcept;

  // How long the calling waiter may spin now (0: park at once). A nonzero answer must be
  // followed by exactly one record() once the spin has ended.
  uint32_t begin() noexcept;
  void record(bool paidOff) noexcept;

  static constexpr int kScoreMax = 16;
  static constexpr uint32_t kProbeEvery = 64;
  static constexpr int kSampleMs = 20;

 private:
  const uint32_t spinNs_;
  std::atomic<int> score_{kScoreMax / 2};
  std::atomic<uint32_t> skipped_{0};
};

// Whether the machine looks oversubscribed (runnable threads > cores), sampled; false when the
// platform cannot tell.
bool machineOversubscribed() noexcept;
unsigned cpuCount() noexcept;

}  // namespace iocp
