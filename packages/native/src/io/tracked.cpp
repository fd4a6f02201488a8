#include "tracked.h"

#include <cerrno>
#include <new>

#include "op_pool.h"

namespace iocp {
namespace io {

namespace {

Packet packetOf(const Op& op, long result) {
  Packet packet = op.packet;
  if (result >= 0) {
    packet.bytes = static_cast<uint32_t>(result);
  } else {
    packet.flags |= kFlagIoError;
    packet.bytes = static_cast<uint32_t>(-result);
  }
  return packet;
}

// Posts `packet` alone; the result to count: -ENOMEM when the queue could not grow (nothing can
// carry this completion), else `result`. A closed port drops the packet: its close() already
// drained this port's operations (the binding cancels and waits for them first), so only a close
// racing from elsewhere (process exit) gets here, and nobody can dequeue from a closed port.
long postOne(Port& port, const Packet& packet, long result) {
  try {
    port.post(packet);
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  return result;
}

constexpr size_t kPostRun = 64;  // packets posted per postMany call

}  // namespace

void TrackedBackend::trackLocked(Op* op) {
  op->prev = nullptr;
  op->next = head_;
  if (head_ != nullptr) head_->prev = op;
  head_ = op;
  ++submitted_;
  ++inFlight_;
}

void TrackedBackend::complete(Op* op, long result) { completeMany(&op, &result, 1); }

void TrackedBackend::completeMany(Op* const* ops, const long* results, size_t count) {
  if (count == 0) return;
  // What each op counts as (bad_alloc turns a success into ENOMEM): at most kPostRun at a time.
  long counted[kPostRun];
  for (size_t start = 0; start < count; start += kPostRun) {
    const size_t n = count - start < kPostRun ? count - start : kPostRun;
    Op* const* batch = ops + start;
    Packet packets[kPostRun];
    for (size_t i = 0; i < n; ++i) {
      packets[i] = packetOf(*batch[i], results[start + i]);
      counted[i] = results[start + i];
    }
    // Runs of consecutive ops on one port go in one postMany (one lock of the port), in order.
    for (size_t i = 0; i < n;) {
      Port& port = *batch[i]->port;
      size_t end = i + 1;
      while (end < n && batch[end]->port.get() == &port) ++end;
      const Port::PostManyResult posted = port.postMany(packets + i, end - i);
      // Full: the queue could not grow (an I/O port has no capacity); the rest goes one by one,
      // so that each packet that cannot be carried is counted as ENOMEM. Closed: dropped.
      if (posted.status == Status::Full) {
        for (size_t k = i + posted.posted; k < end; ++k) counted[k] = postOne(port, packets[k], counted[k]);
      }
      i = end;
    }
    for (size_t i = 0; i < n; ++i) {
      Op* op = batch[i];
      if (op->keeper != nullptr) op->keeper->release();
      // The duplicate fd goes before the op leaves the list, so that once drain() returns for a
      // dissociated fd or a closed port, its duplicate is closed too (not just about to be).
      op->fdHolder.reset();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 0; i < n; ++i) {
        Op* op = batch[i];
        if (op->prev != nullptr) op->prev->next = op->next; else head_ = op->next;
        if (op->next != nullptr) op->next->prev = op->prev;
        --inFlight_;
        ++completed_;
        if (counted[i] < 0) ++failed_;
        if (counted[i] == -ECANCELED) ++cancelled_;
      }
      if (draining_ != 0) idle_.notify_all();
    }
    // Drops each op's reference to its port, possibly the last one.
    OpPool::instance().give(batch, n);
  }
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
