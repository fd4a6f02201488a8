// SpinPolicy: a port stops spinning when spinning stops paying, probes now and then, and never
// lets more threads spin than the cores it leaves for others.
#include <thread>

#include "../src/port/spin_policy.h"
#include "harness.h"

using iocp::SpinPolicy;

TEST(spin_policy_stops_spinning_when_it_does_not_pay_and_probes_again) {
  if (iocp::cpuCount() < 2 || iocp::machineOversubscribed()) return;  // nothing to decide here
  SpinPolicy policy(20000);
  // Misses drive the score to zero.
  for (int i = 0; i < SpinPolicy::kScoreMax; ++i) {
    if (policy.begin() != 0) policy.record(false);
  }
  int spun = 0;
  for (uint32_t i = 0; i < SpinPolicy::kProbeEvery * 2; ++i) {
    if (policy.begin() != 0) {
      ++spun;
      policy.record(false);
    }
  }
  // Only the probes spun (unless the machine turned busy meanwhile: then none did).
  CHECK(spun <= 2);
  // A probe that pays brings spinning back.
  for (uint32_t i = 0; i < SpinPolicy::kProbeEvery * 4; ++i) {
    if (policy.begin() != 0) policy.record(true);
  }
  if (!iocp::machineOversubscribed()) {
    const uint32_t spin = policy.begin();
    if (spin != 0) policy.record(true);
    CHECK(spin != 0);
  }
}

TEST(spin_policy_caps_spinners_below_the_core_count) {
  if (iocp::cpuCount() < 2 || iocp::machineOversubscribed()) return;
  SpinPolicy policy(20000);
  unsigned granted = 0;
  for (unsigned i = 0; i < iocp::cpuCount() + 2; ++i) {
    if (policy.begin() != 0) ++granted;
  }
  CHECK(granted <= iocp::cpuCount() - 1);
  for (unsigned i = 0; i < granted; ++i) policy.record(true);
}

TEST(spin_policy_never_spins_with_zero_budget) {
  SpinPolicy policy(0);
  for (int i = 0; i < 100; ++i) CHECK(policy.begin() == 0);
}
