// A port's lock words (its tail lock and its head lock, PortLock below): each one word in the
// control block that C++ and JS both take (Drepper's futex mutex, "Futexes Are Tricky", mutex 2),
// in the word's low two bits (kLockStateMask): 0 free, 1 held, 2 held and someone may be parked on
// the word. The other 30 bits carry a position (shared_layout.h) that only the holder changes, so
// that JS can publish a position and release the lock in one exchange.
//
//   lock    CAS v -> v|1 where v's state is 0 (acquire). JS tries exactly this and, when it
//           fails, makes the whole call in native code instead, which spins briefly and then
//           parks: it sets the state to 2 and sleeps on the word while it keeps that value.
//   unlock  clear the state bits (release; C++ fetch_and, JS an exchange that also writes the
//           new position); if the old state was 2, wake one parked thread. JS calls into native
//           code only to wake.
//
// The acquire of the lock pairs with the release of the previous unlock, in either language
// (JS Atomics operations are sequentially consistent, which is at least as strong), so every
// word the lock guards may be read and written with relaxed atomics (C++) or plain typed-array
// accesses (JS) inside the critical section.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "park.h"

namespace iocp {

inline void cpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class SharedLock {
 public:
  static constexpr uint32_t kHeld = 1;
  static constexpr uint32_t kContended = 2;
  static constexpr uint32_t kStateMask = 3;

  explicit SharedLock(std::atomic<uint32_t>& word) noexcept : word_(word) {}

  void lock() noexcept {
    if (!tryLock()) lockSlow();
  }

  bool tryLock() noexcept {
    uint32_t seen = word_.load(std::memory_order_relaxed);
    return (seen & kStateMask) == 0 &&
           word_.compare_exchange_strong(seen, seen | kHeld, std::memory_order_acquire, std::memory_order_relaxed);
  }

  // Also makes the wakes deferred while the lock was held (park.h, deferWake).
  void unlock() noexcept {
    release();
    flushDeferredWakes();
  }

  // unlock() without making the deferred wakes: for a lock released while another is held.
  void release() noexcept {
    if ((word_.fetch_and(~kStateMask, std::memory_order_release) & kStateMask) == kContended) parkWake(word_, false);
  }

  // Wakes one thread parked on the lock word: what JS asks for when its unlock saw 2.
  void wakeOne() noexcept { parkWake(word_, false); }

  // The bits above the state, read or written by the holder. Another thread may move the state
  // from held to contended meanwhile, so a write adds to the word rather than storing it.
  uint32_t position() const noexcept { return word_.load(std::memory_order_relaxed) >> 2; }
  void setPosition(uint32_t position) noexcept {
    const uint32_t delta = ((position - this->position()) & (0xffffffffu >> 2)) << 2;
    word_.fetch_add(delta, std::memory_order_relaxed);
  }

 private:
  void lockSlow() noexcept {
    // Critical sections are a few dozen instructions: a short spin usually wins.
    for (int i = 0; i < 100; ++i) {
      if (tryLock()) return;
      if (i < 50) cpuRelax();
      else std::this_thread::yield();
    }
    // Take it marked contended (its unlock then wakes a sleeper, if any), or mark it contended
    // and sleep until the word changes.
    for (;;) {
      uint32_t seen = word_.load(std::memory_order_relaxed);
      if ((seen & kStateMask) == 0) {
        if (word_.compare_exchange_weak(seen, seen | kContended, std::memory_order_acquire, std::memory_order_relaxed)) return;
        continue;
      }
      const uint32_t contended = (seen & ~kStateMask) | kContended;
      if ((seen & kStateMask) == kHeld &&
          !word_.compare_exchange_weak(seen, contended, std::memory_order_relaxed, std::memory_order_relaxed)) {
        continue;
      }
      parkWait(word_, contended, -1);
    }
  }

  std::atomic<uint32_t>& word_;
};

// A port's two locks (shared_layout.h): the tail lock, which a JS post takes, and the head
// lock, which a JS get takes. The engine takes both, always the tail lock first, and JS never
// holds two, so no thread waits for a lock while holding one that the other's holder wants.
// Held together they exclude every other thread from every word of the port, as one lock would.
class PortLock {
 public:
  PortLock(std::atomic<uint32_t>& tailWord, std::atomic<uint32_t>& headWord) noexcept
      : tail_(tailWord), head_(headWord) {}

  void lock() noexcept {
    tail_.lock();
    head_.lock();
  }

  // The head lock first; the deferred wakes once both are free (a woken thread needs both).
  void unlock() noexcept {
    head_.release();
    tail_.unlock();
  }

  // Wakes one thread parked on the tail lock (`head` false) or the head lock (true): what JS
  // asks for when its unlock of that word saw 2.
  void wakeOne(bool head) noexcept { (head ? head_ : tail_).wakeOne(); }
  // Releases the tail lock (`head` false) or the head lock (true) on behalf of a JS caller that
  // took it and went away before its unlock (Port::releaseAbandonedLock).
  void releaseOne(bool head) noexcept { (head ? head_ : tail_).unlock(); }

  // The positions kept in the two words (shared_layout.h); both locks held.
  uint32_t tail() const noexcept { return tail_.position(); }
  uint32_t head() const noexcept { return head_.position(); }
  void setTail(uint32_t position) noexcept { tail_.setPosition(position); }
  void setHead(uint32_t position) noexcept { head_.setPosition(position); }

 private:
  SharedLock tail_;
  SharedLock head_;
};

// RAII for either of the above.
template <typename Lock>
class LockGuard {
 public:
  explicit LockGuard(Lock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~LockGuard() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& lock_;
};
using SharedLockGuard = LockGuard<SharedLock>;
using PortLockGuard = LockGuard<PortLock>;

}  // namespace iocp
