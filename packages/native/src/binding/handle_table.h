// The process-wide table that lets any thread reopen a port from its handle ({ id, pin }).
//
// Lifetime rule: a port lives while any wrapper (in any thread), any pin, or any thread's
// association holds a std::shared_ptr to it. The table itself only holds weak references, plus
// one strong reference per pin: reading `port.handle` creates a pin, and the first open of that
// handle (or close()) releases it. So a handle sent to another thread before the sender drops
// its wrapper still opens there; a handle that is never opened keeps the port until close().
// Entries of ports that have died are dropped lazily, so a port's destructor never needs the
// table's lock.
//
// Locking: `mutex_` guards everything here. It is never held while a port's mutex is taken.
#pragma once

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

  // Registers a new port; returns its id (ids are never reused).
  uint64_t add(const std::shared_ptr<Port>& port);
  // A new pin on a registered port; 0 if the id is closed or gone.
  uint64_t pin(uint64_t id);
  // The port for a handle, releasing that handle's pin; nullptr if closed or gone.
  std::shared_ptr<Port> open(uint64_t id, uint64_t pin);
  // The port was closed: forget it and its pins, so that its handles no longer open.
  void remove(uint64_t id);
  // Every port still alive (for the exit hook and thread teardown).
  std::vector<std::shared_ptr<Port>> live();

 private:
  struct Entry {
    std::weak_ptr<Port> port;
    std::unordered_map<uint64_t, std::shared_ptr<Port>> pins;
  };
  std::mutex mutex_;
  std::unordered_map<uint64_t, Entry> entries_;
  uint64_t nextId_ = 1;
  uint64_t nextPin_ = 1;
};

}  // namespace iocp
