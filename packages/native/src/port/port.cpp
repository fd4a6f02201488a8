// See port.h for the model and the locking rules, shared_layout.h for the memory JS shares.
// Functions named *Locked run with lock_ held.
#include "port.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "payload_table.h"

namespace iocp {

namespace {

HeldPacket heldOf(const Packet& packet) {
  return HeldPacket{packet.key, packet.overlapped, packet.bytes, packet.flags};
}

// Tokens name ports on the JS fast path (a thread's kAssociated word); unique in the process.
std::atomic<uint32_t> gNextToken{1};

uint32_t newToken() {
  uint32_t token = gNextToken.fetch_add(1, std::memory_order_relaxed);
  if (token == 0) token = gNextToken.fetch_add(1, std::memory_order_relaxed);
  return token;
}

// A blocking waiter's wake: the thread may be asleep on its `released` word. Woken once the
// lock is released, so that it does not wake only to wait for the lock.
void wakeBlockingWaiter(Waiter* waiter, bool parked) {
  if (parked) deferWake(waiter->released);
}

// Polls the waiter's `released` word (load A of port.h) for up to spinNs nanoseconds: busy for
// the first kBusySpinNs, then yielding the CPU between polls.
constexpr uint32_t kBusySpinNs = 2000;

bool spinUntilReleased(const Waiter& waiter, uint32_t spinNs) {
  const auto start = std::chrono::steady_clock::now();
  const auto busyUntil = start + std::chrono::nanoseconds(spinNs < kBusySpinNs ? spinNs : kBusySpinNs);
  const auto until = start + std::chrono::nanoseconds(spinNs);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (waiter.released.load(std::memory_order_acquire) != kNotReleased) return true;
      cpuRelax();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    if (now >= busyUntil) std::this_thread::yield();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Consumer

Consumer::Consumer(uint64_t threadId) : threadId_(threadId), block_(SharedBlock::make(kConsumerWords)) {
  waiter_.consumer = this;
  waiter_.wake = wakeBlockingWaiter;
}

std::vector<HeldPacket> Consumer::held() const {
  if ((*block_)[kHeldInBlock].load(std::memory_order_relaxed) == 0) return held_;
  const SharedBlock& b = *block_;
  auto word = [&](uint32_t i) { return b[kHeldSlot + i].load(std::memory_order_relaxed); };
  return {HeldPacket{uint64_t(word(kKeyLo)) | (uint64_t(word(kKeyHi)) << 32),
                     uint64_t(word(kOverlappedLo)) | (uint64_t(word(kOverlappedHi)) << 32),
                     word(kBytes), word(kFlags)}};
}

// ---------------------------------------------------------------------------------------------
// Port

Port::Port(uint32_t concurrency, size_t capacity, uint32_t spinNs, bool trackHeld)
    : control_(SharedBlock::make(kControlWords)),
      lock_((*control_)[kTailLock], (*control_)[kHeadLock]),
      ring_(SharedBlock::make(size_t(kInitialRingSlots) * kSlotWords)),
      concurrency_(concurrency == 0 ? 1 : concurrency),
      capacity_(capacity),
      token_(newToken()),
      trackHeld_(trackHeld),
      spin_(spinNs) {
  // Not yet shared with anybody: plain stores.
  SharedBlock& c = *control_;
  c[kConcurrency].store(concurrency_, std::memory_order_relaxed);
  c[kCapacity].store(static_cast<uint32_t>(capacity_ > 0xffffffffu ? 0xffffffffu : capacity_),
                     std::memory_order_relaxed);
  c[kRingMask].store(kInitialRingSlots - 1, std::memory_order_relaxed);
  c[kRingGen].store(1, std::memory_order_relaxed);
  c[kTrackHeld].store(trackHeld ? 1 : 0, std::memory_order_relaxed);
  c[kToken].store(token_, std::memory_order_relaxed);
  // Positions start just short of their wrap at 2^30, so that every port crosses it within its
  // first kInitialRingSlots / 2 packets: the wrap is exercised by every test, in both languages,
  // not only after a billion packets.
  const uint32_t first = (kPositionMask + 1 - kInitialRingSlots / 2) << kLockStateBits;
  c[kTailLock].store(first, std::memory_order_relaxed);
  c[kHeadLock].store(first, std::memory_order_relaxed);
}

Port::~Port() {
  // No thread can reach the port any more (JS views of the blocks may outlive it, but nothing
  // reaches the port through them once every wrapper is gone), so no lock: free what nobody
  // dequeued.
  while (!queueEmptyLocked()) Payload::destroy(popFrontLocked().data);
}

std::shared_ptr<SharedBlock> Port::ring(uint32_t* generation) const {
  PortLockGuard guard(lock_);
  if (generation != nullptr) *generation = wordLocked(kRingGen);
  return ring_;
}

void Port::add64Locked(ControlWord lo, ControlWord hi, uint64_t d) {
  const uint64_t value = (uint64_t(wordLocked(hi)) << 32 | wordLocked(lo)) + d;
  setWordLocked(lo, static_cast<uint32_t>(value));
  setWordLocked(hi, static_cast<uint32_t>(value >> 32));
}

// ---------------------------------------------------------------------------------------------
// The ring. Positions are 30-bit and wrap (kPositionMask); slot = position & mask. JS pushes at
// the tail and pops at the head with the same steps (packages/core/src/port/shared-port.ts).

void Port::writeSlotLocked(uint32_t position, const Packet& packet, uint64_t payloadToken) {
  SharedBlock& r = *ring_;
  const size_t at = size_t(position & wordLocked(kRingMask)) * kSlotWords;
  r[at + kKeyLo].store(static_cast<uint32_t>(packet.key), std::memory_order_relaxed);
  r[at + kKeyHi].store(static_cast<uint32_t>(packet.key >> 32), std::memory_order_relaxed);
  r[at + kOverlappedLo].store(static_cast<uint32_t>(packet.overlapped), std::memory_order_relaxed);
  r[at + kOverlappedHi].store(static_cast<uint32_t>(packet.overlapped >> 32), std::memory_order_relaxed);
  r[at + kBytes].store(packet.bytes, std::memory_order_relaxed);
  r[at + kFlags].store(packet.flags, std::memory_order_relaxed);
  r[at + kPayloadLo].store(static_cast<uint32_t>(payloadToken), std::memory_order_relaxed);
  r[at + kPayloadHi].store(static_cast<uint32_t>(payloadToken >> 32), std::memory_order_relaxed);
  if (payloadToken != 0) addPayloadsQueued(1);
}

Packet Port::popFrontLocked() {
  const uint32_t head = headLocked();
  const SharedBlock& r = *ring_;
  const size_t at = size_t(head & wordLocked(kRingMask)) * kSlotWords;
  auto word = [&](uint32_t i) { return r[at + i].load(std::memory_order_relaxed); };
  Packet packet;
  packet.key = uint64_t(word(kKeyLo)) | (uint64_t(word(kKeyHi)) << 32);
  packet.overlapped = uint64_t(word(kOverlappedLo)) | (uint64_t(word(kOverlappedHi)) << 32);
  packet.bytes = word(kBytes);
  packet.flags = word(kFlags);
  const uint64_t token = uint64_t(word(kPayloadLo)) | (uint64_t(word(kPayloadHi)) << 32);
  packet.data = nullptr;
  if (token != 0) {
    packet.data = PayloadTable::instance().take(token);
    addPayloadsQueued(static_cast<uint32_t>(-1));
  }
  setHeadLocked(head + 1);
  return packet;
}

void Port::ensureRoomLocked(size_t more) {
  const size_t queued = queuedLocked();
  size_t slots = ringSlotsLocked();
  if (queued + more <= slots) return;
  while (slots < queued + more) {
    if (slots >= (size_t(1) << 28)) throw std::bad_alloc();  // 8 GiB of slots: give up
    slots *= 2;
  }
  std::shared_ptr<SharedBlock> grown = SharedBlock::make(slots * kSlotWords);  // may throw
  // Each packet keeps its position and moves to that position's slot in the new ring (2^30
  // positions are a whole number of laps of any ring).
  const SharedBlock& old = *ring_;
  const uint32_t head = headLocked();
  const uint32_t mask = wordLocked(kRingMask);
  const uint32_t grownMask = static_cast<uint32_t>(slots - 1);
  for (size_t i = 0; i < queued; ++i) {
    const uint32_t position = head + static_cast<uint32_t>(i);
    const size_t from = size_t(position & mask) * kSlotWords;
    const size_t to = size_t(position & grownMask) * kSlotWords;
    for (uint32_t w = 0; w < kSlotWords; ++w) {
      (*grown)[to + w].store(old[from + w].load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
  }
  ring_ = std::move(grown);  // JS views of the old ring keep it alive; kRingGen marks them stale
  setWordLocked(kRingMask, grownMask);
  addWordLocked(kRingGen, 1);
}

void Port::pushBackLocked(const Packet& packet) {
  ensureRoomLocked(1);
  const uint64_t token = packet.data != nullptr ? PayloadTable::instance().put(packet.data) : 0;
  const uint32_t tail = tailLocked();
  writeSlotLocked(tail, packet, token);
  setTailLocked(tail + 1);
}

// ---------------------------------------------------------------------------------------------
// The waiter stack. An intrusive doubly-linked list so that a timed-out or cancelled waiter
// leaves from the middle in O(1); releases always start from the top (LIFO). kWaiting and
// kAsyncWaiting mirror it for JS's post, which must not queue a packet that a linked waiter may
// take (it calls post in native code instead).

void Port::pushWaiterLocked(Waiter& waiter) {
  waiter.state = WaitState::Waiting;
  waiter.released.store(kNotReleased, std::memory_order_relaxed);
  waiter.above = nullptr;
  waiter.below = top_;
  if (top_ != nullptr) top_->above = &waiter;
  top_ = &waiter;
  addWordLocked(kWaiting, 1);
  if (waiter.async) addWordLocked(kAsyncWaiting, 1);
}

void Port::unlinkWaiterLocked(Waiter& waiter) {
  if (waiter.above != nullptr) waiter.above->below = waiter.below;
  else top_ = waiter.below;
  if (waiter.below != nullptr) waiter.below->above = waiter.above;
  waiter.above = waiter.below = nullptr;
  addWordLocked(kWaiting, static_cast<uint32_t>(-1));
  if (waiter.async) addWordLocked(kAsyncWaiting, static_cast<uint32_t>(-1));
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
  if (runningLocked() < concurrency_) return top_;
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
  add64Locked(kDequeuedLo, kDequeuedHi, 1);
  if (waiter.async) {
    if (AsyncRunning* entry = findAsyncRunningLocked(waiter.consumer)) {
      ++entry->deliveries;
    } else {
      asyncRunning_.push_back(AsyncRunning{waiter.consumer, 1});  // capacity reserved above
      addWordLocked(kRunning, 1);
    }
  } else {
    // The consumer is asleep in get() on this port: it is associated with it already, and reads
    // its running word under lock_ when it wakes.
    waiter.consumer->setRunning(true);
    addWordLocked(kRunning, 1);
  }
  const bool parked = waiter.released.exchange(kReleased, std::memory_order_release) == kParked;  // (A)
  waiter.wake(&waiter, parked);
}

// Releases waiters while packets are queued and the rule allows, then, after a shutdown that
// emptied the queue, wakes the rest with Closed. Called whenever the running count may have
// dropped or the queue may have become empty.
void Port::dispatchLocked() {
  while (!queueEmptyLocked()) {
    Waiter* waiter = findEligibleLocked();
    if (waiter == nullptr) break;
    // Reserve before the packet leaves the ring, so that a failed reservation loses nothing.
    if (waiter->async && asyncRunning_.size() == asyncRunning_.capacity()) {
      asyncRunning_.reserve(asyncRunning_.size() * 2 + 4);
    }
    deliverLocked(*waiter, popFrontLocked());
  }
  if (drainedLocked()) closeWaitersLocked();
}

// Shutdown and close wake everybody in one pass.
void Port::closeWaitersLocked() {
  while (top_ != nullptr) {
    Waiter& waiter = *top_;
    unlinkWaiterLocked(waiter);
    waiter.state = WaitState::Closed;
    const bool parked = waiter.released.exchange(kReleased, std::memory_order_release) == kParked;  // (A)
    waiter.wake(&waiter, parked);
  }
}

void Port::stopRunningLocked(Consumer& consumer) {
  if (consumer.port_.get() == this && consumer.running()) {
    consumer.setRunning(false);
    addWordLocked(kRunning, static_cast<uint32_t>(-1));
  }
}

// Ends the async deliveries of `consumer` here (all of them, or one, for a requeue). Returns
// whether the running count dropped.
bool Port::dropAsyncRunningLocked(Consumer& consumer, bool oneDelivery) {
  for (size_t i = 0; i < asyncRunning_.size(); ++i) {
    if (asyncRunning_[i].consumer != &consumer) continue;
    if (oneDelivery && asyncRunning_[i].deliveries > 1) {
      --asyncRunning_[i].deliveries;
      return false;
    }
    asyncRunning_[i] = asyncRunning_.back();
    asyncRunning_.pop_back();
    addWordLocked(kRunning, static_cast<uint32_t>(-1));
    return true;
  }
  return false;
}

size_t Port::takeLocked(Packet* out, size_t max) {
  const uint32_t head = headLocked();
  const uint32_t queued = static_cast<uint32_t>(queuedLocked());
  const size_t count = max < queued ? max : queued;
  const SharedBlock& r = *ring_;
  const uint32_t mask = wordLocked(kRingMask);
  for (size_t i = 0; i < count; ++i) {
    const std::atomic<uint32_t>* slot = &r[size_t((head + i) & mask) * kSlotWords];
    auto word = [slot](uint32_t w) { return slot[w].load(std::memory_order_relaxed); };
    Packet& packet = out[i];
    packet.key = uint64_t(word(kKeyLo)) | (uint64_t(word(kKeyHi)) << 32);
    packet.overlapped = uint64_t(word(kOverlappedLo)) | (uint64_t(word(kOverlappedHi)) << 32);
    packet.bytes = word(kBytes);
    packet.flags = word(kFlags);
    const uint64_t token = uint64_t(word(kPayloadLo)) | (uint64_t(word(kPayloadHi)) << 32);
    packet.data = nullptr;
    if (token != 0) {
      packet.data = PayloadTable::instance().take(token);
      addPayloadsQueued(static_cast<uint32_t>(-1));
    }
  }
  setHeadLocked(head + static_cast<uint32_t>(count));
  add64Locked(kDequeuedLo, kDequeuedHi, count);
  return count;
}

std::shared_ptr<Port> Port::associate(Consumer& consumer) {
  std::shared_ptr<Port> previous;
  if (consumer.port_.get() != this) {
    consumer.setAssociated(0);
    if (consumer.port_) consumer.port_->dissociate(consumer);
    previous = std::move(consumer.port_);
    consumer.port_ = shared_from_this();
  }
  if (!consumer.asyncPorts_.empty()) {
    for (const std::weak_ptr<Port>& weak : consumer.asyncPorts_) {
      std::shared_ptr<Port> other = weak.lock();  // dropped here, holding no lock
      if (other && other.get() != this) other->dropAsync(consumer);
    }
    consumer.asyncPorts_.clear();
  }
  return previous;
}

// Moves `consumer` off this port (it is about to wait on another one): the IOCP rule that a
// thread is associated with one port at a time.
void Port::dissociate(Consumer& consumer) {
  PortLockGuard guard(lock_);
  const uint32_t before = runningLocked();
  stopRunningLocked(consumer);
  dropAsyncRunningLocked(consumer, false);
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  if (runningLocked() != before) dispatchLocked();
}

void Port::dropAsync(Consumer& consumer) {
  PortLockGuard guard(lock_);
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
  PortLockGuard guard(lock_);
  if (stateLocked() != State::Open) return Status::Closed;
  if (queueEmptyLocked()) {
    if (Waiter* waiter = findEligibleLocked()) {
      if (waiter->async && asyncRunning_.size() == asyncRunning_.capacity()) {
        asyncRunning_.reserve(asyncRunning_.size() * 2 + 4);  // throws with nothing posted
      }
      add64Locked(kPostedLo, kPostedHi, 1);
      deliverLocked(*waiter, packet);
      return Status::Ok;
    }
  }
  if (capacity_ != 0 && queuedLocked() >= capacity_) return Status::Full;
  pushBackLocked(packet);  // throws with nothing posted
  add64Locked(kPostedLo, kPostedHi, 1);
  return Status::Ok;
}

Port::PostManyResult Port::postMany(const Packet* packets, size_t count) {
  PortLockGuard guard(lock_);
  if (stateLocked() != State::Open) return {Status::Closed, 0};
  size_t i = 0;
  // While the queue is empty, packets go straight to eligible waiters, one by one.
  while (i < count && queueEmptyLocked()) {
    Waiter* waiter = findEligibleLocked();
    if (waiter == nullptr) break;
    try {
      if (waiter->async && asyncRunning_.size() == asyncRunning_.capacity()) {
        asyncRunning_.reserve(asyncRunning_.size() * 2 + 4);
      }
    } catch (const std::bad_alloc&) {
      return {Status::Full, i};  // like a full queue: the rest stays with the caller
    }
    add64Locked(kPostedLo, kPostedHi, 1);
    deliverLocked(*waiter, packets[i++]);
  }
  if (i == count) return {Status::Ok, count};
  // The rest is appended in one run: the queue is non-empty from the first append on (or no
  // waiter may run), so no waiter can take any of them.
  size_t n = count - i;
  if (capacity_ != 0) {
    const size_t room = capacity_ > queuedLocked() ? capacity_ - queuedLocked() : 0;
    if (n > room) n = room;
  }
  size_t appended = 0;
  try {
    ensureRoomLocked(n);
    SharedBlock& r = *ring_;
    const uint32_t mask = wordLocked(kRingMask);
    uint32_t tail = tailLocked();
    for (; appended < n; ++appended) {
      const Packet& packet = packets[i + appended];
      const uint64_t token = packet.data != nullptr ? PayloadTable::instance().put(packet.data) : 0;
      std::atomic<uint32_t>* slot = &r[size_t(tail & mask) * kSlotWords];
      slot[kKeyLo].store(static_cast<uint32_t>(packet.key), std::memory_order_relaxed);
      slot[kKeyHi].store(static_cast<uint32_t>(packet.key >> 32), std::memory_order_relaxed);
      slot[kOverlappedLo].store(static_cast<uint32_t>(packet.overlapped), std::memory_order_relaxed);
      slot[kOverlappedHi].store(static_cast<uint32_t>(packet.overlapped >> 32), std::memory_order_relaxed);
      slot[kBytes].store(packet.bytes, std::memory_order_relaxed);
      slot[kFlags].store(packet.flags, std::memory_order_relaxed);
      slot[kPayloadLo].store(static_cast<uint32_t>(token), std::memory_order_relaxed);
      slot[kPayloadHi].store(static_cast<uint32_t>(token >> 32), std::memory_order_relaxed);
      if (token != 0) addPayloadsQueued(1);
      setTailLocked(++tail);
    }
  } catch (const std::bad_alloc&) {
    // The ring could not grow, or a payload could not be registered: the first `appended` are
    // posted (the tail advanced with each), the rest stays with the caller, like a full queue.
  }
  add64Locked(kPostedLo, kPostedHi, appended);
  i += appended;
  return {i == count ? Status::Ok : Status::Full, i};
}

GetResult Port::get(Consumer& consumer, Packet* out, size_t max, int64_t timeoutMs) {
  // The previous delivery ends here, whichever port it came from. The held record is reserved
  // first, so that nothing can fail once packets have left the queue.
  consumer.held_.clear();
  if (trackHeld_) consumer.held_.reserve(max);  // may throw: nothing taken yet
  (*consumer.block_)[kHeldInBlock].store(0, std::memory_order_relaxed);
  // Dropped after lock_ is released (declared before the guard).
  std::shared_ptr<Port> previous = associate(consumer);

  PortLockGuard guard(lock_);
  if (stateLocked() == State::Closed) return {Status::Closed, 0};
  stopRunningLocked(consumer);
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  if (dropAsyncRunningLocked(consumer, false)) dispatchLocked();
  // From now on, JS may take this thread's next packet here without calling native code.
  consumer.setAssociated(token_);

  size_t count = 0;
  bool slept = false;
  if (!queueEmptyLocked() && runningLocked() < concurrency_) {
    // The fast path: the thread that just finished takes the next packet itself, no sleep.
    count = takeLocked(out, max);
    consumer.setRunning(true);
    addWordLocked(kRunning, 1);
    if (drainedLocked()) closeWaitersLocked();
  } else if (drainedLocked()) {
    return {Status::Closed, 0};
  } else if (timeoutMs == 0) {
    return {Status::Timeout, 0};
  } else {
    Waiter& waiter = consumer.waiter_;
    pushWaiterLocked(waiter);
    const Status status = waitLocked(consumer, waiter, timeoutMs);
    if (status != Status::Ok) return {status, 0};
    slept = true;
    // Delivered: the releaser counted this thread as running. Fill the rest of the batch from
    // the queue; a thread that takes several packets at once still counts once.
    waiter.state = WaitState::Idle;
    out[0] = waiter.slot;
    waiter.slot = Packet{};
    count = 1 + takeLocked(out + 1, max - 1);
    if (drainedLocked()) closeWaitersLocked();
  }
  // The held record is this thread's own until it goes away (forget); reserved above. Kept only
  // where a pool will ask for it.
  if (trackHeld_) {
    for (size_t i = 0; i < count; ++i) consumer.held_.push_back(heldOf(out[i]));
  }
  return {Status::Ok, count, slept};
}

Status Port::waitLocked(Consumer& consumer, Waiter& waiter, int64_t timeoutMs) {
  const bool infinite = timeoutMs < 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(infinite ? 0 : timeoutMs);
  if (const uint32_t spinNs = spin_.begin()) {
    // Poll before parking, without the lock; the state is re-read under it below.
    lock_.unlock();
    spin_.record(spinUntilReleased(waiter, spinNs));
    lock_.lock();
  }
  // Sleep on `released` only inside a loop that re-checks the state under the lock: wake-ups
  // may be spurious. With an abandon check, wake every kAbandonPollMs to run it (a thread being
  // terminated cannot be interrupted otherwise); the deadline stays the one computed above.
  const auto poll = std::chrono::milliseconds(Consumer::kAbandonPollMs);
  while (waiter.state == WaitState::Waiting) {
    auto until = deadline;
    if (consumer.abandoned_ != nullptr) {
      const auto next = std::chrono::steady_clock::now() + poll;
      if (infinite || next < deadline) until = next;
    }
    const bool timed = !infinite || consumer.abandoned_ != nullptr;
    // Announce the sleep: a releaser that swaps in kReleased after this sees kParked and wakes
    // us; one that came first leaves kReleased, and the CAS fails.
    uint32_t expected = kNotReleased;
    if (waiter.released.compare_exchange_strong(expected, kParked, std::memory_order_acq_rel)) {
      lock_.unlock();
      int64_t ns = -1;
      if (timed) {
        ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until - std::chrono::steady_clock::now()).count();
        if (ns < 0) ns = 0;
      }
      parkWait(waiter.released, kParked, ns);
      lock_.lock();
      if (waiter.state != WaitState::Waiting) break;
      // Still linked (timeout or spurious wake): back to kNotReleased for the next round.
      waiter.released.store(kNotReleased, std::memory_order_relaxed);
    }
    if (waiter.state != WaitState::Waiting) break;
    const auto now = std::chrono::steady_clock::now();
    if (consumer.abandoned_ != nullptr && consumer.abandoned_(consumer.abandonContext_)) {
      unlinkWaiterLocked(waiter);
      waiter.state = WaitState::Idle;
      return Status::Abandoned;
    }
    if (!infinite && now >= deadline) {
      unlinkWaiterLocked(waiter);
      waiter.state = WaitState::Idle;
      return Status::Timeout;
    }
  }
  if (waiter.state == WaitState::Closed) {
    waiter.state = WaitState::Idle;
    return Status::Closed;
  }
  return Status::Ok;
}

Status Port::getAsync(Consumer& consumer, Waiter& waiter) {
  // A getAsync is a get on this port: the thread's earlier deliveries end, here and elsewhere.
  consumer.held_.clear();
  (*consumer.block_)[kHeldInBlock].store(0, std::memory_order_relaxed);
  consumer.asyncPorts_.reserve(consumer.asyncPorts_.size() + 1);  // may throw: nothing changed
  std::shared_ptr<Port> previous = associate(consumer);  // dropped after lock_ is released
  consumer.asyncPorts_.push_back(weak_from_this());
  // The thread may now count through async deliveries here: only native gets may end them.
  consumer.setAssociated(0);
  PortLockGuard guard(lock_);
  if (stateLocked() == State::Closed || drainedLocked()) return Status::Closed;
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
  PortLockGuard guard(lock_);
  if (waiter.state != WaitState::Waiting) return false;
  unlinkWaiterLocked(waiter);
  waiter.state = WaitState::Idle;
  return true;
}

Status Port::requeue(Consumer& consumer, const Packet* packets, size_t count, bool fromAsync) noexcept {
  PortLockGuard guard(lock_);
  if (stateLocked() == State::Closed) return Status::Closed;
  Status status = Status::Ok;
  try {
    ensureRoomLocked(count);
    PayloadTable::instance().reserve(count);
    for (size_t i = count; i > 0; --i) {
      const Packet& packet = packets[i - 1];
      const uint64_t token = packet.data != nullptr ? PayloadTable::instance().put(packet.data) : 0;
      const uint32_t head = (headLocked() - 1) & kPositionMask;
      writeSlotLocked(head, packet, token);
      setHeadLocked(head);
    }
    add64Locked(kDequeuedLo, kDequeuedHi, static_cast<uint64_t>(-static_cast<int64_t>(count)));
    // The head moved back: a JS post's cached room (SharedPort.#roomUntil) is too large now.
    addWordLocked(kRingGen, 1);
  } catch (const std::bad_alloc&) {
    // No memory to put them back: keep them where a pool finds them (recoverHeld), never lost
    // silently; the caller frees the payloads and reports it.
    status = Status::Full;
    try {
      Orphan orphan{consumer.threadId(), {}};
      for (size_t i = 0; i < count; ++i) orphan.packets.push_back(heldOf(packets[i]));
      orphans_.push_back(std::move(orphan));
    } catch (const std::bad_alloc&) {
    }
  }
  if (fromAsync) {
    dropAsyncRunningLocked(consumer, true);
  } else {
    stopRunningLocked(consumer);
    consumer.held_.clear();
    (*consumer.block_)[kHeldInBlock].store(0, std::memory_order_relaxed);
  }
  dispatchLocked();
  return status;
}

void Port::blockingEnter(Consumer& consumer) {
  PortLockGuard guard(lock_);
  if (consumer.blockDepth_ > 0) {
    if (consumer.blockedOn_ == this) ++consumer.blockDepth_;  // nested (other ports: ignored)
    return;
  }
  consumer.blockedOn_ = this;
  consumer.blockDepth_ = 1;
  // While it blocks, JS must not take packets on the fast path (that would make it count again).
  consumer.setAssociated(0);
  const uint32_t before = runningLocked();
  // It stops counting, however it counted: a blocking get's delivery or async deliveries.
  consumer.resumeRunning_ = consumer.port_.get() == this && consumer.running();
  stopRunningLocked(consumer);
  consumer.resumeAsync_ = 0;
  if (AsyncRunning* entry = findAsyncRunningLocked(&consumer)) {
    consumer.resumeAsync_ = entry->deliveries;
    dropAsyncRunningLocked(consumer, false);
  }
  if (runningLocked() != before) dispatchLocked();
}

void Port::blockingLeave(Consumer& consumer) {
  PortLockGuard guard(lock_);
  if (consumer.blockedOn_ != this || consumer.blockDepth_ == 0) return;
  if (--consumer.blockDepth_ > 0) return;
  const bool resumeRunning = consumer.resumeRunning_;
  const uint32_t resumeAsync = consumer.resumeAsync_;
  endBlocking(consumer);
  if (stateLocked() == State::Closed) return;
  // Count again as before, unless the thread took a new delivery meanwhile (then it counts
  // already, and must not count twice). This may exceed the limit for a while, as on Windows.
  const bool counted = (consumer.port_.get() == this && consumer.running()) ||
                       findAsyncRunningLocked(&consumer) != nullptr;
  if (counted) return;
  if (resumeRunning && consumer.port_.get() == this) {
    consumer.setRunning(true);
    addWordLocked(kRunning, 1);
  } else if (resumeAsync != 0) {
    try {
      asyncRunning_.push_back(AsyncRunning{&consumer, resumeAsync});
      addWordLocked(kRunning, 1);
    } catch (const std::bad_alloc&) {
      // It cannot count again: it runs uncounted until its next get, which is what the count
      // would have ended anyway. The limit is then merely not exceeded.
    }
  }
}

std::vector<Packet> Port::close() {
  std::vector<Packet> remaining;
  {
    PortLockGuard guard(lock_);
    if (stateLocked() == State::Closed) return remaining;
    // Reserve first: if that fails, the port stays open with everything in place.
    remaining.reserve(queuedLocked());
    setWordLocked(kState, static_cast<uint32_t>(State::Closed));
    while (!queueEmptyLocked()) remaining.push_back(popFrontLocked());
    closeWaitersLocked();
    asyncRunning_.clear();
    setWordLocked(kRunning, 0);
  }
  return remaining;
}

Status Port::shutdown() {
  PortLockGuard guard(lock_);
  if (stateLocked() == State::Closed) return Status::Closed;
  setWordLocked(kState, static_cast<uint32_t>(State::ShutDown));
  if (queueEmptyLocked()) closeWaitersLocked();
  return Status::Ok;
}

PortStats Port::stats() const {
  PortLockGuard guard(lock_);
  auto word = [&](ControlWord w) { return (*control_)[w].load(std::memory_order_relaxed); };
  return PortStats{queuedLocked(),
                   word(kRunning),
                   word(kWaiting),
                   uint64_t(word(kPostedHi)) << 32 | word(kPostedLo),
                   uint64_t(word(kDequeuedHi)) << 32 | word(kDequeuedLo),
                   concurrency_,
                   capacity_,
                   static_cast<int>(word(kState))};
}

bool Port::releaseAbandonedLock(Consumer& consumer) noexcept {
  SharedBlock& b = *consumer.block_;
  const int32_t mark = static_cast<int32_t>(b[kLockMark].load(std::memory_order_relaxed));
  if (mark == 0 || b[kLockPort].load(std::memory_order_relaxed) != token_) return false;
  const uint32_t lockWord = static_cast<uint32_t>(mark > 0 ? mark : -mark) - 1;
  if (lockWord != kTailLock && lockWord != kHeadLock) return false;
  if (mark > 0) lock_.releaseOne(lockWord == kHeadLock);
  else lock_.wakeOne(lockWord == kHeadLock);  // a spurious wake is harmless: waiters re-check
  b[kLockMark].store(0, std::memory_order_relaxed);
  return true;
}

void Port::forget(Consumer& consumer) {
  // The held record is built before the lock (it may allocate); only this thread writes it.
  std::vector<HeldPacket> held;
  const bool mine = consumer.port_.get() == this;
  if (mine && trackHeld_) {
    try {
      held = consumer.held();
    } catch (const std::bad_alloc&) {
    }
  }
  PortLockGuard guard(lock_);
  const uint32_t before = runningLocked();
  if (mine) {
    consumer.setAssociated(0);
    stopRunningLocked(consumer);
    if (!held.empty()) {
      try {
        orphans_.push_back(Orphan{consumer.threadId(), std::move(held)});
      } catch (const std::bad_alloc&) {
      }
    }
    consumer.held_.clear();
  }
  if (consumer.blockedOn_ == this) endBlocking(consumer);
  dropAsyncRunningLocked(consumer, false);
  if (runningLocked() != before) dispatchLocked();
}

std::vector<HeldPacket> Port::recoverHeld(uint64_t threadId) {
  std::vector<HeldPacket> packets;
  PortLockGuard guard(lock_);
  for (size_t i = 0; i < orphans_.size(); ++i) {
    if (orphans_[i].threadId != threadId) continue;
    packets.insert(packets.end(), orphans_[i].packets.begin(), orphans_[i].packets.end());
    orphans_.erase(orphans_.begin() + static_cast<std::ptrdiff_t>(i));
    --i;
  }
  return packets;
}

}  // namespace iocp
