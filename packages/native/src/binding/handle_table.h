// The process-wide table that lets any thread reopen a port from its handle ({ id, pin }).
//
// Lifetime rule: a port lives while any wrapper (in any thread), any pin, or any thread's
// association holds a std::shared_ptr to it. The table itself only holds weak references, plus
// one strong reference per pin: reading `port.handle` creates a pin, and the first open of that
// handle (or close()) releases it. So a handle sent to another thread before the sender drops
// its wrapper still opens there; a handle that is never opened keeps the port until close().
// Entries of ports that have died (dropped without close()) are swept by the next add() once
// they are at least half the table: a dying port only bumps an atomic count (portDied), so a
// port's destructor never needs the table's lock, and the table stays within about twice the
// live ports.
//
// Ids and pins are random 53-bit numbers (exact in a JS double), never reused: a handle is a
// name, not a capability (threads of one process share one trust domain), but one that cannot
// be guessed, so that a stale or mistyped handle fails closed instead of opening another port.
//
// Locking: `mutex_` guards everything here. It is never held while a port's mutex is taken.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../port/port.h"

namespace iocp {

class HandleTable {
 public:
  static HandleTable& instance();

  // Registers a new port; returns its id (random, never reused).
  uint64_t add(const std::shared_ptr<Port>& port);
  // A new pin on a registered port; 0 if the id is closed or gone.
  uint64_t pin(uint64_t id);
  // The port for a handle, releasing that handle's pin; nullptr if closed or gone.
  std::shared_ptr<Port> open(uint64_t id, uint64_t pin);
  // The port was closed: forget it and its pins, so that its handles no longer open.
  void remove(uint64_t id);
  // Every port still alive (for the exit hook and thread teardown).
  std::vector<std::shared_ptr<Port>> live();
  // Entries in the table (live ports, and dead ones not yet swept).
  size_t size();
  // A registered port was destroyed (called from its deleter; lock-free).
  void portDied() noexcept { dead_.fetch_add(1, std::memory_order_relaxed); }

 private:
  struct Entry {
    std::weak_ptr<Port> port;
    std::unordered_map<uint64_t, std::shared_ptr<Port>> pins;
  };
  std::mutex mutex_;
  uint64_t randomId();  // mutex_ held
  void sweepLocked();
  std::unordered_map<uint64_t, Entry> entries_;
  std::atomic<size_t> dead_{0};
  uint64_t state_[4] = {0, 0, 0, 0};  // xoshiro256** state, seeded from std::random_device
};

}  // namespace iocp
