// Shared helpers for the engine's tests: gates on observable port state (never sleeps).
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "../src/port/port.h"

namespace cctest {

// Spins (yielding) until `condition` holds. Used as a gate on state the port reports, e.g.
// "three threads are now waiting", so that an interleaving is forced rather than hoped for.
inline void waitUntil(const std::function<bool()>& condition) {
  while (!condition()) std::this_thread::yield();
}

inline void waitForWaiters(iocp::Port& port, uint64_t waiting) {
  waitUntil([&] { return port.stats().waiting == waiting; });
}

inline iocp::Packet packet(uint64_t key, uint64_t overlapped = 0, uint32_t bytes = 0) {
  iocp::Packet p;
  p.key = key;
  p.overlapped = overlapped;
  p.bytes = bytes;
  return p;
}

inline std::shared_ptr<iocp::Port> makePort(uint32_t concurrency, size_t capacity = 0,
                                            uint32_t spinNs = iocp::Port::kDefaultSpinNs,
                                            bool trackHeld = false) {
  return std::make_shared<iocp::Port>(concurrency, capacity, spinNs, trackHeld);
}

}  // namespace cctest
