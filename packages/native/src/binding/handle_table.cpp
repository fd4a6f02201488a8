#include "handle_table.h"

#include <random>

namespace iocp {

namespace {

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

uint64_t HandleTable::randomId() {
  if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) {
    std::random_device device;
    for (uint64_t& word : state_) word = (uint64_t(device()) << 32) ^ device();
    state_[0] |= 1;
  }
  for (;;) {
    // xoshiro256**: fast, and seeded from the OS; ids must be unguessable, not secret keys.
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    const uint64_t id = result & ((uint64_t(1) << 53) - 1);
    if (id != 0) return id;
  }
}

void HandleTable::sweepLocked() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.port.expired()) it = entries_.erase(it);
    else ++it;
  }
  // Every dead port's entry is gone now (some were erased earlier, by remove, open or live).
  dead_.store(0, std::memory_order_relaxed);
}

size_t HandleTable::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

HandleTable& HandleTable::instance() {
  // Leaked on purpose: worker threads may still reach it while the process exits.
  static HandleTable* table = new HandleTable();
  return *table;
}

uint64_t HandleTable::add(const std::shared_ptr<Port>& port) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t dead = dead_.load(std::memory_order_relaxed);
  if (dead >= 32 && dead * 2 >= entries_.size()) sweepLocked();
  uint64_t id;
  do {
    id = randomId();
  } while (entries_.count(id) != 0);
  entries_[id].port = port;
  return id;
}

uint64_t HandleTable::pin(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = entries_.find(id);
  if (found == entries_.end()) return 0;
  std::shared_ptr<Port> port = found->second.port.lock();
  if (!port) return 0;
  uint64_t pin;
  do {
    pin = randomId();
  } while (found->second.pins.count(pin) != 0);
  found->second.pins.emplace(pin, std::move(port));
  return pin;
}

std::shared_ptr<Port> HandleTable::open(uint64_t id, uint64_t pin) {
  std::shared_ptr<Port> port;
  std::shared_ptr<Port> released;  // destroyed after the lock is dropped
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = entries_.find(id);
  if (found == entries_.end()) return nullptr;
  port = found->second.port.lock();
  if (!port) {
    entries_.erase(found);
    return nullptr;
  }
  auto pinned = found->second.pins.find(pin);
  if (pinned != found->second.pins.end()) {
    released = std::move(pinned->second);
    found->second.pins.erase(pinned);
  }
  return port;
}

void HandleTable::remove(uint64_t id) {
  Entry gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(id);
    if (found == entries_.end()) return;
    gone = std::move(found->second);
    entries_.erase(found);
  }
}

std::vector<std::shared_ptr<Port>> HandleTable::live() {
  std::vector<std::shared_ptr<Port>> ports;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (std::shared_ptr<Port> port = it->second.port.lock()) {
      ports.push_back(std::move(port));
      ++it;
    } else {
      it = entries_.erase(it);
    }
  }
  return ports;
}

}  // namespace iocp
