// See port.h for the model and the locking rules. Functions named *Locked run with mutex_ held.
#include "port.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

namespace iocp {

namespace {

HeldPacket heldOf(const Packet& packet) {
  return HeldPacket{packet.key, packet.overlapped, packet.bytes, packet.flags};
}

}  // namespace

namespace {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls the waiter's `released` flag (load A of port.h) for up to spinNs nanoseconds: busy for
// the first kBusySpinNs, then yielding the CPU between polls, so that a spinning consumer does
// not starve the very producer it waits for when threads outnumber cores.
constexpr uint32_t kBusySpinNs = 2000;

bool spinUntilReleased(const Waiter& waiter, uint32_t spinNs) {
  const auto start = std::chrono::steady_clock::now();
  const auto busyUntil = start + std::chrono::nanoseconds(spinNs < kBusySpinNs ? spinNs : kBusySpinNs);
  const auto until = start + std::chrono::nanoseconds(spinNs);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (waiter.released.load(std::memory_order_acquire)) return true;
      cpuRelax();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    if (now >= busyUntil) std::this_thread::yield();
  }
}

}  // namespace

Port::Port(uint32_t concurrency, size_t capacity, uint32_t spinNs)
    : concurrency_(concurrency == 0 ? 1 : concurrency),
      capacity_(capacity),
      spinNs_(std::thread::hardware_concurrency() > 1 ? spinNs : 0) {}

Port::~Port() {
  // No thread can reach the port any more, so no lock: free what nobody dequeued.
  while (!queue_.empty()) Payload::destroy(queue_.popFront().data);
}

// ---------------------------------------------------------------------------------------------
// The waiter stack. An intrusive doubly-linked list so that a timed-out or cancelled waiter
// leaves from the middle in O(1); releases always start from the top (LIFO).

void Port::pushWaiterLocked(Waiter& waiter) {
  waiter.state = WaitState::Waiting;
  waiter.released.store(false, std::memory_order_relaxed);
  waiter.above = nullptr;
  waiter.below = top_;
  if (top_ != nullptr) top_->above = &waiter;
  top_ = &waiter;
  ++waiting_;
}

void Port::unlinkWaiterLocked(Waiter& waiter) {
  if (waiter.above != nullptr) waiter.above->below = waiter.below;
  else top_ = waiter.below;
  if (waiter.below != nullptr) waiter.below->above = waiter.above;
  waiter.above = waiter.below = nullptr;
  --waiting_;
}

Port::AsyncRunning* Port::findAsyncRunningLocked(const Consumer* consumer) {
  for (AsyncRunning& entry : asyncRunning_) {
    if (entry.consumer == consumer) return &entry;
  }
  return nullptr;
}

// The waiter the concurrency rule lets run next: the top one while running < concurrency;
// otherwise only an async waiter whose thread already counts as running here (it would not raise
// the count), the newest such one.
Waiter* Port::findEligibleLocked() {
  if (top_ == nullptr) return nullptr;
  if (running_ < concurrency_) return top_;
  if (asyncRunning_.empty()) return nullptr;
  for (Waiter* waiter = top_; waiter != nullptr; waiter = waiter->below) {
    if (waiter->async && findAsyncRunningLocked(waiter->consumer) != nullptr) return waiter;
  }
  return nullptr;
}

void Port::deliverLocked(Waiter& waiter, const Packet& packet) {
  // The one allocation a delivery can need comes first, so that running out of memory throws
  // before the waiter is touched (it stays linked and waiting).
  if (waiter.async && asyncRunning_.size() == asyncRunning_.capacity()) {
    asyncRunning_.reserve(asyncRunning_.size() * 2 + 4);
  }
  unlinkWaiterLocked(waiter);
  waiter.slot = packet;
  waiter.state = WaitState::Delivered;
  ++dequeued_;
  if (waiter.async) {
    if (AsyncRunning* entry = findAsyncRunningLocked(waiter.consumer)) {
      ++entry->deliveries;
    } else {
      asyncRunning_.push_back(AsyncRunning{waiter.consumer, 1});  // allocates only at a new peak
      ++running_;
    }
  } else {
    // The consumer is asleep in get() on this port: it is associated with it already, and reads
    // running_ under mutex_ when it wakes.
    waiter.consumer->running_ = true;
    ++running_;
  }
  waiter.released.store(true, std::memory_order_release);  // ends a spin (port.h, A)
  waiter.wake(&waiter);
}

// Releases waiters while packets are queued and the rule allows, then, after a shutdown that
// emptied the queue, wakes the rest with Closed. Called whenever running_ may have dropped or
// the queue may have become empty.
void Port::dispatchLocked() {
  while (!queue_.empty()) {
    Waiter* waiter = findEligibleLocked();
    if (waiter == nullptr) break;
    deliverLocked(*waiter, queue_.popFront());
  }
  if (drainedLocked()) closeWaitersLocked();
}

// Shutdown and close wake everybody in one pass.
void Port::closeWaitersLocked() {
  while (top_ != nullptr) {
    Waiter& waiter = *top_;
    unlinkWaiterLocked(waiter);
    waiter.state = WaitState::Closed;
    waiter.released.store(true, std::memory_order_release);  // ends a spin (port.h, A)
    waiter.wake(&waiter);
  }
}

void Port::stopRunningLocked(Consumer& consumer) {
  if (consumer.port_.get() == this && consumer.running_) {
    consumer.running_ = false;
    --running_;
  }
}

// Ends the async deliveries of `consumer` here (all of them, or one, for a requeue). Returns
// whether running_ dropped.
bool Port::dropAsyncRunningLocked(Consumer& consumer, bool oneDelivery) {
  for (size_t i = 0; i < asyncRunning_.size(); ++i) {
    if (asyncRunning_[i].consumer != &consumer) continue;
    if (oneDelivery && asyncRunning_[i].deliveries > 1) {
      --asyncRunning_[i].deliveries;
      return false;
    }
    asyncRunning_[i] = asyncRunning_.back();
    asyncRunning_.pop_back();
    --running_;
    return true;
  }
  return false;
}

size_t Port::takeLocked(Packet* out, size_t max) {
  size_t count = 0;
  while (count < max && !queue_.empty()) out[count++] = queue_.popFront();
  dequeued_ += count;
  return count;
}

std::shared_ptr<Port> Port::associate(Consumer& consumer) {
  std::shared_ptr<Port> previous;
  if (consumer.port_.get() != this) {
    if (consumer.port_) consumer.port_->dissociate(consumer);
    previous = std::move(consumer.port_);
    consumer.port_ = shared_from_this();
  }
  if (!consumer.asyncPorts_.empty()) {
    for (const std::weak_ptr<Port>& weak : consumer.asyncPorts_) {
      std::shared_ptr<Port> other = weak.lock();  // dropped here, holding no mutex
      if (other && other.get() != this) other->dropAsync(consumer);
    }
    consumer.asyncPorts_.clear();
  }
  return previous;
}

// Moves `consumer` off this port (it is about to wait on another one): the IOCP rule that a
// thread is associated with one port at a time.
void Port::dissociate(Consumer& consumer) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint32_t before = running_;
  stopRunningLocked(consumer);
  dropAsyncRunningLocked(consumer, false);
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  if (running_ != before) dispatchLocked();
}

void Port::dropAsync(Consumer& consumer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (dropAsyncRunningLocked(consumer, false)) dispatchLocked();
}

void Port::endBlocking(Consumer& consumer) {
  consumer.blockedOn_ = nullptr;
  consumer.blockDepth_ = 0;
  consumer.resumeRunning_ = false;
  consumer.resumeAsync_ = 0;
}

// ---------------------------------------------------------------------------------------------

Status Port::post(const Packet& packet) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != State::Open) return Status::Closed;
  if (queue_.empty()) {
    if (Waiter* waiter = findEligibleLocked()) {
      ++posted_;
      deliverLocked(*waiter, packet);
      return Status::Ok;
    }
  }
  if (capacity_ != 0 && queue_.size() >= capacity_) return Status::Full;
  queue_.pushBack(packet);
  ++posted_;
  return Status::Ok;
}

Port::PostManyResult Port::postMany(const Packet* packets, size_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != State::Open) return {Status::Closed, 0};
  for (size_t i = 0; i < count; ++i) {
    if (queue_.empty()) {
      if (Waiter* waiter = findEligibleLocked()) {
        ++posted_;
        deliverLocked(*waiter, packets[i]);
        continue;
      }
    }
    if (capacity_ != 0 && queue_.size() >= capacity_) return {Status::Full, i};
    try {
      queue_.pushBack(packets[i]);
    } catch (const std::bad_alloc&) {
      return {Status::Full, i};  // the queue could not grow: like a full one, the rest stays
    }
    ++posted_;
  }
  return {Status::Ok, count};
}

GetResult Port::get(Consumer& consumer, Packet* out, size_t max, int64_t timeoutMs) {
  // The previous delivery ends here, whichever port it came from.
  consumer.held_.clear();
  // Dropped after mutex_ is released (declared before the lock).
  std::shared_ptr<Port> previous = associate(consumer);

  std::unique_lock<std::mutex> lock(mutex_);
  if (state_ == State::Closed) return {Status::Closed, 0};
  stopRunningLocked(consumer);
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  if (dropAsyncRunningLocked(consumer, false)) dispatchLocked();

  size_t count = 0;
  bool slept = false;
  if (!queue_.empty() && running_ < concurrency_) {
    // The fast path: the thread that just finished takes the next packet itself, no sleep.
    count = takeLocked(out, max);
    consumer.running_ = true;
    ++running_;
    if (drainedLocked()) closeWaitersLocked();
  } else if (drainedLocked()) {
    return {Status::Closed, 0};
  } else if (timeoutMs == 0) {
    return {Status::Timeout, 0};
  } else {
    Waiter& waiter = consumer.waiter_;
    pushWaiterLocked(waiter);
    const bool infinite = timeoutMs < 0;
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(infinite ? 0 : timeoutMs);
    if (spinNs_ != 0) {
      // Poll before parking, without the mutex; the state is re-read under it below.
      lock.unlock();
      spinUntilReleased(waiter, spinNs_);
      lock.lock();
    }
    // Wait only inside a loop that re-checks the state: wake-ups may be spurious. With an
    // abandon check, wake every kAbandonPollMs to run it (a thread being terminated cannot be
    // interrupted otherwise); the deadline stays the one computed above.
    const auto poll = std::chrono::milliseconds(Consumer::kAbandonPollMs);
    while (waiter.state == WaitState::Waiting) {
      if (consumer.abandoned_ == nullptr) {
        if (infinite) {
          consumer.wakeup_.wait(lock);
          continue;
        }
        if (consumer.wakeup_.wait_until(lock, deadline) == std::cv_status::no_timeout) continue;
      } else {
        const auto next = std::chrono::steady_clock::now() + poll;
        const auto until = (infinite || next < deadline) ? next : deadline;
        if (consumer.wakeup_.wait_until(lock, until) == std::cv_status::no_timeout) continue;
        if (waiter.state == WaitState::Waiting && consumer.abandoned_(consumer.abandonContext_)) {
          unlinkWaiterLocked(waiter);
          waiter.state = WaitState::Idle;
          return {Status::Abandoned, 0};
        }
        if (infinite || std::chrono::steady_clock::now() < deadline) continue;
      }
      if (waiter.state == WaitState::Waiting) {  // the deadline passed
        unlinkWaiterLocked(waiter);
        waiter.state = WaitState::Idle;
        return {Status::Timeout, 0};
      }
    }
    if (waiter.state == WaitState::Closed) {
      waiter.state = WaitState::Idle;
      return {Status::Closed, 0};
    }
    slept = true;
    // Delivered: the releaser counted this thread as running. Fill the rest of the batch from
    // the queue; a thread that takes several packets at once still counts once.
    waiter.state = WaitState::Idle;
    out[0] = waiter.slot;
    waiter.slot = Packet{};
    count = 1 + takeLocked(out + 1, max - 1);
    if (drainedLocked()) closeWaitersLocked();
  }
  lock.unlock();

  // The held record is this thread's own until it goes away (forget), so it needs no lock.
  for (size_t i = 0; i < count; ++i) consumer.held_.push_back(heldOf(out[i]));
  return {Status::Ok, count, slept};
}

Status Port::getAsync(Consumer& consumer, Waiter& waiter) {
  // A getAsync is a get on this port: the thread's earlier deliveries end, here and elsewhere.
  consumer.held_.clear();
  std::shared_ptr<Port> previous = associate(consumer);  // dropped after mutex_ is released
  consumer.asyncPorts_.push_back(weak_from_this());
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::Closed || drainedLocked()) return Status::Closed;
  stopRunningLocked(consumer);
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  dropAsyncRunningLocked(consumer, false);
  waiter.consumer = &consumer;
  waiter.async = true;
  pushWaiterLocked(waiter);
  dispatchLocked();
  return Status::Ok;
}

bool Port::cancelAsync(Waiter& waiter) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (waiter.state != WaitState::Waiting) return false;
  unlinkWaiterLocked(waiter);
  waiter.state = WaitState::Idle;
  return true;
}

bool Port::requeue(Consumer& consumer, const Packet* packets, size_t count, bool fromAsync) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::Closed) return false;
  for (size_t i = count; i > 0; --i) queue_.pushFront(packets[i - 1]);
  dequeued_ -= count;
  if (fromAsync) {
    dropAsyncRunningLocked(consumer, true);
  } else {
    stopRunningLocked(consumer);
    consumer.held_.clear();
  }
  dispatchLocked();
  return true;
}

void Port::blockingEnter(Consumer& consumer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (consumer.blockDepth_ > 0) {
    if (consumer.blockedOn_ == this) ++consumer.blockDepth_;  // nested (other ports: ignored)
    return;
  }
  consumer.blockedOn_ = this;
  consumer.blockDepth_ = 1;
  const uint32_t before = running_;
  // It stops counting, however it counted: a blocking get's delivery or async deliveries.
  consumer.resumeRunning_ = consumer.port_.get() == this && consumer.running_;
  stopRunningLocked(consumer);
  consumer.resumeAsync_ = 0;
  if (AsyncRunning* entry = findAsyncRunningLocked(&consumer)) {
    consumer.resumeAsync_ = entry->deliveries;
    dropAsyncRunningLocked(consumer, false);
  }
  if (running_ != before) dispatchLocked();
}

void Port::blockingLeave(Consumer& consumer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (consumer.blockedOn_ != this || consumer.blockDepth_ == 0) return;
  if (--consumer.blockDepth_ > 0) return;
  const bool resumeRunning = consumer.resumeRunning_;
  const uint32_t resumeAsync = consumer.resumeAsync_;
  endBlocking(consumer);
  if (state_ == State::Closed) return;
  // Count again as before, unless the thread took a new delivery meanwhile (then it counts
  // already, and must not count twice). This may exceed concurrency_ for a while, as on Windows.
  const bool counted = (consumer.port_.get() == this && consumer.running_) ||
                       findAsyncRunningLocked(&consumer) != nullptr;
  if (counted) return;
  if (resumeRunning && consumer.port_.get() == this) {
    consumer.running_ = true;
    ++running_;
  } else if (resumeAsync != 0) {
    asyncRunning_.push_back(AsyncRunning{&consumer, resumeAsync});
    ++running_;
  }
}

std::vector<Packet> Port::close() {
  std::vector<Packet> remaining;
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::Closed) return remaining;
  state_ = State::Closed;
  remaining.reserve(queue_.size());
  while (!queue_.empty()) remaining.push_back(queue_.popFront());
  closeWaitersLocked();
  asyncRunning_.clear();
  return remaining;
}

Status Port::shutdown() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::Closed) return Status::Closed;
  state_ = State::ShutDown;
  if (queue_.empty()) closeWaitersLocked();
  return Status::Ok;
}

PortStats Port::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return PortStats{queue_.size(), running_,    waiting_,  posted_, dequeued_,
                   concurrency_,  capacity_,   static_cast<int>(state_)};
}

void Port::forget(Consumer& consumer) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint32_t before = running_;
  if (consumer.port_.get() == this) {
    stopRunningLocked(consumer);
    if (!consumer.held_.empty()) {
      orphans_.push_back(Orphan{consumer.threadId(), std::move(consumer.held_)});
      consumer.held_.clear();
    }
  }
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  dropAsyncRunningLocked(consumer, false);
  if (running_ != before) dispatchLocked();
}

std::vector<HeldPacket> Port::recoverHeld(uint64_t threadId) {
  std::vector<HeldPacket> packets;
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < orphans_.size(); ++i) {
    if (orphans_[i].threadId != threadId) continue;
    packets.insert(packets.end(), orphans_[i].packets.begin(), orphans_[i].packets.end());
    orphans_.erase(orphans_.begin() + static_cast<std::ptrdiff_t>(i));
    --i;
  }
  return packets;
}

}  // namespace iocp
