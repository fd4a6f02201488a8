// Payloads in flight, by token. A packet in the shared ring cannot carry a pointer that JS hands
// back (a forged or stale value would crash the process), so it carries a token: a slot index
// and that slot's generation. Taking a token that is not live returns nullptr.
//
// Locking: `mutex_` guards everything; it is a leaf lock (nothing else is taken under it), and
// it may be taken with a port's lock held.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "packet.h"

namespace iocp {

class PayloadTable {
 public:
  static PayloadTable& instance();

  // Registers `payload`; the token is never 0. Throws std::bad_alloc (nothing registered).
  uint64_t put(Payload* payload);
  // Reserves room so that the next `count` puts cannot throw.
  void reserve(size_t count);
  // The payload of a live token, removed from the table; nullptr if the token is not live.
  // Never allocates. Thread-safe.
  Payload* take(uint64_t token) noexcept;
  // Live payloads (for tests).
  size_t live() const;

 private:
  struct Slot {
    Payload* payload = nullptr;
    uint32_t generation = 1;
  };
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
};

}  // namespace iocp
