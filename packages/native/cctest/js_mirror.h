// The JS half of the shared-memory protocol, in C++: each step of
// packages/core/src/port/shared-port.ts replayed on the same words in the same order, so that
// ThreadSanitizer (which sees only C++) checks the whole protocol when these run beside the
// engine's own post and get. JS's Atomics operations are sequentially consistent: they map to
// seq_cst here. JS's plain typed-array accesses map to relaxed atomics (the locks order them).
// Keep this file in step with shared-port.ts: a change to one is a change to both.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "../src/port/payload_table.h"
#include "../src/port/port.h"

namespace cctest {

class JsMirror {
 public:
  static constexpr int kSlow = -100;
  static constexpr int kOk = 0;
  static constexpr int kFull = -2;

  JsMirror(iocp::Port& port, iocp::Consumer& consumer)
      : port_(port), control_(port.control()), consumer_(consumer.block()) {
    token_ = word(iocp::kToken);
    refreshRing();
  }

  void refreshIfStale() {
    if ((*control_)[iocp::kRingGen].load(std::memory_order_seq_cst) != generation_) refreshRing();
  }

  // SharedPort.post: kOk, kFull or kSlow.
  int post(uint64_t key, uint32_t bytes, uint64_t overlapped) {
    uint32_t held = 0;
    if (!lock(iocp::kTailLock, held)) return kSlow;
    if (word(iocp::kState) != 0 || word(iocp::kRingGen) != generation_ ||
        (word(iocp::kWaiting) != 0 &&
         (atomic(iocp::kRunning) < word(iocp::kConcurrency) || word(iocp::kAsyncWaiting) != 0))) {
      unlock(iocp::kTailLock, held);
      return kSlow;
    }
    const uint32_t tail = held >> 2;
    const uint32_t postedLo = word(iocp::kPostedLo);
    if (count(iocp::kPostedLo, iocp::kPostedHi) >= roomUntil_) {
      const int status = room(tail, 1);
      if (status != kOk) {
        unlock(iocp::kTailLock, held);
        return status;
      }
    }
    const size_t at = size_t(tail & word(iocp::kRingMask)) * iocp::kSlotWords;
    auto put = [&](uint32_t i, uint32_t v) { (*ring_)[at + i].store(v, std::memory_order_relaxed); };
    put(iocp::kKeyLo, static_cast<uint32_t>(key));
    put(iocp::kKeyHi, static_cast<uint32_t>(key >> 32));
    put(iocp::kOverlappedLo, static_cast<uint32_t>(overlapped));
    put(iocp::kOverlappedHi, static_cast<uint32_t>(overlapped >> 32));
    put(iocp::kBytes, bytes);
    put(iocp::kFlags, 0);
    put(iocp::kPayloadLo, 0);
    put(iocp::kPayloadHi, 0);
    set(iocp::kPostedLo, postedLo + 1);
    if (postedLo == 0xffffffffu) set(iocp::kPostedHi, word(iocp::kPostedHi) + 1);
    unlock(iocp::kTailLock, ((tail + 1) & iocp::kPositionMask) << 2);  // publishes the slot
    return kOk;
  }

  // A thread stopped (worker.terminate()) right after it took `lockWord` in a JS call: the lock
  // and its HOLDING mark stay as they are. `false` if the lock was taken.
  bool stopHolding(uint32_t lockWord) {
    uint32_t held = 0;
    return lock(lockWord, held);
  }

  // A thread stopped right after its unlocking exchange of `lockWord` (taken by stopHolding)
  // saw a thread parked on the word, before the wake it then owed: the OWES_WAKE mark stays.
  // Returns whether the exchange saw a parked thread (state 2).
  bool stopOwingWake(uint32_t lockWord) {
    std::atomic<uint32_t>& w = (*control_)[lockWord];
    const bool owes = (w.exchange(w.load(std::memory_order_relaxed) & ~iocp::kLockStateMask, std::memory_order_seq_cst) &
                       iocp::kLockStateMask) == 2;
    mark(iocp::kLockMark, owes ? -(lockWord + 1) : 0);
    return owes;
  }

  // SharedPort.get: true with `out` filled (its payload taken, as takePayload does), or false
  // for SLOW.
  bool get(iocp::Packet& out) {
    iocp::SharedBlock& b = *consumer_;
    if (b[iocp::kAssociated].load(std::memory_order_relaxed) != token_) return false;
    uint32_t held = 0;
    if (!lock(iocp::kHeadLock, held)) return false;
    const bool counted = b[iocp::kConsumerRunning].load(std::memory_order_relaxed) != 0;
    const uint32_t running = word(iocp::kRunning) - (counted ? 1 : 0);
    const uint32_t head = held >> 2;
    const uint32_t dequeuedLo = word(iocp::kDequeuedLo);
    const uint64_t dequeued = count(iocp::kDequeuedLo, iocp::kDequeuedHi);
    if (word(iocp::kState) != 0 || (dequeued >= queuedUntil_ && queued(head, dequeued) == 0) ||
        running >= word(iocp::kConcurrency) || word(iocp::kRingGen) != generation_) {
      // SharedPort.#stopRunning
      if (counted) {
        b[iocp::kConsumerRunning].store(0, std::memory_order_relaxed);
        store(iocp::kRunning, running);
      }
      unlock(iocp::kHeadLock, held);
      return false;
    }
    const size_t at = size_t(head & word(iocp::kRingMask)) * iocp::kSlotWords;
    auto slot = [&](uint32_t i) { return (*ring_)[at + i].load(std::memory_order_relaxed); };
    const uint32_t keyLo = slot(iocp::kKeyLo), keyHi = slot(iocp::kKeyHi);
    const uint32_t ovLo = slot(iocp::kOverlappedLo), ovHi = slot(iocp::kOverlappedHi);
    const uint32_t bytes = slot(iocp::kBytes), flags = slot(iocp::kFlags);
    const uint32_t payloadLo = slot(iocp::kPayloadLo), payloadHi = slot(iocp::kPayloadHi);
    if (!counted) {
      // SharedPort.#startRunning
      store(iocp::kRunning, running + 1);
      b[iocp::kConsumerRunning].store(1, std::memory_order_relaxed);
    }
    set(iocp::kDequeuedLo, dequeuedLo + 1);
    if (dequeuedLo == 0xffffffffu) set(iocp::kDequeuedHi, word(iocp::kDequeuedHi) + 1);
    const bool trackHeld = word(iocp::kTrackHeld) != 0;
    // Frees the slot; then the held record (plain stores, this thread's block), the wake, and
    // the payload count (Atomics.sub), in SharedPort.get's order.
    const uint32_t unlocked =
        (*control_)[iocp::kHeadLock].exchange(((head + 1) & iocp::kPositionMask) << 2, std::memory_order_seq_cst);
    if (trackHeld) {
      b[iocp::kHeldSlot + iocp::kKeyLo].store(keyLo, std::memory_order_relaxed);
      b[iocp::kHeldSlot + iocp::kKeyHi].store(keyHi, std::memory_order_relaxed);
      b[iocp::kHeldSlot + iocp::kOverlappedLo].store(ovLo, std::memory_order_relaxed);
      b[iocp::kHeldSlot + iocp::kOverlappedHi].store(ovHi, std::memory_order_relaxed);
      b[iocp::kHeldSlot + iocp::kBytes].store(bytes, std::memory_order_relaxed);
      b[iocp::kHeldSlot + iocp::kFlags].store(flags, std::memory_order_relaxed);
      b[iocp::kHeldInBlock].store(1, std::memory_order_relaxed);
    }
    if ((unlocked & iocp::kLockStateMask) == 2) {
      mark(iocp::kLockMark, -(iocp::kHeadLock + 1));
      port_.wakeLockWaiter(true);
    }
    mark(iocp::kLockMark, 0);
    if ((payloadLo | payloadHi) != 0) (*control_)[iocp::kPayloadsQueued].fetch_sub(1, std::memory_order_seq_cst);
    out.key = uint64_t(keyHi) << 32 | keyLo;
    out.overlapped = uint64_t(ovHi) << 32 | ovLo;
    out.bytes = bytes;
    out.flags = flags;
    const uint64_t token = uint64_t(payloadHi) << 32 | payloadLo;
    out.data = token != 0 ? iocp::PayloadTable::instance().take(token) : nullptr;
    return true;
  }

 private:
  // A plain typed-array access (c[i]).
  uint32_t word(uint32_t i) const { return (*control_)[i].load(std::memory_order_relaxed); }
  void set(uint32_t i, uint32_t v) { (*control_)[i].store(v, std::memory_order_relaxed); }
  // Atomics.load / Atomics.store.
  uint32_t atomic(uint32_t i) const { return (*control_)[i].load(std::memory_order_seq_cst); }
  void store(uint32_t i, uint32_t v) { (*control_)[i].store(v, std::memory_order_seq_cst); }

  // b[C_LOCK_PORT] = token; a plain read (c[word]), then Atomics.compareExchange(c, word, seen,
  // seen | 1) === seen when the state is 0, then SharedPort.#lockContended's polls (Atomics.load);
  // then b[C_LOCK_MARK] = HOLDING. `held`: the word as it was (state 0).
  bool lock(uint32_t lockWord, uint32_t& held) {
    mark(iocp::kLockPort, token_);
    std::atomic<uint32_t>& w = (*control_)[lockWord];
    for (int i = 0; i <= 64; ++i) {
      uint32_t seen = w.load(i == 0 ? std::memory_order_relaxed : std::memory_order_seq_cst);
      if ((seen & iocp::kLockStateMask) == 0 && w.compare_exchange_strong(seen, seen | 1, std::memory_order_seq_cst)) {
        held = seen;
        mark(iocp::kLockMark, lockWord + 1);
        return true;
      }
    }
    return false;
  }
  // if ((Atomics.exchange(c, word, value) & 3) === 2) { b[C_LOCK_MARK] = OWES_WAKE;
  // native.wakeLock(word) } b[C_LOCK_MARK] = 0
  void unlock(uint32_t lockWord, uint32_t value) {
    if (((*control_)[lockWord].exchange(value, std::memory_order_seq_cst) & iocp::kLockStateMask) == 2) {
      mark(iocp::kLockMark, -(lockWord + 1));
      port_.wakeLockWaiter(lockWord == iocp::kHeadLock);
    }
    mark(iocp::kLockMark, 0);
  }
  // A plain typed-array store into this thread's consumer block.
  void mark(uint32_t i, uint32_t v) { (*consumer_)[i].store(v, std::memory_order_relaxed); }

  // kPostedHi:kPostedLo or kDequeuedHi:kDequeuedLo (JS: a double, exact below 2^53).
  uint64_t count(uint32_t lo, uint32_t hi) const { return uint64_t(word(hi)) << 32 | word(lo); }

  // SharedPort.#room
  int room(uint32_t tail, uint32_t n) {
    const uint32_t queued = (tail - (atomic(iocp::kHeadLock) >> 2)) & iocp::kPositionMask;
    const uint64_t slots = uint64_t(word(iocp::kRingMask)) + 1;
    const uint32_t capacity = word(iocp::kCapacity);
    if (capacity != 0 && uint64_t(queued) + n > capacity) return kFull;
    if (uint64_t(queued) + n > slots) return kSlow;
    const uint64_t limit = capacity == 0 ? slots : std::min<uint64_t>(slots, capacity);
    roomUntil_ = count(iocp::kPostedLo, iocp::kPostedHi) + limit - queued;
    return kOk;
  }

  // SharedPort.#queued
  uint32_t queued(uint32_t head, uint64_t dequeued) {
    const uint32_t queued = ((atomic(iocp::kTailLock) >> 2) - head) & iocp::kPositionMask;
    queuedUntil_ = dequeued + queued;
    return queued;
  }

  // SharedPort.#refreshRing
  void refreshRing() {
    ring_ = port_.ring(&generation_);
    roomUntil_ = 0;
    queuedUntil_ = 0;
  }

  iocp::Port& port_;
  std::shared_ptr<iocp::SharedBlock> control_;
  std::shared_ptr<iocp::SharedBlock> consumer_;
  std::shared_ptr<iocp::SharedBlock> ring_;
  uint32_t generation_ = 0;
  uint32_t token_ = 0;
  uint64_t roomUntil_ = 0;    // SharedPort.#roomUntil
  uint64_t queuedUntil_ = 0;  // SharedPort.#queuedUntil
};

}  // namespace cctest
