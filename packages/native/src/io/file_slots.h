// Slots of the io_uring rings' registered-file tables (IORING_REGISTER_FILES): each association's
// duplicate fd takes one slot number, the same in every ring, for as long as it is open. A ring
// registers the file in that slot at the first operation that names it there, and submits with
// IOSQE_FIXED_FILE, so the kernel takes no reference on the file per operation (fget/fput on a
// struct file that two cores share: its count bounced between them on every read). Plain C++.
//
// A registered slot keeps its file open. When the duplicate closes (its association ended and its
// last operation completed), give() clears the slot in every ring before the number can be taken
// again, so a slot never names a file that is gone; each registration also records the id of the
// duplicate it was made for, and a ring re-registers a slot whose id is not the operation's.
//
// Locking: `mutex_` guards the free list and the list of rings. give() calls each ring's
// forget() with mutex_ held, and forget() takes that ring's submit lock: the order is mutex_,
// then a ring's submit lock; a ring never calls in here while it holds its submit lock.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace iocp {
namespace io {

// A table that registers files by slot (an io_uring ring).
class SlotTable {
 public:
  virtual ~SlotTable() = default;
  // Clears `slot` if it holds the file registered for `id`. Never throws.
  virtual void forget(int slot, uint64_t id) noexcept = 0;
};

class FileSlots {
 public:
  // Slots per ring: associations beyond this many at once run on plain fds.
  static constexpr int kSlots = 512;

  // The process's slots (never destroyed: a duplicate may close at exit).
  static FileSlots& instance();

  // A free slot and a new id for a file about to be registered, or -1 (every slot is taken, or
  // no memory): the file then runs on its plain fd. Thread-safe.
  int take(uint64_t* id) noexcept;

  // The file registered for `id` in `slot` is closing: clears it in every ring, then frees the
  // slot. Thread-safe; takes each ring's submit lock (do not hold one).
  void give(int slot, uint64_t id) noexcept;

  // A ring's table joins (after it is set up) or leaves (before it goes). Thread-safe.
  void attach(SlotTable* table);
  void detach(SlotTable* table) noexcept;

 private:
  std::mutex mutex_;
  std::vector<int> free_;            // freed slots (guarded by mutex_)
  int next_ = 0;                     // slots never taken start here (guarded by mutex_)
  uint64_t lastId_ = 0;              // guarded by mutex_
  std::vector<SlotTable*> tables_;   // guarded by mutex_
};

}  // namespace io
}  // namespace iocp
