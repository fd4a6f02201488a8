#include "handle_table.h"

namespace iocp {

HandleTable& HandleTable::instance() {
  // Leaked on purpose: worker threads may still reach it while the process exits.
  static HandleTable* table = new HandleTable();
  return *table;
}

uint64_t HandleTable::add(const std::shared_ptr<Port>& port) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = nextId_++;
  entries_[id].port = port;
  return id;
}

uint64_t HandleTable::pin(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = entries_.find(id);
  if (found == entries_.end()) return 0;
  std::shared_ptr<Port> port = found->second.port.lock();
  if (!port) return 0;
  const uint64_t pin = nextPin_++;
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
