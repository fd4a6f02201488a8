#include "tracked.h"

#include <cerrno>
#include <new>

namespace iocp {
namespace io {

void TrackedBackend::trackLocked(Op* op) {
  op->prev = nullptr;
  op->next = head_;
  if (head_ != nullptr) head_->prev = op;
  head_ = op;
  ++submitted_;
  ++inFlight_;
}

void TrackedBackend::complete(Op* op, long result) {
  Packet packet = op->packet;
  if (result >= 0) {
    packet.bytes = static_cast<uint32_t>(result);
  } else {
    packet.flags |= kFlagIoError;
    packet.bytes = static_cast<uint32_t>(-result);
  }
  // A closed port drops the packet: its close() already drained this port's operations (the
  // binding cancels and waits for them first), so only a close racing from elsewhere (process
  // exit) gets here, and nobody can dequeue from a closed port anyway.
  try {
    op->port->post(packet);
  } catch (const std::bad_alloc&) {
    // The queue could not grow: nothing can carry this completion. Counted as failed.
    result = -ENOMEM;
  }
  if (op->keeper != nullptr) op->keeper->release();
  // The duplicate fd goes before the op leaves the list, so that once drain() returns for a
  // dissociated fd or a closed port, its duplicate is closed too (not just about to be).
  op->fdHolder.reset();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (op->prev != nullptr) op->prev->next = op->next; else head_ = op->next;
    if (op->next != nullptr) op->next->prev = op->prev;
    --inFlight_;
    ++completed_;
    if (result < 0) ++failed_;
    if (result == -ECANCELED) ++cancelled_;
    if (draining_ != 0) idle_.notify_all();
  }
  delete op;  // drops the op's reference to the port, possibly the last one
}

void TrackedBackend::waitNone(const Port* port, const void* owner, int userFd) {
  std::unique_lock<std::mutex> lock(mutex_);
  ++draining_;
  for (;;) {
    bool any = false;
    for (Op* op = head_; op != nullptr; op = op->next) {
      if (matches(op, port, owner, userFd)) {
        any = true;
        break;
      }
    }
    if (!any) break;
    idle_.wait(lock);
  }
  --draining_;
}

BackendStats TrackedBackend::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return BackendStats{submitted_, completed_, failed_, cancelled_, inFlight_};
}

}  // namespace io
}  // namespace iocp
