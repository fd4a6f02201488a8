// Recycled Op records, so that an operation costs no new/delete: the binding takes a batch's ops
// in one lock acquisition, and a backend gives a batch of finished ops back in one. Plain C++.
//
// Locking: `mutex_` guards the free list and its count; an op is cleared (its port and fd
// references dropped) before it is given back, with no lock held.
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

  static constexpr size_t kKeep = 4096;

 private:
  std::mutex mutex_;
  Op* free_ = nullptr;  // linked through Op::next (guarded by mutex_)
  size_t count_ = 0;    // guarded by mutex_
};

}  // namespace io
}  // namespace iocp
