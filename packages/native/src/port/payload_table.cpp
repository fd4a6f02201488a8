#include "payload_table.h"

namespace iocp {

PayloadTable& PayloadTable::instance() {
  // Leaked on purpose: threads may still post or take while the process exits.
  static PayloadTable* table = new PayloadTable();
  return *table;
}

void PayloadTable::reserve(size_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.size() >= count) return;
  const size_t more = count - free_.size();
  slots_.reserve(slots_.size() + more);
  free_.reserve(free_.size() + more);
}

uint64_t PayloadTable::put(Payload* payload) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    if (slots_.size() >= 0xfffffffeu) throw std::bad_alloc();
    // so that take() never allocates to free this slot (geometric, like the slots themselves)
    if (free_.capacity() < slots_.size() + 1) free_.reserve(2 * (slots_.size() + 1));
    slots_.emplace_back();
    index = static_cast<uint32_t>(slots_.size() - 1);
  }
  Slot& slot = slots_[index];
  slot.payload = payload;
  ++live_;
  return (uint64_t(slot.generation) << 32) | (index + 1);
}

Payload* PayloadTable::take(uint64_t token) noexcept {
  const uint32_t index = static_cast<uint32_t>(token) - 1;
  const uint32_t generation = static_cast<uint32_t>(token >> 32);
  std::lock_guard<std::mutex> lock(mutex_);
  if (static_cast<uint32_t>(token) == 0 || index >= slots_.size()) return nullptr;
  Slot& slot = slots_[index];
  if (slot.generation != generation || slot.payload == nullptr) return nullptr;
  Payload* payload = slot.payload;
  slot.payload = nullptr;
  if (++slot.generation == 0) slot.generation = 1;
  free_.push_back(index);  // capacity reserved by put()
  --live_;
  return payload;
}

size_t PayloadTable::live() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_;
}

}  // namespace iocp
