#include "file_slots.h"

#include <algorithm>
#include <new>

namespace iocp {
namespace io {

FileSlots& FileSlots::instance() {
  static FileSlots* slots = new FileSlots;
  return *slots;
}

int FileSlots::take(uint64_t* id) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  int slot = -1;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else if (next_ < kSlots) {
    slot = next_++;
  } else {
    return -1;
  }
  *id = ++lastId_;
  return slot;
}

void FileSlots::give(int slot, uint64_t id) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  for (SlotTable* table : tables_) table->forget(slot, id);
  try {
    free_.push_back(slot);
  } catch (const std::bad_alloc&) {
    // The slot is lost (cleared everywhere, never reused): its files run on plain fds.
  }
}

void FileSlots::attach(SlotTable* table) {
  std::lock_guard<std::mutex> lock(mutex_);
  tables_.push_back(table);
}

void FileSlots::detach(SlotTable* table) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  tables_.erase(std::remove(tables_.begin(), tables_.end(), table), tables_.end());
}

}  // namespace io
}  // namespace iocp
