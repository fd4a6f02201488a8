// Recycled Op records, so that an operation costs no new/delete: the binding takes a batch's ops
// in one lock acquisition, and a backend gives a batch of finished ops back in one. Plain C++.
//
// Each thread keeps up to kLocal ops of its own (a thread_local list, no lock), and goes to the
// shared list only when its own is empty (take) or full (give): a thread that submits and reaps
// its own reads (io_uring's inline reap) reuses its own ops, so two such threads neither share a
// lock per batch nor pass op records between their cores.
//
// Locking: `mutex_` guards the shared free list and its count; a thread's own list is touched by
// that thread only. An op is cleared (its port and fd references dropped) before it is given
// back, with no lock held.
//
// Under AddressSanitizer nothing is kept (every op is deleted and every take allocates), so a
// use after completion is still reported.
#pragma once

#include <cstddef>
#include <mutex>

#include "backend.h"

namespace iocp {
namespace io {

class OpPool {
 public:
  // The process's pool (never destroyed: backend threads may still give ops back at exit).
  static OpPool& instance();

  // Fills out[0..count) with ops in their initial state (as `new Op` makes them). Throws
  // std::bad_alloc with nothing taken. Thread-safe.
  void take(Op** out, size_t count);

  // Clears ops[0..count) (dropping their port and fd references) and keeps them for later takes,
  // up to kKeep of them; the rest are deleted. Each must come from take() or `new Op`, and no
  // backend may still reach it. Never throws. Thread-safe.
  void give(Op* const* ops, size_t count) noexcept;

  static constexpr size_t kKeep = 4096;  // ops on the shared list at most
  static constexpr size_t kLocal = 256;  // ops on a thread's own list at most

  // A thread's own list; given back to the shared one when the thread exits.
  struct Local {
    Op* free = nullptr;  // linked through Op::next
    size_t count = 0;
    ~Local();
  };

 private:
  static Local& local();
  // The shared list's part of take() and give(): `first`..`last` linked, `count` of them.
  size_t takeShared(Op** out, size_t count);
  void giveShared(Op* first, Op* last, size_t count) noexcept;

  std::mutex mutex_;
  Op* free_ = nullptr;  // linked through Op::next (guarded by mutex_)
  size_t count_ = 0;    // guarded by mutex_
};

}  // namespace io
}  // namespace iocp
