// What both backends share: the list of operations in flight, the completion path (post, then
// release the buffer, then forget the op) and the wait that drain() and teardown rely on.
//
// Locking: `mutex_` guards the list, every Op's bookkeeping fields while it is linked, and the
// counters. complete() posts to the port with no lock of ours held (the port takes its own), so
// the lock order is never port -> backend. completeMany() does the same for a batch with one
// Port::postMany per run of ops on the same port and one acquisition of mutex_ for all of them.
#pragma once

#include <condition_variable>
#include <mutex>

#include "backend.h"

namespace iocp {
namespace io {

class TrackedBackend : public Backend {
 public:
  BackendStats stats() const override;

 protected:
  // Links `op` into the in-flight list and counts it as submitted. mutex_ is held.
  void trackLocked(Op* op);

  // Ends `op`: `result` >= 0 is the bytes transferred, < 0 a negated errno. Posts the packet,
  // releases the keeper, unlinks and deletes the op, and wakes drain waiters. Takes mutex_ itself:
  // call it with no lock held.
  void complete(Op* op, long result);

  // complete() for ops[0..count), results[i] for ops[i]: the packets of consecutive ops on one
  // port are posted in one Port::postMany (in order), the ops leave the list under one lock and
  // go back to the OpPool in one. Call it with no lock held. Never throws.
  void completeMany(Op* const* ops, const long* results, size_t count);

  // Blocks until no op matching (port, owner, userFd) (see matches) is in flight. Takes mutex_.
  void waitNone(const Port* port, const void* owner, int userFd);

  static bool matches(const Op* op, const Port* port, const void* owner, int userFd) {
    return (port == nullptr || op->port.get() == port) && (owner == nullptr || op->owner == owner) &&
           (userFd == -1 || op->userFd == userFd);
  }

  mutable std::mutex mutex_;
  Op* head_ = nullptr;  // in-flight ops, newest first (guarded by mutex_)
  std::condition_variable idle_;  // signalled when an op leaves the list while someone drains
  unsigned draining_ = 0;         // threads in waitNone (guarded by mutex_)
  uint64_t submitted_ = 0, completed_ = 0, failed_ = 0, cancelled_ = 0, inFlight_ = 0;
};

}  // namespace io
}  // namespace iocp
